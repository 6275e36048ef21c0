"""WebNLG 2017 challenge scoring (``webnlg-automatic-evaluation/evaluation.py`` + BLEU/METEOR/TER scripts).

What Prefix-Tuning ran (``run_eval_on_webnlg.sh`` from Yale-LILY/dart ``evaluation/``), re-done from PyPI:

* references: entries in natural-sorted ``eid`` order (entries without ``<lex>`` are skipped), the first 3
  ``<lex>`` of each; ``\\W``-split and squeezed on the original text, THEN ``unidecode(lower())``;
* hypotheses: line i is entry ``Id<i>``; ``unidecode(strip())``, THEN ``unidecode(lower())``, THEN the ``\\W``
  split and squeeze (so ``25°C`` is ``25 deg c`` in a reference but ``25degc`` in a hypothesis);
* tracks: all, seen (10 categories of the training data), unseen (Artist, Athlete, CelestialBody,
  MeanOfTransportation, Politician); optionally each category and each size 1-7;
* BLEU = ``multi-bleu.perl -lc`` with 3 reference files (blank where missing: a length-0 reference in the
  closest-length choice) = sacrebleu, tokenize none, no smoothing, ``""`` for missing references;
* METEOR = official METEOR 1.5 jar ``-l en -norm -r 3`` (one JVM for all tracks, see ``meteor_jar``);
* TER = tercom 0.7.25 with the existing (<= 3) references, approximated by ``sacrebleu.TER()`` (within ~2e-4
  on real outputs; tercom's beam search occasionally finds one edit more), its algorithm compiled (``metrics.ter``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sacrebleu
from natsort import natsorted
from unidecode import unidecode

from prefixtune.metrics.meteor_jar import meteor_track_scores
from prefixtune.metrics.ter import ter_from_stats, ter_segment_stats

N_REFS = 3
UNSEEN_CATEGORIES = ("MeanOfTransportation", "CelestialBody", "Politician", "Athlete", "Artist")
SEEN_CATEGORIES = (
    "Astronaut",
    "Airport",
    "Monument",
    "University",
    "Food",
    "SportsTeam",
    "City",
    "Building",
    "WrittenWork",
    "ComicsCharacter",
)
HEADLINE_TRACKS = ("all", "seen", "unseen")
_WORD_SPLIT = re.compile(r"(\W)")
_EID = re.compile(r"Id(\d+)")


@dataclass(frozen=True)
class WebNLGEntry:
    """One test entry as the official reader sees it."""

    eid: str
    category: str
    size: int
    lexes: tuple[str, ...]


def _split_squeeze(text: str) -> str:
    return " ".join(" ".join(_WORD_SPLIT.split(text)).split())


def preprocess_reference(text: str) -> str:
    """Reference side of ``evaluation.py``: ``\\W`` split and squeeze the original, then unidecode(lower)."""
    return unidecode(_split_squeeze(text).lower())


def preprocess_hypothesis(text: str) -> str:
    """Hypothesis side of ``evaluation.py``: unidecode(strip), unidecode(lower), ``\\W`` split, squeeze."""
    return _split_squeeze(unidecode(unidecode(text.strip()).lower()))


def read_webnlg_entries(xml_path: str | Path) -> list[WebNLGEntry]:
    """Entries with at least one ``<lex>``, in natural-sorted ``eid`` order (the official reader's order)."""
    root = ET.parse(xml_path).getroot()
    entries = []
    for node in root.iter("entry"):
        lexes = tuple((lex.text or "") for lex in node if lex.tag == "lex")
        if not lexes:
            continue
        entries.append(
            WebNLGEntry(node.attrib["eid"], node.attrib["category"], int(node.attrib["size"]), lexes)
        )
    order = natsorted(range(len(entries)), key=lambda i: entries[i].eid)
    return [entries[i] for i in order]


def webnlg_tracks(entries: Sequence[WebNLGEntry], all_tracks: bool = False) -> dict[str, list[int]]:
    """Entry indices of each track: all/seen/unseen, plus each category and ``<n>size`` if ``all_tracks``."""
    tracks = {
        "all": list(range(len(entries))),
        "seen": [i for i, e in enumerate(entries) if e.category in SEEN_CATEGORIES],
        "unseen": [i for i, e in enumerate(entries) if e.category in UNSEEN_CATEGORIES],
    }
    if all_tracks:
        for category in (*SEEN_CATEGORIES, *UNSEEN_CATEGORIES):
            tracks[category] = [i for i, e in enumerate(entries) if e.category == category]
        for size in range(1, 8):
            tracks[f"{size}size"] = [i for i, e in enumerate(entries) if e.size == size]
    return tracks


def _check_ids(entries: Sequence[WebNLGEntry], xml_path: str | Path) -> None:
    """Line i of the output is entry ``Id<i>``: the entries must be exactly Id1..IdN."""
    for i, entry in enumerate(entries, start=1):
        match = _EID.fullmatch(entry.eid)
        if match is None or int(match.group(1)) != i:
            raise ValueError(
                f"{xml_path}: entry ids must run Id1..Id{len(entries)} (output line i is entry Id<i>), "
                f"found {entry.eid!r} at position {i}"
            )


def bleu_metric() -> sacrebleu.BLEU:
    """``multi-bleu.perl -lc``: the BLEU object behind the official value and its segment statistics."""
    return sacrebleu.BLEU(tokenize="none", smooth_method="none", lowercase=True, force=True)


def reference_streams(refs: Sequence[Sequence[str]]) -> list[list[str]]:
    """The 3 reference files of the official script (``""`` where an entry has fewer)."""
    return [[group[k] if k < len(group) else "" for group in refs] for k in range(N_REFS)]


def _bleu(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    return bleu_metric().corpus_score(list(hyps), reference_streams(refs)).score


def prepare_webnlg(
    hyps: Sequence[str], xml_path: str | Path, *, all_tracks: bool = False, source: str = "hypotheses"
) -> tuple[list[str], list[list[str]], dict[str, list[int]]]:
    """Preprocessed outputs, preprocessed references (<= 3 per entry) and track indices, as scored."""
    entries = read_webnlg_entries(xml_path)
    if len(hyps) != len(entries):
        raise ValueError(
            f"{source} has {len(hyps)} lines but {xml_path} has {len(entries)} entries with references "
            "(one output line per entry, in Id order)"
        )
    _check_ids(entries, xml_path)
    hyp_tok = [preprocess_hypothesis(h) for h in hyps]
    refs = [[preprocess_reference(lex) for lex in e.lexes[:N_REFS]] for e in entries]
    return hyp_tok, refs, webnlg_tracks(entries, all_tracks)


def score_webnlg(
    hyps: Sequence[str],
    xml_path: str | Path,
    *,
    all_tracks: bool = False,
    ter: bool = True,
    workers: int = 1,
    source: str = "hypotheses",
) -> dict[str, dict[str, float] | None]:
    """WebNLG 2017 scores: ``{"all"|"seen"|"unseen": {"BLEU", "METEOR", "TER"}}``.

    ``hyps`` are raw outputs, one per entry in Id order. BLEU is on the 0-100 scale, METEOR and TER are
    fractions. ``all_tracks`` adds every category and ``1size``..``7size``; a track without entries is None.
    ``ter=False`` skips TER; ``workers`` processes share the TER work;
    ``source`` names the hypotheses in error messages.
    """
    hyp_tok, refs, tracks = prepare_webnlg(hyps, xml_path, all_tracks=all_tracks, source=source)
    # TER first (about a second, compiled): its worker processes are forked while no other thread runs
    ter_stats = ter_segment_stats(hyp_tok, refs, workers) if ter else []
    meteor = meteor_track_scores(hyp_tok, refs, N_REFS, tracks)
    result: dict[str, dict[str, float] | None] = {}
    for name, idx in tracks.items():
        if not idx:
            result[name] = None
            continue
        track_hyps = [hyp_tok[i] for i in idx]
        track_refs = [refs[i] for i in idx]
        scores = {"BLEU": _bleu(track_hyps, track_refs), "METEOR": meteor[name]}
        if ter:
            scores["TER"] = ter_from_stats([ter_stats[i] for i in idx])
        result[name] = scores
    return result
