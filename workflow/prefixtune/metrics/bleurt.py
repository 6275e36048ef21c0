"""BLEURT as DART's ``python -m bleurt.score -candidate_file=hyp -reference_file=ref0
-bleurt_checkpoint=bleurt/test_checkpoint`` computes it: one regression score per line, the mean reported.

The BLEURT model is BERT with a regression head: ``[CLS] ref [SEP] cand [SEP]`` (segment 0 up to the first
``[SEP]``, then 1), the pooled ``[CLS]`` vector (dense + tanh) -> one linear unit. Here it is a transformers
``BertForSequenceClassification`` with ``num_labels=1``, loaded from a local directory or a hub id:

* the tokenizer is the checkpoint's WordPiece ``vocab.txt`` (``do_lower_case`` from its config); the pair is
  cut longest-first to ``max_seq_length - 3`` word pieces (BLEURT's ``_truncate_seq_pair``);
* ``max_seq_length`` = the ``max_seq_length`` option, else ``bleurt_config.json`` in the checkpoint directory,
  else the tokenizer's ``model_max_length`` (capped at the position table);
* batches of 100 pairs, each padded to its longest pair (BLEURT pads to ``max_seq_length``; the padding is
  masked, so the scores are the same up to float rounding).

**Which checkpoint.** The DART paper numbers come from BLEURT's tiny *test checkpoint*
(``bleurt/test_checkpoint`` in google-research/bleurt: BERT 2 layers x 128, 2 heads; ``max_seq_length`` 128 in
the 2020 release, 512 in later ones), a TensorFlow SavedModel. It has to be converted once on a machine with
TensorFlow (``pip install tensorflow``)::

    git clone https://github.com/google-research/bleurt
    prefixtune convert-bleurt --tf-checkpoint bleurt/bleurt/test_checkpoint --out models/bleurt-test-checkpoint

:func:`convert_tf_checkpoint` maps the BERT variables (``bert/...``) and the head (``dense/kernel``,
``dense/bias``) onto ``BertForSequenceClassification`` and keeps BLEURT's tanh-GELU (``gelu_new``). The mapping is
tested round-trip here, not on the real checkpoint (no TensorFlow offline). Released BLEURT checkpoints ported to
PyTorch (e.g. ``Elron/bleurt-tiny-128``, ``Elron/bleurt-base-128``) load the same way but are *not* the test
checkpoint, so their numbers are not the paper's; BLEURT-20 ports (RemBERT, ``lucadiliello/BLEURT-20``) are not
supported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from prefixtune.metrics.model_common import (
    ATTENTION,
    MetricModelUnavailable,
    load_or_unavailable,
    pick_device,
    resolve_source,
)

BATCH_SIZE = 100  # bleurt.score's default -bleurt_batch_size
BLEURT_CONFIG = "bleurt_config.json"


def _truncate_pair(ref: list[str], cand: list[str], budget: int) -> None:
    """BLEURT's ``_truncate_seq_pair``: drop the last piece of the longer side (the candidate on ties)."""
    while len(ref) + len(cand) > budget:
        if len(ref) > len(cand):
            ref.pop()
        else:
            cand.pop()


