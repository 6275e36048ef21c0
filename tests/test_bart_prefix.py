"""BART PREFIX is what the authors' code computes: three prefixes in their own attention, unshifted positions,
prefix-aware masks, generate = forward, frozen LM, saved prefix, paper-scale counts (official_code.md §2.2)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers.models.bart.modeling_bart import shift_tokens_right

from prefixtune.cluster.plan import load_config
from prefixtune.decoding.beam_cache import BeamSharedCrossAttentionCache
from prefixtune.decoding.decode import summarize
from prefixtune.decoding.settings import method_decoding
from prefixtune.methods.bart_prefix import ATTENTION_NAME, ROLES, BartPrefixTuning, mask_with_prefix
from prefixtune.methods.params_bart import bart_large_config, bart_prefix_parameter_counts
from prefixtune.models.tiny_bart import BART_LARGE_GENERATION, BOS_ID, EOS_ID, PAD_ID
from prefixtune.training.seq2seq import generate_kwargs
from tiny_bart_models import load_tiny_bart, one_thread, tiny_bart_dir

SETTINGS = {"prefix_length": 4, "mid_dim": 24}
# A task the tiny BART was not pre-trained on (tables became "X serves Y food in the Z ."), in words it knows.
TASK = [
    ("name : Cotto | food : Indian | area : riverside", "Cotto is in the riverside ."),
    ("name : Aromi | food : French | area : city centre", "Aromi is in the city centre ."),
    ("name : Zizzi | food : Japanese | area : riverside", "Zizzi is in the riverside ."),
    ("name : The Mill | food : English | area : city centre", "The Mill is in the city centre ."),
]
NO_REPEAT = {"no_repeat_ngram_size": 0}  # bart-large's default 3 would hide differences in greedy loops


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def tokenizer():
    return load_tiny_bart(tiny_bart_dir())[0]


@pytest.fixture
def model():
    """A fresh model per test: attaching a method changes its attention implementation."""
    return load_tiny_bart(tiny_bart_dir())[1]


def pad(rows: list[list[int]], side: str = "right", value: int = PAD_ID) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), value)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[i, span], mask[i, span] = torch.tensor(row), 1
    return ids, mask


def task_batch(tokenizer, pairs=TASK, side: str = "right") -> dict[str, torch.Tensor]:
    """Source ``<s> x </s>`` padded on ``side``; decoder input ``</s> <s> y`` right-padded; labels ``<s> y </s>``."""
    input_ids, attention_mask = pad([tokenizer(s)["input_ids"] for s, _ in pairs], side)
    labels, _ = pad([tokenizer(t)["input_ids"] for _, t in pairs], "right", value=-100)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "decoder_input_ids": shift_tokens_right(labels, PAD_ID, EOS_ID),
        "labels": labels,
    }


def forward(model, batch: dict[str, torch.Tensor]):
    with torch.no_grad():
        return model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            decoder_input_ids=batch["decoder_input_ids"],
            use_cache=False,
        )


def seq2seq_logits(method: BartPrefixTuning, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return method.seq2seq_logits(batch["input_ids"], batch["attention_mask"], batch["decoder_input_ids"])


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# (a) each prefix reaches only its own attention


def test_each_prefix_reaches_only_its_own_attention(tokenizer, model):
    batch = task_batch(tokenizer)
    stock = forward(model, batch)
    method = BartPrefixTuning(model, SETTINGS)
    method.eval()
    with torch.no_grad():
        prefixes = method.compute_prefixes()
    for role in ROLES:
        with method.injected({role: prefixes[role]}):
            out = forward(model, batch)
        encoder_changed = not torch.equal(out.encoder_last_hidden_state, stock.encoder_last_hidden_state)
        assert encoder_changed == (role == "encoder"), role
        assert max_diff(out.logits, stock.logits) > 1e-2, role
    # Other decoder-side prefixes leave the encoder output bit-identical, and each changes the logits.
    with method.injected(prefixes):
        both = forward(model, batch)
    for role in ("decoder", "cross"):
        with method.injected({**prefixes, role: torch.randn_like(prefixes[role])}):
            out = forward(model, batch)
        assert torch.equal(out.encoder_last_hidden_state, both.encoder_last_hidden_state), role
        assert max_diff(out.logits, both.logits) > 1e-2, role


# (b) an independent computation of one attention layer


def reference_attention(attn, hidden, source, prefix_key, prefix_value, visible) -> torch.Tensor:
    """softmax(q [pk; k]^T / sqrt(hd) masked) [pv; v], written out; ``visible`` (B, q, P + kv) over the keys."""
    batch, q_len, d = hidden.shape
    heads, head_dim = attn.num_heads, attn.head_dim

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.view(batch, -1, heads, head_dim).transpose(1, 2)

    query = split(attn.q_proj(hidden))
    key = torch.cat([prefix_key.expand(batch, -1, -1, -1), split(attn.k_proj(source))], dim=2)
    value = torch.cat([prefix_value.expand(batch, -1, -1, -1), split(attn.v_proj(source))], dim=2)
    scores = (query @ key.transpose(-1, -2)) / math.sqrt(head_dim)
    scores = scores.masked_fill(~visible[:, None], float("-inf"))
    out = scores.softmax(dim=-1) @ value
    return attn.out_proj(out.transpose(1, 2).reshape(batch, q_len, d))


def layer_prefix(method: BartPrefixTuning, role: str, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer ``layer``'s key and value read straight from the MLP output: [l0-K, l0-V, l1-K, ...] blocks of d."""
    encoder = method.prefixes[role]
    flat = encoder.control_trans(encoder.wte(encoder.index))  # (P, 2 L d)
    d, heads = encoder.n_embd, encoder.n_head
    blocks = [
        flat[:, k * d : (k + 1) * d].view(-1, heads, d // heads).permute(1, 0, 2)
        for k in range(2 * layer, 2 * layer + 2)
    ]
    return blocks[0][None], blocks[1][None]


@pytest.mark.parametrize("role", ROLES)
def test_one_attention_layer_equals_direct_computation(model, role):
    torch.manual_seed(1)
    method = BartPrefixTuning(model, SETTINGS)
    method.eval()
    p, d, q_len, src_len = SETTINGS["prefix_length"], model.config.d_model, 5, 7
    layer = 1
    bart = model.model
    attn = {
        "encoder": bart.encoder.layers[layer].self_attn,
        "decoder": bart.decoder.layers[layer].self_attn,
        "cross": bart.decoder.layers[layer].encoder_attn,
    }[role]
    hidden = torch.randn(2, q_len, d)
    source = torch.randn(2, src_len, d) if role == "cross" else hidden
    kv_len = source.shape[1]
    if role == "decoder":  # what create_causal_mask gives without padding: None, i.e. causal
        mask = None
        real = torch.ones(q_len, kv_len).tril().bool().expand(2, -1, -1)
    else:  # padding: the second example's last two keys
        real = torch.ones(2, q_len, kv_len, dtype=torch.bool)
        real[1, :, -2:] = False
        mask = real[:, None]
    visible = torch.cat([torch.ones(2, q_len, p, dtype=torch.bool), real], dim=-1)
    with torch.no_grad():
        prefix_key, prefix_value = layer_prefix(method, role, layer)
        expected = reference_attention(attn, hidden, source, prefix_key, prefix_value, visible)
        with method.injected(method.compute_prefixes()):
            kwargs = {"key_value_states": source} if role == "cross" else {}
            got, _ = attn(hidden, attention_mask=mask, **kwargs)
    assert max_diff(got, expected) < 1e-5


# (c) no prefix = the stock model, exactly


def test_empty_or_zero_length_prefix_and_detached_method_give_the_stock_model(tokenizer, model, monkeypatch):
    import prefixtune.methods.bart_prefix as bart_prefix

    # a config cannot ask for P = 0 (bad input); the injection itself must still be the identity for it
    monkeypatch.setattr(
        bart_prefix, "checked_prefix_length", lambda settings, _model: int(settings["prefix_length"])
    )
    batch = task_batch(tokenizer)
    stock = forward(model, batch)
    stock_tokens = model.generate(
        batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=8
    )

    zero = BartPrefixTuning(model, {**SETTINGS, "prefix_length": 0})
    zero.eval()
    assert model.config._attn_implementation == ATTENTION_NAME
    assert torch.equal(seq2seq_logits(zero, batch), stock.logits)
    assert torch.equal(
        zero.generate(batch["input_ids"], batch["attention_mask"], max_new_tokens=8), stock_tokens
    )
    assert torch.equal(forward(model, batch).logits, stock.logits)  # attached, nothing injected
    zero.detach()

    method = BartPrefixTuning(model, SETTINGS)
    method.eval()
    assert not torch.equal(seq2seq_logits(method, batch), stock.logits)
    method.detach()
    assert model.config._attn_implementation == "sdpa"
    assert not any(hasattr(m, "prefixtune_bart_slot") for m in model.modules())
    assert torch.equal(forward(model, batch).logits, stock.logits)


# (d) generate uses the prefix


def test_beam_search_first_step_equals_forward_with_prefix(tokenizer, model):
    batch = task_batch(tokenizer)
    start = torch.full((len(TASK), 1), EOS_ID)
    stock_first = forward(model, {**batch, "decoder_input_ids": start}).logits[:, 0]
    method = BartPrefixTuning(model, SETTINGS)
    method.eval()
    first = seq2seq_logits(method, {**batch, "decoder_input_ids": start})[:, 0]
    out = method.generate(
        batch["input_ids"],
        batch["attention_mask"],
        num_beams=6,
        max_new_tokens=6,
        length_penalty=0.8,
        output_logits=True,
        return_dict_in_generate=True,
    )
    step1 = out.logits[0].view(len(TASK), 6, -1)  # raw logits of every beam of every example
    assert max_diff(step1, first[:, None]) < 1e-5
    assert max_diff(step1, stock_first[:, None]) > 1e-1
    assert out.sequences.shape[0] == len(TASK)


PAPER_CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
# the paper's XSUM decoding of BART PREFIX, as the decode stage is given it
XSUM_DECODING = method_decoding(load_config(PAPER_CONFIG)["decoding_by_dataset"]["xsum"], "prefix")


def test_batched_summaries_equal_batch_one(tokenizer, model):
    """``decoding.batch_size`` only groups the work: right-padded batches of sources of different lengths, with
    the paper's XSUM decoding, give each source the summary it gets alone (fp32, CPU)."""
    torch.manual_seed(3)
    method = BartPrefixTuning(model, SETTINGS)
    with torch.no_grad():
        for p in method.trainable_parameters():
            p.normal_(0, 0.5)  # a prefix that changes the outputs
    method.eval()
    sources = [src for src, _ in TASK] + [
        f"{src} | near : {other}" for (src, _), (other, _) in zip(TASK, TASK[1:])
    ]
    alone = summarize(
        method, tokenizer, sources, {**XSUM_DECODING, "batch_size": 1}, 512, torch.device("cpu")
    )
    batched = summarize(
        method, tokenizer, sources, {**XSUM_DECODING, "batch_size": 4}, 512, torch.device("cpu")
    )
    assert batched == alone
    assert len(set(alone)) > 1 and all(alone)
    per_beam = summarize(
        method,
        tokenizer,
        sources,
        {**XSUM_DECODING, "batch_size": 1, "beams_share_source": False},
        512,
        torch.device("cpu"),
    )
    assert per_beam == alone  # transformers' own form: every beam row on its copy of the source
    # the cache summarize uses (cross-attention keys and values not reordered) changes nothing either
    batch = tokenizer(sources, padding=True, return_tensors="pt")
    kwargs = generate_kwargs({**XSUM_DECODING}, tokenizer)
    stock = method.generate(batch["input_ids"], batch["attention_mask"], **kwargs)
    kept = method.generate(
        batch["input_ids"], batch["attention_mask"], past_key_values=BeamSharedCrossAttentionCache(), **kwargs
    )
    assert torch.equal(kept, stock)


def test_beams_of_a_source_share_its_cross_attention_keys(model, monkeypatch):
    """In ``generate``, a cross-attention step takes each source's beams together over that source's keys and
    values (read once): the same outputs as every beam row on its own copy, with per-example prefixes and a
    padded source; outside ``generate`` (no source count) every row is on its own."""
    from prefixtune.methods import bart_prefix

    torch.manual_seed(2)
    method = BartPrefixTuning(model, SETTINGS)
    method.eval()
    calls = []
    real = bart_prefix._beams_share_source
    monkeypatch.setattr(bart_prefix, "_beams_share_source", lambda *a, **k: calls.append(1) or real(*a, **k))
    attn = model.model.decoder.layers[1].encoder_attn
    sources, beams, src_len, d = 2, 3, 7, model.config.d_model
    hidden = torch.randn(sources * beams, 1, d)
    source = torch.randn(sources, src_len, d).repeat_interleave(beams, dim=0)
    real_keys = torch.ones(sources * beams, 1, 1, src_len, dtype=torch.bool)
    real_keys[beams:, ..., -2:] = False  # the second source is padded
    with torch.no_grad():
        shared = method.compute_prefixes()
        per_example = {role: torch.cat([kv, kv.roll(1, dims=-1)], dim=1) for role, kv in shared.items()}
        with method.injected(per_example):
            alone, _ = attn(hidden, key_value_states=source, attention_mask=real_keys)
            assert not calls
            method.store.examples = sources
            together, _ = attn(hidden, key_value_states=source, attention_mask=real_keys)
            method.store.examples = None
    assert calls
    assert max_diff(together, alone) < 1e-6
    assert max_diff(together[:beams], together[beams:]) > 1e-2  # each source its own prefix and keys


def test_generate_with_beams_sharing_their_source_equals_every_beam_on_its_own(tokenizer, model):
    torch.manual_seed(4)
    method = BartPrefixTuning(model, SETTINGS)
    with torch.no_grad():
        for p in method.trainable_parameters():
            p.normal_(0, 0.5)
    method.eval()
    batch = tokenizer([src for src, _ in TASK], padding=True, return_tensors="pt")
    kwargs = {**generate_kwargs({**XSUM_DECODING}, tokenizer), "output_logits": True}
    kwargs["return_dict_in_generate"] = True
    runs = [
        method.generate(
            batch["input_ids"],
            batch["attention_mask"],
            beams_share_source=share,
            past_key_values=BeamSharedCrossAttentionCache(),
            **kwargs,
        )
        for share in (False, True)
    ]
    assert torch.equal(runs[0].sequences, runs[1].sequences)
    assert max(max_diff(a, b) for a, b in zip(runs[0].logits, runs[1].logits, strict=True)) < 1e-4
    assert method.store.examples is None


def test_cross_attention_prefix_is_joined_once_per_search_and_freed_with_it(tokenizer, model, monkeypatch):
    """Beam search reuses each cross-attention layer's [prefix; encoder] keys and values while the cached encoder
    tensors are the same and unchanged; nothing is kept after ``generate``; a changed tensor, or gradients, get
    a fresh concatenation."""
    from types import SimpleNamespace

    from prefixtune.methods import bart_prefix

    method = BartPrefixTuning(model, SETTINGS)
    method.eval()
    hits = []
    real = bart_prefix._CrossMemo.serves
    monkeypatch.setattr(bart_prefix._CrossMemo, "serves", lambda *a: hits.append(real(*a)) or hits[-1])
    sources = [src for src, _ in TASK[:3]]
    with torch.no_grad():
        summarize(method, tokenizer, sources, {**XSUM_DECODING, "batch_size": 3}, 512, torch.device("cpu"))
    assert sum(hits) > len(hits) / 2  # most steps reuse the joined keys
    assert not any(hasattr(m, bart_prefix.MEMO_ATTRIBUTE) for m in model.modules())  # freed with the cache
    module = SimpleNamespace()
    prefix = (torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4))
    key, value = torch.randn(5, 2, 6, 4), torch.randn(5, 2, 6, 4)
    with torch.no_grad():
        first = bart_prefix._with_prefix(module, "cross", prefix, key, value, 5)
        assert bart_prefix._with_prefix(module, "cross", prefix, key, value, 5)[0] is first[0]
        key.add_(1.0)  # changed in place: joined again, with the new numbers
        second = bart_prefix._with_prefix(module, "cross", prefix, key, value, 5)
        assert second[0] is not first[0] and torch.equal(second[0][:, :, 3:], key)
        assert bart_prefix._with_prefix(module, "decoder", prefix, key, value, 5)[0] is not second[0]
    assert (
        bart_prefix._with_prefix(module, "cross", prefix, key, value, 5)[0] is second[0]
    )  # (grad-free memo)
    module = SimpleNamespace()
    bart_prefix._with_prefix(module, "cross", prefix, key, value, 5)  # gradients on: nothing kept
    assert not hasattr(module, bart_prefix.MEMO_ATTRIBUTE)


