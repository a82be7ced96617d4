"""Runs on disk: the run folder's files (status, config, metrics, preview), read back as untrusted input
into validated schemas, the list of runs, and the models that finished runs published."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from explorer_core.artifacts import (
    ABSURD_NATS,
    RECIPE_FIELDS,
    ArtifactError,
    bad_model_entry,
    read_model_description,
)
from explorer_core.atomic import write_json, write_text
from explorer_core.data import MNIST_TRAIN
from explorer_core.families import PIXELS
from explorer_core.paths import DEFAULT_RUNS_DIR, LEGACY_RUNS_DIR
from explorer_core.training.recipes import TrainConfig
from explorer_core.untrusted import (
    Flag,
    Num,
    Obj,
    SchemaError,
    Text,
    UntrustedFileError,
    check,
    inside,
    parse_json,
    read_json_object,
    regular_file_size,
)

ENV_RUNS_DIR = "AEVB_RUNS_DIR"
STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE_STATES = ("queued", "running")
PREVIEW_FILE = "preview.safetensors"
PREVIEW_COUNT = 16
#: the part of ``metrics.jsonl`` that is read (its end), and the largest preview file
MAX_METRICS_BYTES = 32 * 2**20
MAX_PREVIEW_BYTES = 2**20
MAX_RUN_JSON_BYTES = 2**20

_TIME = Num(0, 1e11)
_TIME_OPT = Num(0, 1e11, optional=True)
_COUNT_OPT = Num(0, 10**9, integer=True, optional=True)
#: ``status.json``
STATUS_SCHEMA = Obj(
    {
        "state": Text(choices=STATES),
        "created": _TIME,
        "started": _TIME_OPT,
        "finished": _TIME_OPT,
        "queued_at": _TIME_OPT,
        "pid": Num(1, 2**31, integer=True, optional=True),
        "pid_start": Num(0, 2**63, integer=True, optional=True),
        "device": Text(max_len=100, optional=True),
        "threads": Num(1, 4096, integer=True, optional=True),
        "error": Text(max_len=100_000, optional=True),
        "traceback": Text(max_len=200_000, optional=True),
        "message": Text(max_len=10_000, optional=True),
        "model": Text(max_len=255, optional=True),
        "test_elbo": Num(-ABSURD_NATS, ABSURD_NATS, optional=True),
        "best_epoch": _COUNT_OPT,
        "epochs_run": _COUNT_OPT,
        "resume": Flag(optional=True),
        "resumed_from": _COUNT_OPT,
        "finishing": Flag(optional=True),
    },
    required=frozenset({"state", "created"}),
)
#: ``config.json``: the recipe (the fields of every family's recipe class, typed and bounded) and the job's
#: options
CONFIG_FILE_SCHEMA = Obj(
    {
        "config": Obj(RECIPE_FIELDS, required=frozenset({"family"}), extra="reject"),
        "options": Obj(
            {
                "label": Text(max_len=100, optional=True),
                "preset": Text(max_len=100, optional=True),
                "data_limit": Num(0, MNIST_TRAIN, integer=True, optional=True),
                "log_every": Num(1, 10**7, integer=True, optional=True),
                "nice": Num(0, 19, integer=True, optional=True),
                "crash_after_epoch": Num(1, 10_000, integer=True, optional=True),
            },
            optional=True,
        ),
    },
    required=frozenset({"config"}),
)
#: one line of ``metrics.jsonl`` (lines that do not fit are skipped; extra keys must be numbers)
METRICS_ROW = Obj(
    {
        "kind": Text(choices=("step", "epoch")),
        "epoch": Num(0, 10**6, integer=True),
        "step": Num(0, 10**12, integer=True),
        "total_steps": Num(1, 10**12, integer=True),
        "train_elbo": Num(),
        "val_elbo": Num(optional=True),
        "seconds": Num(0, 1e9, optional=True),
        "time": _TIME_OPT,
    },
    required=frozenset({"kind", "epoch", "step", "total_steps", "train_elbo"}),
    extra="scalars",
)


class ConfigRejectedError(ValueError):
    """A training configuration that must not start: an invalid value or too much memory for the device.
    The message says why, in words the Training page shows as they are."""


class JobError(RuntimeError):
    """An operation on a run that cannot be done (unknown id, deleting a run that is still active)."""


# ------------------------------------------------------------------------------------------------ files


_log = logging.getLogger(__name__)
_legacy_checked = threading.Lock()
_legacy_done: list[bool] = []


def runs_root() -> Path:
    """The runs folder, the one definition every caller uses (the Training page, the Watch page's export,
    the CLI's ``--run-dir`` default, ``tools/gmvae_seeds.sh``): ``AEVB_RUNS_DIR`` when set (``~``
    expanded), else ``<repo>/runs``. On the first call with the default, runs that the version of
    2026-12-03 left in ``explorer_core/runs/`` are moved here (:func:`move_legacy_runs`)."""
    value = os.environ.get(ENV_RUNS_DIR, "").strip()
    if value:
        return Path(value).expanduser()
    with _legacy_checked:
        if not _legacy_done:
            _legacy_done.append(True)
            move_legacy_runs(LEGACY_RUNS_DIR, DEFAULT_RUNS_DIR)
    return DEFAULT_RUNS_DIR


def move_legacy_runs(legacy: Path, root: Path) -> list[str]:
    """Move every run folder in ``legacy`` into ``root`` (each folder ``legacy/<id>`` becomes
    ``root/<id>``; one whose id is taken in ``root`` stays where it is, with a warning), then remove
    ``legacy`` if it is left empty. Returns the ids moved; logs one warning naming them. Never raises:
    a folder that cannot be moved is logged and left in place."""
    try:
        folders = sorted(d for d in Path(legacy).iterdir() if d.is_dir() and not d.is_symlink())
    except OSError:
        return []
    moved: list[str] = []
    for d in folders:
        target = Path(root) / d.name
        if target.exists():
            _log.warning(
                "run %s is in both %s and %s; the one in %s is left alone", d.name, legacy, root, legacy
            )
            continue
        try:
            Path(root).mkdir(parents=True, exist_ok=True)
            shutil.move(str(d), str(target))
        except OSError as err:
            _log.warning("could not move run %s from %s to %s: %s", d.name, legacy, root, err)
            continue
        moved.append(d.name)
    with contextlib.suppress(OSError):
        Path(legacy).rmdir()  # only when empty
    if moved:
        _log.warning("moved %d run(s) from %s to %s: %s", len(moved), legacy, root, ", ".join(moved))
    return moved


def atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to a temporary name beside ``path``, then rename it into place
    (:func:`explorer_core.atomic.write_json`). Raises OSError."""
    write_json(path, data)


