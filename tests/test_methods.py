"""FT-TOP and ADAPTER: which weights train, what stays frozen bit for bit, what is saved, the parameter counts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from prefixtune.methods import build_method
from prefixtune.methods.adapter import adapter_parameter_count, bottleneck_for_percent
from prefixtune.methods.params import method_parameters
from tiny_models import load_tiny, save_tiny_model

ADAPTER = {"loss": "token_mean", "lm_dropout": True, "design": "lin", "bottleneck": 4, "init": "gpt2"}
FT_TOP = {"loss": "token_mean", "lm_dropout": True, "top_layers": 1, "train_embeddings": True}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny"))


def batch(tokenizer) -> torch.Tensor:
    return torch.tensor([tokenizer.encode(" name : The Eagle <|endoftext|> The Eagle is a pub .")])


def train_steps(method, input_ids: torch.Tensor, steps: int = 3) -> set[str]:
    """A few AdamW steps on the LM loss; returns the names of the model parameters that received a gradient."""
    optimizer = torch.optim.AdamW(method.trainable_parameters(), lr=1e-2, weight_decay=0.1)
    method.train()
    with_grad: set[str] = set()
    for _ in range(steps):
        logits = method.logits(input_ids)
        loss = torch.nn.functional.cross_entropy(logits[0, :-1], input_ids[0, 1:])
        loss.backward()
        with_grad |= {n for n, p in method.model.named_parameters() if p.grad is not None}
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    method.eval()
    return with_grad


@pytest.mark.parametrize(
    ("kind", "settings", "expected"),
    [
        ("ft_top", FT_TOP, ("transformer.h.1.", "transformer.ln_f.", "transformer.wte.")),
        ("ft_top", {**FT_TOP, "train_embeddings": False}, ("transformer.h.1.", "transformer.ln_f.")),
        ("adapter", ADAPTER, ("prefixtune_adapters.",)),
        ("adapter", {**ADAPTER, "design": "houlsby"}, ("prefixtune_adapters.",)),
    ],
    ids=["ft_top", "ft_top-no-emb", "adapter-lin", "adapter-houlsby"],
)
def test_only_intended_weights_train_and_the_rest_stay_bit_identical(model_dir, kind, settings, expected):
    tokenizer, model = load_tiny(model_dir)
    method = build_method(kind, model, settings)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with_grad = train_steps(method, batch(tokenizer))
    intended = {n for n in before if n.startswith(expected)}
    assert intended and with_grad == intended
    for name, value in before.items():
        changed = not torch.equal(value, dict(model.named_parameters())[name])
        assert changed == (name in intended), name


@pytest.mark.parametrize(("kind", "settings"), [("ft_top", FT_TOP), ("adapter", ADAPTER)])
def test_saved_parameters_reload_to_the_same_logits(model_dir, tmp_path, kind, settings):
    tokenizer, model = load_tiny(model_dir)
    method = build_method(kind, model, settings)
    train_steps(method, batch(tokenizer))
    method.save(tmp_path / "trained")
    files = sorted(p.name for p in (tmp_path / "trained").iterdir())
    assert files == [f"{kind}.safetensors", f"{kind}_config.json"]  # only what trained, never the whole LM
    _, fresh = load_tiny(model_dir)
    reloaded = build_method(kind, fresh, settings)
    reloaded.load(tmp_path / "trained")
    reloaded.eval()
    with torch.no_grad():
        assert torch.equal(method.logits(batch(tokenizer)), reloaded.logits(batch(tokenizer)))
    with pytest.raises(ValueError, match="does not match the run's settings"):
        other = {**settings, "top_layers": 2} if kind == "ft_top" else {**settings, "bottleneck": 5}
        build_method(kind, load_tiny(model_dir)[1], other).load(tmp_path / "trained")


@pytest.mark.parametrize("design", ["lin", "houlsby"])
def test_adapter_changes_the_lm_only_through_its_weights(model_dir, design):
    tokenizer, model = load_tiny(model_dir)
    model.eval()
    x = batch(tokenizer)
    with torch.no_grad():
        base = model(input_ids=x).logits
        identity = build_method("adapter", model, {**ADAPTER, "design": design, "init": "zero_up"})
        assert torch.allclose(identity.logits(x), base, atol=1e-6)  # zero up-projection: the identity
        _, other = load_tiny(model_dir)
        other.eval()
        assert not torch.allclose(
            build_method("adapter", other, {**ADAPTER, "design": design}).logits(x), base
        )


def test_generation_uses_the_adapters(model_dir):
    """The first-step logits of transformers' generate equal the forward pass with the adapters (hooks stay on)."""
    tokenizer, model = load_tiny(model_dir)
    method = build_method("adapter", model, ADAPTER)
    train_steps(method, batch(tokenizer))
    prompt = torch.tensor([tokenizer.encode(" name : The Eagle <|endoftext|>")])
    with torch.no_grad():
        forward = method.logits(prompt)[0, -1]
        generated = model.generate(
            prompt,
            max_new_tokens=1,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=tokenizer.pad_token_id,
        )
    assert torch.allclose(generated.logits[0][0], forward, atol=1e-5)


