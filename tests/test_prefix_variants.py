"""Proofs for the GPT-2 prefix family: word initialisation, EMB-P, INFIX-P, the peft oracle, and that decoding uses
the trained parameters. Equivalences with real words pin the layout, positions and masks: a method fed the LM's
own activations (or embeddings) of words w must act exactly as if w were in the text.
"""

from __future__ import annotations

import pytest
import torch

from prefixtune.data.records import Pair
from prefixtune.decoding.beam_search import BeamSettings, beam_search
from prefixtune.methods import build_method
from prefixtune.methods.word_init import lm_key_values, word_token_ids
from prefixtune.training.train import collate, encode_pair, lm_loss
from tiny_models import load_tiny, save_pretrained_tiny_model

WORD = "table-to-text:"
BASE = {"loss": "sequence_sum", "lm_dropout": False}
X = " name : The Mill | food : Thai <|endoftext|>"
PAIRS = [
    Pair(" name : The Mill | food : Thai", " The Mill offers Thai dishes . "),
    Pair(" name : Aarhus Airport", " Aarhus Airport serves the city . "),
    Pair(" name : Blue Spice | area : city centre | near : The Eagle", " Blue Spice is by The Eagle . "),
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_pretrained_tiny_model(tmp_path_factory.mktemp("tiny-pretrained"))


@pytest.fixture
def tiny(model_dir):
    tokenizer, model = load_tiny(model_dir)
    model.eval()
    return tokenizer, model


def ids(tokenizer, text: str) -> torch.Tensor:
    return torch.tensor([tokenizer.encode(text, add_special_tokens=False)])


def batch(tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    return collate([encode_pair(p, tokenizer) for p in PAIRS], tokenizer.pad_token_id)


def prepended_logits(model, words: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.cat([words, x], dim=1)).logits[:, words.shape[1] :]


# -- initialisation from real words ------------------------------------------------------------------------------
def test_copied_word_prefix_equals_prepending_the_words(tiny):
    tokenizer, model = tiny
    method = build_method(
        "prefix", model, {**BASE, "init": "word", "init_word": WORD, "reparametrize": False}, tokenizer
    )
    method.initialize_for_training()
    words, x = torch.tensor([word_token_ids(tokenizer, WORD)]), ids(tokenizer, X)
    assert method.positions_taken() == words.shape[1] == len(tokenizer.encode(" " + WORD))
    with torch.no_grad():
        got = method.logits(x)
    assert torch.allclose(got, prepended_logits(model, words, x), atol=1e-5)


def test_mlp_fitted_to_a_word_starts_closer_to_it_than_a_random_prefix(tiny):
    tokenizer, model = tiny
    settings = {**BASE, "mid_dim": 16, "init_word": WORD}
    target = lm_key_values(model, word_token_ids(tokenizer, WORD))
    words, x = torch.tensor([word_token_ids(tokenizer, WORD)]), ids(tokenizer, X)
    distances = {}
    for init in ("word", "random"):
        torch.manual_seed(0)
        prefix_length = {"prefix_length": target.shape[2]} if init == "random" else {}
        method = build_method("prefix", model, {**settings, **prefix_length, "init": init}, tokenizer)
        method.initialize_for_training()
        with torch.no_grad():
            mse = torch.nn.functional.mse_loss(method.encoder(), target).item()
            logit_gap = (method.logits(x) - prepended_logits(model, words, x)).abs().max().item()
        distances[init] = (mse, logit_gap)
    assert distances["word"][0] < 0.5 * distances["random"][0]
    assert distances["word"][1] < distances["random"][1]


def test_word_prefix_length_is_the_word_and_a_conflicting_length_is_an_error(tiny):
    tokenizer, model = tiny
    n = len(word_token_ids(tokenizer, WORD))
    with pytest.raises(ValueError, match="prefix_length 99 but init_word"):
        build_method(
            "prefix", model, {**BASE, "init": "word", "init_word": WORD, "prefix_length": 99}, tokenizer
        )
    with pytest.raises(ValueError, match="needs the tokenizer"):
        build_method("prefix", model, {**BASE, "init": "word", "init_word": WORD})
    same = build_method(
        "prefix", model, {**BASE, "init": "word", "init_word": WORD, "prefix_length": n}, tokenizer
    )
    assert same.positions_taken() == n


def test_uniform_init_is_uniform_zero_one(tiny):
    _, model = tiny
    method = build_method("prefix", model, {**BASE, "prefix_length": 50, "mid_dim": 8, "init": "uniform"})
    start = method.encoder.wte.weight
    assert 0.0 <= start.min().item() and start.max().item() < 1.0 and 0.4 < start.mean().item() < 0.6


def test_finetune_gets_the_word_as_text(tiny, tmp_path):
    tokenizer, model = tiny
    method = build_method("finetune", model, {"loss": "token_mean", "lm_dropout": True, "prepend_word": WORD})
    plain = encode_pair(PAIRS[0], tokenizer)
    with_word = encode_pair(PAIRS[0], tokenizer, method.text_prepended())
    word_ids = tokenizer.encode(" " + WORD, add_special_tokens=False)
    assert with_word.input_ids == word_ids + plain.input_ids
    assert with_word.labels[len(word_ids) :] == plain.labels


# -- EMB-P -------------------------------------------------------------------------------------------------------
def test_plain_embedding_prefix_of_word_embeddings_equals_prepending_the_words(tiny):
    tokenizer, model = tiny
    word_ids = word_token_ids(tokenizer, WORD)
    method = build_method(
        "emb_prefix", model, {**BASE, "prefix_length": len(word_ids), "parametrize": "plain"}
    )
    with torch.no_grad():
        method.tokens.wte.weight.copy_(model.get_input_embeddings().weight[word_ids])
        x = ids(tokenizer, X)
        got = method.logits(x)
    assert torch.allclose(got, prepended_logits(model, torch.tensor([word_ids]), x), atol=1e-5)


def test_embedding_prefix_matches_peft_prompt_tuning(tiny):
    """peft's PromptTuning prepends the same soft prompt to the input embeddings: an independent oracle."""
    peft = pytest.importorskip("peft")
    tokenizer, model = tiny
    method = build_method("emb_prefix", model, {**BASE, "prefix_length": 4, "parametrize": "plain"})
    config = peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4)
    oracle = peft.get_peft_model(load_tiny_model_copy(model), config)
    with torch.no_grad():
        oracle.prompt_encoder["default"].embedding.weight.copy_(method.tokens.wte.weight)
        input_ids, _ = batch(tokenizer)
        mask = (input_ids != tokenizer.pad_token_id).long()
        expected = oracle(input_ids=input_ids, attention_mask=mask).logits[:, 4:]
        got = method.logits(input_ids)
    real = mask.bool()
    assert torch.allclose(got[real], expected[real], atol=1e-5)


def load_tiny_model_copy(model):
    import copy

    return copy.deepcopy(model)


# -- INFIX-P -----------------------------------------------------------------------------------------------------
def zero_offsets(method) -> None:
    last = method.parts["offset"].control_trans[2]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()


def test_infix_of_word_embeddings_equals_inserting_the_words(tiny):
    """Code form with zero MLP offsets and the words' embeddings as its inputs = the text [x; w; sep; y]."""
    tokenizer, model = tiny
    word_ids = word_token_ids(tokenizer, WORD)
    method = build_method("infix", model, {**BASE, "prefix_length": len(word_ids), "mid_dim": 8}, tokenizer)
    zero_offsets(method)
    with torch.no_grad():
        method.parts["embeddings"].weight.copy_(model.get_input_embeddings().weight[word_ids])
    input_ids, labels = batch(tokenizer)
    with torch.no_grad():
        logits, tgt_labels = method.training_logits(input_ids, labels)
        for row, pair in enumerate(PAIRS):
            example = encode_pair(pair, tokenizer)
            sep = example.input_ids.index(tokenizer.eos_token_id)
            inserted = example.input_ids[:sep] + word_ids + example.input_ids[sep:]
            expected = model(input_ids=torch.tensor([inserted])).logits[0, sep + len(word_ids) :]
            n = len(example.input_ids) - sep
            assert torch.allclose(logits[row, :n], expected, atol=1e-5), f"row {row}"
            assert tgt_labels[row, :n].tolist() == example.labels[sep:]


@pytest.mark.parametrize("form", ["code", "paper"])
def test_infix_leaves_the_source_activations_alone_and_changes_the_target(tiny, form):
    tokenizer, model = tiny
    method = build_method("infix", model, {**BASE, "prefix_length": 2, "mid_dim": 8, "form": form}, tokenizer)
    x = ids(tokenizer, X)[:, :-1]
    with torch.no_grad():
        cache = method.source_cache(x, torch.ones_like(x))
        alone = model(input_ids=x, use_cache=True).past_key_values
        for with_infix, without in zip(cache.layers, alone.layers):
            assert with_infix.keys.shape[2] == x.shape[1] + 2
            # equal up to float rounding (the code form computes x and the infix in one pass)
            assert torch.allclose(with_infix.keys[:, :, : x.shape[1]], without.keys, atol=1e-6)
            assert torch.allclose(with_infix.values[:, :, : x.shape[1]], without.values, atol=1e-6)
        input_ids, labels = batch(tokenizer)
        logits, _ = method.training_logits(input_ids, labels)
        zero_offsets(method)
        if form == "code":
            method.parts["embeddings"].weight.zero_()
        changed, _ = method.training_logits(input_ids, labels)
    assert (logits - changed).abs().max() > 1e-3


def test_infix_batch_positions_equal_single_example_positions(tiny):
    """Left-padded sources: each row of a batch sees the positions batch-1 decoding sees."""
    tokenizer, model = tiny
    method = build_method("infix", model, {**BASE, "prefix_length": 3, "mid_dim": 8}, tokenizer)
    input_ids, labels = batch(tokenizer)
    with torch.no_grad():
        together, _ = method.training_logits(input_ids, labels)
        for row, pair in enumerate(PAIRS):
            alone_ids, alone_labels = collate([encode_pair(pair, tokenizer)], tokenizer.pad_token_id)
            alone, _ = method.training_logits(alone_ids, alone_labels)
            assert torch.allclose(together[row, : alone.shape[1]], alone[0], atol=1e-5), f"row {row}"


# -- the peft oracle for PREFIX ----------------------------------------------------------------------------------
def test_prefix_matches_peft_prefix_tuning_with_the_same_weights(tiny):
    peft = pytest.importorskip("peft")
    tokenizer, model = tiny
    method = build_method("prefix", model, {**BASE, "prefix_length": 3, "mid_dim": 16})
    config = peft.PrefixTuningConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=3, prefix_projection=True, encoder_hidden_size=16
    )
    oracle = peft.get_peft_model(load_tiny_model_copy(model), config)
    encoder = oracle.prompt_encoder["default"]
    with torch.no_grad():
        encoder.embedding.weight.copy_(method.encoder.wte.weight)
        for i in (0, 2):
            encoder.transform[i].weight.copy_(method.encoder.control_trans[i].weight)
            encoder.transform[i].bias.copy_(method.encoder.control_trans[i].bias)
        input_ids, _ = batch(tokenizer)
        mask = (input_ids != tokenizer.pad_token_id).long()
        expected = oracle(input_ids=input_ids, attention_mask=mask).logits
        got = method.logits(input_ids)
    real = mask.bool()
    assert torch.allclose(got[real], expected[real], atol=1e-5)


