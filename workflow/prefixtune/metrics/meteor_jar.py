"""The official METEOR 1.5 jar (WebNLG 2017 and DART scorers), taken from the ``pycocoevalcap==1.2`` wheel.

The wheel ships a byte-identical copy of the release jar (``spice/lib/Meteor-1.5.jar``) and of the English
paraphrase table (``meteor/data/paraphrase-en.gz``; passed with ``-a`` because the jar looks for it next to
itself). Two ways to run it, giving identical numbers:

* :func:`meteor_file_score` / :func:`meteor_score`: the official call, ``java -Xmx2G -jar Meteor-1.5.jar HYP
  REFS -l en -norm -r N``, reading ``Final score``. One JVM (about 7 s of start-up, mostly the paraphrase
  table) per call.
* :class:`MeteorStdio` / :func:`meteor_track_scores`: one JVM in ``-stdio`` mode scores every segment once
  (``SCORE`` lines), the sufficient statistics of each track are summed here exactly as the jar's
  ``MeteorStats.addStats`` does, and ``EVAL`` turns each sum into the corpus score. Used for the WebNLG
  seen/unseen/all tracks so that one JVM serves all of them.

Both pass ``-Duser.language=en -Duser.country=US`` so that lower-casing and number parsing in the JVM do not
depend on the machine's locale.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

JAR_NAME = "Meteor-1.5.jar"
JAVA_OPTIONS = ["-Xmx2G", "-Duser.language=en", "-Duser.country=US"]
_FINAL_SCORE = re.compile(r"^Final score:\s+(\S+)\s*$", re.MULTILINE)
_LINE_BREAKS = re.compile(r"[\r\n]")
_DELIMITER = "|||"


class JavaNotFoundError(RuntimeError):
    """No ``java`` executable on PATH (METEOR and the PTB tokenizer are Java programs)."""


def java_executable() -> str:
    """Path of ``java``; a clear error when there is none."""
    java = shutil.which("java")
    if java is None:
        raise JavaNotFoundError(
            "METEOR (and the E2E PTB tokenizer) need a Java runtime, but `java` is not on PATH. "
            "Install a JRE (e.g. Debian/Ubuntu `openjdk-17-jre-headless`, conda `openjdk`) and retry."
        )
    return java


def pycocoevalcap_dir() -> Path:
    """Folder of the installed ``pycocoevalcap`` (a namespace package in 1.2: no ``__file__``)."""
    import pycocoevalcap

    return Path(list(pycocoevalcap.__path__)[0])


def meteor_jar() -> Path:
    """The official METEOR 1.5 release jar inside the ``pycocoevalcap`` wheel."""
    path = pycocoevalcap_dir() / "spice" / "lib" / JAR_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: install pycocoevalcap==1.2 (it ships the METEOR 1.5 jar)"
        )
    return path


def paraphrase_table() -> Path:
    """The English paraphrase table the jar needs (``-a``)."""
    path = pycocoevalcap_dir() / "meteor" / "data" / "paraphrase-en.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: install pycocoevalcap==1.2 (it ships paraphrase-en.gz)")
    return path


def _base_command() -> list[str]:
    return [java_executable(), *JAVA_OPTIONS, "-jar", str(meteor_jar())]


def _options(n_refs: int) -> list[str]:
    return ["-l", "en", "-norm", "-r", str(n_refs), "-a", str(paraphrase_table())]


def meteor_file_score(hyp_path: str | Path, ref_path: str | Path, n_refs: int) -> float:
    """Run the jar on files (refs file: ``n_refs`` lines per hypothesis) and return its ``Final score``."""
    cmd = [*_base_command(), str(hyp_path), str(ref_path), *_options(n_refs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", check=False)
    match = _FINAL_SCORE.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(
            f"METEOR failed (exit {proc.returncode}) on {hyp_path} / {ref_path}: "
            f"{(proc.stderr or proc.stdout)[-2000:]}"
        )
    return float(match.group(1))


def _one_line(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text)


def pad_references(refs: Sequence[str], n_refs: int) -> list[str]:
    """References of one segment padded with blank lines to ``n_refs`` (what the official scripts write)."""
    if len(refs) > n_refs:
        raise ValueError(f"{len(refs)} references for a segment but METEOR runs with -r {n_refs}")
    return [*refs, *([""] * (n_refs - len(refs)))]


def write_meteor_files(
    hyps: Sequence[str], refs: Sequence[Sequence[str]], n_refs: int, folder: Path
) -> tuple[Path, Path]:
    """Write the jar's plain-text inputs: one hypothesis per line, ``n_refs`` reference lines for each."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference groups")
    hyp_path, ref_path = folder / "hypotheses.txt", folder / "references.txt"
    hyp_path.write_text("".join(_one_line(h) + "\n" for h in hyps), encoding="utf-8")
    ref_lines = (_one_line(r) + "\n" for group in refs for r in pad_references(group, n_refs))
    ref_path.write_text("".join(ref_lines), encoding="utf-8")
    return hyp_path, ref_path


