"""E2E NLG scoring as tuetschek/e2e-metrics ``measure_scores.py`` (BLEU, NIST, METEOR, ROUGE_L, CIDEr).

Prefix-Tuning ran ``measure_scores.py GOLD PRED -p -t -H``: BLEU/NIST from the Python mteval port (``-p``),
which this module reports as ``BLEU``/``NIST``; the challenge's default Perl mteval-v13a values are
``BLEU_perl``/``NIST_perl``. All values are on the script's scales (fractions; NIST unbounded; CIDEr 0-10).
The paper's decoder writes ``Error`` for an empty generation; this module scores outputs as given.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

from prefixtune.metrics.coco import coco_scores_detailed
from prefixtune.metrics.mteval import bleu_nist_py, bleu_perl, nist_perl

E2E_METRICS = ("BLEU", "NIST", "BLEU_perl", "NIST_perl", "METEOR", "ROUGE_L", "CIDEr")
# measure_scores.py column headers: MR and reference columns
_HEADER_SRC = re.compile(
    r"(mr|src|source|meaning(?:[_ .-]rep(?:resentation)?)?|da|dial(?:ogue)?[_ .-]act)s?", re.I
)
_HEADER_REF = re.compile(r"(trg|tgt|target|ref(?:erence)?|human(?:[_ .-](?:ref(?:erence)?))?)s?", re.I)
# mojibake the official reader repairs in CSV/TSV files
_FIXES = (("Ł", "£"), ("Â£", "£"), ("Ã©", "é"), ("ã©", "é"))


def _read_lines(path: str | Path) -> list[str]:
    """UTF-8 lines split on ``\\n`` (``\\r`` and other edge whitespace go with ``strip()``), BOM removed."""
    text = Path(path).read_bytes().decode("utf-8").removeprefix("\ufeff")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.strip() for line in lines]


def read_hypotheses(path: str | Path) -> list[str]:
    """One output per line, each ``strip()``-ed (an empty line is an empty output)."""
    return _read_lines(path)


def _read_grouped_text(path: str | Path) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    double_blank = 0
    for number, line in enumerate(_read_lines(path), start=1):
        if line:
            if double_blank:
                raise ValueError(
                    f"{path}: line {double_blank}: two empty lines in a row (an instance without references)"
                )
            groups[-1].append(line)
        elif groups[-1]:
            groups.append([])
        elif len(groups) > 1:
            double_blank = double_blank or number
    if not groups[-1]:
        groups.pop()
    if len(groups) == 1:  # no blank line at all: a single-reference file, one line per instance
        return [[ref] for ref in groups[0]]
    return groups


def _read_grouped_csv(path: str | Path) -> list[list[str]]:
    lines = _read_lines(path)
    for bad, good in _FIXES:
        lines = [line.replace(bad, good) for line in lines]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"{path}: empty reference file")
    rows = list(csv.reader(lines, delimiter="\t" if "\t" in lines[0] else ","))
    header = rows[0]
    src_cols = [i for i, f in enumerate(header) if _HEADER_SRC.match(f)]
    ref_cols = [i for i, f in enumerate(header) if _HEADER_REF.match(f)]
    if len(src_cols) == len(ref_cols) == 1:
        src_col, ref_col = src_cols[0], ref_cols[0]
        rows = rows[1:]
    elif not src_cols and not ref_cols and len(header) == 2:
        src_col, ref_col = 0, 1
    else:
        raise ValueError(f"{path}: expected exactly one MR column and one reference column (e.g. 'mr,ref')")
    bad_rows = [n for n, row in enumerate(rows, start=1) if len(row) != len(header)]
    if bad_rows:
        raise ValueError(f"{path}: wrong number of columns on data rows {bad_rows[:10]}")
    groups: list[list[str]] = []
    current = None
    for row in rows:  # consecutive identical MRs form one instance
        if row[src_col] != current or not groups:
            groups.append([])
            current = row[src_col]
        groups[-1].append(row[ref_col])
    return groups


def read_e2e_references(path: str | Path) -> list[list[str]]:
    """References grouped per instance: plain text (groups separated by one empty line) or MR,ref CSV/TSV."""
    if re.search(r"\.[ct]sv$", str(path), re.I):
        return _read_grouped_csv(path)
    return _read_grouped_text(path)


def clean_inputs(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> tuple[list[str], list[list[str]]]:
    """Every text ``strip()``-ed as the official reader does; every instance needs non-empty references."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference groups")
    hyps = [h.strip() for h in hyps]
    refs = [[r.strip() for r in group] for group in refs]
    for i, group in enumerate(refs):
        if not group or not all(group):
            raise ValueError(f"instance {i}: references must be non-empty texts, got {group!r}")
    return hyps, refs


def score_e2e_detailed(
    hyps: Sequence[str], refs: Sequence[Sequence[str]], *, java: bool = True
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """:func:`score_e2e` plus the coco metrics' per-segment scores (``{}`` with ``java=False``)."""
    hyps, refs = clean_inputs(hyps, refs)
    bleu, nist = bleu_nist_py(hyps, refs)
    scores = {
        "BLEU": bleu,
        "NIST": nist,
        "BLEU_perl": bleu_perl(hyps, refs),
        "NIST_perl": nist_perl(hyps, refs),
    }
    coco_segments: dict[str, list[float]] = {}
    if java:
        coco_corpus, coco_segments = coco_scores_detailed(hyps, refs)
        scores.update(coco_corpus)
    return {name: scores[name] for name in E2E_METRICS if name in scores}, coco_segments


def score_e2e(hyps: Sequence[str], refs: Sequence[Sequence[str]], *, java: bool = True) -> dict[str, float]:
    """All E2E metrics: ``BLEU``, ``NIST`` (``-p``, the paper's), ``BLEU_perl``, ``NIST_perl``, ``METEOR``,
    ``ROUGE_L``, ``CIDEr`` as fractions (the official script's scales). ``java=False`` skips the three coco
    metrics (they need Java)."""
    return score_e2e_detailed(hyps, refs, java=java)[0]


def read_e2e_files(hyp_path: str | Path, refs_path: str | Path) -> tuple[list[str], list[list[str]]]:
    """Outputs and grouped references from files; a count mismatch names both files."""
    hyps = read_hypotheses(hyp_path)
    refs = read_e2e_references(refs_path)
    if len(hyps) != len(refs):
        raise ValueError(
            f"{hyp_path} has {len(hyps)} outputs but {refs_path} has {len(refs)} reference groups "
            "(one output line per instance, in the references' order)"
        )
    return hyps, refs


def score_e2e_files(hyp_path: str | Path, refs_path: str | Path, *, java: bool = True) -> dict[str, float]:
    """:func:`score_e2e` on files; a count mismatch names both files."""
    return score_e2e(*read_e2e_files(hyp_path, refs_path), java=java)
