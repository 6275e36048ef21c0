"""The optimizer: transformers 3.2's AdamW against hand arithmetic, where it differs from torch's, resume, wiring."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch

from prefixtune.data.records import Pair, write_jsonl
from prefixtune.training.optimizer import (
    DEFAULT_RULE,
    TORCH,
    TRANSFORMERS_3_2,
    AdamWTransformers32,
    build_optimizer,
)
from prefixtune.training.train import CheckpointMismatchError, TimeBudgetExceeded, train_run
from tiny_models import save_tiny_model

# two small tensors (a vector and a 2 x 2 matrix, flattened here) and their gradients at steps 1 and 2
START = [[0.5, -1.0, 2.0], [0.25, -0.75, 1.5, 0.0]]
GRADS = [
    [[0.1, -0.2, 1e-6], [3e-4, -0.5, 2.0, -1e-3]],
    [[0.3, 0.1, -0.4], [-2e-4, 0.25, 1.0, 5e-3]],
]
SHAPES = [(3,), (2, 2)]


def hand_3_2(lr: float, b1: float, b2: float, eps: float, wd: float) -> list[list[float]]:
    """Two steps of transformers 3.2's AdamW, element by element in Python floats."""
    out = []
    for k, start in enumerate(START):
        values = []
        for i, p in enumerate(start):
            m = v = 0.0
            for t, grads in enumerate(GRADS, start=1):
                g = grads[k][i]
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * g * g
                step = lr * math.sqrt(1 - b2**t) / (1 - b1**t)  # bias correction folded into the step size
                p = p - step * m / (math.sqrt(v) + eps)  # eps added before the correction
                p = p - lr * wd * p  # decoupled weight decay, after the Adam step
            values.append(p)
        out.append(values)
    return out


def run_two_steps(
    rule: str, lr: float, eps: float, wd: float, dtype=torch.float64, **kwargs
) -> list[list[float]]:
    params = [torch.tensor(s, dtype=dtype).reshape(shape) for s, shape in zip(START, SHAPES, strict=True)]
    params = [p.requires_grad_() for p in params]
    if kwargs:
        optimizer = AdamWTransformers32(params, lr=lr, eps=eps, weight_decay=wd, **kwargs)
    else:
        optimizer = build_optimizer(rule, params, lr=lr, eps=eps, weight_decay=wd)
    for grads in GRADS:
        for p, g, shape in zip(params, grads, SHAPES, strict=True):
            p.grad = torch.tensor(g, dtype=dtype).reshape(shape)
        optimizer.step()
    return [p.detach().flatten().tolist() for p in params]


def assert_close(got: list[list[float]], want: list[list[float]], rel: float) -> None:
    for g_row, w_row in zip(got, want, strict=True):
        assert g_row == pytest.approx(w_row, rel=rel, abs=rel)


