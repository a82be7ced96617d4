"""The worker process of one run: loads its data, runs the trainer with per-epoch checkpoints, writes
metrics, previews and the final model, and reports how it ended in ``status.json``."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from explorer_core.artifacts import (
    ABSURD_NATS,
)
from explorer_core.atomic import save_tensors
from explorer_core.families import model_family
from explorer_core.jobs.store import (
    CANCEL_FILE,
    PREVIEW_COUNT,
    PREVIEW_FILE,
    metrics_line,
    open_metrics,
    publish_run,
    read_json,
    read_metrics,
    read_run_config,
    read_status,
    update_status,
    write_metrics,
)
from explorer_core.training import checkpoint
from explorer_core.training.recipes import TrainConfig
from explorer_core.training.trainer import TrainingError, TrainingProgress


class _Terminated(BaseException):
    """Raised inside the worker by its SIGTERM handler."""


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
    save_tensors({"images": images}, run_dir / PREVIEW_FILE, metadata={"epoch": str(epoch)})


def worker_threads() -> int:
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
    kept = [
        row
        for row in read_metrics(run)
        if row["step"] <= step and (row["kind"] == "step" or row["epoch"] <= epoch)
    ]
    write_metrics(run, kept)


def _remove_checkpoint(run: Path) -> None:
    for path in [run / checkpoint.JSON_NAME, *run.glob(checkpoint.WEIGHTS_GLOB)]:
        with contextlib.suppress(OSError):
            path.unlink()


def worker_main(run_dir: str, device: str, options: dict[str, Any]) -> None:
    """The job process: train the run's config on ``device`` (checkpointing every epoch into the run's
    folder, or continuing from that checkpoint when the status asks to ``resume``) and leave a final state
    in ``status.json``. A cancel ends the current epoch's steps; the best epoch is then evaluated and
    published (state ``cancelled``, with its model)."""
    from explorer_core.training.checkpoint import read_checkpoint_description
    from explorer_core.training.trainer import train

    run = Path(run_dir)
    signal.signal(signal.SIGTERM, _raise_terminated)
    cancel_file = run / CANCEL_FILE
    cancelled = [False]
    try:
        if torch.device(device).type == "cpu":
            torch.set_num_threads(worker_threads())
        if options.get("nice"):
            os.nice(int(options["nice"]))
        config, _options = read_run_config(run)
        resume = bool((read_status(run) or {}).get("resume"))
        if resume:
            described = read_checkpoint_description(run)
            _truncate_metrics(run, int(described["epoch"]), int(described.get("step") or 0))
            update_status(run, resumed_from=int(described["epoch"]))
        splits = _load_splits(config, options.get("data_limit"))
        steps_per_epoch = math.ceil(len(splits.x_train) / config.batch_size)
        log_every = int(options.get("log_every") or max(1, steps_per_epoch // 25))
        metrics = open_metrics(run)  # kept open for the whole run
        last_check = [0.0]
        crash_after = None if resume else options.get("crash_after_epoch")  # a resumed run goes on

        def progress(p: TrainingProgress) -> None:
            if crash_after is not None and p.kind == "step" and p.epoch > int(crash_after):
                # (tests) the checkpoint of epoch crash_after is on disk: die as a crashed server's worker
                os.kill(os.getpid(), signal.SIGKILL)
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
            metrics.write(metrics_line(row))
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
                    update_status(
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
        meta = read_json(path) or {}
        training = meta.get("training") or {}
        test_elbo = (meta.get("test_metrics") or {}).get("elbo")
        check_elbo(training.get("best_val_elbo"), "best validation ELBO")
        check_elbo(test_elbo, "test ELBO")
        done = {
            "best_epoch": training.get("best_epoch"),
            "epochs_run": training.get("epochs_run"),
            "finishing": None,  # (removed: the run has finished)
        }
        if cancelled[0]:
            best = training.get("best_epoch")
            message = f"cancelled on request; its best epoch ({best}) was kept"
            publish_run(run, "cancelled", path, test_elbo, message, **done)
        else:
            _remove_checkpoint(run)  # a finished run is not continued: its checkpoint only takes space
            publish_run(run, "done", path, test_elbo, training.get("stopped"), **done)
    except _Terminated:
        if cancel_file.exists():
            update_status(run, state="cancelled", finished=time.time(), message="cancelled (terminated)")
        else:
            update_status(
                run,
                state="interrupted",
                finished=time.time(),
                error="the training process was stopped (SIGTERM), for example because the server shut down",
            )
    except BaseException as err:  # every failure is recorded for the page
        update_status(
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