# -- decoding uses the trained parameters ------------------------------------------------------------------------
METHODS = {
    "prefix": {"prefix_length": 3, "mid_dim": 16},
    "prefix-raw": {"prefix_length": 3, "reparametrize": False},
    "emb_prefix": {"prefix_length": 3, "mid_dim": 16},
    "infix": {"prefix_length": 3, "mid_dim": 16},
    "infix-paper": {"prefix_length": 3, "mid_dim": 16, "form": "paper"},
    "adapter": {"design": "lin", "bottleneck": 4, "init": "gpt2"},
    "ft_top": {"top_layers": 1, "train_embeddings": True},
}


def kind_of(name: str) -> str:
    return name.split("-")[0]


def first_step_logits(method, tokenizer, prompt: torch.Tensor) -> torch.Tensor:
    """The logits the decoder's first forward pass produces (a hook on the LM), through the real decode path."""
    seen: list[torch.Tensor] = []
    handle = method.model.register_forward_hook(lambda _m, _i, out: seen.append(out.logits[:, -1].detach()))
    try:
        with torch.no_grad():
            fed, past = method.decoding_inputs(prompt)
        beam_search(
            method.model, fed, tokenizer.eos_token_id, BeamSettings(num_beams=2, max_new_tokens=2), past
        )
    finally:
        handle.remove()
    return seen[0]