def test_greedy_generate_equals_uncached_loop(tokenizer, model):
    source = torch.tensor([tokenizer(TASK[0][0])["input_ids"]])
    mask = torch.ones_like(source)
    method = BartPrefixTuning(model, SETTINGS)
    method.eval()
    steps = 8
    out = method.generate(
        source,
        mask,
        num_beams=1,
        do_sample=False,
        max_new_tokens=steps,
        output_logits=True,
        return_dict_in_generate=True,
        **NO_REPEAT,
    )
    tokens = torch.tensor([[EOS_ID]])  # decoder_start_token_id
    for step in range(steps):
        logits = seq2seq_logits(
            method, {"input_ids": source, "attention_mask": mask, "decoder_input_ids": tokens}
        )
        assert max_diff(out.logits[step], logits[:, -1]) < 1e-5, step
        # bart-large's forced <s> first and forced </s> at the length limit, as generate applies them
        token = BOS_ID if step == 0 else EOS_ID if step == steps - 1 else int(logits[0, -1].argmax())
        tokens = torch.cat([tokens, torch.tensor([[token]])], dim=1)
        if token == EOS_ID:
            break
    assert torch.equal(out.sequences, tokens)


def test_per_example_prefixes_follow_their_beams(tokenizer, model):
    """Prefixes given per example are repeat-interleaved to the beam batch (paper §8.2 style batching)."""
    batch = task_batch(tokenizer, TASK[:2])
    start = torch.full((1, 1), EOS_ID)
    method = BartPrefixTuning(model, SETTINGS)
    method.eval()
    with torch.no_grad():
        shared = method.compute_prefixes()
        users = {role: torch.cat([kv, kv.roll(1, dims=-1)], dim=1) for role, kv in shared.items()}
        with method.injected(users):
            out = model.generate(
                batch["input_ids"],
                attention_mask=batch["attention_mask"],
                num_beams=3,
                max_new_tokens=4,
                output_logits=True,
                return_dict_in_generate=True,
            )
        step1 = out.logits[0].view(2, 3, -1)  # (example, beam, vocab)
        for row in range(2):
            one = {k: v[row : row + 1] for k, v in batch.items()}
            for user in range(2):
                with method.injected({role: kv[:, user : user + 1] for role, kv in users.items()}):
                    expected = forward(model, {**one, "decoder_input_ids": start}).logits[0, 0]
                if user == row:
                    assert max_diff(step1[row], expected) < 1e-5
                else:  # the other user's prefix gives other logits
                    assert max_diff(step1[row], expected) > 1e-2


