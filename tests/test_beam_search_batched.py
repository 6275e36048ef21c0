"""Batched and mixed-prefix beam search give exactly the outputs of batch-1 decoding (fp32, CPU)."""

from __future__ import annotations

import pytest
import torch

from prefixtune.decoding.beam_search import BeamSettings, beam_search
from prefixtune.decoding.beam_search_batched import beam_search_batch, mixed_prefix_cache
from prefixtune.decoding.decode import bad_words_ids
from prefixtune.methods import build_method
from tiny_models import load_tiny, save_pretrained_tiny_model

SOURCES = [
    "name : The Eagle | Type : coffee shop",
    "name : The Mill | food : Italian | area : riverside | familyFriendly : yes",
    "Aarhus Airport : city served : Aarhus",
    "name : Blue Spice",
    "name : The Mill | Type : pub | food : cheap | area : city centre | near : Aarhus Airport | rating : high",
    "The Eagle : food : French",
    "name : Aarhus | area : riverside",
    "name : The Eagle | Type : pub | near : The Mill",
    "Blue Spice : area : city centre | customer rating : high",
]


@pytest.fixture(scope="module")
def trained_tiny(tmp_path_factory):
    tokenizer, model = load_tiny(save_pretrained_tiny_model(tmp_path_factory.mktemp("tiny"), steps=120))
    return tokenizer, model.eval()


@pytest.fixture(params=["eager", "sdpa"])  # decoding.attention: both give batched = batch 1
def tiny(request, trained_tiny):
    tokenizer, model = trained_tiny
    model.set_attn_implementation(request.param)
    return tokenizer, model


def _settings(tokenizer, **overrides) -> BeamSettings:
    values = dict(
        num_beams=5, max_new_tokens=24, min_length=12, bad_words_ids=bad_words_ids(tokenizer, ["\n"])
    )
    return BeamSettings(**{**values, **overrides})


def _prompts(tokenizer) -> list[list[int]]:
    return [tokenizer.encode(f" {s} {tokenizer.eos_token}", add_special_tokens=False) for s in SOURCES]


def _method(kind: str, model, tokenizer, seed: int, length: int = 3):
    torch.manual_seed(seed)
    settings = {"loss": "sequence_sum", "lm_dropout": False, "mid_dim": 16, "prefix_length": length}
    method = build_method(kind, model, settings, tokenizer)
    if kind != "finetune":  # a prefix far from zero, so that it changes the outputs
        with torch.no_grad():
            for p in method.trainable_parameters():
                p.normal_(0, 0.5)
    method.eval()
    return method


def _batch_one(method, prompts, eos, settings) -> list[list[int]]:
    out = []
    with torch.no_grad():
        for prompt in prompts:
            fed, past = method.decoding_inputs(torch.tensor([prompt]))
            out.append(beam_search(method.model, fed, eos, settings, past).tolist())
    return out


@pytest.mark.parametrize("kind", ["prefix", "finetune", "emb_prefix"])
@pytest.mark.parametrize("batch_size", [4, 9])
def test_batched_beam_search_equals_batch_one(tiny, kind, batch_size):
    tokenizer, model = tiny
    method = _method(kind, model, tokenizer, seed=1)
    assert method.batched_decoding()
    prompts, eos, settings = _prompts(tokenizer), tokenizer.eos_token_id, _settings(tokenizer)
    expected = _batch_one(method, prompts, eos, settings)
    got = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        with torch.no_grad():
            past = method.past_key_values(len(chunk))
        got += beam_search_batch(model, chunk, eos, settings, past)
    assert got == expected
    assert len({tuple(g) for g in got}) > 3  # the outputs differ by source: a real test of the batching


def test_early_stopping_and_generated_length_basis_agree_too(tiny):
    tokenizer, model = tiny
    method = _method("prefix", model, tokenizer, seed=2)
    prompts, eos = _prompts(tokenizer), tokenizer.eos_token_id
    settings = _settings(tokenizer, early_stopping=True, length_basis="generated", min_length=0, num_beams=3)
    expected = _batch_one(method, prompts, eos, settings)
    with torch.no_grad():
        past = method.past_key_values(len(prompts))
    assert beam_search_batch(model, prompts, eos, settings, past) == expected