@pytest.mark.parametrize(
    ("model", "design", "percent", "bottleneck"),
    [
        ("gpt2-medium", "lin", 0.1, 6),
        ("gpt2-medium", "lin", 3, 215),
        ("gpt2-large", "lin", 0.1, 7),
        ("gpt2-large", "lin", 3, 250),
        ("gpt2-medium", "houlsby", 3, 108),
    ],
)
def test_adapter_bottleneck_hits_the_requested_share(model, design, percent, bottleneck):
    counts = method_parameters(model, "adapter", {"percent": percent, "design": design})
    assert counts["bottleneck"] == bottleneck
    assert abs(counts["percent"] - percent) < 0.01
    assert (
        counts["stored"]
        == counts["trainable"]
        == adapter_parameter_count(
            36 if model == "gpt2-large" else 24, 1280 if model == "gpt2-large" else 1024, bottleneck, design
        )
    )


def test_bottleneck_is_the_closest_one():
    base, layers, width = 354_823_168, 24, 1024
    for percent in (0.05, 0.1, 1, 3, 10):
        best = bottleneck_for_percent(layers, width, base, percent, "lin")
        error = abs(adapter_parameter_count(layers, width, best, "lin") - base * percent / 100)
        for r in range(1, 600):
            assert error <= abs(adapter_parameter_count(layers, width, r, "lin") - base * percent / 100)


@pytest.mark.parametrize(
    ("args", "stored", "base"),
    [
        (["--model", "gpt2-medium", "--method", "prefix", "--prefix-length", "5"], 245_760, 354_823_168),
        (["--model", "gpt2-medium", "--method", "prefix", "--prefix-length", "10"], 491_520, 354_823_168),
        (["--model", "gpt2-medium", "--method", "ft_top", "--no-train-embeddings"], 25_194_496, 354_823_168),
        (["--model", "gpt2-medium", "--method", "finetune"], 354_823_168, 354_823_168),
        (["--model", "gpt2-large", "--method", "finetune"], 774_030_080, 774_030_080),
        (
            ["--model", "bart-large", "--method", "prefix", "--prefix-length", "100", "--mid-dim", "800"],
            7_372_800,
            406_291_456,
        ),  # about 1.8 %: the paper's "2 %" XSUM run
        (
            ["--model", "gpt2-medium", "--method", "prefix", "--prefix-length", "5", "--no-reparametrize"],
            245_760,
            354_823_168,
        ),
        (["--model", "gpt2-medium", "--method", "emb_prefix", "--prefix-length", "10"], 10_240, 354_823_168),
        (
            ["--model", "gpt2-medium", "--method", "infix", "--prefix-length", "10"],
            10 * 49_152 + 10 * 1024,
            354_823_168,
        ),  # code form: offsets plus the learned input embeddings
    ],
)
def test_params_cli_counts_from_the_paper_configs(args, stored, base):
    out = subprocess.run(
        [sys.executable, "-m", "prefixtune.cli", "params", *args], capture_output=True, text=True, check=True
    ).stdout
    counts = json.loads(out)
    assert counts["stored"] == stored and counts["base"] == base
    assert counts["percent"] == pytest.approx(100 * stored / base)