#: the files of a run folder (the preview is :data:`PREVIEW_FILE`; the checkpoint's names are
#: :mod:`explorer_core.training.checkpoint`'s): the recipe and the job's options, the run's state, one line
#: per logged step or epoch
CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
#: a run's markers: "cancel" asks its worker to stop after the current epoch's steps; "claim" says that one
#: manager has taken a queued run to start it (created exclusively: two managers never start the same run)
CANCEL_FILE = "cancel"
CLAIM_FILE = "claim"


def create_run(root: Path, run_id: str, config: TrainConfig, options: dict[str, Any]) -> Path:
    """Make the run folder ``root/run_id`` (it must not exist) and write its ``config.json`` (the recipe and
    the job's options, :data:`CONFIG_FILE_SCHEMA`). Its ``status.json`` is the caller's next write
    (:func:`write_status`); until then the run is one being made, and is not listed. Returns the folder.

    Raises:
        FileExistsError: the folder exists.
        OSError: it cannot be written.
    """
    run_dir = Path(root) / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    atomic_write_json(run_dir / CONFIG_FILE, {"config": config.to_dict(), "options": options})
    return run_dir


def write_status(run_dir: Path, status: dict[str, Any]) -> None:
    """Replace ``run_dir/status.json`` by ``status`` (:data:`STATUS_SCHEMA`; keys whose value is None are
    left out), atomically. Raises OSError."""
    atomic_write_json(Path(run_dir) / STATUS_FILE, {k: v for k, v in status.items() if v is not None})


