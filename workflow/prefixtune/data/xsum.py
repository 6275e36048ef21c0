"""XSUM in the layouts the authors and users have (official_code.md §1.5).

- ``legacy``: the Hugging Face seq2seq tarball the author used (``xsum.tar.gz``: ``xsum/{train,val,test}.{source,
  target}``, one document / summary per line), read from the tarball or from its extracted ``.source`` files (the
  ``.target`` file sits next to each);
- ``jsonl``: the hub dataset ``EdinburghNLP/xsum`` exported with ``export_hub_xsum`` (``document``, ``summary``,
  ``id``), whose ids are the official split's (``XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json``).
Legacy lines are kept exactly as given (the authors fed them raw); hub documents, whose sentences are separated
by newlines, are whitespace-normalised to one line, as the legacy files are. Truncation to tokens happens when the
trainer encodes them.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from prefixtune.data.errors import DataError, read_json, read_utf8
from prefixtune.data.records import EvalItem, Pair

LEGACY_SPLIT = {"train": "train", "dev": "val", "test": "test"}  # our split name -> the tarball's
HUB_SPLIT = {"train": "train", "dev": "validation", "test": "test"}


@dataclass
class Article:
    id: str
    document: str
    summary: str


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _pair_up(documents: list[str], summaries: list[str], source: str, target: str) -> list[Article]:
    if len(documents) != len(summaries):
        raise DataError(
            Path(source),
            "line count",
            f"{len(documents)} documents but {target} has {len(summaries)} summaries",
        )
    articles = []
    for number, (document, summary) in enumerate(zip(documents, summaries, strict=True), start=1):
        if not document.strip():
            raise DataError(Path(source), f"line {number}", "a non-empty document")
        if not summary.strip():
            raise DataError(Path(target), f"line {number}", "a non-empty summary")
        articles.append(Article(str(number), document, summary))
    return articles


def read_legacy_files(source_path: Path) -> list[Article]:
    """``<split>.source`` and the ``<split>.target`` beside it; ids are line numbers."""
    target_path = source_path.with_suffix(".target")
    if not target_path.is_file():
        raise DataError(target_path, "file", f"the summaries of {source_path.name} (one per line)")
    documents, summaries = _lines(read_utf8(source_path)), _lines(read_utf8(target_path))
    return _pair_up(documents, summaries, str(source_path), str(target_path))


def read_legacy_tarball(tar_path: Path, split: str) -> list[Article]:
    """One split (``train``/``dev``/``test``) straight from ``xsum.tar.gz``."""
    name = LEGACY_SPLIT[split]
    try:
        with tarfile.open(tar_path) as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            texts = {}
            for suffix in ("source", "target"):
                member = members.get(f"{name}.{suffix}")
                if member is None:
                    raise DataError(
                        tar_path, f"member {name}.{suffix}", "the legacy layout xsum/{train,val,test}.*"
                    )
                handle = tar.extractfile(member)
                assert handle is not None
                texts[suffix] = handle.read().decode("utf-8")
    except (tarfile.TarError, EOFError) as err:
        raise DataError(tar_path, "archive", f"a readable .tar.gz ({err})") from err
    where = f"{tar_path}:{name}"
    return _pair_up(_lines(texts["source"]), _lines(texts["target"]), f"{where}.source", f"{where}.target")


def read_hub_jsonl(path: Path) -> list[Article]:
    """Lines of ``{"id", "document", "summary"}`` as written by ``export_hub_xsum``."""
    articles = []
    for number, line in enumerate(_lines(read_utf8(path)), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(path, f"line {number}", f"a JSON object ({err.msg})") from err
        if not isinstance(record, dict) or not all(
            isinstance(record.get(k), str) for k in ("id", "document", "summary")
        ):
            raise DataError(
                path, f"line {number}", 'an object with string fields "id", "document", "summary"'
            )
        document, summary = normalise_space(record["document"]), record["summary"].strip()
        if not document or not summary:
            raise DataError(path, f"line {number}", "a non-empty document and summary")
        articles.append(Article(record["id"], document, summary))
    return articles


def normalise_space(text: str) -> str:
    """Runs of whitespace (the hub's newlines between sentences included) become one space."""
    return " ".join(text.split())


def read_xsum(path: Path, split: str) -> list[Article]:
    """Any supported layout, told apart by the file name."""
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz")):
        return read_legacy_tarball(path, split)
    if name.endswith(".source"):
        return read_legacy_files(path)
    if name.endswith(".jsonl"):
        return read_hub_jsonl(path)
    raise DataError(path, "file name", "an xsum .tar.gz, a <split>.source file or a hub .jsonl export")


def read_official_split(split_ids_path: Path) -> dict[str, list[str]]:
    """``XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json``: ``train`` / ``validation`` / ``test`` -> BBC ids."""
    official = read_json(split_ids_path)
    if not isinstance(official, dict) or not all(
        isinstance(official.get(key), list) and all(isinstance(i, str) for i in official[key])
        for key in HUB_SPLIT.values()
    ):
        raise DataError(split_ids_path, "top level", '{"train", "validation", "test"}: lists of id strings')
    return {key: official[key] for key in HUB_SPLIT.values()}


def check_official_split(articles: list[Article], split: str, split_ids_path: Path) -> dict[str, int]:
    """Counts of the split's ids against the official split file (hub exports carry BBC ids)."""
    expected = set(read_official_split(split_ids_path)[HUB_SPLIT[split]])
    ids = {a.id for a in articles}
    return {"official": len(expected), "present": len(ids & expected), "foreign": len(ids - expected)}


def assign_official_split(
    articles: list[Article], split_ids_path: Path
) -> tuple[dict[str, list[Article]], dict[str, int]]:
    """Sort articles (any ids, e.g. all BBC articles in one list) into ``train`` / ``dev`` / ``test`` by the
    official ids, keeping their order; the counts say how many of each split were found and how many articles
    belong to none."""
    official = read_official_split(split_ids_path)
    split_of = {i: split for split, hub_split in HUB_SPLIT.items() for i in official[hub_split]}
    splits: dict[str, list[Article]] = {split: [] for split in HUB_SPLIT}
    unassigned = 0
    for article in articles:
        if article.id in split_of:
            splits[split_of[article.id]].append(article)
        else:
            unassigned += 1
    counts = {f"{split}_official": len(official[hub]) for split, hub in HUB_SPLIT.items()}
    counts |= {f"{split}_found": len(found) for split, found in splits.items()}
    counts["unassigned"] = unassigned
    return splits, counts


def xsum_pairs(articles: list[Article]) -> list[Pair]:
    return [Pair(a.document, a.summary) for a in articles]


def xsum_items(articles: list[Article]) -> list[EvalItem]:
    return [EvalItem(id=a.id, source=a.document, references=[a.summary], key=a.id) for a in articles]


def write_refs(path: Path, items: list[EvalItem]) -> None:
    """One reference per line, in item order (the ROUGE scorer's input)."""
    from prefixtune.provenance import write_text_atomic

    write_text_atomic(path, "".join(item.references[0] + "\n" for item in items))


def export_hub_xsum(
    out_dir: Path, name: str = "EdinburghNLP/xsum", revision: str | None = None
) -> dict[str, Path]:
    """Download the hub dataset (needs internet and the ``datasets`` package) as {train,dev,test}.jsonl."""
    try:
        from datasets import load_dataset
    except ImportError as err:
        raise RuntimeError("export_hub_xsum needs the `datasets` package: pip install datasets") from err
    from prefixtune.provenance import write_text_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, hub_split in HUB_SPLIT.items():
        rows = load_dataset(name, split=hub_split, revision=revision)
        text = "".join(
            json.dumps(
                {
                    "id": str(r["id"]),
                    "document": normalise_space(r["document"]),
                    "summary": r["summary"].strip(),
                },
                ensure_ascii=False,
            )
            + "\n"
            for r in rows
        )
        paths[split] = out_dir / f"{split}.jsonl"
        write_text_atomic(paths[split], text)
    return paths