@dataclass
class BleurtScorer:
    """A BLEURT checkpoint as a BERT regression model."""

    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel
    max_seq_length: int
    device: torch.device
    source: str
    name: str | None = None  # ``name`` in bleurt_config.json (e.g. the test checkpoint's), when there is one

    @classmethod
    def load(
        cls,
        checkpoint: str,
        *,
        max_seq_length: int | None = None,
        revision: str | None = None,
        device: str | None = None,
    ) -> BleurtScorer:
        """Load a converted checkpoint (local directory or hub id); :class:`MetricModelUnavailable` otherwise."""
        source = resolve_source(checkpoint)
        local = Path(source)
        if local.is_dir() and (local / "saved_model.pb").is_file() and not (local / "config.json").is_file():
            raise MetricModelUnavailable(
                f"{checkpoint} is a TensorFlow BLEURT checkpoint: convert it first with "
                "`prefixtune convert-bleurt --tf-checkpoint DIR --out DIR` (needs tensorflow)"
            )
        tokenizer = load_or_unavailable(
            f"BLEURT tokenizer {checkpoint}", lambda: AutoTokenizer.from_pretrained(source, revision=revision)
        )
        model = load_or_unavailable(
            f"BLEURT checkpoint {checkpoint}",
            lambda: AutoModelForSequenceClassification.from_pretrained(
                source, revision=revision, attn_implementation=ATTENTION
            ),
        )
        if model.config.num_labels != 1:
            raise MetricModelUnavailable(
                f"{checkpoint} is not a BLEURT regression model ({model.config.num_labels} labels, expected 1)"
            )
        positions = int(model.config.max_position_embeddings)
        bleurt_config = (
            json.loads((local / BLEURT_CONFIG).read_text()) if (local / BLEURT_CONFIG).is_file() else {}
        )
        if max_seq_length is None and "max_seq_length" in bleurt_config:
            max_seq_length = int(bleurt_config["max_seq_length"])
        if max_seq_length is None:
            max_seq_length = min(int(tokenizer.model_max_length), positions)
        if max_seq_length > positions:
            raise ValueError(f"BLEURT max_seq_length {max_seq_length} > the model's {positions} positions")
        torch_device = pick_device(device)
        model.to(torch_device).eval()
        return cls(tokenizer, model, max_seq_length, torch_device, checkpoint, bleurt_config.get("name"))

    def encode_pair(self, reference: str, candidate: str) -> tuple[list[int], list[int]]:
        """BLEURT's ``encode_example`` without the padding: input ids and segment ids."""
        ref = self.tokenizer.tokenize(reference)
        cand = self.tokenizer.tokenize(candidate)
        _truncate_pair(ref, cand, self.max_seq_length - 3)
        cls_token, sep_token = self.tokenizer.cls_token, self.tokenizer.sep_token
        tokens = [cls_token, *ref, sep_token, *cand, sep_token]
        segments = [0] * (len(ref) + 2) + [1] * (len(cand) + 1)
        return self.tokenizer.convert_tokens_to_ids(tokens), segments

    def score(
        self, references: Sequence[str], candidates: Sequence[str], batch_size: int = BATCH_SIZE
    ) -> list[float]:
        """One BLEURT score per (reference, candidate) pair, in order."""
        if len(references) != len(candidates):
            raise ValueError(f"{len(references)} references but {len(candidates)} candidates")
        scores: list[float] = []
        for start in range(0, len(candidates), batch_size):
            pairs = [
                self.encode_pair(r, c)
                for r, c in zip(
                    references[start : start + batch_size], candidates[start : start + batch_size]
                )
            ]
            length = max(len(ids) for ids, _ in pairs)
            input_ids = torch.full((len(pairs), length), self.tokenizer.pad_token_id, dtype=torch.long)
            segments = torch.zeros((len(pairs), length), dtype=torch.long)
            mask = torch.zeros((len(pairs), length), dtype=torch.long)
            for i, (ids, segs) in enumerate(pairs):
                input_ids[i, : len(ids)] = torch.tensor(ids)
                segments[i, : len(ids)] = torch.tensor(segs)
                mask[i, : len(ids)] = 1
            with torch.no_grad():
                logits = self.model(
                    input_ids=input_ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    token_type_ids=segments.to(self.device),
                ).logits
            scores.extend(logits[:, 0].float().cpu().tolist())
        return scores

    def corpus_score(
        self, references: Sequence[str], candidates: Sequence[str], batch_size: int = BATCH_SIZE
    ) -> float:
        """DART's value: the mean of the per-line scores."""
        return float(np.mean(self.score(references, candidates, batch_size)))


# --- TensorFlow BLEURT checkpoint -> transformers ---------------------------------------------------------------
_TF_LAYER = re.compile(r"^bert/encoder/layer_(\d+)/(.+)$")
_TF_LAYER_PARTS = {
    "attention/self/query": "attention.self.query",
    "attention/self/key": "attention.self.key",
    "attention/self/value": "attention.self.value",
    "attention/output/dense": "attention.output.dense",
    "attention/output/LayerNorm": "attention.output.LayerNorm",
    "intermediate/dense": "intermediate.dense",
    "output/dense": "output.dense",
    "output/LayerNorm": "output.LayerNorm",
}
_TF_FIXED = {
    "bert/embeddings/word_embeddings": ("bert.embeddings.word_embeddings.weight", False),
    "bert/embeddings/position_embeddings": ("bert.embeddings.position_embeddings.weight", False),
    "bert/embeddings/token_type_embeddings": ("bert.embeddings.token_type_embeddings.weight", False),
    "bert/embeddings/LayerNorm/gamma": ("bert.embeddings.LayerNorm.weight", False),
    "bert/embeddings/LayerNorm/beta": ("bert.embeddings.LayerNorm.bias", False),
    "bert/pooler/dense/kernel": ("bert.pooler.dense.weight", True),
    "bert/pooler/dense/bias": ("bert.pooler.dense.bias", False),
    "dense/kernel": ("classifier.weight", True),  # BLEURT's head: tf.layers.dense(pooled, 1)
    "dense/bias": ("classifier.bias", False),
}
_TF_LEAF = {
    "kernel": ("weight", True),
    "bias": ("bias", False),
    "gamma": ("weight", False),
    "beta": ("bias", False),
}