def publish_run(
    run_dir: Path,
    state: str,
    model_path: Path,
    test_elbo: float | None,
    message: str | None,
    **fields: Any,
) -> dict[str, Any]:
    """The last status write of a run that made a model, the one writer of it for the trainer's worker and
    Watch it learn's export: its ``state`` (``"done"``, ``"cancelled"``), when it finished, the model's file
    name (``model_path``: the model JSON in the run folder), its test ELBO (nats per image, None when not
    measured), a ``message`` and ``fields`` (:data:`STATUS_SCHEMA`'s other keys; a None value removes the
    key). Merged into what the status says (a run being made has none yet, and is listed from now on),
    atomically. Returns the new status.

    Raises:
        OSError: it cannot be written.
    """
    try:
        status = read_status(run_dir) or {}
    except UntrustedFileError:
        status = read_json(Path(run_dir) / STATUS_FILE) or {}
    given = {
        "state": state,
        "finished": time.time(),
        "model": Path(model_path).name,
        "test_elbo": test_elbo,
        "message": message,
        **fields,
    }
    for key, value in given.items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value
    atomic_write_json(Path(run_dir) / STATUS_FILE, status)
    return status


def metrics_line(row: dict[str, Any]) -> str:
    """One line of ``metrics.jsonl`` (:data:`METRICS_ROW`), newline included."""
    return json.dumps(row) + "\n"


def write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Replace ``run_dir/metrics.jsonl`` by ``rows``, atomically. Raises OSError."""
    write_text(Path(run_dir) / METRICS_FILE, "".join(metrics_line(r) for r in rows))


def open_metrics(run_dir: Path) -> TextIO:
    """``run_dir/metrics.jsonl`` opened for appending (:func:`metrics_line` per row; the caller closes
    it). Raises OSError."""
    return open(Path(run_dir) / METRICS_FILE, "a", encoding="utf-8")


def read_json(path: Path) -> dict[str, Any] | None:
    """A small JSON object the job itself wrote (None when missing, unreadable or not an object)."""
    try:
        return read_json_object(path, MAX_RUN_JSON_BYTES)
    except UntrustedFileError:
        return None


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """``run_dir/status.json`` validated against :data:`STATUS_SCHEMA`; None when there is none (a run being
    made).

    Raises:
        UntrustedFileError: the file exists but is not a valid status (the message says why).
    """
    path = Path(run_dir) / STATUS_FILE
    if not os.path.lexists(path):
        return None
    raw = read_json_object(path, MAX_RUN_JSON_BYTES, "run status file")
    try:
        return check(raw, STATUS_SCHEMA)
    except SchemaError as err:
        raise UntrustedFileError(f"{STATUS_FILE}: not a run status file: {err}.") from err


def read_run_config(run_dir: Path) -> tuple[TrainConfig, dict[str, Any]]:
    """``run_dir/config.json`` validated (:data:`CONFIG_FILE_SCHEMA`, then the checks of its family's recipe
    class, :meth:`TrainConfig.from_dict`): the recipe and the options.

    Raises:
        UntrustedFileError: missing or invalid (the message says why).
    """
    raw = read_json_object(Path(run_dir) / CONFIG_FILE, MAX_RUN_JSON_BYTES, "run config file")
    try:
        checked = check(raw, CONFIG_FILE_SCHEMA)
        config = TrainConfig.from_dict(checked["config"])
    except (SchemaError, TypeError, ValueError) as err:
        raise UntrustedFileError(f"{CONFIG_FILE}: not a run config file: {err}") from err
    return config, {k: v for k, v in (checked.get("options") or {}).items() if v is not None}


def update_status(run_dir: Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into ``run_dir/status.json`` (a damaged file is read as what parses of it) and write
    it back atomically; returns the new status. Raises OSError."""
    try:
        status = read_status(run_dir) or {}
    except UntrustedFileError:
        status = read_json(run_dir / STATUS_FILE) or {}
    status.update(fields)
    atomic_write_json(run_dir / STATUS_FILE, status)
    return status


