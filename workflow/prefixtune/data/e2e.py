"""E2E NLG challenge data: the authors' ``src1_*.txt`` files (``SRC||TGT`` lines) and the challenge CSVs.

src1 is what the paper trained and scored on: sources already linearized, values and references tokenized,
references ending in a space. The challenge CSV (``mr,ref``) gives the same sources through
``linearize_e2e_mr`` but untokenized references.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path

from prefixtune.data.errors import DataError, read_utf8
from prefixtune.data.linearize import E2E_FIELDS, linearize_e2e_mr
from prefixtune.data.records import EvalItem, Pair
from prefixtune.provenance import write_text_atomic

log = logging.getLogger(__name__)

SRC1_FIELDS = frozenset(E2E_FIELDS.values())


def _check_src1_source(source: str) -> str | None:
    """Why ``source`` is not ``field : value | ...`` with src1 field names, or None when it is."""
    for part in source.split(" | "):
        field, sep, value = part.partition(" : ")
        if not sep or field not in SRC1_FIELDS or not value:
            return (
                f"expected a source 'field : value | ...' with fields {sorted(SRC1_FIELDS)}, got {part!r:.80}"
            )
    return None


def read_src1(path: Path) -> list[Pair]:
    """Each ``SRC||TGT`` line is one pair (target not stripped); other lines are dropped."""
    pairs, dropped = [], 0
    for lineno, line in enumerate(read_utf8(path).splitlines(), start=1):  # the authors' splitlines()
        parts = line.split("||")
        if len(parts) != 2:
            dropped += int(bool(line.strip()))
            continue
        if problem := _check_src1_source(parts[0]):
            raise DataError(path, f"line {lineno}", problem)
        pairs.append(Pair(parts[0], parts[1]))
    if dropped:
        log.warning("%s: dropped %d non-empty lines without exactly one '||'", path, dropped)
    if not pairs:
        where = "file" if not Path(path).stat().st_size else "line 1"
        raise DataError(path, where, "expected 'SOURCE||TARGET' lines (src1 format), found none")
    return pairs


def read_e2e_csv(path: Path) -> list[Pair]:
    """Challenge CSV ``mr,ref``: source = the src1 linearization of the MR, target = the raw reference."""
    reader = csv.reader(io.StringIO(read_utf8(path).removeprefix("\ufeff"), newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    if header[:2] != ["mr", "ref"] or len(header) != 2:
        raise DataError(path, "line 1", f"expected the header 'mr,ref' of the challenge CSV, got {header}")
    pairs = []
    for row in reader:
        where = f"line {reader.line_num}"
        if len(row) != 2:
            raise DataError(path, where, f"expected 2 columns (mr, ref), got {len(row)}")
        try:
            source = linearize_e2e_mr(row[0])
        except ValueError as err:
            raise DataError(path, where, str(err)) from err
        pairs.append(Pair(source, row[1]))
    if not pairs:
        raise DataError(path, "line 2", "expected at least one 'mr,ref' row")
    return pairs


def read_e2e(path: Path) -> list[Pair]:
    """Pairs of a src1 ``.txt`` or challenge ``.csv`` file."""
    suffix = Path(path).suffix.lower()
    if suffix == ".txt":
        return read_src1(path)
    if suffix == ".csv":
        return read_e2e_csv(path)
    raise DataError(path, "file name", f"expected an E2E .txt (src1) or .csv file, got suffix {suffix!r}")


def e2e_items(pairs: list[Pair]) -> list[EvalItem]:
    """One item per distinct source, in first-appearance order, with all its references stripped."""
    groups: dict[str, list[str]] = {}
    for pair in pairs:
        groups.setdefault(pair.source, []).append(pair.target.strip())
    return [EvalItem(str(i), src, refs, src, {}) for i, (src, refs) in enumerate(groups.items(), start=1)]


def write_e2e_refs(path: Path, items: list[EvalItem]) -> None:
    """e2e-metrics multi-reference layout: an item's references on consecutive lines, a blank line between."""
    write_text_atomic(path, "\n\n".join("\n".join(item.references) for item in items) + "\n")


def write_src1(path: Path, pairs: list[Pair]) -> None:
    """``SRC||TGT`` lines, as the authors' files."""
    write_text_atomic(path, "".join(f"{p.source}||{p.target}\n" for p in pairs))


def write_e2e_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    """Challenge CSV ``mr,ref`` from (MR, reference) rows."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["mr", "ref"])
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def src1_slots(source: str) -> frozenset[tuple[str, str]]:
    """The (src1 field, value) pairs of a src1 source ``field : value | ...``, order ignored."""
    return frozenset(tuple(part.partition(" : ")[::2]) for part in source.split(" | "))


def find_item_by_mr(sources: Sequence[str], mr: str, path: Path | str) -> int:
    """Index of the one source whose complete field set is the challenge MR ``mr`` (no field more or less).

    Figure 3's text panel quotes one dev item; a partial match picks another restaurant, so none or several
    matches is an error naming ``path`` (the items file) and the fields expected.
    """
    try:
        wanted = src1_slots(linearize_e2e_mr(mr))
    except ValueError as err:
        raise DataError(path, "the text panel's MR", str(err)) from err
    matches = [i for i, source in enumerate(sources) if src1_slots(source) == wanted]
    if len(matches) != 1:
        if matches:
            numbers = ", ".join(str(i + 1) for i in matches)
            found = f"{len(matches)} of the {len(sources)} items have them (items {numbers})"
        else:
            found = f"none of the {len(sources)} items has them"
        raise DataError(path, "items", f"expected exactly one item with exactly the fields {mr!r}; {found}")
    return matches[0]