def tf_to_torch_name(name: str) -> tuple[str, bool] | None:
    """The ``BertForSequenceClassification`` parameter of a BLEURT TF variable and whether to transpose it;
    None for variables that are not weights (optimizer slots, ``global_step``)."""
    if name in _TF_FIXED:
        return _TF_FIXED[name]
    match = _TF_LAYER.match(name)
    if match is None:
        return None
    layer, rest = match.groups()
    module, _, leaf = rest.rpartition("/")
    if module not in _TF_LAYER_PARTS or leaf not in _TF_LEAF:
        return None
    param, transpose = _TF_LEAF[leaf]
    return f"bert.encoder.layer.{layer}.{_TF_LAYER_PARTS[module]}.{param}", transpose


def state_dict_from_tf(
    variables: Mapping[str, np.ndarray], expected: Sequence[str]
) -> dict[str, torch.Tensor]:
    """TF variables -> a state dict with exactly the ``expected`` keys (a missing weight is an error)."""
    state: dict[str, torch.Tensor] = {}
    for name, value in variables.items():
        target = tf_to_torch_name(name)
        if target is None:
            continue
        key, transpose = target
        array = np.asarray(value, dtype=np.float32)
        state[key] = torch.from_numpy(np.ascontiguousarray(array.T if transpose else array))
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ValueError(f"BLEURT checkpoint lacks {len(missing)} weights, e.g. {missing[:3]}")
    return {key: state[key] for key in expected}


def bert_config_from_tf(bert_config: Mapping[str, object]) -> BertConfig:
    """The TF ``bert_config.json`` as a one-output ``BertConfig`` (TF BERT's ``gelu`` is the tanh form)."""
    values = dict(bert_config)
    if values.get("hidden_act") == "gelu":
        values["hidden_act"] = "gelu_new"
    return BertConfig(**values, num_labels=1, problem_type="regression")


def convert_tf_checkpoint(tf_dir: str | Path, out_dir: str | Path) -> Path:
    """Convert a TensorFlow BLEURT checkpoint (SavedModel + ``bleurt_config.json``) for :class:`BleurtScorer`."""
    import tensorflow as tf  # only needed here, once per checkpoint

    tf_dir, out_dir = Path(tf_dir), Path(out_dir)
    bleurt_config = json.loads((tf_dir / BLEURT_CONFIG).read_text())
    if "sentence_piece_model" in bleurt_config and bleurt_config["sentence_piece_model"]:
        raise ValueError(f"{tf_dir}: SentencePiece (BLEURT-20 / RemBERT) checkpoints are not supported")
    config = bert_config_from_tf(json.loads((tf_dir / bleurt_config["bert_config_file"]).read_text()))
    reader = tf.train.load_checkpoint(str(tf_dir / "variables" / "variables"))
    variables = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    model = BertForSequenceClassification(config)
    model.load_state_dict(state_dict_from_tf(variables, list(model.state_dict())))
    vocab_lines = (tf_dir / bleurt_config["vocab_file"]).read_text(encoding="utf-8").split("\n")
    if vocab_lines and vocab_lines[-1] == "":
        vocab_lines.pop()
    vocab = {line.rstrip("\r"): i for i, line in enumerate(vocab_lines)}
    tokenizer = BertTokenizer(
        vocab=vocab,
        do_lower_case=bool(bleurt_config["do_lower_case"]),
        model_max_length=int(bleurt_config["max_seq_length"]),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    record = {**bleurt_config, "converted_from": str(tf_dir)}
    (out_dir / BLEURT_CONFIG).write_text(json.dumps(record, indent=1) + "\n")
    return out_dir
