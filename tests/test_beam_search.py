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


def test_equal_scores_keep_the_hypothesis_added_last():
    """transformers 3.2 sorted the kept hypotheses by score (a stable sort) and took the end: on an exact tie the
    one added last wins. When full, it evicted the lowest score added first."""
    # length penalty 0: a hypothesis's score is its sum of log-probabilities
    hyps = _Hypotheses(BeamSettings(num_beams=3, length_penalty=0.0), prompt_len=1)

    def tagged(n: int) -> torch.Tensor:  # a hypothesis known by its length
        return torch.full((n,), n)

    hyps.add(tagged(2), -2.0)
    hyps.add(tagged(3), -2.0)
    hyps.add(tagged(4), -1.0)
    assert len(hyps.best()) == 4
    hyps.add(tagged(5), -1.0)  # full: the first of the two -2.0 leaves
    assert [len(t) for _, t in hyps.items] == [3, 4, 5] and hyps.worst == -2.0
    assert len(hyps.best()) == 5  # -1.0 twice: the later
    hyps.add(tagged(6), -2.0)  # no better than the worst: refused
    hyps.add(tagged(7), -1.0)
    assert [len(t) for _, t in hyps.items] == [4, 5, 7] and hyps.worst == -1.0
    assert len(hyps.best()) == 7


def test_beam_search_returns_the_later_of_two_exactly_tied_hypotheses():
    """Two finished hypotheses with exactly equal scores (-300/2 and -450/3, from a logit table): 3.2 returned
    the one finished last, [PROMPT, A, C], not the first, [PROMPT, A]."""
    from table_lm import EOS, PROMPT, SINK, A, C, table_lm, tie_table

    model = table_lm(tie_table())
    settings = BeamSettings(num_beams=2, max_new_tokens=6, length_penalty=1.0, bad_words_ids=[[SINK]])
    hyps_seen: list[_Hypotheses] = []
    original_add = _Hypotheses.add

    def recording_add(self: _Hypotheses, tokens: torch.Tensor, sum_logprobs: float) -> None:
        if self not in hyps_seen:
            hyps_seen.append(self)
        original_add(self, tokens, sum_logprobs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_Hypotheses, "add", recording_add)
        best = beam_search(model, torch.tensor([[PROMPT]]), EOS, settings)
    (hyps,) = hyps_seen
    assert [(score, t.tolist()) for score, t in hyps.items] == [
        (-150.0, [PROMPT, A]),
        (-150.0, [PROMPT, A, C]),
    ]
    assert best.tolist() == [PROMPT, A, C]
