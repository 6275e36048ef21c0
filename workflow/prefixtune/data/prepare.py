"""Raw files -> ``train.jsonl`` (Pairs), ``dev.jsonl`` / ``test.jsonl`` (EvalItems), official reference files.

Reference layouts are the ones the official scorers read:
- E2E ``{split}.refs.txt``: each item's references on consecutive lines, one blank line between items;
- WebNLG ``{split}.refs.xml``: the challenge XML (a copy of a raw XML file, or written from the JSON);
- DART ``{split}.refs/reference{0,1,2}.lex``: the official all-delex-reference form;
- XSUM ``{split}.refs.txt``: one summary per line (rouge-score's input).
The raw format is detected from the file suffix (.txt src1, .csv, .xml, .json; XSUM .tar.gz, .source, .jsonl).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from prefixtune.data.dart import dart_items, dart_pairs, read_dart, write_dart_refs
from prefixtune.data.e2e import e2e_items, read_e2e, write_e2e_refs
from prefixtune.data.errors import DataError
from prefixtune.data.records import EvalItem, Pair, write_jsonl
from prefixtune.data.webnlg import read_webnlg, webnlg_items, webnlg_pairs, write_webnlg_xml
from prefixtune.data.xsum import read_xsum, write_refs, xsum_items, xsum_pairs
from prefixtune.provenance import sha256_file, write_json_atomic

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
DATASETS = ("e2e", "webnlg", "dart", "xsum")
DEFAULT_OPTIONS: dict[str, Any] = {"e2e_format": "src1", "webnlg_first_entry_bug": True}
E2E_SUFFIX = {"src1": ".txt", "csv": ".csv"}


def _options(given: dict[str, Any]) -> dict[str, Any]:
    if unknown := sorted(set(given) - set(DEFAULT_OPTIONS)):
        raise ValueError(f"unknown prepare option(s) {unknown}; expected some of {sorted(DEFAULT_OPTIONS)}")
    options = {**DEFAULT_OPTIONS, **given}
    if options["e2e_format"] not in E2E_SUFFIX:
        raise ValueError(f"e2e_format must be one of {sorted(E2E_SUFFIX)}, got {options['e2e_format']!r}")
    return options


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.")
    try:
        with open(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out)
        Path(tmp).replace(dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _e2e(raw: dict[str, Path], out_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    suffix = E2E_SUFFIX[options["e2e_format"]]
    for path in raw.values():
        if path.suffix.lower() != suffix:
            raise DataError(
                path, "file name", f"expected a {suffix} file for e2e_format={options['e2e_format']!r}"
            )
    train = read_e2e(raw["train"])
    evals = {split: e2e_items(read_e2e(raw[split])) for split in ("dev", "test")}
    for split, items in evals.items():
        write_e2e_refs(out_dir / f"{split}.refs.txt", items)
    return _write(out_dir, train, evals)


def _webnlg(raw: dict[str, Path], out_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    train = webnlg_pairs(read_webnlg(raw["train"]))
    evals = {}
    for split in ("dev", "test"):
        entries = read_webnlg(raw[split])
        evals[split] = webnlg_items(entries, bool(options["webnlg_first_entry_bug"]))
        refs = out_dir / f"{split}.refs.xml"
        if raw[split].suffix.lower() == ".xml":
            _copy_atomic(raw[split], refs)
        else:
            write_webnlg_xml(refs, entries)
    return _write(out_dir, train, evals)


def _dart(raw: dict[str, Path], out_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    train = dart_pairs(read_dart(raw["train"]))
    evals = {split: dart_items(read_dart(raw[split])) for split in ("dev", "test")}
    for split, items in evals.items():
        write_dart_refs(out_dir / f"{split}.refs", items)
    return _write(out_dir, train, evals)


def _xsum(raw: dict[str, Path], out_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    train = xsum_pairs(read_xsum(raw["train"], "train"))
    evals = {split: xsum_items(read_xsum(raw[split], split)) for split in ("dev", "test")}
    for split, items in evals.items():
        write_refs(out_dir / f"{split}.refs.txt", items)
    return _write(out_dir, train, evals)


def _write(out_dir: Path, train: list[Pair], evals: dict[str, list[EvalItem]]) -> dict[str, Any]:
    write_jsonl(out_dir / "train.jsonl", train)
    counts: dict[str, Any] = {"train": {"pairs": len(train)}}
    for split, items in evals.items():
        write_jsonl(out_dir / f"{split}.jsonl", items)
        counts[split] = {
            "items": len(items),
            "distinct_keys": len({i.key for i in items}),
            "references": sum(len(i.references) for i in items),
        }
    return counts


def verify_recorded_sha256(path: Path) -> None:
    """A raw file must still have the sha256 its download recorded (``<file>.sha256``, written for every
    download; the pin where the config has none): a file changed or cut since is not parsed."""
    record = path.with_name(path.name + ".sha256")
    if not record.is_file():
        return
    expected = record.read_text(encoding="utf-8").split()[0]
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            path,
            "file",
            f"sha256 {actual} differs from the {expected} recorded at download ({record}); "
            "delete both files to download again",
        )


def prepare(dataset: str, raw_files: dict[str, Path], out_dir: Path, options: dict[str, Any]) -> None:
    """Write ``out_dir/{train,dev,test}.jsonl``, the reference files and ``prepare.json`` (inputs, counts)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    if sorted(raw_files) != sorted(SPLITS):
        raise ValueError(f"raw_files must map exactly {SPLITS} to paths, got {sorted(raw_files)}")
    raw = {split: Path(raw_files[split]) for split in SPLITS}
    for split, path in raw.items():
        if not path.is_file():
            raise DataError(path, "file", f"the {split} file of {dataset} does not exist")
        verify_recorded_sha256(path)
    resolved = _options(options)
    out_dir = Path(out_dir)
    # everything is written to a sibling folder that replaces out_dir only once complete: a reader that fails
    # on the test file leaves no train/dev files that a later rule would trust
    tmp_dir = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    try:
        writer = {"e2e": _e2e, "webnlg": _webnlg, "dart": _dart, "xsum": _xsum}[dataset]
        counts = writer(raw, tmp_dir, resolved)
        manifest = {
            "dataset": dataset,
            "options": resolved,
            "raw_files": {split: {"path": str(p), "sha256": sha256_file(p)} for split, p in raw.items()},
            "counts": counts,
        }
        write_json_atomic(tmp_dir / "prepare.json", manifest)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp_dir.replace(out_dir)
    log.info("prepared %s: %s", dataset, counts)