def _read_tail(path: Path, max_bytes: int) -> bytes:
    """The last ``max_bytes`` of a regular file (b"" when it is missing or not a regular file)."""
    try:
        size = regular_file_size(path)
        with open(path, "rb") as f:
            if size > max_bytes:
                f.seek(size - max_bytes)
                f.readline()  # start at a whole line
            return f.read(max_bytes)
    except (OSError, UntrustedFileError):
        return b""


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The lines of ``run_dir/metrics.jsonl`` as validated dicts (:data:`METRICS_ROW`), in order; a line that
    is not one (half-written, damaged, not UTF-8, a field out of range) is skipped, and of a very long file
    only the last :data:`MAX_METRICS_BYTES` are read. Extra keys are kept when they are numbers."""
    text = _read_tail(Path(run_dir, METRICS_FILE), MAX_METRICS_BYTES).decode("utf-8", errors="replace")
    rows = []
    known = set(METRICS_ROW.fields)
    for line in text.splitlines():
        try:
            row = check(parse_json(line), METRICS_ROW)
        except (ValueError, SchemaError):
            continue
        rows.append({k: v for k, v in row.items() if k in known or isinstance(v, int | float)})
    return rows


def read_preview(run_dir: Path) -> tuple[Any, int] | None:
    """The latest preview samples: (images as a float32 numpy array [n, 784] in [0, 1], epoch), or None
    when no epoch has finished yet (or the file cannot be read)."""
    import numpy as np
    from safetensors import SafetensorError, safe_open

    path = Path(run_dir, PREVIEW_FILE)
    try:
        if regular_file_size(path) > MAX_PREVIEW_BYTES:
            return None
        with safe_open(str(path), framework="np") as f:
            images = f.get_tensor("images")
            epoch = int((f.metadata() or {}).get("epoch", 0))
    except (OSError, SafetensorError, KeyError, ValueError, TypeError, UntrustedFileError):
        return None
    if (
        images.ndim != 2
        or images.shape[1] != PIXELS
        or not 1 <= images.shape[0] <= 64
        or not 0 <= epoch <= 10**6
    ):
        return None
    images = np.nan_to_num(images.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0).clip(0, 1)
    return images, epoch


def pid_alive(pid: int | None, start_ticks: int | None = None) -> bool:
    """Is process ``pid`` alive (not a zombie, and, where known, still the process that started then)?"""
    if not pid:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return False
        if fields[0] in ("Z", "X", "x"):
            return False
        return start_ticks is None or int(fields[19]) == int(start_ticks)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start_ticks(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


# ------------------------------------------------------------------------------------------------ runs


@dataclass
class RunProgress:
    """How far a run is: ``fraction`` of its steps in [0, 1], ``eta_s`` (seconds left, None before the first
    report), the latest epoch and step, and the seconds trained so far."""

    fraction: float
    eta_s: float | None
    epoch: int
    epochs: int
    step: int
    total_steps: int
    seconds: float


@dataclass
class RunInfo:
    """One run as read from disk: its id and folder, ``status.json``, and ``config.json``'s parts."""

    id: str
    path: Path
    status: dict[str, Any]
    config: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str:
        """One of :data:`STATES`."""
        return str(self.status.get("state", "failed"))

    @property
    def family(self) -> str:
        """The model family (``vae``, ``cvae``, ``gmvae``, ``vrnn``)."""
        return str(self.config.get("family", "?"))

    @property
    def label(self) -> str:
        """The family as the page names it, e.g. ``GMVAE (Gumbel)``."""
        return str(self.options.get("label") or self.family.upper())

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.state in ACTIVE_STATES

    @property
    def model_json(self) -> Path | None:
        """The trained model's JSON when the run is done (or was cancelled and kept its best epoch) and the
        file exists in the run's folder, else None."""
        name = self.status.get("model")
        if self.state not in ("done", "cancelled") or not name:
            return None
        try:
            path = inside(self.path, name, "model file")
        except UntrustedFileError:
            return None
        return path if path.is_file() else None

    @property
    def resumable(self) -> bool:
        """Interrupted or cancelled, with a checkpoint to continue from."""
        from explorer_core.training.checkpoint import has_checkpoint

        return self.state in ("interrupted", "cancelled") and has_checkpoint(self.path)

    def metrics(self) -> list[dict[str, Any]]:
        """See :func:`read_metrics`."""
        return read_metrics(self.path)

    def progress(self, metrics: list[dict[str, Any]] | None = None) -> RunProgress:
        """Progress and ETA from the latest metrics line (a done run is at 1)."""
        metrics = self.metrics() if metrics is None else metrics
        epochs = int(self.config.get("epochs", 1))
        if not metrics:
            return RunProgress(1.0 if self.state == "done" else 0.0, None, 0, epochs, 0, 0, 0.0)
        last = metrics[-1]
        step, total = int(last.get("step", 0)), max(int(last.get("total_steps", 1)), 1)
        seconds = float(last.get("seconds", 0.0))
        fraction = 1.0 if self.state == "done" else min(step / total, 1.0)
        eta = seconds / step * (total - step) if step and self.active else None
        return RunProgress(fraction, eta, int(last.get("epoch", 0)), epochs, step, total, seconds)


