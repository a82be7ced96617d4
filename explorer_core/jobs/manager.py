"""The job manager of a server: starts, queues (bounded concurrency per device), cancels, resumes and deletes
runs, and finds every run again after a restart."""

from __future__ import annotations

import contextlib
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
from pathlib import Path
from typing import Any

import torch

from explorer_core.data import MNIST_TRAIN
from explorer_core.families import model_family
from explorer_core.jobs.memory import validate_config
from explorer_core.jobs.store import (
    ACTIVE_STATES,
    CANCEL_FILE,
    CLAIM_FILE,
    STATUS_FILE,
    ConfigRejectedError,
    JobError,
    RunInfo,
    RunProblem,
    clean_stale_temp_files,
    create_run,
    list_runs,
    pid_alive,
    process_start_ticks,
    read_run,
    read_status,
    runs_root,
    scan_runs,
    update_status,
    write_status,
)
from explorer_core.jobs.worker import worker_main, worker_threads
from explorer_core.training.recipes import TrainConfig
from explorer_core.untrusted import (
    UntrustedFileError,
)

#: seconds a cooperative cancel may take before the process gets SIGTERM, then SIGKILL after as long again
CANCEL_GRACE_S = 20.0
#: seconds a cancelled run may take to evaluate and save its best epoch once it has seen the cancel
FINISH_GRACE_S = 600.0
#: runs waiting in the queue at most (a start beyond it is refused)
MAX_QUEUED = 8


# ------------------------------------------------------------------------------------------------ manager

_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _bare_main():
    """Hide the parent's ``__main__`` while a job process is started.

    The ``spawn`` start method re-runs the parent's main module in the child when it has a file. Under
    Streamlit ``sys.modules["__main__"]`` is the app script (``app.py``), so every job would first run the
    whole app in bare mode (slow, and it would build a job manager of its own). With a stub main module (no
    file, no spec) the child imports only what unpickling ``worker_main`` needs.
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
        crash_after_epoch: int | None = None,
    ) -> str:
        """Validate ``config`` and queue a run (it starts at once when a slot is free); returns its id.

        Args:
            label: how the page names the family (default: its name in capitals).
            preset: the preset it started from (shown only).
            data_limit: use only the first ``data_limit`` images of each split (tests, demos).
            log_every: steps between step reports (default about 25 per epoch).
            crash_after_epoch: (tests) the worker kills itself with SIGKILL, as a server crash would, once
                this epoch's checkpoint is written, at its first step of the next epoch; the run is then
                interrupted, whatever the machine's speed.

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
        slug = model_family(config.family).variant_for(config).run_slug
        run_id = f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        options = {
            "label": label or config.family.upper(),
            "preset": preset,
            "data_limit": data_limit,
            "log_every": log_every,
            "nice": self.nice,
        }
        if crash_after_epoch is not None:
            options["crash_after_epoch"] = int(crash_after_epoch)
        run_dir = create_run(self.root, run_id, config, options)
        write_status(run_dir, {"state": "queued", "created": time.time(), "device": self.device})
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
        from explorer_core.training.checkpoint import CheckpointError, read_checkpoint_description

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
            try:  # both as today's recipe class reads them (a recipe from before the per-family fields too)
                recorded = TrainConfig.from_dict(described.get("recipe") or {}).to_dict()
            except (TypeError, ValueError) as err:
                raise JobError(f"run {run_id} cannot be resumed: its checkpoint's recipe: {err}") from err
            if recorded != run.config:
                raise JobError(f"run {run_id} cannot be resumed: its checkpoint belongs to another recipe.")
            waiting = sum(1 for r in self.runs() if r.state == "queued")
            if waiting >= self.max_queued:
                raise JobError(f"{waiting} runs are already waiting in the queue; resume this one later.")
            for name in (CANCEL_FILE, CLAIM_FILE):
                with contextlib.suppress(FileNotFoundError):
                    (run.path / name).unlink()
            status = {
                k: v for k, v in run.status.items() if k in ("created", "device", "started") and v is not None
            }
            status.update(state="queued", resume=True, queued_at=time.time(), resumed_from=described["epoch"])
            write_status(run.path, status)
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
            (run.path / CANCEL_FILE).write_text(str(time.time()))
            if run.state == "queued" and self._claim(run.path):
                update_status(
                    run.path, state="cancelled", finished=time.time(), message="cancelled in the queue"
                )

    def delete(self, run_id: str) -> None:
        """Remove run ``run_id``'s folder (its model disappears from the pickers).

        Raises:
            JobError: no such run, or it is still queued or running (cancel it first).
        """
        with self._lock:
            folder = self._folder(run_id)
            if not os.path.lexists(folder / STATUS_FILE):
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
                    alive = pid_alive(run.status.get("pid"), run.status.get("pid_start"))
                    if run.id in self._procs or alive:
                        self._escalate_cancel(run)
                        if run.status.get("device") == self.device:
                            running += 1
                    else:
                        self._settle(run.path, None)
                elif run.state == "queued" and not (run.path / CLAIM_FILE).exists():
                    queued.append(run)
                elif run.state == "queued":  # claimed but never marked running: its starter died
                    pid = run.status.get("pid")
                    if pid is None or not pid_alive(pid, run.status.get("pid_start")):
                        claim = run.path / CLAIM_FILE
                        claimed = claim.stat().st_mtime if claim.exists() else 0
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
            fd = os.open(run_dir / CLAIM_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
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
            target=worker_main,
            args=(str(run.path), self.device, options),
            name=f"aevb-job-{run.id}",
            daemon=True,
        )
        with _bare_main():
            proc.start()
        self._procs[run.id] = proc
        update_status(
            run.path,
            state="running",
            started=time.time(),
            pid=proc.pid,
            pid_start=process_start_ticks(proc.pid),
            device=self.device,
            threads=worker_threads() if torch.device(self.device).type == "cpu" else None,
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
        if (run_dir / CANCEL_FILE).exists():
            update_status(run_dir, state="cancelled", finished=time.time(), message="cancelled (stopped)")
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
        update_status(run_dir, state="interrupted", finished=time.time(), error=f"Training stopped: {why}.")

    def _escalate_cancel(self, run: RunInfo) -> None:
        cancel = run.path / CANCEL_FILE
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
        if pid and pid_alive(pid, run.status.get("pid_start")):
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


# ------------------------------------------------------------------------------------ one per process

_SHARED: dict[str, JobManager] = {}
_SHARED_LOCK = threading.Lock()


def shared_manager(root: str | Path | None = None) -> JobManager:
    """The process's one :class:`JobManager` for the runs folder ``root`` (default :func:`runs_root`),
    created on first use and kept at module level: whatever happens to Streamlit's caches (a visitor's
    connection may send ``clear_cache``), there is never a second supervising thread for one folder. A
    closed manager is replaced. Thread-safe.

    Raises:
        OSError: the folder cannot be created.
    """
    path = Path(root) if root is not None else runs_root()
    key = str(path.resolve())
    with _SHARED_LOCK:
        manager = _SHARED.get(key)
        if manager is None or manager._closed.is_set():
            manager = _SHARED[key] = JobManager(Path(key))
        return manager
