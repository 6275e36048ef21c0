"""Shared pytest fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real official data files (../shared/data_samples); tests using them skip when it is absent."""
    root = Path(__file__).resolve().parents[1].parent / "shared" / "data_samples"
    if not root.is_dir():
        pytest.skip(f"real official data files not available: {root} is absent (../shared not mounted)")
    return root


@pytest.fixture(scope="session")
def data_fixtures() -> Path:
    """Small excerpts of the official data files shipped with the tests (see fixtures/data/ATTRIBUTION.md)."""
    return Path(__file__).resolve().parent / "fixtures" / "data"


# --- metric tests (tests/test_metrics_*.py) ---
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
METRIC_VECTOR_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "metric_vectors"


@pytest.fixture(scope="session")
def shared_vectors() -> Path:
    """Official metric vectors in ../shared/metric_vectors (incl. third-party anchors); skip when absent."""
    root = SHARED / "metric_vectors"
    if not root.is_dir():
        pytest.skip(f"../shared is absent (a user's clone): {root} not found; the shipped vectors still run")
    return root


@pytest.fixture(scope="session")
def shipped_vectors() -> Path:
    """Shipped copies of the hand-written vectors e2e/, webnlg/, dart/ (fixtures/metric_vectors/README.md)."""
    return METRIC_VECTOR_FIXTURES


@pytest.fixture(autouse=True)
def _skip_java_marked_tests_without_java(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("java") and shutil.which("java") is None:
        pytest.skip("needs a Java runtime (`java` on PATH) for the official METEOR jar / PTB tokenizer")