# (e) padding


def test_padded_batch_equals_examples_alone(tokenizer, model):
    """Sources and targets of different lengths, right-padded (the authors' batches): the prefix columns and the
    padding mask combine correctly in all three attentions."""
    method = BartPrefixTuning(model, SETTINGS)
    method.eval()
    batch = task_batch(tokenizer)
    assert batch["attention_mask"].sum(1).unique().numel() > 1  # really padded
    assert (batch["labels"] == -100).any(1).any()
    logits = seq2seq_logits(method, batch)
    for row, pair in enumerate(TASK):
        expected = seq2seq_logits(method, task_batch(tokenizer, [pair]))[0]
        assert max_diff(logits[row, : expected.shape[0]], expected) < 1e-5


def test_bart_sources_must_be_right_padded(tokenizer, model):
    """Stock BART numbers source positions 0.. whatever the mask says, so left padding changes the result even
    without a prefix: batches for BART (training and generate) must be right-padded."""
    left = task_batch(tokenizer, side="left")
    short = int(left["attention_mask"].sum(1).argmin())
    alone = task_batch(tokenizer, [TASK[short]])
    expected = forward(model, alone).logits[0]
    got = forward(model, left).logits[short, : expected.shape[0]]
    assert max_diff(got, expected) > 1e-2


