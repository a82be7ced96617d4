"""The repository's folders that the core writes to or reads from by default: one definition each.

``REPO_ROOT`` is the folder that holds ``explorer_core/``; ``pretrained/`` and ``runs/`` sit beside it.
The runs folder can be moved with ``AEVB_RUNS_DIR`` (see :func:`explorer_core.jobs.store.runs_root`).
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PRETRAINED_DIR = REPO_ROOT / "pretrained"
DEFAULT_RUNS_DIR = REPO_ROOT / "runs"
#: where the version of 2026-12-03 wrote runs by mistake (a default computed from ``jobs/store.py``'s own
#: location after the move into ``jobs/``); :func:`explorer_core.jobs.store.runs_root` moves them back.
LEGACY_RUNS_DIR = REPO_ROOT / "explorer_core" / "runs"