@pytest.mark.parametrize("wd", [0.0, 0.1])
@pytest.mark.parametrize("foreach", [False, True])
def test_two_steps_match_the_hand_computed_3_2_update(wd, foreach):
    # eps large enough (1e-3) that where it is added moves the result far beyond the tolerance
    lr, eps = 0.01, 1e-3
    want = hand_3_2(lr, 0.9, 0.999, eps, wd)
    assert_close(run_two_steps(TRANSFORMERS_3_2, lr, eps, wd, foreach=foreach), want, rel=1e-12)
    assert_close(
        run_two_steps(TRANSFORMERS_3_2, lr, eps, wd), want, rel=1e-12
    )  # the factory, the default path
    assert_close(run_two_steps(TRANSFORMERS_3_2, lr, eps, wd, dtype=torch.float32), want, rel=1e-6)
    with pytest.raises(AssertionError):  # torch's rule is another update: the test can tell them apart
        assert_close(run_two_steps(TORCH, lr, eps, wd), want, rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_multi_tensor_and_one_at_a_time_updates_are_bit_identical_on_cpu(dtype):
    for wd in (0.0, 0.1):
        fused = run_two_steps(TRANSFORMERS_3_2, 0.01, 1e-8, wd, dtype=dtype, foreach=True)
        assert fused == run_two_steps(TRANSFORMERS_3_2, 0.01, 1e-8, wd, dtype=dtype, foreach=False)


def test_weight_decay_comes_after_the_step():
    """3.2 decays the updated value, torch the old one: with eps 0 only the decay order separates them."""
    lr, wd = 0.01, 0.5
    got_3_2 = run_two_steps(TRANSFORMERS_3_2, lr, 0.0, wd)
    got_torch = run_two_steps(TORCH, lr, 0.0, wd)
    assert_close(got_3_2, hand_3_2(lr, 0.9, 0.999, 0.0, wd), rel=1e-12)
    diff = max(
        abs(a - b) for ra, rb in zip(got_3_2, got_torch, strict=True) for a, b in zip(ra, rb, strict=True)
    )
    assert diff > 1e-6


def test_the_rules_agree_without_eps_and_decay():
    assert_close(
        run_two_steps(TRANSFORMERS_3_2, 0.01, 0.0, 0.0), run_two_steps(TORCH, 0.01, 0.0, 0.0), rel=1e-12
    )


def first_updates(rule: str, grad: float, steps: int = 3) -> list[float]:
    p = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    optimizer = build_optimizer(rule, [p], lr=1.0, eps=1e-8)
    moves = []
    for _ in range(steps):
        before = p.detach().clone()
        p.grad = torch.full_like(p, grad)
        optimizer.step()
        moves.append(float((p.detach() - before).abs().max()))
    return moves


def test_tiny_gradients_move_far_less_under_3_2_early_and_large_ones_alike():
    # |g| << eps: 3.2's effective eps is eps / sqrt(1 - b2^t), about 32x torch's at t = 1
    tiny_3_2, tiny_torch = first_updates(TRANSFORMERS_3_2, 1e-10), first_updates(TORCH, 1e-10)
    assert all(t / s > 15 for s, t in zip(tiny_3_2, tiny_torch, strict=True))
    assert tiny_torch[0] / tiny_3_2[0] == pytest.approx(1 / math.sqrt(1 - 0.999), rel=0.02)
    # |g| >> eps: eps is negligible in both, the same step
    large_3_2, large_torch = first_updates(TRANSFORMERS_3_2, 1.0), first_updates(TORCH, 1.0)
    assert large_3_2 == pytest.approx(large_torch, rel=1e-6)


@pytest.mark.parametrize("rule", [TRANSFORMERS_3_2, TORCH])
def test_state_dict_round_trip_continues_identically(rule):
    torch.manual_seed(0)
    start = [torch.randn(5, 3), torch.randn(7)]
    grads = [[torch.randn_like(s) for s in start] for _ in range(6)]

    def make(values):
        params = [v.clone().requires_grad_() for v in values]
        return params, build_optimizer(rule, params, lr=1e-2, eps=1e-8, weight_decay=0.01)

    def steps(params, optimizer, chunk):
        for gs in chunk:
            for p, g in zip(params, gs, strict=True):
                p.grad = g.clone()
            optimizer.step()

    straight, opt = make(start)
    steps(straight, opt, grads)

    first, opt_a = make(start)
    steps(first, opt_a, grads[:3])
    buffer = io.BytesIO()
    torch.save({"params": [p.detach() for p in first], "optimizer": opt_a.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    resumed, opt_b = make(saved["params"])
    opt_b.load_state_dict(saved["optimizer"])
    steps(resumed, opt_b, grads[3:])
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed, strict=True))


def test_grad_scaler_steps_the_3_2_optimizer_and_skips_overflow():
    """The fp16 path: ``GradScaler.step`` unscales, steps as the plain optimizer would, and skips inf gradients."""
    p_plain = torch.tensor([1.0, -2.0], requires_grad=True)
    p_scaled = p_plain.detach().clone().requires_grad_()
    plain = AdamWTransformers32([p_plain], lr=0.1)
    scaled = AdamWTransformers32([p_scaled], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    (p_plain * torch.tensor([0.5, 3.0])).sum().backward()
    plain.step()
    scaler.scale((p_scaled * torch.tensor([0.5, 3.0])).sum()).backward()
    scaler.step(scaled)
    scaler.update()
    assert torch.equal(p_plain, p_scaled)
    before = p_scaled.detach().clone()
    scaled.zero_grad()
    scaler.scale((p_scaled * torch.tensor([float("inf"), 1.0])).sum()).backward()
    scaler.step(scaled)
    assert torch.equal(before, p_scaled) and scaled.state[p_scaled]["step"] == 1


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="hparams.optimizer 'adam'"):
        build_optimizer("adam", [torch.zeros(1, requires_grad=True)], lr=1e-3)


# -- wiring: the trainer's default, run.json, and a checkpoint of the other rule refused -------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    write_jsonl(
        path,
        [Pair(f"name : Place {i} | area : riverside", f"Place {i} is by the river . ") for i in range(6)],
    )
    return path


