"""Batched and mixed-prefix beam search give exactly the outputs of batch-1 decoding (fp32, CPU)."""

from __future__ import annotations

import pytest
import torch

from prefixtune.beam_search import BeamSettings, beam_search
from prefixtune.beam_search_batched import beam_search_batch, mixed_prefix_cache
from prefixtune.decode import bad_words_ids
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
def tiny(tmp_path_factory):
    tokenizer, model = load_tiny(save_pretrained_tiny_model(tmp_path_factory.mktemp("tiny"), steps=120))
    return tokenizer, model.eval()


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

    from prefixtune.beam_cache import preallocate

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


def test_preallocated_cache_copies_only_the_steps_of_beams_within_an_example():
    """With ``beams``, the prompt part (equal in every beam of an example) stays in place while beams stay in
    their example, and follows the rows when an example leaves; the contents always equal the dynamic cache's.
    A reorder that mixes examples within a block is refused."""
    from transformers import DynamicCache

    from prefixtune.beam_cache import preallocate

    generator = torch.Generator().manual_seed(1)
    prompt = torch.randn(3, 2, 4, 3, generator=generator).repeat_interleave(2, dim=0)  # 3 examples x 2 beams
    dynamic = DynamicCache(ddp_cache_data=[(prompt, -prompt)])
    fixed = preallocate(DynamicCache(ddp_cache_data=[(prompt.clone(), -prompt)]), extra_positions=5, beams=2)
    # within examples, within again, example 1 leaves, within the new layout
    for rows in ([1, 1, 2, 3, 5, 4], [0, 1, 3, 3, 4, 4], [0, 1, 4, 5], [1, 0, 3, 3]):
        new = torch.randn(len(rows), 2, 1, 3, generator=generator)
        for cache in (dynamic, fixed):
            cache.reorder_cache(torch.tensor(rows))
            cache.update(new, 2 * new, layer_idx=0)
        assert torch.equal(fixed.layers[0].keys, dynamic.layers[0].keys)
        assert torch.equal(fixed.layers[0].values, dynamic.layers[0].values)
    with pytest.raises(ValueError, match="blocks of 2 rows of one example"):
        fixed.reorder_cache(torch.tensor([0, 2, 1, 3]))