def test_mixed_prefix_batch_equals_per_task_batches(tiny):
    """The paper's §8.2: one batch, each example behind its own task's prefix (lengths 3 and 5 here)."""
    tokenizer, model = tiny
    tasks = [
        _method("prefix", model, tokenizer, seed=3, length=3),
        _method("prefix", model, tokenizer, seed=4, length=5),
    ]
    prompts, eos, settings = _prompts(tokenizer), tokenizer.eos_token_id, _settings(tokenizer)
    task_of = [i % 2 for i in range(len(prompts))]
    expected = [_batch_one(tasks[t], [p], eos, settings)[0] for t, p in zip(task_of, prompts, strict=True)]
    with torch.no_grad():
        cache, lengths = mixed_prefix_cache([tasks[t].past_key_values(1) for t in task_of])
    assert lengths == [3, 5] * 4 + [3]
    got = beam_search_batch(model, prompts, eos, settings, cache, prefix_lengths=lengths)
    assert got == expected
    assert expected != _batch_one(tasks[0], prompts, eos, settings)  # the two prefixes really differ


def test_bad_prefix_rows_are_refused(tiny):
    tokenizer, model = tiny
    method = _method("prefix", model, tokenizer, seed=1)
    with torch.no_grad(), pytest.raises(ValueError, match="the prefix cache has 2 rows for 3 prompts"):
        beam_search_batch(model, _prompts(tokenizer)[:3], tokenizer.eos_token_id, _settings(tokenizer),
                          method.past_key_values(2))  # fmt: skip


def test_preallocated_cache_matches_the_dynamic_cache():
    """Appends and beam reorders (rows dropped as examples finish) leave the preallocated layer holding what
    transformers' DynamicLayer holds; a step beyond its room is refused."""
    from transformers import DynamicCache

    from prefixtune.decoding.beam_cache import preallocate

    generator = torch.Generator().manual_seed(0)
    keys, values = torch.randn(6, 2, 4, 3, generator=generator), torch.randn(6, 2, 4, 3, generator=generator)
    dynamic = DynamicCache(ddp_cache_data=[(keys, values)])
    fixed = preallocate(DynamicCache(ddp_cache_data=[(keys.clone(), values.clone())]), extra_positions=3)
    for rows in ([5, 5, 0, 1, 3, 2], [0, 0, 1, 2], [3, 1]):
        new = torch.randn(len(rows), 2, 1, 3, generator=generator)
        index = torch.tensor(rows)
        for cache in (dynamic, fixed):
            cache.reorder_cache(index)
            cache.update(new, -new, layer_idx=0)
        assert torch.equal(fixed.layers[0].keys, dynamic.layers[0].keys)
        assert torch.equal(fixed.layers[0].values, dynamic.layers[0].values)
        assert fixed.get_seq_length() == dynamic.get_seq_length()
    with pytest.raises(ValueError, match="beam cache full"):
        fixed.update(new, new, layer_idx=0)


def _full_rows(layer) -> tuple[torch.Tensor, torch.Tensor]:
    """A beam layer's keys and values as whole rows (a shared-prefix layer's shared part given to each beam)."""
    if not hasattr(layer, "shared_keys"):
        return layer.keys, layer.values
    beams = layer.beams
    return (
        torch.cat([layer.shared_keys.repeat_interleave(beams, dim=0), layer.keys], dim=2),
        torch.cat([layer.shared_values.repeat_interleave(beams, dim=0), layer.values], dim=2),
    )