# (f) training


def test_training_moves_only_the_prefix_and_lowers_the_loss(tokenizer, model):
    torch.manual_seed(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    method = BartPrefixTuning(model, {**SETTINGS, "mid_dim": 64})
    batch = task_batch(tokenizer)

    def loss() -> torch.Tensor:
        logits = method.seq2seq_logits(
            batch["input_ids"], batch["attention_mask"], batch["decoder_input_ids"]
        )
        return torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100
        )

    method.eval()
    with torch.no_grad():
        start = loss().item()
    method.train()
    assert model.training and method.prefixes.training  # BART dropout on, as under PyTorch Lightning
    optimizer = torch.optim.AdamW(method.trainable_parameters(), lr=5e-3)
    for _ in range(60):
        loss().backward()
        optimizer.step()
        optimizer.zero_grad()
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    method.eval()
    with torch.no_grad():
        end = loss().item()
    # a frozen 2-layer BART learns slowly through a prefix (5.0 -> 4.1 here; no prefix change: 5.0)
    assert end < 0.85 * start, (start, end)


def test_modes_and_init_settings(model):
    method = BartPrefixTuning(model, {**SETTINGS, "lm_dropout": False})
    method.train()
    assert not model.training and method.prefixes.training
    method.eval()
    assert not model.training and not method.prefixes.training
    method.detach()
    uniform = BartPrefixTuning(model, {**SETTINGS, "init": "uniform"})
    random_init = BartPrefixTuning(model, SETTINGS)
    for role in ROLES:
        weight = uniform.prefixes[role].wte.weight
        assert weight.min() >= 0 and weight.max() < 1
        assert random_init.prefixes[role].wte.weight.min() < 0  # N(0, 1), PyTorch's default
    assert (
        len({id(p) for p in random_init.trainable_parameters()}) == 3 * 5
    )  # three independent Embedding + MLP
    with pytest.raises(ValueError, match="init"):
        BartPrefixTuning(model, {**SETTINGS, "init": "word"})
    dropped = BartPrefixTuning(model, {**SETTINGS, "prefix_dropout": 0.5})
    dropped.train()
    assert not torch.equal(dropped.compute_prefixes()["cross"], dropped.compute_prefixes()["cross"])
    dropped.eval()
    assert torch.equal(dropped.compute_prefixes()["cross"], dropped.compute_prefixes()["cross"])


