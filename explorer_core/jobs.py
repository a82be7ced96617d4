"""Background training jobs: one process per run, a manager per server, everything on disk under ``runs/``.

A job runs :func:`explorer_core.training.train` (the CLI's trainer) in its own process (multiprocessing's
``spawn`` context), so a crash or an out-of-memory kill never takes the server down. Each run lives in
``<root>/<id>/``:

* ``config.json``: the :class:`~explorer_core.training.TrainConfig` (``"config"``) and the job's options.
* ``status.json``: ``state`` (one of :data:`STATES`), timestamps (Unix seconds), ``pid``, the device, and for
  a failed run the error text and its traceback. Written atomically (temporary name + rename).
* ``metrics.jsonl``: one JSON object per logged step (``kind="step"``: train ELBO, a running mean over the
  epoch) and per epoch (``kind="epoch"``: train and validation ELBO plus the family's own metrics, such as
  the GMVAE's ``cluster_accuracy``). Nats per image.
* ``preview.safetensors``: 16 images from the model after the latest epoch (``images`` [16, 784] in [0, 1]).
* ``<id>.safetensors`` + ``<id>.json``: the final model, in the format of ``pretrained/`` (written by
  :func:`explorer_core.artifacts.save_model`, atomically, the JSON last).
* ``cancel``: present once a cancel was asked for. A cancelled run ends its current epoch's steps, keeps its
  best epoch, evaluates it and publishes it like a done one (state ``cancelled``, with ``model`` set).
* ``checkpoint.json`` + ``checkpoint-<epoch>.safetensors``: the trainer's per-epoch checkpoint
  (:mod:`explorer_core.checkpoint`); an interrupted or cancelled run continues from it
  (:meth:`JobManager.resume`).

Every file of a run is untrusted input when read back (a run folder may have been edited or damaged):
``status.json``, ``config.json`` and each line of ``metrics.jsonl`` are parsed into validated schemas
(:data:`STATUS_SCHEMA`, :data:`CONFIG_FILE_SCHEMA`, :data:`METRICS_ROW`); a run whose files do not fit is
listed as a :class:`RunProblem` with one message, and the others go on working.

The root is ``AEVB_RUNS_DIR`` (default ``<repo>/runs``). :class:`JobManager` starts, queues (bounded
concurrency per device), cancels (cooperatively through the ``cancel`` file, then SIGTERM, then SIGKILL),
deletes and lists runs by reading the root; after a restart it finds every run again and marks one whose
process is gone as ``interrupted``. Nothing here imports Streamlit.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import sys
import threading
import time
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from explorer_core.artifacts import (
    ABSURD_NATS,
    RECIPE_FIELDS,
    ArtifactError,
    bad_model_entry,
    read_model_description,
)
from explorer_core.families import PIXELS, model_family
from explorer_core.training import TrainConfig, TrainingError, TrainingProgress
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
DEFAULT_RUNS_DIR = Path(__file__).resolve().parent.parent / "runs"
STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE_STATES = ("queued", "running")
PREVIEW_FILE = "preview.safetensors"
PREVIEW_COUNT = 16
#: seconds a cooperative cancel may take before the process gets SIGTERM, then SIGKILL after as long again
CANCEL_GRACE_S = 20.0
#: bytes a fresh worker process with torch loaded takes on the CPU, on top of the estimate
CPU_PROCESS_OVERHEAD = 400 * 2**20
#: a configuration is rejected when its estimate is above this fraction of the available memory
MEMORY_FRACTION = 0.8
MNIST_TRAIN = 60_000
MNIST_TEST = 10_000
#: seconds a cancelled run may take to evaluate and save its best epoch once it has seen the cancel
FINISH_GRACE_S = 600.0
#: runs waiting in the queue at most (a start beyond it is refused)
MAX_QUEUED = 8
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
#: ``config.json``: the recipe (every field of ``TrainConfig``, typed and bounded) and the job's options
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


class _Terminated(BaseException):
    """Raised inside the worker by its SIGTERM handler."""


# ------------------------------------------------------------------------------------------------ files


def runs_root() -> Path:
    """The runs folder: ``AEVB_RUNS_DIR`` when set (``~`` expanded), else ``<repo>/runs``."""
    value = os.environ.get(ENV_RUNS_DIR, "").strip()
    return Path(value).expanduser() if value else DEFAULT_RUNS_DIR


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to a temporary name beside ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
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
    path = Path(run_dir) / "status.json"
    if not os.path.lexists(path):
        return None
    raw = read_json_object(path, MAX_RUN_JSON_BYTES, "run status file")
    try:
        return check(raw, STATUS_SCHEMA)
    except SchemaError as err:
        raise UntrustedFileError(f"status.json: not a run status file: {err}.") from err


def read_run_config(run_dir: Path) -> tuple[TrainConfig, dict[str, Any]]:
    """``run_dir/config.json`` validated (:data:`CONFIG_FILE_SCHEMA`, then ``TrainConfig``'s own checks):
    the recipe and the options.

    Raises:
        UntrustedFileError: missing or invalid (the message says why).
    """
    raw = read_json_object(Path(run_dir) / "config.json", MAX_RUN_JSON_BYTES, "run config file")
    try:
        checked = check(raw, CONFIG_FILE_SCHEMA)
        config = TrainConfig(**checked["config"])
    except (SchemaError, TypeError, ValueError) as err:
        raise UntrustedFileError(f"config.json: not a run config file: {err}") from err
    return config, {k: v for k, v in (checked.get("options") or {}).items() if v is not None}


def _update_status(run_dir: Path, **fields: Any) -> dict[str, Any]:
    try:
        status = read_status(run_dir) or {}
    except UntrustedFileError:
        status = _read_json(run_dir / "status.json") or {}
    status.update(fields)
    _atomic_write_json(run_dir / "status.json", status)
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
    text = _read_tail(Path(run_dir, "metrics.jsonl"), MAX_METRICS_BYTES).decode("utf-8", errors="replace")
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


def _pid_alive(pid: int | None, start_ticks: int | None = None) -> bool:
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


def _start_ticks(pid: int) -> int | None:
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
        from explorer_core.checkpoint import has_checkpoint

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
            if pid is not None and pid != os.getpid() and _pid_alive(pid):
                continue
            if pid == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if path.is_file() or path.is_symlink():
                    path.unlink()
                    removed.append(path)
    return removed


# ------------------------------------------------------------------------------------------------ memory


@dataclass(frozen=True)
class MemoryEstimate:
    """A rough upper estimate of what a training run holds at once, in bytes.

    ``parameter_bytes``: weights, gradients, Adam's two moments and the best epoch's copy (5 x 4 bytes per
    parameter); ``activation_bytes``: one minibatch's forward values and their gradients; ``data_bytes``: the
    training images (uint8 and one preprocessed float32 copy), the validation and test images (float32),
    plus, on the CPU, a worker process's own footprint.
    """

    parameters: int
    parameter_bytes: int
    activation_bytes: int
    data_bytes: int

    @property
    def total_bytes(self) -> int:
        """The sum of the three parts."""
        return self.parameter_bytes + self.activation_bytes + self.data_bytes


def count_parameters(config: TrainConfig) -> int:
    """The number of trainable parameters of ``config``'s model, counted without allocating them (the
    module is built on PyTorch's ``meta`` device)."""
    from explorer_core.artifacts import build_model

    with torch.device("meta"):
        model = build_model(config.family, config.model_config())
    return sum(p.numel() for p in model.parameters())


def estimate_memory(config: TrainConfig, n_train: int | None = None, device: str = "cpu") -> MemoryEstimate:
    """Estimate the memory a run of ``config`` needs on ``device`` (see :class:`MemoryEstimate`).

    Args:
        n_train: training images (default: MNIST's 60,000 minus ``config.n_validation``).
    """
    n_train = MNIST_TRAIN - config.n_validation if n_train is None else int(n_train)
    params = count_parameters(config)
    per_example = model_family(config.family).activations_per_example(config)  # pre- and post-activation
    activations = 2 * 4 * per_example * config.batch_size  # values and their gradients, float32
    data = n_train * PIXELS * 5 + (config.n_validation + MNIST_TEST) * PIXELS * 4
    if torch.device(device).type == "cpu":
        data += CPU_PROCESS_OVERHEAD
    return MemoryEstimate(params, 5 * 4 * params, activations, data)


def available_memory(device: str = "cpu") -> int | None:
    """Free bytes on ``device``: ``MemAvailable`` of /proc/meminfo for the CPU (else None), the CUDA
    driver's free memory for a GPU, None where unknown (MPS)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return int(free)
    if dev.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
    return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def validate_config(
    config: TrainConfig | dict[str, Any], device: str = "cpu", n_train: int | None = None
) -> TrainConfig:
    """Check a configuration before a job starts: every value (``TrainConfig``'s checks) and the memory
    estimate against what ``device`` has free (at most :data:`MEMORY_FRACTION` of it).

    Returns:
        The validated :class:`TrainConfig`.

    Raises:
        ConfigRejectedError: an unknown field, an invalid value, or too much memory; the message says which.
    """
    if not isinstance(config, TrainConfig):
        try:
            given = dict(config)
            unknown = sorted(set(given) - set(RECIPE_FIELDS))
            if unknown:
                raise TypeError(f"TrainConfig.__init__() got an unexpected keyword argument {unknown[0]!r}")
            if isinstance(given.get("hidden"), tuple):
                given["hidden"] = list(given["hidden"])
            checked = check(given, Obj(RECIPE_FIELDS, required=frozenset({"family"}), extra="reject"))
            config = TrainConfig(**checked)
        except TypeError as err:
            raise ConfigRejectedError(f"not a training configuration: {err}") from err
        except (SchemaError, ValueError) as err:
            raise ConfigRejectedError(str(err)) from err
    else:
        try:  # a TrainConfig built in code (the CLI): the same types and ranges as a JSON one
            check(config.to_dict(), Obj(RECIPE_FIELDS, required=frozenset({"family"}), extra="reject"))
        except SchemaError as err:
            raise ConfigRejectedError(str(err)) from err
    estimate = estimate_memory(config, n_train, device)
    free = available_memory(device)
    if free is not None and estimate.total_bytes > MEMORY_FRACTION * free:
        raise ConfigRejectedError(
            f"this configuration needs about {_gib(estimate.total_bytes)} on {device} "
            f"({estimate.parameters:,} parameters: {_gib(estimate.parameter_bytes)} with gradients and Adam "
            f"state; activations of a batch of {config.batch_size}: {_gib(estimate.activation_bytes)}; "
            f"data: {_gib(estimate.data_bytes)}), but only {_gib(free)} is free. Use fewer or narrower "
            "hidden layers, a smaller batch or a smaller latent space."
        )
    return config


# ------------------------------------------------------------------------------------------------ worker


def preview_images(model, family: str, n: int = PREVIEW_COUNT, seed: int = 0) -> torch.Tensor:
    """``n`` images from ``model`` with fixed noise (the same across epochs), [n, 784] float32 in [0, 1] on
    the CPU: the family's ``preview`` (:mod:`explorer_core.families`): the decoder's Bernoulli/CB parameter
    at z from the prior (the CVAE cycles the labels 0..9), the GMVAE's samples cycling the clusters, the
    VRNN's row-by-row means."""
    preview = model_family(family).preview
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            images = preview(model, n, generator)
    finally:
        model.train(was_training)
    return images.detach().float().reshape(n, -1).clamp(0, 1).cpu()


def _write_preview(run_dir: Path, images: torch.Tensor, epoch: int) -> None:
    from safetensors.torch import save_file

    path = run_dir / PREVIEW_FILE
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file({"images": images.contiguous()}, str(tmp), metadata={"epoch": str(epoch)})
    os.replace(tmp, path)


def _worker_threads() -> int:
    """CPU threads for a job: 1 on a machine with at most 2 cores, else all but one."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else cores - 1


def _load_splits(config: TrainConfig, data_limit: int | None):
    from explorer_core.data import MNISTSplits, load_mnist_splits

    splits = load_mnist_splits(config.n_validation)
    if not data_limit:
        return splits
    k = int(data_limit)
    return MNISTSplits(
        splits.x_train[:k],
        splits.y_train[:k],
        splits.x_val[:k],
        splits.y_val[:k],
        splits.x_test[:k],
        splits.y_test[:k],
        checksums=splits.checksums,
    )


def _raise_terminated(signum, frame) -> None:
    raise _Terminated()


def check_elbo(value: float | None, what: str) -> None:
    """Refuse an ELBO that no trained model has: not finite, or beyond :data:`ABSURD_NATS` nats per image.

    Raises:
        TrainingError: the message says that training diverged (as a NaN step does).
    """
    if value is None or not math.isfinite(value) or abs(value) > ABSURD_NATS:
        raise TrainingError(
            f"the {what} became {value:.4g} nats per image: training diverged and nothing is published. "
            "Try a smaller learning rate."
            if isinstance(value, int | float)
            else f"the {what} is missing: training diverged and nothing is published."
        )


def _truncate_metrics(run: Path, epoch: int, step: int) -> None:
    """Keep the metrics lines up to the checkpoint (epoch ``epoch``, step ``step``) before a resumed sitting
    writes its own: the steps of an epoch cut short are trained again."""
    path = run / "metrics.jsonl"
    kept = [
        json.dumps(row)
        for row in read_metrics(run)
        if row["step"] <= step and (row["kind"] == "step" or row["epoch"] <= epoch)
    ]
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)


def _remove_checkpoint(run: Path) -> None:
    for path in [run / "checkpoint.json", *run.glob("checkpoint-*.safetensors")]:
        with contextlib.suppress(OSError):
            path.unlink()


def _worker(run_dir: str, device: str, options: dict[str, Any]) -> None:
    """The job process: train the run's config on ``device`` (checkpointing every epoch into the run's
    folder, or continuing from that checkpoint when the status asks to ``resume``) and leave a final state
    in ``status.json``. A cancel ends the current epoch's steps; the best epoch is then evaluated and
    published (state ``cancelled``, with its model)."""
    from explorer_core.checkpoint import read_checkpoint_description
    from explorer_core.training import train

    run = Path(run_dir)
    signal.signal(signal.SIGTERM, _raise_terminated)
    cancel_file = run / "cancel"
    cancelled = [False]
    try:
        if torch.device(device).type == "cpu":
            torch.set_num_threads(_worker_threads())
        if options.get("nice"):
            os.nice(int(options["nice"]))
        config, _options = read_run_config(run)
        resume = bool((read_status(run) or {}).get("resume"))
        if resume:
            described = read_checkpoint_description(run)
            _truncate_metrics(run, int(described["epoch"]), int(described.get("step") or 0))
            _update_status(run, resumed_from=int(described["epoch"]))
        splits = _load_splits(config, options.get("data_limit"))
        steps_per_epoch = math.ceil(len(splits.x_train) / config.batch_size)
        log_every = int(options.get("log_every") or max(1, steps_per_epoch // 25))
        metrics = open(run / "metrics.jsonl", "a")  # noqa: SIM115 (kept open for the whole run)
        last_check = [0.0]

        def progress(p: TrainingProgress) -> None:
            row = {
                "kind": p.kind,
                "epoch": p.epoch,
                "step": p.step,
                "total_steps": p.total_steps,
                "train_elbo": p.train_elbo if math.isfinite(p.train_elbo) else None,
                "val_elbo": p.val_elbo if p.val_elbo is None or math.isfinite(p.val_elbo) else None,
                "seconds": round(p.seconds, 3),
                "time": time.time(),
                **{k: v for k, v in p.extra.items() if not isinstance(v, float) or math.isfinite(v)},
            }
            metrics.write(json.dumps(row) + "\n")
            metrics.flush()
            if p.kind == "epoch":
                check_elbo(p.val_elbo, f"validation ELBO after epoch {p.epoch}")

        def should_stop() -> bool:
            if cancelled[0]:
                return True
            now = time.monotonic()
            if now - last_check[0] > 0.2:
                last_check[0] = now
                if cancel_file.exists():
                    cancelled[0] = True
                    _update_status(
                        run, finishing=True, message="cancel asked: evaluating and saving the best epoch"
                    )
                    return True
            return False

        def on_epoch(model, epoch: int) -> None:
            _write_preview(run, preview_images(model, config.family), epoch)

        with metrics:
            path = train(
                config,
                run,
                run.name,
                progress=progress,
                device=torch.device(device),
                splits=splits,
                log_every=log_every,
                should_stop=should_stop,
                on_epoch=on_epoch,
                run_dir=run,
                resume=resume,
            )
        meta = _read_json(path) or {}
        training = meta.get("training") or {}
        test_elbo = (meta.get("test_metrics") or {}).get("elbo")
        check_elbo(training.get("best_val_elbo"), "best validation ELBO")
        check_elbo(test_elbo, "test ELBO")
        done = {
            "finished": time.time(),
            "model": path.name,
            "test_elbo": test_elbo,
            "best_epoch": training.get("best_epoch"),
            "epochs_run": training.get("epochs_run"),
            "finishing": None,
        }
        if cancelled[0]:
            best = training.get("best_epoch")
            _update_status(
                run,
                state="cancelled",
                message=f"cancelled on request; its best epoch ({best}) was kept",
                **done,
            )
        else:
            _remove_checkpoint(run)  # a finished run is not continued: its checkpoint only takes space
            _update_status(run, state="done", message=training.get("stopped"), **done)
    except _Terminated:
        if cancel_file.exists():
            _update_status(run, state="cancelled", finished=time.time(), message="cancelled (terminated)")
        else:
            _update_status(
                run,
                state="interrupted",
                finished=time.time(),
                error="the training process was stopped (SIGTERM), for example because the server shut down",
            )
    except BaseException as err:  # every failure is recorded for the page
        _update_status(
            run,
            state="failed",
            finished=time.time(),
            error=f"{type(err).__name__}: {err}",
            traceback=traceback.format_exc(),
        )
    finally:
        # the final state is written: a late SIGTERM (a cancel escalating, the server exiting) now just ends
        # the process instead of raising into the interpreter's shutdown
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


# ------------------------------------------------------------------------------------------------ manager

_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _bare_main():
    """Hide the parent's ``__main__`` while a job process is started.

    The ``spawn`` start method re-runs the parent's main module in the child when it has a file. Under
    Streamlit ``sys.modules["__main__"]`` is the app script (``app.py``), so every job would first run the
    whole app in bare mode (slow, and it would build a job manager of its own). With a stub main module (no
    file, no spec) the child imports only what unpickling ``_worker`` needs.
    """
    with _MAIN_LOCK:
        saved = sys.modules.get("__main__")
        stub = types.ModuleType("__main__")
        stub.__spec__ = None
        sys.modules["__main__"] = stub
        try:
            yield
        finally:
            if saved is not None:
                sys.modules["__main__"] = saved


class JobManager:
    """Starts, queues, cancels, deletes and lists the training runs under one root (one manager per server).

    A daemon thread (``tick`` every ``poll_s`` seconds) reaps finished processes, marks runs whose process
    is gone as ``interrupted``, escalates cancels that take too long, and starts queued runs while fewer
    than ``concurrency`` run on the device. It never touches Streamlit.

    Args:
        root: the runs folder (default :func:`runs_root`).
        device: the torch device string jobs train on (default: :func:`explorer_core.device.pick_device`).
        concurrency: runs at once on the device.
        supervise: start the supervising thread (tests may call :meth:`tick` themselves).
        nice: niceness increment of job processes (so the UI's threads win the CPU).
    """

    def __init__(
        self,
        root: Path | None = None,
        device: str | None = None,
        concurrency: int = 1,
        poll_s: float = 0.5,
        cancel_grace_s: float = CANCEL_GRACE_S,
        supervise: bool = True,
        nice: int = 5,
    ):
        from explorer_core.device import pick_device

        self.root = Path(root) if root is not None else runs_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.device = str(device or pick_device())
        self.concurrency = max(1, int(concurrency))
        self.cancel_grace_s = float(cancel_grace_s)
        self.nice = int(nice)
        self._ctx = mp.get_context("spawn")
        self._procs: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self.max_queued = MAX_QUEUED
        clean_stale_temp_files(self.root)
        self.tick()
        self._thread = None
        if supervise:
            self._thread = threading.Thread(
                target=self._supervise, args=(poll_s,), name="aevb-job-manager", daemon=True
            )
            self._thread.start()

    # -- public

    def start(
        self,
        config: TrainConfig | dict[str, Any],
        label: str | None = None,
        preset: str | None = None,
        data_limit: int | None = None,
        log_every: int | None = None,
    ) -> str:
        """Validate ``config`` and queue a run (it starts at once when a slot is free); returns its id.

        Args:
            label: how the page names the family (default: its name in capitals).
            preset: the preset it started from (shown only).
            data_limit: use only the first ``data_limit`` images of each split (tests, demos).
            log_every: steps between step reports (default about 25 per epoch).

        Raises:
            ConfigRejectedError: see :func:`validate_config`; or the queue already holds ``max_queued`` runs.
        """
        n_train = None
        if data_limit:
            n_train = min(int(data_limit), MNIST_TRAIN)
        config = validate_config(config, self.device, n_train)
        waiting = sum(1 for r in self.runs() if r.state == "queued")
        if waiting >= self.max_queued:
            raise ConfigRejectedError(
                f"{waiting} runs are already waiting in the queue; start this one when one of them has run."
            )
        slug = model_family(config.family).choice_for(config).run_slug
        run_id = f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        run_dir = self.root / run_id
        run_dir.mkdir(parents=True)
        options = {
            "label": label or config.family.upper(),
            "preset": preset,
            "data_limit": data_limit,
            "log_every": log_every,
            "nice": self.nice,
        }
        _atomic_write_json(run_dir / "config.json", {"config": config.to_dict(), "options": options})
        _atomic_write_json(
            run_dir / "status.json", {"state": "queued", "created": time.time(), "device": self.device}
        )
        self.tick()
        return run_id

    def runs(self) -> list[RunInfo]:
        """Every valid run, newest first (read from disk)."""
        return list_runs(self.root)

    def problems(self) -> list[RunProblem]:
        """The folders of the runs root that are not valid runs (see :func:`scan_runs`)."""
        return scan_runs(self.root)[1]

    def _folder(self, run_id: str) -> Path:
        ok = isinstance(run_id, str) and run_id and "/" not in run_id and run_id not in (".", "..")
        folder = self.root / run_id if ok else None
        if folder is None or not folder.is_dir() or folder.is_symlink():
            raise JobError(f"no run {run_id!r}.")
        return folder

    def get(self, run_id: str) -> RunInfo:
        """The run ``run_id``.

        Raises:
            JobError: no such run, or its files are not valid.
        """
        try:
            run = read_run(self._folder(run_id))
        except UntrustedFileError as err:
            raise JobError(f"run {run_id}: {err}") from err
        if run is None:
            raise JobError(f"no run {run_id!r}.")
        return run

    def resume(self, run_id: str) -> None:
        """Queue an interrupted or cancelled run again, to continue from its checkpoint (the trainer's
        ``resume=True``); it keeps its id and folder, and its learning curves go on where the checkpoint is.

        Raises:
            JobError: no such run, a run in another state, or no valid checkpoint.
        """
        from explorer_core.checkpoint import CheckpointError, read_checkpoint_description

        with self._lock:
            run = self.get(run_id)
            if run.state not in ("interrupted", "cancelled"):
                raise JobError(
                    f"run {run_id} is {run.state}; only an interrupted or cancelled run is resumed."
                )
            try:
                described = read_checkpoint_description(run.path)
            except CheckpointError as err:
                raise JobError(f"run {run_id} cannot be resumed: {err}") from err
            if described.get("recipe") != run.config:
                raise JobError(f"run {run_id} cannot be resumed: its checkpoint belongs to another recipe.")
            waiting = sum(1 for r in self.runs() if r.state == "queued")
            if waiting >= self.max_queued:
                raise JobError(f"{waiting} runs are already waiting in the queue; resume this one later.")
            for name in ("cancel", "claim"):
                with contextlib.suppress(FileNotFoundError):
                    (run.path / name).unlink()
            status = {
                k: v for k, v in run.status.items() if k in ("created", "device", "started") and v is not None
            }
            status.update(state="queued", resume=True, queued_at=time.time(), resumed_from=described["epoch"])
            _atomic_write_json(run.path / "status.json", status)
        self.tick()

    def cancel(self, run_id: str) -> None:
        """Ask run ``run_id`` to stop: a queued run is cancelled at once; a running one finds the cancel file
        within a step, and gets SIGTERM after ``cancel_grace_s`` (SIGKILL after twice that). A finished run
        is left alone.

        Raises:
            JobError: no such run.
        """
        with self._lock:
            run = self.get(run_id)
            if not run.active:
                return
            (run.path / "cancel").write_text(str(time.time()))
            if run.state == "queued" and self._claim(run.path):
                _update_status(
                    run.path, state="cancelled", finished=time.time(), message="cancelled in the queue"
                )

    def delete(self, run_id: str) -> None:
        """Remove run ``run_id``'s folder (its model disappears from the pickers).

        Raises:
            JobError: no such run, or it is still queued or running (cancel it first).
        """
        with self._lock:
            folder = self._folder(run_id)
            if not os.path.lexists(folder / "status.json"):
                raise JobError(f"{run_id!r} is not a run (no status.json): left alone.")
            try:
                run = read_run(folder)
            except UntrustedFileError:
                run = None  # a damaged run can always be deleted
            if run is not None and run.active:
                raise JobError(f"run {run_id} is {run.state}; cancel it before deleting it.")
            shutil.rmtree(folder)

    def wait(self, run_id: str, timeout_s: float = 120.0, poll_s: float = 0.2) -> RunInfo:
        """Block until run ``run_id`` is no longer queued or running; returns it.

        Raises:
            TimeoutError: still active after ``timeout_s`` seconds.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            if self._thread is None:
                self.tick()
            run = self.get(run_id)
            if not run.active:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run.state} after {timeout_s} s.")
            time.sleep(poll_s)

    def close(self) -> None:
        """Stop the supervising thread (running jobs go on; a new manager picks them up)."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def tick(self) -> None:
        """One supervision pass: reap, recover, escalate cancels, start queued runs."""
        with self._lock:
            for run_id, proc in list(self._procs.items()):
                if proc.exitcode is not None:
                    proc.join(0)
                    del self._procs[run_id]
                    self._settle(self.root / run_id, proc.exitcode)
            running = 0
            queued: list[RunInfo] = []
            for run in self.runs():
                if run.state == "running":
                    alive = _pid_alive(run.status.get("pid"), run.status.get("pid_start"))
                    if run.id in self._procs or alive:
                        self._escalate_cancel(run)
                        if run.status.get("device") == self.device:
                            running += 1
                    else:
                        self._settle(run.path, None)
                elif run.state == "queued" and not (run.path / "claim").exists():
                    queued.append(run)
                elif run.state == "queued":  # claimed but never marked running: its starter died
                    pid = run.status.get("pid")
                    if pid is None or not _pid_alive(pid, run.status.get("pid_start")):
                        claimed = (run.path / "claim").stat().st_mtime if (run.path / "claim").exists() else 0
                        if time.time() - claimed > 30:
                            self._settle(run.path, None)
            for run in sorted(queued, key=lambda r: r.status.get("queued_at") or r.status.get("created", 0)):
                if running >= self.concurrency:
                    break
                if self._spawn(run):
                    running += 1

    # -- internals

    def _supervise(self, poll_s: float) -> None:
        while not self._closed.wait(poll_s):
            try:
                self.tick()
            except Exception:  # the supervisor must outlive a bad folder
                traceback.print_exc()

    @staticmethod
    def _claim(run_dir: Path) -> bool:
        try:
            fd = os.open(run_dir / "claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True

    def _spawn(self, run: RunInfo) -> bool:
        if not self._claim(run.path):
            return False
        options = dict(run.options)
        proc = self._ctx.Process(
            target=_worker,
            args=(str(run.path), self.device, options),
            name=f"aevb-job-{run.id}",
            daemon=True,
        )
        with _bare_main():
            proc.start()
        self._procs[run.id] = proc
        _update_status(
            run.path,
            state="running",
            started=time.time(),
            pid=proc.pid,
            pid_start=_start_ticks(proc.pid),
            device=self.device,
            threads=_worker_threads() if torch.device(self.device).type == "cpu" else None,
        )
        return True

    def _settle(self, run_dir: Path, exitcode: int | None) -> None:
        """A run's process is gone: leave its own final state, or mark it cancelled / interrupted."""
        try:
            status = read_status(run_dir)
        except UntrustedFileError:
            return
        if status is None or status.get("state") not in ACTIVE_STATES:
            return
        if (run_dir / "cancel").exists():
            _update_status(run_dir, state="cancelled", finished=time.time(), message="cancelled (stopped)")
            return
        if exitcode is None:
            why = "its process is gone (the server restarted, or the process was killed)"
        elif exitcode < 0:
            try:
                name = signal.Signals(-exitcode).name
            except ValueError:
                name = f"signal {-exitcode}"
            why = f"its process was killed by {name}" + (
                " (often the out-of-memory killer)" if name == "SIGKILL" else ""
            )
        else:
            why = f"its process exited with code {exitcode} before reporting a result"
        _update_status(run_dir, state="interrupted", finished=time.time(), error=f"Training stopped: {why}.")

    def _escalate_cancel(self, run: RunInfo) -> None:
        cancel = run.path / "cancel"
        if not cancel.exists():
            return
        try:
            age = time.time() - cancel.stat().st_mtime
        except OSError:
            return
        # a run that saw the cancel is evaluating its best epoch: it gets longer before SIGTERM
        grace = (
            max(self.cancel_grace_s, FINISH_GRACE_S) if run.status.get("finishing") else self.cancel_grace_s
        )
        if age < grace:
            return
        sig = signal.SIGKILL if age > 2 * grace else signal.SIGTERM
        proc = self._procs.get(run.id)
        pid = proc.pid if proc is not None else run.status.get("pid")
        if pid and _pid_alive(pid, run.status.get("pid_start")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def eta_text(seconds: float | None) -> str:
    """``"about 1 min 20 s left"`` (``"estimating…"`` for None)."""
    if seconds is None:
        return "estimating…"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"about {seconds} s left"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"about {minutes} min {sec:02d} s left"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes:02d} min left"