@pytest.mark.parametrize("shared_prefix", [False, True])
def test_preallocated_cache_copies_only_the_steps_of_beams_within_an_example(shared_prefix):
    """With ``beams``, the prompt part (equal in every beam of an example) stays in place while beams stay in
    their example, and follows the rows when an example leaves; with ``shared_prefix`` it is kept once per
    example. The contents always equal the dynamic cache's. A reorder that mixes examples within a block is
    refused, and so is a step beyond the cache's room."""
    from transformers import DynamicCache

    from prefixtune.decoding.beam_cache import PreallocatedBeamLayer, SharedPrefixBeamLayer, preallocate

    generator = torch.Generator().manual_seed(1)
    prompt = torch.randn(4, 2, 4, 3, generator=generator)  # 4 examples, each given 2 beams
    dynamic = DynamicCache(ddp_cache_data=[(prompt, -prompt)])
    dynamic.batch_repeat_interleave(2)
    fixed = preallocate(
        DynamicCache(ddp_cache_data=[(prompt.clone(), -prompt)]), 6, beams=2, shared_prefix=shared_prefix
    )
    assert type(fixed.layers[0]) is (SharedPrefixBeamLayer if shared_prefix else PreallocatedBeamLayer)
    # within examples, within again, the last example leaves (nothing moves), a middle one leaves (the next one
    # moves up), the first one leaves, within the new layout
    for rows in ([1, 1, 2, 3, 5, 4, 6, 7], [0, 1, 3, 3, 4, 4, 7, 6], [0, 1, 2, 2, 4, 5], [0, 0, 5, 4], [3, 3],
                 [1, 0]):  # fmt: skip
        new = torch.randn(len(rows), 2, 1, 3, generator=generator)
        for cache in (dynamic, fixed):
            cache.reorder_cache(torch.tensor(rows))
            cache.update(new, 2 * new, layer_idx=0)
        keys, values = _full_rows(fixed.layers[0])
        assert torch.equal(keys, dynamic.layers[0].keys)
        assert torch.equal(values, dynamic.layers[0].values)
        assert fixed.get_seq_length() == dynamic.get_seq_length()
    with pytest.raises(ValueError, match="beam cache full"):
        fixed.update(new, new, layer_idx=0)
    fresh = preallocate(
        DynamicCache(ddp_cache_data=[(prompt, -prompt)]), 7, beams=2, shared_prefix=shared_prefix
    )
    with pytest.raises(ValueError, match="blocks of 2 rows of one example"):
        fresh.reorder_cache(torch.tensor([0, 2, 1, 3]))


def _reference_attention(query, shared_keys, shared_values, keys, values, mask, beams):
    """Eager attention over each beam's full rows (its example's shared part, then its own steps)."""
    from types import SimpleNamespace

    from transformers.models.gpt2.modeling_gpt2 import eager_attention_forward

    full_keys = torch.cat([shared_keys.repeat_interleave(beams, dim=0), keys], dim=2)
    full_values = torch.cat([shared_values.repeat_interleave(beams, dim=0), values], dim=2)
    module = SimpleNamespace(training=False)
    return eager_attention_forward(module, query, full_keys, full_values, mask, scaling=0.125)[0]


def test_shared_prefix_attention_equals_eager_attention_over_full_rows():
    """Each example's prefix and prompt read once for its beams: eager attention's numbers up to the last bit
    (left padding masked, finished examples' rows included); without a shared part it is eager attention."""
    from types import SimpleNamespace

    from transformers.models.gpt2.modeling_gpt2 import eager_attention_forward

    from prefixtune.decoding.beam_attention import shared_prefix_attention

    generator = torch.Generator().manual_seed(2)
    examples, beams, heads, width, steps, dim = 3, 4, 2, 6, 5, 8
    rows = examples * beams
    shared_keys, shared_values = (torch.randn(examples, heads, width, dim, generator=generator) for _ in "kv")
    keys, values = (torch.randn(rows, heads, steps, dim, generator=generator) for _ in "kv")
    query = torch.randn(rows, heads, 1, dim, generator=generator)
    visible = torch.ones(rows, width + steps, dtype=torch.bool)
    visible[beams : 2 * beams, :3] = False  # the second example is left-padded
    mask = torch.zeros(rows, 1, 1, width + steps).masked_fill(~visible[:, None, None, :], -3.4e38)
    layer = SimpleNamespace(shared_keys=shared_keys, shared_values=shared_values)
    cache = SimpleNamespace(layers=[layer])
    module = SimpleNamespace(layer_idx=0, training=False)
    out, _ = shared_prefix_attention(module, query, keys, values, mask, scaling=0.125, shared_prefix=cache)
    expected = _reference_attention(query, shared_keys, shared_values, keys, values, mask, beams)
    assert out.shape == expected.shape == (rows, 1, heads, dim)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    padded = _reference_attention(
        query, shared_keys, shared_values, keys, values, torch.zeros_like(mask), beams
    )
    assert not torch.allclose(padded[beams : 2 * beams], expected[beams : 2 * beams])  # the mask matters
    plain, _ = shared_prefix_attention(module, query, keys, values, None, scaling=0.125)
    assert torch.equal(plain, eager_attention_forward(module, query, keys, values, None, scaling=0.125)[0])
    with pytest.raises(ValueError, match="additive"):
        shared_prefix_attention(module, query, keys, values, None, scaling=0.125, shared_prefix=cache)


