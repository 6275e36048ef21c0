"""DART scoring as Yale-LILY/dart ``evaluation/run_eval_on_dart.sh`` does it (BLEU, METEOR, TER).

* references: the first 3 ``<lex>`` of each test entry (file order), ``\\W``-split, squeezed, lower-cased, no
  unidecode (the official ``all-delex-reference{0,1,2}.lex``: CRLF, blank line where an entry has fewer);
* hypotheses are scored AS GIVEN: the official script does not preprocess them. The pipeline lower-cases and
  ``\\W``-splits its outputs first (:func:`preprocess_dart_hypothesis`), matching the references;
* BLEU = ``multi-bleu.perl ref0 ref1 ref2`` (case-sensitive; blank reference = length 0 in the
  closest-length choice) = sacrebleu tokenize none, no smoothing, ``""`` for missing references;
* METEOR = official METEOR 1.5 jar ``-l en -norm -r 8``, references padded with blank lines to 8 per entry
  (``prepare_files.py``);
* TER = tercom 0.7.25 over the existing references, approximated by ``sacrebleu.TER()`` (its algorithm,
  compiled: ``metrics.ter``).

MoverScore, BERTScore and BLEURT (also in the official script) need model weights: they are in
:mod:`prefixtune.metrics.dart_model_metrics` (``prefixtune score --model-metrics``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import sacrebleu

from prefixtune.metrics.meteor_jar import meteor_score
from prefixtune.metrics.ter import ter_score

N_REFS = 3
METEOR_REFS = 8
REFERENCE_NAMES = (
    ("reference0.lex", "reference1.lex", "reference2.lex"),
    ("all-delex-reference0.lex", "all-delex-reference1.lex", "all-delex-reference2.lex"),
)
_WORD_SPLIT = re.compile(r"(\W)")


def _split_squeeze(text: str) -> str:
    return " ".join(" ".join(_WORD_SPLIT.split(text)).split())


def preprocess_dart_hypothesis(text: str) -> str:
    """Lower-case, split on every non-word character, squeeze spaces: the references' style."""
    return _split_squeeze(text.lower())


def dart_reference_text(lex: str) -> str:
    """An official DART test reference from a ``<lex>`` text: ``\\W`` split, squeeze, lower-case."""
    return _split_squeeze(lex).lower()


def _read_lines(path: Path) -> list[str]:
    """Lines split on ``\\n`` only (a CRLF's ``\\r`` is stripped with the other whitespace)."""
    text = path.read_bytes().decode("utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _references_from_files(files: Sequence[Path]) -> list[list[str]]:
    columns = [_read_lines(f) for f in files]
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        counts = ", ".join(f"{f.name}: {len(c)}" for f, c in zip(files, columns))
        raise ValueError(f"reference files have different numbers of lines ({counts})")
    n = lengths.pop()
    return [[c[i].strip() for c in columns if c[i].strip()] for i in range(n)]


def dart_reference_columns(xml_path: str | Path) -> list[list[str]]:
    """The three official reference files rebuilt from a DART XML.

    Column k, line i = the k-th ``<lex>`` of entry i through :func:`dart_reference_text` (``""`` where the
    entry has fewer).
    """
    root = ET.parse(xml_path).getroot()
    columns: list[list[str]] = [[] for _ in range(N_REFS)]
    for entry in root.iter("entry"):
        lexes = [(node.text or "") for node in entry if node.tag == "lex"]
        for k in range(N_REFS):
            columns[k].append(dart_reference_text(lexes[k]) if k < len(lexes) else "")
    return columns


def _references_from_xml(path: Path) -> list[list[str]]:
    columns = dart_reference_columns(path)
    return [[c[i] for c in columns if c[i]] for i in range(len(columns[0]))]


def load_dart_references(path: str | Path) -> list[list[str]]:
    """Up to 3 references per test entry, blank = missing.

    ``path`` is a folder with ``reference{0,1,2}.lex`` or the official ``all-delex-reference{0,1,2}.lex``,
    or a DART XML (``dart-v1.1.1-full-test.xml``: first 3 ``<lex>`` of each entry, transformed like the
    official files).
    """
    path = Path(path)
    if path.is_dir():
        for names in REFERENCE_NAMES:
            files = [path / name for name in names]
            if all(f.is_file() for f in files):
                return _references_from_files(files)
        expected = " or ".join("{" + ", ".join(names) + "}" for names in REFERENCE_NAMES)
        raise FileNotFoundError(f"{path}: expected reference files {expected}")
    if path.suffix.lower() == ".xml":
        return _references_from_xml(path)
    raise ValueError(f"{path}: expected a folder of reference .lex files or a DART .xml file")


def bleu_metric() -> sacrebleu.BLEU:
    """``multi-bleu.perl`` (case-sensitive): the BLEU object behind the official value and its segment stats."""
    return sacrebleu.BLEU(tokenize="none", smooth_method="none", force=True)


def reference_streams(refs: Sequence[Sequence[str]]) -> list[list[str]]:
    """The 3 official reference files (``""`` where an entry has fewer)."""
    return [[group[k] if k < len(group) else "" for group in refs] for k in range(N_REFS)]


def _bleu(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    return bleu_metric().corpus_score(list(hyps), reference_streams(refs)).score


def ter_inputs(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> tuple[list[str], list[list[str]]]:
    """What TER scores: stripped outputs; an entry without references has its blank reference0 line."""
    return [h.strip() for h in hyps], [list(group) if group else [""] for group in refs]


def score_dart(
    hyps: Sequence[str], refs: Sequence[Sequence[str]], *, ter: bool = True, workers: int = 1
) -> dict[str, float]:
    """DART BLEU (0-100), METEOR and TER (fractions) of ``hyps`` (used as given) against ``refs`` (<= 3 each).

    ``ter=False`` skips TER; ``workers`` processes share the TER work.
    """
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference groups")
    if any(len(group) > N_REFS for group in refs):
        raise ValueError(f"the DART protocol uses at most {N_REFS} references per entry")
    # an entry without any reference still has its (blank) reference0 line in the official files
    ter_hyps, present = ter_inputs(hyps, refs)
    scores = {"BLEU": _bleu(hyps, refs), "METEOR": meteor_score(hyps, present, METEOR_REFS)}
    if ter:
        scores["TER"] = ter_score(ter_hyps, present, workers)
    return scores