def nudge(method) -> None:
    """Move every trainable parameter, as training would (adapters and offsets may start at the identity)."""
    with torch.no_grad():
        for p in method.trainable_parameters():
            p.add_(0.05 * torch.randn_like(p))


@pytest.mark.parametrize("name", list(METHODS))
def test_decoding_uses_the_trained_parameters(tiny, name):
    tokenizer, model = tiny
    torch.manual_seed(0)
    base_logits = model(input_ids=ids(tokenizer, X)).logits[:, -1].detach()
    method = build_method(kind_of(name), model, {**BASE, **METHODS[name]}, tokenizer)
    nudge(method)
    method.eval()
    prompt = ids(tokenizer, X)
    with torch.no_grad():
        forward = method.logits(prompt)[:, -1]
    decoded = first_step_logits(method, tokenizer, prompt)
    assert torch.allclose(decoded, forward, atol=1e-5)
    assert (decoded - base_logits).abs().max() > 1e-3


def test_generate_first_step_equals_forward_with_the_prefix(tiny):
    """transformers' own generate, given the prefix as its cache (the class of bug of implementation_notes §0)."""
    tokenizer, model = tiny
    torch.manual_seed(0)
    method = build_method("prefix", model, {**BASE, "prefix_length": 3, "mid_dim": 16})
    method.eval()
    prompt = ids(tokenizer, X)
    with torch.no_grad():
        forward = method.logits(prompt)[:, -1]
        base = model(input_ids=prompt).logits[:, -1]
        out = model.generate(
            input_ids=prompt,
            attention_mask=torch.ones(1, 3 + prompt.shape[1], dtype=torch.long),
            past_key_values=method.past_key_values(1),
            max_new_tokens=2,
            do_sample=False,
            num_beams=1,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=tokenizer.eos_token_id,
        )
    assert torch.allclose(out.logits[0], forward, atol=1e-5)
    assert (out.logits[0] - base).abs().max() > 1e-3


