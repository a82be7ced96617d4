"""The MNIST trainer shared by the CLI (``python -m explorer_core train``) and background jobs.

Every epoch: fresh preprocessing noise (dequantization, or a new dynamic binarization), a random order,
minibatch AEVB steps through :func:`explorer_core.inference.aevb.aevb_step`, then the validation ELBO (a
held-out split of the training set). The epoch with the best validation ELBO is kept; the test set is only
used once, at the end, to report metrics.
"""

from __future__ import annotations

import copy
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from explorer_core.artifacts import build_model, model_meta, save_model
from explorer_core.data import (
    MNISTSplits,
    load_mnist_splits,
    preprocess,
    preprocess_for_evaluation,
)
from explorer_core.device import pick_device
from explorer_core.families import FAMILIES, model_family
from explorer_core.inference.aevb import NonFiniteError, aevb_step, make_optimizers
from explorer_core.training.recipes import (
    LIKELIHOOD_PREPROCESSINGS,
    LR_SCHEDULES,
    GMVAETrainConfig,
    TrainConfig,
    VRNNTrainConfig,
    recipe_field_names,
)

__all__ = [
    "LIKELIHOOD_PREPROCESSINGS",
    "LR_SCHEDULES",
    "PRESETS",
    "GMVAETrainConfig",
    "TrainConfig",
    "TrainingError",
    "TrainingProgress",
    "VRNNTrainConfig",
    "config_from_args",
    "train",
    "tsne_view",
    "validation_elbo",
]

#: The recipes of the shipped models (see README), every family's ``presets`` in
#: :mod:`explorer_core.families`, and ``quick`` (the VAE's short run; :func:`config_from_args` gives every
#: family its own). Selection is by validation ELBO only.
PRESETS: dict[str, TrainConfig] = {
    **{
        name: TrainConfig.for_family(spec.name, **overrides)
        for spec in FAMILIES.values()
        for name, overrides in spec.presets.items()
    },
    "quick": TrainConfig.for_family("vae", **FAMILIES["vae"].quick),
}


class TrainingError(RuntimeError):
    """Training could not go on (for example the loss became NaN); the message says why."""


