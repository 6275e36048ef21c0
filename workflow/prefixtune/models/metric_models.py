"""Tiny offline stand-ins for the models of DART's model-based metrics, for the demo and the tests.

* MoverScore: a tiny DistilBERT (uncased WordPiece), read at its last layer, like ``distilbert-base-uncased``;
* BERTScore: a tiny RoBERTa (byte-level BPE) with enough layers to be read at layer 17, like ``roberta-large``;
* BLEURT: a tiny ``BertForSequenceClassification`` regression model + ``bleurt_config.json``, like a converted
  BLEURT checkpoint.

Tokenizers are trained offline on the synthetic LM corpus; the **weights are random** (seeded), so the numbers
these give exercise the real code paths (loading with ``from_pretrained``, tokenization, layers, matching, EMD,
regression head) but mean nothing. Everything is saved with ``save_pretrained`` and loaded like the hub models.
"""

from __future__ import annotations

import json
import string
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import ByteLevelBPETokenizer, normalizers, pre_tokenizers
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertTokenizer,
    DistilBertConfig,
    DistilBertModel,
    DistilBertTokenizer,
    RobertaConfig,
    RobertaModel,
    RobertaTokenizer,
)

from prefixtune.data.synthetic import synthetic_lm_corpus

WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0..4 as in roberta-large
SPEC_FILE = "model_metrics.json"
DIRS = {"moverscore": "moverscore-distilbert", "bertscore": "bertscore-roberta", "bleurt": "bleurt-bert"}


@dataclass(frozen=True)
class MetricModelRecipe:
    vocab_size: int = 1000
    hidden: int = 32
    heads: int = 2
    intermediate: int = 64
    distilbert_layers: int = 2
    roberta_layers: int = 18
    bertscore_layer: int = 17  # roberta-large's layer in bert-score
    bleurt_layers: int = 2
    max_length: int = 128  # model_max_length; also the BLEURT max_seq_length
    corpus_size: int = 4000
    seed: int = 0


def wordpiece_vocab(corpus: list[str], vocab_size: int) -> dict[str, int]:
    """A deterministic uncased WordPiece vocabulary: the specials, every printable ASCII character alone and as a
    ``##`` continuation, then the corpus's most frequent words (ties alphabetical). (The ``tokenizers`` WordPiece
    trainer breaks ties in hash order, so its vocabulary changes from run to run.)"""
    normalizer, splitter = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in corpus:
        counts.update(word for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c.lower() for c in string.printable if not c.isspace()})
    base = [*WORDPIECE_SPECIALS, *chars, *(f"##{c}" for c in chars)]
    words = sorted((w for w in counts if w not in set(base)), key=lambda w: (-counts[w], w))
    return {token: i for i, token in enumerate([*base, *words][:vocab_size])}


def train_byte_bpe(corpus: list[str], vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE vocabulary and merges, RoBERTa's special tokens first."""
    trainer = ByteLevelBPETokenizer(add_prefix_space=False)
    trainer.train_from_iterator(
        corpus, vocab_size=vocab_size, min_frequency=2, special_tokens=ROBERTA_SPECIALS
    )
    model = json.loads(trainer._tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges


def _save(model: torch.nn.Module, tokenizer: Any, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def build_metric_models(
    out_dir: str | Path, recipe: MetricModelRecipe | None = None
) -> dict[str, dict[str, Any]]:
    """Build the three tiny models under ``out_dir`` and write ``model_metrics.json`` (the ``--model-metrics``
    block that uses them); returns that block."""
    recipe = recipe or MetricModelRecipe()
    out_dir = Path(out_dir)
    corpus = synthetic_lm_corpus(recipe.seed, recipe.corpus_size)
    wordpiece = wordpiece_vocab(corpus, recipe.vocab_size)
    r = recipe

    torch.manual_seed(r.seed)
    distil_tok = DistilBertTokenizer(vocab=wordpiece, do_lower_case=True, model_max_length=r.max_length)
    distil = DistilBertModel(
        DistilBertConfig(
            vocab_size=len(wordpiece),
            dim=r.hidden,
            n_layers=r.distilbert_layers,
            n_heads=r.heads,
            hidden_dim=r.intermediate,
            max_position_embeddings=r.max_length,
            pad_token_id=distil_tok.pad_token_id,
        )
    )
    _save(distil, distil_tok, out_dir / DIRS["moverscore"])

    torch.manual_seed(r.seed + 1)
    vocab, merges = train_byte_bpe(corpus, r.vocab_size)
    roberta_tok = RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=r.max_length)
    roberta = RobertaModel(
        RobertaConfig(
            vocab_size=len(vocab),
            hidden_size=r.hidden,
            num_hidden_layers=r.roberta_layers,
            num_attention_heads=r.heads,
            intermediate_size=r.intermediate,
            max_position_embeddings=r.max_length + 2,  # RoBERTa positions start after the padding index
            pad_token_id=roberta_tok.pad_token_id,
            bos_token_id=roberta_tok.cls_token_id,
            eos_token_id=roberta_tok.sep_token_id,
        )
    )
    _save(roberta, roberta_tok, out_dir / DIRS["bertscore"])

    torch.manual_seed(r.seed + 2)
    bleurt_tok = BertTokenizer(vocab=wordpiece, do_lower_case=True, model_max_length=r.max_length)
    bleurt = BertForSequenceClassification(
        BertConfig(
            vocab_size=len(wordpiece),
            hidden_size=r.hidden,
            num_hidden_layers=r.bleurt_layers,
            num_attention_heads=r.heads,
            intermediate_size=r.intermediate,
            max_position_embeddings=r.max_length,
            hidden_act="gelu_new",  # TF BERT's (and BLEURT's) tanh GELU
            initializer_range=0.2,  # wider than BERT's 0.02, so that random scores differ between pairs
            num_labels=1,
            problem_type="regression",
        )
    )
    bleurt_dir = out_dir / DIRS["bleurt"]
    _save(bleurt, bleurt_tok, bleurt_dir)
    bleurt_config = {"name": "tiny-random-bleurt", "max_seq_length": r.max_length, "do_lower_case": True}
    (bleurt_dir / "bleurt_config.json").write_text(json.dumps(bleurt_config, indent=1) + "\n")

    spec = {
        "moverscore": {"model": str(out_dir / DIRS["moverscore"])},
        "bertscore": {"model": str(out_dir / DIRS["bertscore"]), "layer": r.bertscore_layer},
        "bleurt": {"checkpoint": str(bleurt_dir)},
    }
    (out_dir / SPEC_FILE).write_text(json.dumps(spec, indent=1) + "\n")
    note = "tiny stand-ins with RANDOM weights (seeded): they test the code path, their scores mean nothing"
    (out_dir / "recipe.json").write_text(json.dumps({"recipe": asdict(r), "note": note}, indent=1) + "\n")
    return spec
