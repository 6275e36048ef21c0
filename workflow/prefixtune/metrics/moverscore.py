"""MoverScore as DART's ``evaluation/moverscore.py`` computes it: AIPHES/emnlp19-moverscore ``moverscore_v2``
(PyPI ``moverscore==1.0.3``) ``word_mover_score(refs, hyps, idf_ref, idf_hyp, stop_words=[], n_gram=1,
remove_subwords=True)`` with ``distilbert-base-uncased``, reference 0 only, mean over instances.

Re-implemented on transformers 5 / CPU (the original hard-codes ``cuda:0`` and an old transformers API):

* tokens = ``[CLS]`` + WordPiece tokens (cut to ``model_max_length - 2``) + ``[SEP]``;
* idf of a token id = ``log((N + 1) / (df + 1))`` over the N texts of its own side (hypotheses, references);
  an unseen id gets ``log(N + 1)``. ``[CLS]``/``[SEP]`` occur in every text, so their weight is 0;
* embeddings = the model's last layer; subword pieces (``##``), single punctuation characters and stop words
  get weight 0 and a zero vector (``remove_subwords``/``n_gram`` are ignored by ``moverscore_v2`` itself);
* per pair: vectors L2-normalised, Euclidean distances, idf weights normalised to 1 on each side, exact EMD
  with flow (``pyemd`` ``emd_with_flow``, the C++ FastEMD backend ``moverscore_v2`` used), score =
  ``1 - sum(flow * distance)``. The layout (batches of 256, padded reference block then padded hypothesis
  block) is the original's, so even FastEMD's 1e-6 quantisation sees the same matrix.

Quirk kept: a side whose weights are all 0 (empty or punctuation-only text) moves no mass, so the pair
scores 1.0.
"""

from __future__ import annotations

import string
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from math import log

import numpy as np
import torch
from pyemd import emd_with_flow
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from prefixtune.metrics.model_common import load_encoder

DEFAULT_MODEL = "distilbert-base-uncased"
BATCH_SIZE = 256
_PUNCTUATION = frozenset(string.punctuation)

IdfDict = defaultdict[int, float]


def _safe_divide(numerator: np.ndarray, denominator: float) -> np.ndarray:
    return numerator / (denominator + 1e-30)


