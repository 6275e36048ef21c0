"""BERTScore as DART's ``bert-score -r ref0 ref1 ref2 -c hyp --lang en`` computes it (Tiiiger/bert_score):
``roberta-large``, the output of layer 17, no idf, no baseline rescaling; the reported value is the mean F1.

Re-implemented on transformers 5 (bert-score itself breaks there: no ``build_inputs_with_special_tokens``, and
``add_prefix_space`` passed to ``encode`` is ignored):

* a text is stripped; an empty one is ``[CLS] [SEP]``; RoBERTa/GPT-2 (byte-level BPE) tokenizers encode it with
  a prefix space (``add_prefix_space=True``, what bert-score did with the slow tokenizer of its time, <= 0.3.9;
  the 0.3.10+ CLI switched to the fast tokenizer, without the space); truncation at ``model_max_length``;
* token vectors = hidden state ``layer`` (0 = embeddings); weights 1, 0 for ``[CLS]``/``[SEP]``;
* greedy matching on cosine similarity: P = weighted mean over candidate tokens of the best reference token,
  R the converse, F = 2PR/(P+R); pairs are matched in batches of 64 padded with zero similarity (a padded
  position can win the max when every true similarity is negative, as in bert-score); an empty candidate or
  reference (2 tokens) gets P = R = 0 and F = 0 (NaN -> 0);
* several references: the pairs are flattened (candidate repeated per reference) and P, R, F each take their
  maximum over the candidate's references. Blank reference lines count as empty references (they score 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import (
    GPT2Tokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RobertaTokenizer,
)

from prefixtune.metrics.model_common import load_encoder

DEFAULT_MODEL = "roberta-large"
DEFAULT_LAYER = 17  # bert-score's model2layers["roberta-large"]
BATCH_SIZE = 64


def _truncate_layers(model: PreTrainedModel, layer: int) -> None:
    """Drop the blocks above ``layer`` (as bert-score does) where the layout is known; fail when too few."""
    for owner_name in ("encoder", "transformer"):
        owner = getattr(model, owner_name, None)
        blocks = getattr(owner, "layer", None)
        if isinstance(blocks, torch.nn.ModuleList):
            if not 0 <= layer <= len(blocks):
                raise ValueError(f"BERTScore layer {layer}: the model has {len(blocks)} layers")
            owner.layer = torch.nn.ModuleList(list(blocks)[:layer])
            return
    n_layers = getattr(model.config, "num_hidden_layers", None)
    if n_layers is not None and not 0 <= layer <= n_layers:
        raise ValueError(f"BERTScore layer {layer}: the model has {n_layers} layers")


@dataclass
class BertScorer:
    """A BERTScore model: tokenizer + encoder read at one layer."""

    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel
    layer: int
    device: torch.device
    add_prefix_space: bool
    source: str

    @classmethod
    def load(
        cls,
        model: str = DEFAULT_MODEL,
        layer: int = DEFAULT_LAYER,
        *,
        revision: str | None = None,
        device: str | None = None,
        add_prefix_space: bool | None = None,
    ) -> BertScorer:
        """Load from a local directory or hub id; ``add_prefix_space`` defaults to True for byte-level BPE."""
        tokenizer, encoder, torch_device = load_encoder("BERTScore", model, revision, device)
        _truncate_layers(encoder, layer)
        if add_prefix_space is None:
            add_prefix_space = isinstance(tokenizer, (GPT2Tokenizer, RobertaTokenizer))
        return cls(tokenizer, encoder, layer, torch_device, add_prefix_space, model)

    def encode(self, text: str) -> list[int]:
        """bert-score's ``sent_encode``: token ids with the special tokens."""
        text = text.strip()
        if not text:
            return [self.tokenizer.cls_token_id, self.tokenizer.sep_token_id]
        if self.add_prefix_space:
            text = " " + text
        limit = self.tokenizer.model_max_length
        bounded = limit is not None and limit < 10**6  # some tokenizers declare no limit (1e30)
        encoded = self.tokenizer(
            text, add_special_tokens=True, truncation=bounded, max_length=limit if bounded else None
        )
        return encoded["input_ids"]

    def embed(
        self, texts: Sequence[str], batch_size: int = BATCH_SIZE, encoded: dict[str, list[int]] | None = None
    ) -> dict[str, torch.Tensor]:
        """Unit-length layer-``layer`` vectors ``[L, D]`` of every distinct text (batched by length)."""
        if encoded is None:
            encoded = {text: self.encode(text) for text in dict.fromkeys(texts)}
        order = sorted(encoded, key=lambda t: len(encoded[t]), reverse=True)
        pad_id = self.tokenizer.pad_token_id
        vectors: dict[str, torch.Tensor] = {}
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            length = max(len(encoded[t]) for t in batch)
            input_ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), length), dtype=torch.long)
            for i, text in enumerate(batch):
                input_ids[i, : len(encoded[text])] = torch.tensor(encoded[text])
                mask[i, : len(encoded[text])] = 1
            with torch.no_grad():
                out = self.model(
                    input_ids=input_ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    output_hidden_states=True,
                )
            hidden = out.hidden_states[self.layer].float().cpu()
            for i, text in enumerate(batch):
                emb = hidden[i, : len(encoded[text])]
                vectors[text] = emb / torch.norm(emb, dim=-1, keepdim=True)
        return vectors

    def _weights(self, ids: list[int]) -> torch.Tensor:
        """No idf: weight 1 per token, 0 for ``[CLS]``/``[SEP]`` (by id, as bert-score's idf dict)."""
        special = {self.tokenizer.cls_token_id, self.tokenizer.sep_token_id}
        return torch.tensor([0.0 if i in special else 1.0 for i in ids])

    def pair_scores(
        self, cands: Sequence[str], refs: Sequence[str], batch_size: int = BATCH_SIZE
    ) -> torch.Tensor:
        """``[N, 3]`` (P, R, F) of each (candidate, reference) pair, matched in padded batches."""
        if len(cands) != len(refs):
            raise ValueError(f"{len(cands)} candidates but {len(refs)} references")
        encoded = {text: self.encode(text) for text in dict.fromkeys([*refs, *cands])}
        vectors = self.embed(list(encoded), batch_size, encoded)
        weights = {text: self._weights(ids) for text, ids in encoded.items()}
        rows = []
        for start in range(0, len(cands), batch_size):
            ref_batch, cand_batch = refs[start : start + batch_size], cands[start : start + batch_size]
            pad = torch.nn.utils.rnn.pad_sequence
            ref_emb = pad([vectors[t] for t in ref_batch], batch_first=True)  # zero rows: similarity 0
            cand_emb = pad([vectors[t] for t in cand_batch], batch_first=True)
            ref_w = pad([weights[t] for t in ref_batch], batch_first=True)
            cand_w = pad([weights[t] for t in cand_batch], batch_first=True)
            sim = torch.bmm(cand_emb, ref_emb.transpose(1, 2))
            precision = (sim.max(dim=2).values * (cand_w / cand_w.sum(dim=1, keepdim=True))).sum(dim=1)
            recall = (sim.max(dim=1).values * (ref_w / ref_w.sum(dim=1, keepdim=True))).sum(dim=1)
            f1 = 2 * precision * recall / (precision + recall)
            empty = torch.tensor(
                [len(vectors[c]) == 2 or len(vectors[r]) == 2 for c, r in zip(cand_batch, ref_batch)]
            )
            precision = precision.masked_fill(empty, 0.0)
            recall = recall.masked_fill(empty, 0.0)
            f1 = f1.masked_fill(torch.isnan(f1), 0.0)
            rows.append(torch.stack((precision, recall, f1), dim=-1))
        return torch.cat(rows, dim=0) if rows else torch.zeros((0, 3))

    def score(
        self, cands: Sequence[str], refs: Sequence[Sequence[str]], batch_size: int = BATCH_SIZE
    ) -> torch.Tensor:
        """``[N, 3]`` (P, R, F) per candidate: the element-wise maximum over its references."""
        if len(cands) != len(refs):
            raise ValueError(f"{len(cands)} candidates but {len(refs)} reference groups")
        if any(len(group) == 0 for group in refs):
            raise ValueError("every candidate needs at least one reference (blank lines count as references)")
        flat_cands = [cand for cand, group in zip(cands, refs) for _ in group]
        flat_refs = [ref for group in refs for ref in group]
        flat = self.pair_scores(flat_cands, flat_refs, batch_size)
        best, start = [], 0
        for group in refs:
            best.append(flat[start : start + len(group)].max(dim=0).values)
            start += len(group)
        return torch.stack(best, dim=0) if best else torch.zeros((0, 3))

    def corpus_f1(
        self, cands: Sequence[str], refs: Sequence[Sequence[str]], batch_size: int = BATCH_SIZE
    ) -> float:
        """The value ``bert-score`` prints as F1: the mean over candidates."""
        return float(self.score(cands, refs, batch_size)[:, 2].mean())
