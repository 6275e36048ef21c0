"""BART on XSUM through the pipeline's own train and decode entry points: batches, loss, what is saved, decoding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from prefixtune.data.records import EvalItem, Pair, write_jsonl
from prefixtune.decoding.decode import decode_split
from prefixtune.decoding.settings import method_decoding
from prefixtune.models.loading import is_seq2seq, load_tokenizer
from prefixtune.training.seq2seq import (
    IGNORE,
    Seq2SeqExample,
    collate_seq2seq,
    encode_seq2seq,
    generate_kwargs,
    seq2seq_loss,
)
from prefixtune.training.train import train_run
from tiny_bart_models import TINY_XSUM_DECODING, one_thread, tiny_bart_dir

ROOT = Path(__file__).resolve().parents[1]
XSUM_DECODING = TINY_XSUM_DECODING
# the config's form: generate settings per method kind (the authors' FINE-TUNE decoding differed from PREFIX's)
XSUM_GENERATE = {key: value for key, value in XSUM_DECODING.items() if key != "batch_size"}
XSUM_BY_METHOD = {
    "by_method": {
        "prefix": XSUM_GENERATE,
        "finetune": {**XSUM_GENERATE, "num_beams": 4, "min_length": 4, "max_length": 24},
    },
    "batch_size": 2,
}
PAIRS = [
    Pair("The Mill offers Thai dishes by the river and is cheap .", "The Mill offers cheap Thai dishes."),
    Pair("Aromi , in the city centre , offers French dishes .", "Aromi offers French dishes."),
    Pair("Blue Spice offers Indian dishes near The Eagle .", "Blue Spice offers Indian dishes."),
]


def test_collate_shifts_labels_right_behind_the_decoder_start():
    batch = collate_seq2seq(
        [Seq2SeqExample([0, 5, 6, 2], [0, 7, 2]), Seq2SeqExample([0, 9, 2], [0, 8, 8, 2])], 1, 2
    )
    assert batch.input_ids.tolist() == [[0, 5, 6, 2], [0, 9, 2, 1]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert batch.labels.tolist() == [[0, 7, 2, IGNORE], [0, 8, 8, 2]]
    assert batch.decoder_input_ids.tolist() == [[2, 0, 7, 1], [2, 0, 8, 8]]


def test_loss_ignores_padding_and_matches_cross_entropy():
    logits = torch.randn(2, 3, 11)
    labels = torch.tensor([[1, 2, IGNORE], [3, 4, 5]])
    expected = torch.nn.functional.cross_entropy(logits.view(-1, 11), labels.view(-1), ignore_index=IGNORE)
    assert torch.allclose(seq2seq_loss(logits, labels, "token_mean"), expected)
    with pytest.raises(ValueError, match="unknown loss mode"):
        seq2seq_loss(logits, labels, "mean")


def test_truncation_keeps_the_end_token():
    tokenizer = load_tokenizer(tiny_bart_dir())
    example = encode_seq2seq(Pair("word " * 100, "summary " * 100), tokenizer, max_source=12, max_target=6)
    assert len(example.source_ids) == 12 and len(example.target_ids) == 6
    assert (
        example.source_ids[0] == tokenizer.bos_token_id and example.source_ids[-1] == tokenizer.eos_token_id
    )


def test_xsum_decoding_follows_each_methods_module():
    """The paper config decodes PREFIX with the prefix module's hard-coded beam 6, min 11, max 62 and FINE-TUNE
    with the bart-large defaults the fine-tuning module read (beam 4, min 12, max 128); the rest is shared."""
    tokenizer = load_tokenizer(tiny_bart_dir())
    for path in ("config/config.yaml", "config/demo.yaml"):
        xsum = yaml.safe_load((ROOT / path).read_text())["decoding_by_dataset"]["xsum"]
        prefix = generate_kwargs(xsum, tokenizer, "prefix")
        finetune = generate_kwargs(xsum, tokenizer, "finetune")
        assert (prefix["num_beams"], prefix["min_length"], prefix["max_length"]) == (6, 11, 62)
        assert (finetune["num_beams"], finetune["min_length"], finetune["max_length"]) == (4, 12, 128)
        differing = {"num_beams", "min_length", "max_length"}
        assert {k: v for k, v in prefix.items() if k not in differing} == {
            k: v for k, v in finetune.items() if k not in differing
        }
        assert (
            prefix["length_penalty"] == 0.8
            and prefix["no_repeat_ngram_size"] == 3
            and prefix["early_stopping"]
        )
        with pytest.raises(ValueError, match="name the method kind"):
            generate_kwargs(xsum, tokenizer)
        with pytest.raises(ValueError, match="no settings for method kind 'adapter'"):
            generate_kwargs(xsum, tokenizer, "adapter")
        resolved = method_decoding(xsum, "prefix")
        assert (
            generate_kwargs(resolved, tokenizer) == prefix == generate_kwargs(resolved, tokenizer, "prefix")
        )
        with pytest.raises(ValueError, match="not of the run's 'finetune'"):
            method_decoding(resolved, "finetune")


def test_every_generate_setting_is_explicit():
    tokenizer = load_tokenizer(tiny_bart_dir())
    kwargs = generate_kwargs({**XSUM_DECODING, "max_length": 62, "min_length": 11}, tokenizer)
    assert kwargs["num_beams"] == 6 and kwargs["min_length"] == 11 and kwargs["max_length"] == 62
    assert (
        kwargs["no_repeat_ngram_size"] == 3 and kwargs["length_penalty"] == 0.8 and kwargs["early_stopping"]
    )
    assert (
        kwargs["forced_bos_token_id"] is None and kwargs["decoder_start_token_id"] == tokenizer.eos_token_id
    )


@pytest.mark.parametrize(
    ("kind", "settings", "saved"),
    [
        ("finetune", {"loss": "token_mean", "lm_dropout": True}, "model.safetensors"),
        (
            "prefix",
            {"loss": "token_mean", "lm_dropout": True, "mid_dim": 32, "prefix_length": 4},
            "bart_prefix.safetensors",
        ),
    ],
)
def test_train_then_decode_a_bart_run(tmp_path, kind, settings, saved):
    base = tiny_bart_dir()
    assert is_seq2seq(base)
    write_jsonl(tmp_path / "train.jsonl", PAIRS * 4)
    items = [
        EvalItem(id=str(i), source=p.source, references=[p.target], key=str(i)) for i, p in enumerate(PAIRS)
    ]
    write_jsonl(tmp_path / "test.jsonl", items)
    spec = {
        "run_id": f"xsum-tiny-{kind}",
        "method": kind,
        "method_settings": settings,
        "hparams": {
            "learning_rate": 5e-3,
            "epochs": 4,
            "batch_size": 4,
            "seed": 1,
            "max_source_tokens": 64,
            "max_target_tokens": 16,
        },
    }
    with one_thread():
        record = train_run(
            spec,
            tmp_path / "train.jsonl",
            base,
            tmp_path / "trained",
            tmp_path / "run.json",
            tmp_path / "ckpt",
        )
        losses = record["training"]["loss_every_50_steps"] + [record["training"]["final_loss"]]
        assert record["training"]["steps"] == 12 and losses[-1] < losses[0]
        assert (tmp_path / "trained" / saved).is_file()
        decode_split(
            spec,
            tmp_path / "test.jsonl",
            base,
            tmp_path / "trained",
            tmp_path / "test.hyp.txt",
            XSUM_BY_METHOD,
        )
    lines = (tmp_path / "test.hyp.txt").read_text().splitlines()
    assert len(lines) == 3 and all(lines)
    recorded = json.loads((tmp_path / "test.hyp.json").read_text())
    own = XSUM_BY_METHOD["by_method"][kind]
    assert recorded["decoding"] == {**own, "batch_size": 2, "method": kind}  # its own method's settings only
    assert {k: recorded["generate"][k] for k in ("num_beams", "min_length", "max_length")} == {
        k: own[k] for k in ("num_beams", "min_length", "max_length")
    }
    if kind == "prefix":  # only the three prefixes are saved (tests/test_bart_prefix.py: BART stays frozen)
        saved_files = sorted(p.name for p in (tmp_path / "trained").iterdir())
        assert saved_files == ["bart_prefix.safetensors", "bart_prefix_config.json"]


def test_references_are_truncated_as_the_authors_label_ids(tmp_path):
    """Test ROUGE references were label ids cut to 100 tokens and decoded back (official_code.md §1.5)."""
    from prefixtune.metrics.score import score_files

    tokenizer = load_tokenizer(tiny_bart_dir())
    long_ref = " ".join(["Wales beat France in Cardiff ."] * 40)
    (tmp_path / "refs.txt").write_text(f"Oil prices fell .\n{long_ref}\n")
    (tmp_path / "hyp.txt").write_text("Oil prices fell.\nWales beat France.\n")
    scored = score_files(
        "xsum", tmp_path / "hyp.txt", tmp_path / "refs.txt", reference_tokenizer=tiny_bart_dir()
    )
    metrics = scored["metrics"]
    assert (
        metrics["references_changed_by_truncation"] == 2
    )  # the long one, and " ." -> "." by the 3.2 clean-up
    from prefixtune.metrics.rouge import truncate_references

    short, cut = truncate_references(["Oil prices fell .", long_ref], tokenizer, 100)
    assert short == "Oil prices fell."
    from prefixtune.models.detokenize import clean_up_tokenization

    assert len(tokenizer(cut)["input_ids"]) <= 100 and clean_up_tokenization(long_ref).startswith(cut[:-1])
    plain = score_files("xsum", tmp_path / "hyp.txt", tmp_path / "refs.txt")["metrics"]
    assert metrics["corpus_mean"]["rouge2"] > plain["corpus_mean"]["rouge2"]  # a shorter reference: higher R2