@dataclass
class TrainingProgress:
    """What a progress callback receives: one per logged step (``kind="step"``) or epoch (``"epoch"``)."""

    kind: str
    epoch: int
    step: int
    total_steps: int
    train_elbo: float
    val_elbo: float | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def training_inputs(x: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """One epoch's training inputs: ``x`` (uint8 [N, 784]) preprocessed as ``config`` says, float32 [N, 784].

    Every call draws new noise from ``generator`` (dequantization, dynamic binarization); with
    ``config.fresh_binarization`` the images are binarized afresh, x ~ Bernoulli(pixel / 255), so every
    minibatch of the epoch sees a new binarization while evaluation keeps ``config.preprocessing``.

    Raises:
        ValueError: unknown preprocessing.
    """
    kind = "dynamic_binarized" if config.fresh_binarization else config.preprocessing
    return preprocess(x, kind, generator=generator)


@torch.no_grad()
def validation_elbo(model, x: torch.Tensor, y: torch.Tensor | None, batch_size: int = 1000) -> float:
    """Mean single-sample evaluation ELBO (``model.evaluation_elbo_terms``) over a preprocessed split, eval
    mode, fixed noise (nats per image)."""
    model.eval()
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    total = 0.0
    for start in range(0, len(x), batch_size):
        yb = None if y is None else y[start : start + batch_size]
        total += float(model.evaluation_elbo_terms(x[start : start + batch_size], yb).elbo.sum())
    torch.random.set_rng_state(generator_state)
    return total / max(len(x), 1)


def tsne_view(model, x: torch.Tensor, y: torch.Tensor | None, seed: int = 0) -> torch.Tensor:
    """t-SNE of the posterior means of images x [n, 784] -> [n, 2] float32 (scikit-learn's TSNE)."""
    from sklearn.manifold import TSNE

    with torch.no_grad():
        model.eval()
        mu = model.encode(x, y).mean.cpu().numpy()
    embedding = TSNE(n_components=2, init="pca", random_state=seed, perplexity=30).fit_transform(mu)
    return torch.as_tensor(embedding, dtype=torch.float32)


def _rng_states(
    order: torch.Generator, noise: torch.Generator, device: torch.device
) -> dict[str, torch.Tensor]:
    states = {"torch": torch.random.get_rng_state(), "order": order.get_state(), "noise": noise.get_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _set_rng_states(states: dict[str, torch.Tensor], order, noise, device: torch.device) -> None:
    torch.random.set_rng_state(states["torch"])
    order.set_state(states["order"])
    noise.set_state(states["noise"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def train(
    config: TrainConfig,
    out_dir: Path,
    name: str,
    progress: Callable[[TrainingProgress], None] | None = None,
    device: torch.device | None = None,
    splits: MNISTSplits | None = None,
    log_every: int = 50,
    should_stop: Callable[[], bool] | None = None,
    on_epoch: Callable[[Any, int], None] | None = None,
    run_dir: Path | None = None,
    resume: bool = False,
) -> Path:
    """Train a model on MNIST with AEVB and write ``out_dir/name.{safetensors,json}``; returns the JSON path.

    ``progress`` gets a :class:`TrainingProgress` every ``log_every`` steps and after every epoch;
    ``should_stop()`` is asked after every step (True ends training after that epoch's validation, and the
    best epoch so far is evaluated and saved); ``on_epoch(model, epoch)`` runs after every epoch's progress
    report (for example to write preview samples; the model is in whatever mode validation left it in, and
    the next step sets train mode).

    With ``run_dir``, every finished epoch writes a checkpoint there
    (:mod:`explorer_core.training.checkpoint`:
    weights, optimizer and scheduler states, RNG states, history, best-so-far). ``resume=True`` continues
    from that checkpoint; the result is the same as an uninterrupted run with the same recipe, bit for bit
    on the CPU. ``config`` may differ from the checkpoint's recipe only in ``epochs``, ``patience``,
    ``min_epochs`` and ``max_minutes`` (to extend a run, or to give a new sitting its own time budget);
    ``max_minutes`` counts from the start of this sitting.

    Raises:
        explorer_core.data.MNISTUnavailable: MNIST is not on disk.
        TrainingError: a NaN/inf step, no epoch finished, or a checkpoint that cannot be resumed.
    """
    from explorer_core.training.checkpoint import (
        CheckpointError,
        TrainingState,
        load_checkpoint,
        save_checkpoint,
    )

    device = device or pick_device()
    state: TrainingState | None = None
    if resume:
        if run_dir is None:
            raise TrainingError("resume needs the run's folder.")
        try:
            state = load_checkpoint(run_dir)
        except CheckpointError as err:
            raise TrainingError(f"cannot resume: {err}") from err
        mutable = ("epochs", "patience", "min_epochs", "max_minutes")
        try:  # the checkpoint's recipe as its family's recipe class
            recipe = TrainConfig.from_dict(state.recipe).to_dict()
        except (TypeError, ValueError) as err:
            raise TrainingError(f"cannot resume: the checkpoint's recipe is not valid ({err})") from err
        recorded = {k: v for k, v in recipe.items() if k not in mutable}
        wanted = {k: v for k, v in config.to_dict().items() if k not in mutable}
        if recorded != wanted:
            diff = sorted(k for k in set(recorded) | set(wanted) if recorded.get(k) != wanted.get(k))
            raise TrainingError(
                f"cannot resume: the checkpoint was made with another recipe (differs in {diff})."
            )
    torch.manual_seed(config.seed)
    splits = splits or load_mnist_splits(config.n_validation)
    spec = model_family(config.family)
    conditional = spec.conditional
    x_train = splits.x_train.to(device)
    y_train = splits.y_train.to(device) if conditional else None
    x_val = preprocess_for_evaluation(splits.x_val.to(device), config.preprocessing)
    labels_val = splits.y_val.to(device)
    y_val = labels_val if conditional else None
    model = build_model(config.family, config.model_config()).to(device)
    optimizers = make_optimizers(model, config.lr)
    groups = {"inference": optimizers.inference, "generative": optimizers.generative}
    schedulers = []
    if config.lr_schedule == "cosine":
        schedulers = [
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
            for opt in groups.values()
            if opt is not None
        ]
    order = torch.Generator().manual_seed(config.seed)
    noise = torch.Generator(device=device).manual_seed(config.seed)
    n, batch = len(x_train), config.batch_size
    steps_per_epoch = math.ceil(n / batch)
    total_steps = steps_per_epoch * config.epochs
    best_val, best_state, best_epoch, stale = -math.inf, None, 0, 0
    history: list[dict[str, float]] = []
    step, first_epoch, wall_before = 0, 1, 0.0
    if state is not None:
        try:
            model.load_state_dict({k: v.to(device) for k, v in state.model.items()})
            for group, opt in groups.items():
                if opt is not None:
                    opt.load_state_dict(state.optimizers[group])
            for scheduler, scheduler_state in zip(schedulers, state.schedulers, strict=True):
                scheduler.load_state_dict(scheduler_state)
            _set_rng_states(state.rng, order, noise, device)
        except (KeyError, RuntimeError, ValueError) as err:
            raise TrainingError(f"cannot resume: the checkpoint does not fit this model ({err}).") from err
        history, step, first_epoch = state.history, state.step, state.epoch + 1
        best_val, best_epoch, stale = state.best_val, state.best_epoch, state.stale
        best_state = {k: v.to(device) for k, v in state.best.items()} or None
        wall_before = state.wall_seconds
    start_time = time.perf_counter()
    stopped = "finished all epochs"

    def finished_early() -> str | None:
        """Why training should not go on after the last finished epoch (None: go on)."""
        epoch = len(history)
        if epoch >= config.epochs:
            return "finished all epochs"
        if config.patience is not None and stale >= config.patience and epoch >= config.min_epochs:
            return f"early stop: no validation gain for {config.patience} epochs"
        return None

    if first_epoch > 1 and finished_early() is not None:
        stopped = finished_early()
        first_epoch = config.epochs + 1  # nothing left to train: evaluate and save
    for epoch in range(first_epoch, config.epochs + 1):
        if spec.anneals_temperature:
            model.temperature = config.temperature_at(epoch)
        x_epoch = training_inputs(x_train, config, noise)
        permutation = torch.randperm(n, generator=order).to(device)
        running, count = 0.0, 0
        for start in range(0, n, batch):
            index = permutation[start : start + batch]
            try:
                elbo = aevb_step(
                    model,
                    optimizers,
                    x_epoch[index],
                    None if y_train is None else y_train[index],
                    n_samples=config.n_samples,
                    max_grad_norm=config.max_grad_norm,
                )
            except NonFiniteError as err:
                raise TrainingError(f"epoch {epoch}, step {step + 1}: {err}") from err
            step += 1
            running, count = running + elbo, count + 1
            if progress is not None and step % log_every == 0:
                progress(
                    TrainingProgress(
                        "step",
                        epoch,
                        step,
                        total_steps,
                        running / count,
                        seconds=wall_before + time.perf_counter() - start_time,
                    )
                )
            if should_stop is not None and should_stop():
                break
        for scheduler in schedulers:
            scheduler.step()
        val = validation_elbo(model, x_val, y_val) if len(x_val) else running / max(count, 1)
        metrics = spec.epoch_metrics(model, x_val, labels_val)
        if spec.anneals_temperature:
            metrics["temperature"] = model.temperature
        history.append({"epoch": epoch, "train_elbo": running / max(count, 1), "val_elbo": val, **metrics})
        if val > best_val:
            best_val, best_epoch, stale = val, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if progress is not None:
            progress(
                TrainingProgress(
                    "epoch",
                    epoch,
                    step,
                    total_steps,
                    running / max(count, 1),
                    val,
                    seconds=wall_before + time.perf_counter() - start_time,
                    extra={"best_epoch": best_epoch, "best_val_elbo": best_val, **metrics},
                )
            )
        if on_epoch is not None:
            on_epoch(model, epoch)
        interrupted = should_stop is not None and should_stop()
        if run_dir is not None and not (interrupted and count < steps_per_epoch):
            # a whole epoch: resuming from here is the same as going on (a cut-short epoch is not saved)
            save_checkpoint(
                Path(run_dir),
                TrainingState(
                    recipe=config.to_dict(),
                    out_dir=str(out_dir),
                    name=name,
                    epoch=epoch,
                    step=step,
                    history=history,
                    best_val=best_val,
                    best_epoch=best_epoch,
                    stale=stale,
                    wall_seconds=wall_before + time.perf_counter() - start_time,
                    model=model.state_dict(),
                    best=best_state or {},
                    optimizers={g: o.state_dict() for g, o in groups.items() if o is not None},
                    schedulers=[s.state_dict() for s in schedulers],
                    rng=_rng_states(order, noise, device),
                ),
            )
        if interrupted:
            stopped = f"stopped on request after epoch {epoch}"
            break
        reason = finished_early()
        if reason is not None:
            stopped = reason
            break
        if config.max_minutes is not None and time.perf_counter() - start_time > 60 * config.max_minutes:
            stopped = f"time budget of {config.max_minutes} min reached after epoch {epoch}"
            break
    if best_state is None:
        raise TrainingError("no epoch finished.")
    wall = wall_before + time.perf_counter() - start_time
    if config.keep_epoch == "best":
        model.load_state_dict(best_state)
    # keep_epoch "last": the model as the last finished epoch left it (a resumed run loaded it)
    x_test = preprocess_for_evaluation(splits.x_test.to(device), config.preprocessing)
    labels_test = splits.y_test.to(device)
    y_test = labels_test if conditional else None
    test = spec.evaluate(model, x_test, labels_test, iwae_k=config.iwae_k)
    views = {}
    if config.tsne_points and spec.tsne_view:
        k = min(config.tsne_points, len(x_test))
        views["tsne"] = tsne_view(model, x_test[:k], None if y_test is None else y_test[:k], config.seed)
        views["tsne_index"] = torch.arange(k)
    meta = model_meta(
        config.to_dict(),
        config.preprocessing,
        {
            "epochs_run": len(history),
            "best_epoch": best_epoch,
            "best_val_elbo": best_val,
            "stopped": stopped,
            "resumed": state is not None,
            "wall_seconds": round(wall, 1),
            "device": str(device),
            "torch": torch.__version__,
            "host": platform.node(),
            "n_train": n,
            "n_validation": len(x_val),
            "history": history,
        },
        splits.checksums,
        test,
        "nats per image, means over the 10,000 MNIST test images",
    )
    return save_model(model, config.family, Path(out_dir), name, meta, views=views)


def config_from_args(preset: str | None, family: str, overrides: dict[str, Any]) -> TrainConfig:
    """A preset (or the paper defaults for ``family``) with the given non-None overrides applied.

    ``quick`` works for every family: its paper recipe cut to a short run (the family's ``quick``).

    Raises:
        ValueError: unknown family, unknown preset, a preset of another family, an override that is not a
            field of the family's recipe (another family's: ``n_clusters`` for a VAE), or an invalid value.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    own = recipe_field_names(model_family(family).train_config_class)
    foreign = sorted(set(given) - own)
    if foreign:
        raise ValueError(f"{', '.join(foreign)}: not a setting of a {family} recipe.")
    if preset == "quick":
        return TrainConfig.for_family(family, **{**model_family(family).quick, **given})
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known: {sorted(PRESETS)}.")
        if preset not in model_family(family).presets:
            raise ValueError(f"preset {preset!r} is for the {PRESETS[preset].family} family, not {family}.")
        return replace(PRESETS[preset], **given)
    return TrainConfig.for_family(family, **given)