def test_mask_gets_visible_prefix_columns():
    causal = mask_with_prefix(None, True, 3, 5, 2, torch.device("cpu"))  # 3 new queries after 2 cached keys
    expected = torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1]]).bool()
    assert torch.equal(causal[0, 0], expected)
    assert mask_with_prefix(None, False, 3, 5, 2, torch.device("cpu")) is None
    assert mask_with_prefix(None, True, 1, 5, 2, torch.device("cpu")) is None
    additive = torch.tensor([[[[0.0, -1e9]]]])
    assert torch.equal(
        mask_with_prefix(additive, False, 1, 2, 2, torch.device("cpu")),
        torch.tensor([[[[0.0, 0.0, 0.0, -1e9]]]]),
    )


# (g) save and load


def test_save_load_gives_identical_logits(tokenizer, model, tmp_path):
    batch = task_batch(tokenizer)
    method = BartPrefixTuning(model, SETTINGS)
    method.eval()
    expected = seq2seq_logits(method, batch)
    method.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bart_prefix.safetensors",
        "bart_prefix_config.json",
    ]
    assert set(json.loads((tmp_path / "bart_prefix_config.json").read_text())) == set(ROLES)
    method.detach()

    torch.manual_seed(123)
    other = BartPrefixTuning(model, SETTINGS)
    other.eval()
    assert not torch.equal(seq2seq_logits(other, batch), expected)
    other.load(tmp_path)
    assert torch.equal(seq2seq_logits(other, batch), expected)
    other.detach()
    with pytest.raises(ValueError, match="does not match"):
        BartPrefixTuning(model, {**SETTINGS, "prefix_length": 5}).load(tmp_path)