@dataclass
class RunProblem:
    """A folder under the runs root whose files are not a valid run: its id, folder, and one message
    (``"<id>/status.json: not a run status file: created must be a number ..."``)."""

    id: str
    path: Path
    message: str


def read_run(run_dir: Path) -> RunInfo | None:
    """The run in ``run_dir``, or None when it has no ``status.json`` (not a run, or being made).

    Raises:
        UntrustedFileError: ``status.json`` or ``config.json`` is not valid (the message says why).
    """
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    if status is None:
        return None
    config, options = read_run_config(run_dir)
    return RunInfo(run_dir.name, run_dir, status, config.to_dict(), options)


def scan_runs(root: Path | None = None) -> tuple[list[RunInfo], list[RunProblem]]:
    """Every valid run under ``root`` (default :func:`runs_root`), newest first, and every folder that has a
    ``status.json`` but is not a valid run (see :class:`RunProblem`)."""
    root = Path(root) if root is not None else runs_root()
    runs: list[RunInfo] = []
    problems: list[RunProblem] = []
    try:
        folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.is_symlink())
    except OSError:
        return [], []
    for d in folders:
        try:
            run = read_run(d)
        except UntrustedFileError as err:
            problems.append(RunProblem(d.name, d, f"{d.name}/{err}"))
            continue
        if run is not None:
            runs.append(run)
    runs.sort(key=lambda r: (r.status.get("created", 0), r.id), reverse=True)
    return runs, problems


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Every valid run under ``root`` (default :func:`runs_root`), newest first (see :func:`scan_runs`)."""
    return scan_runs(root)[0]


def done_models(family: str | None = None, root: Path | None = None) -> list[dict[str, Any]]:
    """The validated JSON descriptions of the models of finished runs (``done``, or ``cancelled`` with their
    best epoch kept), as ``list_models`` gives them (with ``path`` set, plus ``run_id``), optionally of one
    family, newest run first. A run's model file that is not valid is listed with an ``error`` entry."""
    found = []
    for run in list_runs(root):
        path = run.model_json
        if path is None:
            continue
        try:
            meta = read_model_description(path)
        except ArtifactError as err:
            meta = bad_model_entry(path, f"{run.id}/{err}")
            if family is not None and meta["family"] not in (None, family):
                continue
        else:
            if family is not None and meta.get("family") != family:
                continue
        meta["run_id"] = run.id
        found.append(meta)
    return found


def clean_stale_temp_files(root: Path) -> list[Path]:
    """Remove the temporary files (``.<name>.tmp-<pid>...``) a killed writer left in ``root`` and its run
    folders, when the process that wrote them is gone; returns what was removed."""
    removed = []
    root = Path(root)
    try:
        folders = [root, *(d for d in root.iterdir() if d.is_dir() and not d.is_symlink())]
    except OSError:
        return []
    for folder in folders:
        try:
            candidates = list(folder.glob(".*.tmp-*"))
        except OSError:
            continue
        for path in candidates:
            pid_text = path.name.rsplit(".tmp-", 1)[1].split("-", 1)[0]
            pid = int(pid_text) if pid_text.isdigit() else None
            if pid is not None and pid != os.getpid() and pid_alive(pid):
                continue
            if pid == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if path.is_file() or path.is_symlink():
                    path.unlink()
                    removed.append(path)
    return removed