def test_describe_decodes_with_the_configured_attention(trained_tiny, monkeypatch, tmp_path):
    """``decoding.attention`` reaches the model while decoding (and only then); either way batches = batch 1."""
    from pathlib import Path

    from transformers.models.gpt2 import modeling_gpt2

    from prefixtune.cluster.plan import load_config
    from prefixtune.decoding import beam_search_batched
    from prefixtune.decoding.decode import describe

    tokenizer, model = trained_tiny
    model.set_attn_implementation("sdpa")
    method = _method("prefix", model, tokenizer, seed=5)
    calls, shared = [], []
    real = modeling_gpt2.eager_attention_forward
    monkeypatch.setattr(
        modeling_gpt2, "eager_attention_forward", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    real_preallocate = beam_search_batched.preallocate

    def preallocate(*args, shared_prefix=False):
        shared.append(shared_prefix)
        return real_preallocate(*args, shared_prefix=shared_prefix)

    monkeypatch.setattr(beam_search_batched, "preallocate", preallocate)
    paper = load_config(Path(__file__).parents[1] / "config" / "config.yaml")["decoding"]
    assert paper["attention"] == "eager"
    keys = [f"k{i}" for i in range(len(SOURCES))]
    source_of = dict(zip(keys, SOURCES, strict=True))
    for attention in ("eager", "sdpa"):
        calls.clear()
        shared.clear()
        found = [
            describe(
                method,
                tokenizer,
                keys,
                source_of,
                {**paper, "attention": attention, "max_new_tokens": 16, "batch_size": size},
                tmp_path / "test.jsonl",
                torch.device("cpu"),
            )  # fmt: skip
            for size in (1, 4)
        ]
        assert found[0] == found[1] and len(set(found[0].values())) >= 3
        assert bool(calls) == (attention == "eager")
        assert shared == [attention == "eager"] * 3  # eager batches read each prompt once for its beams
        assert model.config._attn_implementation == "sdpa"  # given back after decoding
    with pytest.raises(ValueError, match="decoding.attention 'flash'"):
        bad = {**paper, "attention": "flash", "max_new_tokens": 16}
        describe(method, tokenizer, keys, source_of, bad, tmp_path / "t.jsonl", torch.device("cpu"))


def test_eager_step_mask_gives_the_logits_of_the_mask_transformers_builds(trained_tiny):
    """The one-token steps hand eager attention a ready 4D mask, kept up to date instead of rebuilt: the logits
    are bit-identical to those from the 2D mask transformers expands itself (left padding, one prefix)."""
    import copy

    from prefixtune.decoding.beam_search_batched import _left_pad, _StepMask

    tokenizer, model = trained_tiny
    model.set_attn_implementation("eager")
    ids, mask = _left_pad(_prompts(tokenizer)[:4], tokenizer.eos_token_id, torch.device("cpu"))
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        cache = model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True
        ).past_key_values
        step = _StepMask(model, mask)
        step.reorder_and_extend(torch.tensor([1, 0, 2, 2]))
        assert step.for_model().shape == (4, 1, 1, ids.shape[1] + 1)
        token, position = torch.tensor([[5], [6], [7], [8]]), positions[[1, 0, 2, 2], -1:] + 1
        logits = []
        for attention_mask in (step.mask, step.for_model()):
            past = copy.deepcopy(cache)
            past.reorder_cache(torch.tensor([1, 0, 2, 2]))
            logits.append(model(input_ids=token, past_key_values=past, attention_mask=attention_mask,
                                position_ids=position).logits)  # fmt: skip
    assert torch.equal(logits[0], logits[1])
    assert not torch.equal(logits[0][0], logits[0][1])  # the rows differ: a real comparison


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_exact_ties_are_broken_as_at_batch_one(attention):
    """The later of two exactly tied finished hypotheses (transformers 3.2) in a batch too, next to prompts
    without a tie, the prompts of different lengths (left padding)."""
    from table_lm import EOS, OTHER, PROMPT, SINK, A, C, table_lm, tie_table

    model = table_lm(tie_table(), attention)
    settings = BeamSettings(num_beams=2, max_new_tokens=6, length_penalty=1.0, bad_words_ids=[[SINK]])
    prompts = [[PROMPT], [OTHER, PROMPT], [OTHER, OTHER, PROMPT], [PROMPT]]
    with torch.no_grad():
        expected = [beam_search(model, torch.tensor([p]), EOS, settings).tolist() for p in prompts]
        got = beam_search_batch(model, prompts, EOS, settings)
    assert expected[0] == [PROMPT, A, C]  # the tie, broken towards the hypothesis finished last
    assert expected[1] == [OTHER, PROMPT, A]  # no tie: -300/3 beats -450/4
    assert got == expected
