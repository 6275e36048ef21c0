"""Decode a trained run on an evaluation split, in the order the official scorer expects.

Settings follow the authors' ``gen.py``/``run_generation.py`` (official_code.md §5.1):
prompt ``" " + SRC + " <|endoftext|>"``, beam 5, at most 100 new tokens, "\\n" and "\\n\\n" banned,
stop at ``<|endoftext|>``, transformers-3.2 detokenization clean-up, ``Error`` for an empty output.
Identical sources (the item ``key``) are decoded once and mapped back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from prefixtune.data.linearize import gpt2_prompt
from prefixtune.data.records import EvalItem, read_jsonl
from prefixtune.decoding.beam_cache import BeamSharedCrossAttentionCache
from prefixtune.decoding.beam_search import BeamSettings, beam_search
from prefixtune.decoding.beam_search_batched import beam_search_batch
from prefixtune.decoding.settings import method_decoding
from prefixtune.methods import build_method
from prefixtune.methods.base import TuningMethod
from prefixtune.models.detokenize import clean_up_tokenization
from prefixtune.models.loading import is_seq2seq, load_causal_lm, load_seq2seq_lm, load_tokenizer, pick_device
from prefixtune.provenance import git_commit, package_versions, write_json_atomic, write_text_atomic
from prefixtune.training.seq2seq import DEFAULT_MAX_SOURCE, generate_kwargs

log = logging.getLogger(__name__)
EMPTY_OUTPUT = "Error"


def postprocess(
    tokenizer: PreTrainedTokenizerBase, sequence: list[int], prompt: list[int], cleanup: bool
) -> str:
    """The authors' text extraction: decode all, drop the decoded prompt's characters, cut at EOS, strip."""

    def decode(ids: list[int]) -> str:
        text = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return clean_up_tokenization(text) if cleanup else text

    text = decode(sequence)[len(decode(prompt)) :]
    cut = text.find(tokenizer.eos_token)
    if cut >= 0:
        text = text[:cut]
    return text.strip() or EMPTY_OUTPUT


def bad_words_ids(tokenizer: PreTrainedTokenizerBase, banned: list[str]) -> list[list[int]]:
    return [tokenizer.encode(word, add_special_tokens=False) for word in banned]


def beam_settings(decoding: dict[str, Any], tokenizer: PreTrainedTokenizerBase) -> BeamSettings:
    return BeamSettings(
        num_beams=int(decoding["num_beams"]),
        max_new_tokens=int(decoding["max_new_tokens"]),
        min_length=int(decoding.get("min_length", 0)),
        length_penalty=float(decoding.get("length_penalty", 1.0)),
        length_basis=decoding.get("length_basis", "prompt_plus_generated"),
        early_stopping=bool(decoding.get("early_stopping", False)),
        bad_words_ids=bad_words_ids(tokenizer, decoding.get("banned_strings", [])),
    )


def load_for_decoding(
    spec: dict[str, Any], base_model_dir: Path, trained_dir: Path, device: torch.device
) -> tuple[PreTrainedModel, TuningMethod, PreTrainedTokenizerBase]:
    """Model + method of a finished run: FINETUNE reloads its own weights, PREFIX the base LM plus its prefix."""
    tokenizer = load_tokenizer(base_model_dir)
    load = load_seq2seq_lm if is_seq2seq(base_model_dir) else load_causal_lm
    if spec["method"] == "finetune":
        model = load(trained_dir, tokenizer, device)
        method = build_method("finetune", model, spec["method_settings"], tokenizer)
    else:
        model = load(base_model_dir, tokenizer, device)
        method = build_method(spec["method"], model, spec["method_settings"], tokenizer)
        method.load(trained_dir)  # type: ignore[attr-defined]
    method.eval()
    return model, method, tokenizer


@contextmanager
def decoding_attention(model: PreTrainedModel, name: str) -> Iterator[None]:
    """GPT-2 attention ``name`` (``decoding.attention``) for the calls inside, then the model's own again.

    ``eager`` is transformers 3.2's algorithm, which decoded the paper's outputs (matmul, scale, mask, softmax,
    matmul; 3.2 divided by sqrt(64) where 5 multiplies by 1/8: the same for GPT-2's heads). On CPU it is a little
    faster than sdpa in batches and slower at batch 1 (``make bench``).
    """
    previous = model.config._attn_implementation
    if name not in ("eager", "sdpa"):
        raise ValueError(f"decoding.attention {name!r}; expected 'eager' or 'sdpa'")
    model.set_attn_implementation(name)
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


def prompt_text(method: TuningMethod, source: str) -> str:
    """The authors' prompt ``" SRC <|endoftext|>"``, behind the method's prepended word if it has one."""
    word = method.text_prepended()
    return (" " + word if word else "") + gpt2_prompt(source)


def describe(
    method: TuningMethod,
    tokenizer: PreTrainedTokenizerBase,
    keys: list[str],
    source_of: dict[str, str],
    decoding: dict[str, Any],
    items_path: Path,
    device: torch.device,
) -> dict[str, str]:
    """Table-to-text: the authors' beam search over distinct sources, one at a time (``decoding.batch_size`` 1)
    or in batches that give the same outputs (left padding, positions as at batch 1; shortest prompts first)."""
    settings = beam_settings(decoding, tokenizer)
    prompts = {}
    for key in keys:
        prompt = tokenizer.encode(prompt_text(method, source_of[key]), add_special_tokens=False)
        if len(prompt) + settings.max_new_tokens > method.max_tokens():
            raise ValueError(
                f"{items_path}: item {key!r}: {len(prompt)} prompt tokens + max_new_tokens "
                f"{settings.max_new_tokens} exceed the {method.max_tokens()} positions the model has left"
            )
        prompts[key] = prompt
    with decoding_attention(method.model, str(decoding.get("attention", "eager"))):
        return _describe(method, tokenizer, keys, prompts, settings, decoding, items_path, device)


def _describe(
    method: TuningMethod,
    tokenizer: PreTrainedTokenizerBase,
    keys: list[str],
    prompts: dict[str, list[int]],
    settings: BeamSettings,
    decoding: dict[str, Any],
    items_path: Path,
    device: torch.device,
) -> dict[str, str]:
    cleanup = bool(decoding.get("cleanup_spaces", True))
    batch_size = int(decoding.get("batch_size", 1))
    outputs: dict[str, str] = {}
    if batch_size > 1 and method.batched_decoding():
        order = sorted(keys, key=lambda k: len(prompts[k]))  # similar lengths together: less padding
        for start in tqdm(range(0, len(order), batch_size), desc=f"decode {items_path.name}", mininterval=10):
            chunk = order[start : start + batch_size]
            with torch.no_grad():
                past = method.past_key_values(len(chunk))
            best = beam_search_batch(
                method.model, [prompts[k] for k in chunk], tokenizer.eos_token_id, settings, past
            )
            for key, sequence in zip(chunk, best, strict=True):
                outputs[key] = postprocess(tokenizer, sequence, prompts[key], cleanup)
        return outputs
    for key in tqdm(keys, desc=f"decode {items_path.name}", mininterval=10):
        prompt = prompts[key]
        with torch.no_grad():
            fed, past = method.decoding_inputs(torch.tensor([prompt], device=device))
        best = beam_search(method.model, fed, tokenizer.eos_token_id, settings, past)
        outputs[key] = postprocess(tokenizer, best.tolist(), fed[0].tolist(), cleanup)
    return outputs


def summarize(
    method: TuningMethod,
    tokenizer: PreTrainedTokenizerBase,
    sources: list[str],
    decoding: dict[str, Any],
    max_source: int,
    device: torch.device,
) -> list[str]:
    """XSUM: ``generate`` on batches of sources (official_code.md §5.2), decoded without special tokens; the
    sources are batched shortest first (less padding), the summaries returned in the sources' order.
    ``decoding``: the run's resolved settings (those of its method kind, :func:`method_decoding`)."""
    kwargs = generate_kwargs(decoding, tokenizer)
    batch_size = int(decoding.get("batch_size", 8))
    cleanup = bool(decoding.get("cleanup_spaces", True))
    share = bool(decoding.get("beams_share_source", True))  # BART PREFIX only
    lengths = [len(ids) for ids in tokenizer(sources, truncation=True, max_length=max_source)["input_ids"]]
    order = sorted(range(len(sources)), key=lambda i: lengths[i])
    texts: dict[int, str] = {}
    for start in tqdm(range(0, len(sources), batch_size), desc="summarize", mininterval=10):
        chunk = order[start : start + batch_size]
        batch = tokenizer(
            [sources[i] for i in chunk],
            truncation=True,
            max_length=max_source,
            padding=True,
            return_tensors="pt",
        ).to(device)
        with torch.no_grad():
            # beam search with the encoder's keys and values kept in place (not copied per step): same outputs
            cache = BeamSharedCrossAttentionCache() if kwargs["num_beams"] > 1 else None
            out = method.generate(
                batch["input_ids"],
                batch["attention_mask"],
                beams_share_source=share,
                past_key_values=cache,
                **kwargs,
            )
        decoded = tokenizer.batch_decode(out, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        for i, text in zip(chunk, decoded, strict=True):
            texts[i] = (clean_up_tokenization(text) if cleanup else text).strip()
    return [texts[i] for i in range(len(sources))]


def decode_split(
    spec: dict[str, Any],
    items_path: Path,
    base_model_dir: Path,
    trained_dir: Path,
    out_path: Path,
    decoding: dict[str, Any],
    limit: int | None = None,
) -> dict[str, Any]:
    """Write one output line per item of ``items_path`` to ``out_path``; returns the decode record.

    ``decoding``: the run's settings, or its dataset's config entry (XSUM: the run's method kind picks its
    ``generate`` settings); the record holds the resolved settings and, for BART, the ``generate`` arguments."""
    started = time.time()
    decoding = method_decoding(decoding, spec["method"])
    device = pick_device()
    model, method, tokenizer = load_for_decoding(spec, base_model_dir, trained_dir, device)
    items = read_jsonl(items_path, EvalItem)[:limit]
    distinct = list(dict.fromkeys(item.key for item in items))
    source_of = {item.key: item.source for item in items}
    if model.config.is_encoder_decoder:
        max_source = int(spec["hparams"].get("max_source_tokens", DEFAULT_MAX_SOURCE))
        texts = summarize(method, tokenizer, [source_of[k] for k in distinct], decoding, max_source, device)
        outputs = dict(zip(distinct, texts, strict=True))
    else:
        outputs = describe(method, tokenizer, distinct, source_of, decoding, items_path, device)
    write_text_atomic(out_path, "".join(outputs[item.key] + "\n" for item in items))
    record = {
        "run_id": spec["run_id"],
        "items": str(items_path),
        "n_items": len(items),
        "n_distinct_sources": len(distinct),
        "decoding": decoding,
        **({"generate": generate_kwargs(decoding, tokenizer)} if model.config.is_encoder_decoder else {}),
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "versions": package_versions(),
        "git_commit": git_commit(),
        "wall_time_s": round(time.time() - started, 2),
    }
    write_json_atomic(out_path.with_suffix(".json"), record)
    log.info("decoded %d items (%d distinct) in %.1fs", len(items), len(distinct), record["wall_time_s"])
    return record


def load_spec(path_or_json: str) -> dict[str, Any]:
    text = Path(path_or_json).read_text() if Path(path_or_json).is_file() else path_or_json
    return json.loads(text)