def pairwise_l2(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """Batched Euclidean distances ``[B, N, M]`` from the expanded square, clamped at 1e-30 before the root."""
    x1_sq = x1.pow(2).sum(dim=-1, keepdim=True)
    x2_sq = x2.pow(2).sum(dim=-1, keepdim=True)
    squared = torch.baddbmm(x2_sq.transpose(-2, -1), x1, x2.transpose(-2, -1), alpha=-2).add_(x1_sq)
    return squared.clamp_min_(1e-30).sqrt_()


@dataclass
class MoverScorer:
    """A MoverScore model: tokenizer + encoder whose last layer gives the token vectors."""

    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel
    device: torch.device
    source: str

    @classmethod
    def load(
        cls, model: str = DEFAULT_MODEL, *, revision: str | None = None, device: str | None = None
    ) -> MoverScorer:
        """Load from a local directory or hub id; :class:`MetricModelUnavailable` when it cannot be had."""
        tokenizer, encoder, torch_device = load_encoder("MoverScore", model, revision, device)
        return cls(tokenizer, encoder, torch_device, model)

    @property
    def max_tokens(self) -> int:
        """Word pieces kept per text (``tokenizer.max_len - 2`` in the original)."""
        limit = self.tokenizer.model_max_length
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if positions is not None and (limit is None or limit > positions):
            limit = positions
        return int(limit) - 2

    def tokens(self, text: str) -> list[str]:
        """``[CLS]`` + the text's word pieces (truncated) + ``[SEP]``."""
        pieces = self.tokenizer.tokenize(text)[: self.max_tokens]
        return [self.tokenizer.cls_token, *pieces, self.tokenizer.sep_token]

    def idf_dict(self, texts: Sequence[str]) -> IdfDict:
        """``get_idf_dict``: document frequencies of token ids (``[CLS]``/``[SEP]`` included) over ``texts``."""
        n_docs = len(texts)
        counts: dict[int, int] = defaultdict(int)
        for text in texts:
            for token_id in set(self.tokenizer.convert_tokens_to_ids(self.tokens(text))):
                counts[token_id] += 1
        idf: IdfDict = defaultdict(lambda: log((n_docs + 1) / 1))
        idf.update({token_id: log((n_docs + 1) / (c + 1)) for token_id, c in counts.items()})
        return idf

    def _embed(
        self, texts: Sequence[str], idf: IdfDict
    ) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
        """Last-layer vectors ``[B, L, D]`` of a padded batch, its idf weights ``[B, L]`` and the tokens."""
        tokens = [self.tokens(text) for text in texts]
        ids = [self.tokenizer.convert_tokens_to_ids(t) for t in tokens]
        length = max(len(row) for row in ids)
        pad_id = self.tokenizer.pad_token_id
        input_ids = torch.full((len(ids), length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), length), dtype=torch.long)
        weights = torch.zeros((len(ids), length), dtype=torch.float32)  # float32, as the original stores them
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
            weights[i, : len(row)] = torch.tensor([idf[token_id] for token_id in row])
        with torch.no_grad():
            out = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device))
        return out.last_hidden_state.float(), weights, tokens

    def sentence_scores(
        self,
        refs: Sequence[str],
        hyps: Sequence[str],
        idf_ref: IdfDict,
        idf_hyp: IdfDict,
        stop_words: Iterable[str] = (),
        batch_size: int = BATCH_SIZE,
    ) -> list[float]:
        """``word_mover_score``: one score per (reference, hypothesis) pair."""
        if len(refs) != len(hyps):
            raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
        stop = frozenset(stop_words)
        scores: list[float] = []
        for start in range(0, len(refs), batch_size):
            ref_emb, ref_idf, ref_tokens = self._embed(refs[start : start + batch_size], idf_ref)
            hyp_emb, hyp_idf, hyp_tokens = self._embed(hyps[start : start + batch_size], idf_hyp)
            for emb, weights, token_lists in ((ref_emb, ref_idf, ref_tokens), (hyp_emb, hyp_idf, hyp_tokens)):
                for i, row in enumerate(token_lists):
                    dropped = [k for k, w in enumerate(row) if w in stop or "##" in w or w in _PUNCTUATION]
                    emb[i, dropped, :] = 0
                    weights[i, dropped] = 0
            vectors = torch.cat([ref_emb, hyp_emb], dim=1)
            vectors = vectors / (torch.norm(vectors, dim=-1).unsqueeze(-1) + 1e-30)
            distances = pairwise_l2(vectors, vectors).double().cpu().numpy()
            n_ref = ref_idf.shape[1]
            for i in range(len(ref_tokens)):
                c1 = np.zeros(vectors.shape[1], dtype=np.float64)
                c2 = np.zeros(vectors.shape[1], dtype=np.float64)
                c1[:n_ref] = ref_idf[i].numpy()
                c2[n_ref:] = hyp_idf[i].numpy()
                c1 = _safe_divide(c1, float(np.sum(c1)))
                c2 = _safe_divide(c2, float(np.sum(c2)))
                dst = np.ascontiguousarray(distances[i])
                _, flow = emd_with_flow(c1, c2, dst, backend="cpp")
                scores.append(float(1 - np.sum(np.asarray(flow, dtype=np.float32) * dst)))
        return scores

    def corpus_score(self, refs: Sequence[str], hyps: Sequence[str], batch_size: int = BATCH_SIZE) -> float:
        """DART's MoverScore: idf from each side's own corpus, no stop words, mean over the pairs."""
        scores = self.sentence_scores(refs, hyps, self.idf_dict(refs), self.idf_dict(hyps), (), batch_size)
        return float(np.mean(scores))
