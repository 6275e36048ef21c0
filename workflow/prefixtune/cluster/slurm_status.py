"""A cancelled SLURM job must fail its Snakemake job, not hang the workflow.

``sacct`` reports a job cancelled by a user (``scancel``, or an admin) as ``CANCELLED by <uid>``
(``CANCELLED by 0`` when root cancelled it). snakemake-executor-plugin-slurm 2.8.0 (the newest release,
PyPI, 2026) compares the state with the exact string ``CANCELLED`` and treats anything else as still running, so
the controller waits forever for a job that no longer exists. The old cookiecutter profile's status script
fixed the same in 2019 (Snakemake-Profiles/slurm PR #22, "correctly handle status responses of the form
'CANCELLED by <uid>'"); the plugin has no status script hook any more (only ``sacct`` or ``squeue``).

:func:`install` wraps the plugin's status query so that every state reaches its checks as SLURM's bare state
name. It is installed from the workflow (``workflow/rules/common.smk``), so it is on whenever the controller
runs this workflow, whatever the profile says; it does nothing where the plugin is absent and leaves a plugin
without ``query_job_status`` (another release) untouched, which ``tests/test_slurm_profile.py`` notices.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

PLUGIN = "snakemake_executor_plugin_slurm"
_BY_UID = re.compile(r"^([A-Z_]+) by \d+$")


def bare_state(state: str) -> str:
    """``CANCELLED by 0`` -> ``CANCELLED``; every other state unchanged."""
    match = _BY_UID.fullmatch(state.strip())
    return match.group(1) if match else state


def install() -> bool:
    """Wrap the SLURM plugin's ``query_job_status``; True when it is (or already was) wrapped."""
    try:
        plugin = importlib.import_module(PLUGIN)
    except ImportError:
        return False
    original: Callable[..., Awaitable[tuple[Any, Any]]] | None = getattr(plugin, "query_job_status", None)
    if original is None:
        return False
    if getattr(original, "bare_states", False):
        return True

    async def query_job_status(command: str, logger: Any) -> tuple[Any, Any]:  # noqa: ANN401
        status_of_jobs, duration = await original(command, logger)
        if status_of_jobs is not None:
            status_of_jobs = {job: bare_state(state) for job, state in status_of_jobs.items()}
        return status_of_jobs, duration

    query_job_status.bare_states = True  # type: ignore[attr-defined]
    plugin.query_job_status = query_job_status
    return True
