"""PREFIX is what the authors' code computes: layout, positions, frozen LM, what is saved."""

from __future__ import annotations

import json

import pytest
import torch

from prefixtune.methods import build_method
from prefixtune.methods.prefix import PREFIX_WEIGHTS, PrefixTuning, cache_from_prefix
from tiny_models import load_tiny, save_tiny_model

SETTINGS = {"prefix_length": 3, "mid_dim": 16, "loss": "sequence_sum", "lm_dropout": False}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_tiny(save_tiny_model(tmp_path_factory.mktemp("tiny")))


def word_prefix(model, word_ids: torch.Tensor) -> torch.Tensor:
    """The frozen LM's key/values of real words in the (2L, H, P, head_dim) prefix layout."""
    cache = model(input_ids=word_ids, use_cache=True).past_key_values
    rows = []
    for layer in cache.layers:
        rows += [layer.keys[0], layer.values[0]]
    return torch.stack(rows)


def test_prefix_of_real_words_equals_prepending_them(tiny):
    tokenizer, model = tiny
    model.eval()
    words = torch.tensor([tokenizer.encode(" table-to-text :", add_special_tokens=False)])
    x = torch.tensor([tokenizer.encode(" name : The Eagle <|endoftext|> The", add_special_tokens=False)])
    with torch.no_grad():
        kv = word_prefix(model, words)
        with_prefix = model(input_ids=x, past_key_values=cache_from_prefix(kv, 1)).logits
        prepended = model(input_ids=torch.cat([words, x], dim=1)).logits[:, words.shape[1] :]
    assert torch.allclose(with_prefix, prepended, atol=1e-5)


def test_layout_orders_key_value_per_layer(tiny):
    _, model = tiny
    method = PrefixTuning(model, SETTINGS)
    flat = method.encoder.control_trans(method.encoder.wte(method.encoder.index))  # (P, 2*L*d)
    kv = method.encoder()
    n_embd, n_head = model.config.n_embd, model.config.n_head
    # layer 1's value is the 4th block of d values of each position, split into heads
    block = flat[:, 3 * n_embd : 4 * n_embd].view(3, n_head, n_embd // n_head).permute(1, 0, 2)
    assert torch.equal(kv[3], block)


def test_real_tokens_start_at_position_p(tiny):
    """Shifting positions by P is what the cache route does; check against explicit position ids."""
    _, model = tiny
    method = PrefixTuning(model, SETTINGS)
    method.eval()
    x = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        implicit = model(input_ids=x, past_key_values=method.past_key_values(1)).logits
        explicit = model(
            input_ids=x, past_key_values=method.past_key_values(1), position_ids=torch.arange(3, 7)[None]
        ).logits
        at_zero = model(
            input_ids=x, past_key_values=method.past_key_values(1), position_ids=torch.arange(0, 4)[None]
        ).logits
    assert torch.equal(implicit, explicit)
    assert not torch.allclose(implicit, at_zero)


def test_only_prefix_trains_and_lm_stays_in_eval_mode(tiny):
    tokenizer, model = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    method = build_method("prefix", model, SETTINGS)
    method.train()
    assert not model.training and method.encoder.training
    optimizer = torch.optim.AdamW(method.trainable_parameters(), lr=1e-2)
    x = torch.tensor([[5, 6, 7, 8, 9]])
    for _ in range(3):
        loss = method.logits(x).sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_saves_only_the_prefix_and_reloads_it(tiny, tmp_path):
    _, model = tiny
    method = PrefixTuning(model, SETTINGS)
    method.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prefix.safetensors", "prefix_config.json"]
    assert json.loads((tmp_path / "prefix_config.json").read_text())["prefix_length"] == 3
    other = PrefixTuning(model, SETTINGS)
    other.load(tmp_path)
    assert torch.equal(other.encoder(), method.encoder())
    counts = method.parameter_counts()
    assert counts["stored"] == 3 * 2 * 2 * 32  # P * L * 2 * d
    assert (tmp_path / PREFIX_WEIGHTS).stat().st_size < 200_000


def test_paper_scale_counts_gpt2_medium():
    """P=5 on GPT-2 medium stores 245,760 values and trains ~25.7M (paper.md §f)."""
    from prefixtune.methods.prefix import PrefixEncoder

    encoder = PrefixEncoder(n_layer=24, n_head=16, n_embd=1024, prefix_length=5, mid_dim=512)
    assert encoder.stored_size() == 245_760
    assert sum(p.numel() for p in encoder.parameters()) == 5 * 1024 + 524_800 + 25_214_976