def spec(optimizer: str | None) -> dict:
    hparams = {"learning_rate": 1e-2, "epochs": 2, "batch_size": 3, "seed": 7, "max_grad_norm": 1.0}
    if optimizer:
        hparams["optimizer"] = optimizer
    return {
        "run_id": "toy-prefix",
        "dataset": "e2e",
        "model": "tiny",
        "method": "prefix",
        "method_settings": {"loss": "sequence_sum", "lm_dropout": False, "mid_dim": 16, "prefix_length": 2},
        "hparams": hparams,
    }


def test_trainer_defaults_to_3_2_records_it_and_the_rules_train_differently(model_dir, train_file, tmp_path):
    from safetensors.torch import load_file

    default = train_run(
        spec(None), train_file, model_dir, tmp_path / "a", tmp_path / "a.json", tmp_path / "ck_a"
    )
    other = train_run(
        spec(TORCH), train_file, model_dir, tmp_path / "b", tmp_path / "b.json", tmp_path / "ck_b"
    )
    assert DEFAULT_RULE == TRANSFORMERS_3_2
    assert json.loads((tmp_path / "a.json").read_text())["training"]["optimizer"] == TRANSFORMERS_3_2
    assert default["training"]["optimizer"] == TRANSFORMERS_3_2 and other["training"]["optimizer"] == TORCH
    assert other["spec"]["hparams"]["optimizer"] == TORCH
    a, b = load_file(tmp_path / "a" / "prefix.safetensors"), load_file(tmp_path / "b" / "prefix.safetensors")
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_of_the_other_rule_is_refused(model_dir, train_file, tmp_path, monkeypatch):
    calls = {"n": 0}

    def clock():  # out of time after the first optimizer step: checkpoint and stop
        calls["n"] += 1
        return 1e9 if calls["n"] > 2 else 0.0

    monkeypatch.setattr("prefixtune.training.train._now", clock)
    with pytest.raises(TimeBudgetExceeded):
        train_run(
            spec(TORCH), train_file, model_dir, tmp_path / "t", tmp_path / "t.json", tmp_path / "ck", 100.0
        )
    monkeypatch.undo()
    saved = torch.load(tmp_path / "ck" / "checkpoint.pt", weights_only=False)
    assert saved["optimizer_rule"] == TORCH
    with pytest.raises(
        CheckpointMismatchError, match="optimizer adamw_torch, this run uses adamw_transformers_3_2"
    ):
        train_run(spec(None), train_file, model_dir, tmp_path / "t", tmp_path / "t.json", tmp_path / "ck")
    assert not (tmp_path / "t").exists()