# -- every variant learns ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["prefix-word", "prefix-raw-word", "emb_prefix", "emb_prefix-plain", "infix", "infix-paper"]
)
def test_every_variant_lowers_held_out_loss(tiny, name):
    tokenizer, model = tiny
    settings = {
        "prefix-word": {"init": "word", "init_word": WORD, "mid_dim": 16},
        "prefix-raw-word": {"init": "word", "init_word": WORD, "reparametrize": False},
        "emb_prefix": {"prefix_length": 3, "mid_dim": 16},
        "emb_prefix-plain": {"prefix_length": 3, "parametrize": "plain"},
        "infix": {"prefix_length": 3, "mid_dim": 16},
        "infix-paper": {"prefix_length": 3, "mid_dim": 16, "form": "paper"},
    }[name]
    torch.manual_seed(0)
    method = build_method(kind_of(name), model, {**BASE, **settings}, tokenizer)
    method.initialize_for_training()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_ids, train_labels = collate([encode_pair(p, tokenizer) for p in PAIRS[:2]], tokenizer.pad_token_id)
    held_ids, held_labels = collate([encode_pair(PAIRS[2], tokenizer)], tokenizer.pad_token_id)

    def held_out() -> float:
        method.eval()
        with torch.no_grad():
            return lm_loss(*method.training_logits(held_ids, held_labels), "token_mean").item()

    start = held_out()
    optimizer = torch.optim.AdamW(method.trainable_parameters(), lr=3e-3)
    for _ in range(40):
        method.train()
        loss = lm_loss(*method.training_logits(train_ids, train_labels), "sequence_sum")
        loss.backward()
        assert all(p.grad is None for p in model.parameters())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    assert held_out() < start
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