def meteor_score(hyps: Sequence[str], refs: Sequence[Sequence[str]], n_refs: int) -> float:
    """Corpus METEOR of ``hyps`` against ``refs`` (padded to ``n_refs`` with blanks), official file mode."""
    with tempfile.TemporaryDirectory(prefix="prefixtune-meteor-") as tmp:
        hyp_path, ref_path = write_meteor_files(hyps, refs, n_refs, Path(tmp))
        return meteor_file_score(hyp_path, ref_path, n_refs)


def aggregate_stats(stats: Iterable[str]) -> str:
    """Sum segment statistics like ``MeteorStats.addStats`` (the jar's corpus aggregation) into one EVAL line.

    Fields: test/ref length, test/ref function words, 4 x (test content, ref content, test function, ref
    function) stage matches, chunks, test/ref word matches. Quirk kept: a segment that matches its reference
    completely in one chunk adds no chunk.
    """
    total: list[float] | None = None
    for line in stats:
        values = [float(v) for v in line.split()]
        if (len(values) - 7) % 4 != 0 or len(values) < 11:
            raise RuntimeError(f"unexpected METEOR statistics line: {line!r}")
        stage = values[4:-3]
        test_matches = sum(stage[0::4]) + sum(stage[2::4])
        ref_matches = sum(stage[1::4]) + sum(stage[3::4])
        perfect = test_matches == values[0] and ref_matches == values[1] and values[-3] == 1.0
        if total is None:
            total = [0.0] * len(values)
        for i, v in enumerate(values):
            if i == len(values) - 3 and perfect:
                continue
            total[i] += v
    if total is None:
        raise ValueError("no METEOR statistics to aggregate")
    return " ".join(repr(v) for v in total)


class MeteorStdio:
    """One official-jar JVM in ``-stdio`` mode: segment statistics (SCORE) and corpus scores (EVAL)."""

    def __init__(self) -> None:
        cmd = [*_base_command(), "-", "-", "-stdio", *_options(1)]
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )

    def __enter__(self) -> MeteorStdio:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the JVM."""
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def _exchange(self, lines: Sequence[str]) -> list[str]:
        """Send lines from a writer thread (no pipe deadlock) and read one answer per line."""
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        stdin = proc.stdin

        def write() -> None:
            try:
                for line in lines:
                    stdin.write(line + "\n")
                stdin.flush()
            except BrokenPipeError:
                pass

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        answers = []
        for _ in lines:
            answer = proc.stdout.readline()
            if not answer:
                raise RuntimeError(
                    f"METEOR JVM stopped (exit {proc.poll()}); is Java able to run {JAR_NAME}?"
                )
            answer = answer.strip()
            if answer.startswith("Error"):
                raise RuntimeError(f"METEOR: {answer}")
            answers.append(answer)
        writer.join()
        return answers

    def segment_stats(self, hyps: Sequence[str], refs: Sequence[Sequence[str]], n_refs: int) -> list[str]:
        """Sufficient statistics per segment; ``refs`` padded to ``n_refs`` with blanks as in file mode."""
        if len(hyps) != len(refs):
            raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference groups")
        lines = []
        for hyp, group in zip(hyps, refs):
            fields = [*pad_references(group, n_refs), hyp]
            if any(_DELIMITER in f or _LINE_BREAKS.search(f) for f in fields):
                raise ValueError("text with '|||' or a line break cannot go through METEOR -stdio")
            lines.append(" ||| ".join(["SCORE", *fields]) + " ")
        return self._exchange(lines)

    def corpus_scores(self, aggregated: Sequence[str]) -> list[float]:
        """Corpus METEOR for each aggregated statistics line."""
        return [float(a) for a in self._exchange([f"EVAL ||| {line}" for line in aggregated])]


def _stdio_safe(texts: Iterable[str]) -> bool:
    return not any(_DELIMITER in t or _LINE_BREAKS.search(t) for t in texts)


def meteor_track_scores(
    hyps: Sequence[str],
    refs: Sequence[Sequence[str]],
    n_refs: int,
    tracks: Mapping[str, Sequence[int]],
) -> dict[str, float]:
    """Corpus METEOR of several subsets (tracks, lists of segment indices) with a single JVM.

    Equal to running :func:`meteor_score` on each subset. Falls back to file mode (one JVM per track) when a
    text contains ``|||``, which the stdio protocol cannot carry. Empty tracks are left out.
    """
    tracks = {name: list(idx) for name, idx in tracks.items() if len(idx) > 0}
    if not _stdio_safe([*hyps, *(r for group in refs for r in group)]):
        return {
            name: meteor_score([hyps[i] for i in idx], [refs[i] for i in idx], n_refs)
            for name, idx in tracks.items()
        }
    with MeteorStdio() as meteor:
        stats = meteor.segment_stats(hyps, refs, n_refs)
        names = list(tracks)
        scores = meteor.corpus_scores([aggregate_stats(stats[i] for i in tracks[name]) for name in names])
    return dict(zip(names, scores))