# (h) positions


def record_positions(model) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Outputs of the encoder's and the decoder's learned positional embeddings, one entry per call."""
    seen: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
    for store, module in zip(
        seen, (model.model.encoder.embed_positions, model.model.decoder.embed_positions)
    ):
        module.register_forward_hook(lambda _m, _a, out, store=store: store.append(out.detach()))
    return seen


def position_rows(model, side: str, start: int, length: int) -> torch.Tensor:
    module = getattr(model.model, side).embed_positions
    return module.weight[module.offset + start : module.offset + start + length]


def test_positions_are_not_shifted_by_the_prefix(tokenizer, model):
    method = BartPrefixTuning(model, SETTINGS)
    method.eval()
    encoder_seen, decoder_seen = record_positions(model)
    batch = task_batch(tokenizer)
    seq2seq_logits(method, batch)
    assert torch.equal(encoder_seen[0][0], position_rows(model, "encoder", 0, batch["input_ids"].shape[1]))
    assert torch.equal(
        decoder_seen[0][0], position_rows(model, "decoder", 0, batch["decoder_input_ids"].shape[1])
    )

    encoder_seen.clear(), decoder_seen.clear()
    source = batch["input_ids"][:1]
    out = method.generate(
        source, torch.ones_like(source), num_beams=1, max_new_tokens=5, return_dict_in_generate=True
    )
    steps = out.sequences.shape[1] - 1
    assert [p.shape[-2] for p in decoder_seen] == [1] * steps  # cached decoding, one token per step
    for step, positions in enumerate(decoder_seen):
        assert torch.equal(positions[0], position_rows(model, "decoder", step, 1)), step
    assert out.past_key_values.self_attention_cache.get_seq_length() == steps  # no prefix in the cache


# tiny BART and paper-scale counts


def test_tiny_bart_loads_like_bart_large(tokenizer, model):
    assert [tokenizer.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    assert tokenizer.mask_token_id == len(tokenizer) - 1
    ids = tokenizer("Cotto is in the riverside .")["input_ids"]
    assert ids[0] == BOS_ID and ids[-1] == EOS_ID
    cfg = model.config
    generation = model.generation_config  # transformers 5 keeps forced_* there, not in the model config
    assert (cfg.decoder_start_token_id, generation.forced_bos_token_id, generation.forced_eos_token_id) == (
        2,
        0,
        2,
    )
    assert cfg.dropout == cfg.attention_dropout == cfg.activation_dropout == 0.1
    assert cfg.max_position_embeddings == 512 and cfg._attn_implementation == "sdpa"
    for key, value in BART_LARGE_GENERATION.items():
        assert getattr(model.generation_config, key) == value, key
    long_source = torch.randint(4, len(tokenizer) - 1, (1, 512))
    with torch.no_grad():
        out = model(input_ids=long_source, decoder_input_ids=torch.tensor([[EOS_ID]]))
    assert out.logits.shape == (1, 1, len(tokenizer))


def test_bart_large_prefix_counts():
    """P = 100 on bart-large stores 7,372,800 values, ~1.8 % of its 406,291,456 parameters (official_code.md §2.2)."""
    cfg = bart_large_config()
    assert (cfg.d_model, cfg.encoder_layers, cfg.decoder_layers, cfg.vocab_size) == (1024, 12, 12, 50265)
    counts = bart_prefix_parameter_counts(prefix_length=100, mid_dim=800)
    assert counts["stored"] == 7_372_800 == 3 * 100 * 12 * 2 * 1024
    assert counts["base"] == 406_291_456
    assert round(counts["percent"], 1) == 1.8
    per_role = 100 * 1024 + (1024 * 800 + 800) + (800 * 24 * 1024 + 24 * 1024)  # embedding + MLP
    assert counts["trainable"] == 3 * per_role
