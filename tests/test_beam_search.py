"""Beam search with transformers 3.2 semantics, on a tiny random GPT-2."""

from __future__ import annotations

import pytest
import torch

from prefixtune.decoding.beam_search import BeamSettings, _Hypotheses, beam_search
from prefixtune.methods.prefix import cache_from_prefix
from tiny_models import load_tiny, save_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tokenizer, model = load_tiny(save_tiny_model(tmp_path_factory.mktemp("tiny"), seed=3))
    return tokenizer, model.eval()


def greedy(model, prompt: torch.Tensor, eos: int, steps: int) -> list[int]:
    ids = prompt
    for _ in range(steps):
        token = model(input_ids=ids).logits[0, -1].argmax().item()
        if token == eos:
            break
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return ids[0].tolist()


def test_one_beam_is_greedy(tiny):
    tokenizer, model = tiny
    prompt = torch.tensor([[5, 9, 14]])
    eos = tokenizer.eos_token_id
    with torch.no_grad():
        best = beam_search(model, prompt, eos, BeamSettings(num_beams=1, max_new_tokens=12))
        expected = greedy(model, prompt, eos, 12)
    assert best.tolist() == expected


def test_prefix_of_words_decodes_like_prepended_words(tiny):
    """Unnormalised scores (length_penalty 0) make the ranking independent of the prompt length."""
    tokenizer, model = tiny
    eos = tokenizer.eos_token_id
    words = torch.tensor([[21, 33, 40]])
    prompt = torch.tensor([[5, 9, 14, 2]])
    settings = BeamSettings(num_beams=4, max_new_tokens=10, length_penalty=0.0)
    with torch.no_grad():
        cache = model(input_ids=words, use_cache=True).past_key_values
        kv = torch.stack([t for layer in cache.layers for t in (layer.keys[0], layer.values[0])])
        with_prefix = beam_search(model, prompt, eos, settings, cache_from_prefix(kv, 1))
        prepended = beam_search(model, torch.cat([words, prompt], dim=1), eos, settings)
    assert with_prefix.tolist() == prepended[3:].tolist()


def test_banned_tokens_never_appear(tiny):
    tokenizer, model = tiny
    prompt = torch.tensor([[5, 9, 14]])
    free = beam_search(model, prompt, tokenizer.eos_token_id, BeamSettings(num_beams=3, max_new_tokens=8))
    banned = sorted(set(free[3:].tolist()))
    settings = BeamSettings(num_beams=3, max_new_tokens=8, bad_words_ids=[[t] for t in banned])
    constrained = beam_search(model, prompt, tokenizer.eos_token_id, settings)
    assert not set(constrained[3:].tolist()) & set(banned)


def test_hypotheses_normalise_by_prompt_plus_generated_length():
    settings = BeamSettings(num_beams=2, length_penalty=1.0)
    hyps = _Hypotheses(settings, prompt_len=10)
    hyps.add(torch.zeros(12, dtype=torch.long), -6.0)  # 3.2 score: -6/12 = -0.5
    hyps.add(torch.zeros(11, dtype=torch.long), -5.0)  # -5/11 = -0.4545: best
    assert len(hyps.best()) == 11
    generated = _Hypotheses(BeamSettings(num_beams=2, length_basis="generated"), prompt_len=10)
    generated.add(torch.zeros(12, dtype=torch.long), -6.0)  # -6/2 = -3
    generated.add(torch.zeros(11, dtype=torch.long), -5.0)  # -5/1 = -5
    assert len(generated.best()) == 12
    # early_stopping=False: done once the best running beam cannot beat the worst kept hypothesis
    assert hyps.is_done(best_sum_logprobs=-7.0, cur_len=13)
    assert not hyps.is_done(best_sum_logprobs=-1.0, cur_len=13)


def test_ban_matches_the_row_by_row_rule():
    """transformers 3.2's rule, row by row: a bad word's last token is banned where the history ends with the
    rest of it (histories of random tokens from a 4-token vocabulary, so that many rows match)."""
    from prefixtune.decoding.beam_search import BadWords

    generator = torch.Generator().manual_seed(0)
    bad_words = [[2], [1, 3], [0, 1, 2], [3, 3, 3, 3, 3, 3, 3, 3, 1]]  # the last is longer than every history
    for width in (1, 2, 5):
        history = torch.randint(0, 4, (64, width), generator=generator)
        scores = torch.zeros(64, 4)
        BadWords(bad_words, history.device).ban(scores, history)
        expected = torch.zeros(64, 4)
        for row in range(64):
            tokens = history[row].tolist()
            for bad in bad_words:
                if tokens[len(tokens) - len(bad) + 1 :] == bad[:-1]:
                    expected[row, bad[-1]] = -float("inf")
        assert torch.equal(scores, expected)
        assert 0 < int(scores.isinf().sum()) < 64 * 4
