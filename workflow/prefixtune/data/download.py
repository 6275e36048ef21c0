"""Checksummed downloads of the official raw files and of hub models."""

from __future__ import annotations

import logging
import shutil
import tempfile
import urllib.request
from pathlib import Path

from tqdm import tqdm

from prefixtune.provenance import sha256_file

log = logging.getLogger(__name__)


def download(url: str, out: Path, sha256: str | None) -> str:
    """Fetch ``url`` to ``out`` via a temp file; verify ``sha256`` when given; returns the file's sha256.

    Where the config has no checksum (the files we could not fetch when writing it), the hash is logged and
    recorded next to the file (``<out>.sha256``) so that later runs and the provenance can pin it.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp_path, "wb") as handle:
            total = int(response.headers.get("Content-Length") or 0) or None
            received = 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=out.name, mininterval=5) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    handle.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise ValueError(
                f"{url} -> {out}: truncated download, {received} of {total} bytes; nothing was kept, retry"
            )
        digest = sha256_file(tmp_path)
        if sha256 and digest != sha256.lower():
            raise ValueError(
                f"{url} -> {out}: sha256 mismatch: expected {sha256} (config), got {digest}; the download was "
                "deleted (a truncated or changed file; fix the URL or the checksum in the config)"
            )
        tmp_path.replace(out)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    if not sha256:
        log.warning("%s has no checksum in the config; recorded sha256 %s", url, digest)
    out.with_name(out.name + ".sha256").write_text(f"{digest}  {out.name}\n")
    return digest


def download_hub_model(hub_id: str, revision: str | None, out_dir: Path) -> None:
    """Save a hub model and tokenizer with ``save_pretrained`` so the pipeline loads every model from a folder.

    GPT-2 as a causal LM, BART (``facebook/bart-large``) as a seq2seq LM, told apart by the hub config."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    seq2seq = AutoConfig.from_pretrained(hub_id, revision=revision).is_encoder_decoder
    AutoTokenizer.from_pretrained(hub_id, revision=revision).save_pretrained(tmp)
    model_class = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    model_class.from_pretrained(hub_id, revision=revision).save_pretrained(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.replace(out_dir)
