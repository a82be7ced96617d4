"""Per-epoch training checkpoints, so a run can be resumed where it stopped (safetensors + JSON, no pickle).

A checkpoint lives in the run's folder:

* ``checkpoint-<epoch>.safetensors``: the model's current weights (``model.*``), the best-so-far weights
  (``best.*``), every optimizer tensor (``opt.<group>.<param index>.<key>``) and the RNG states
  (``rng.torch``, ``rng.order``, ``rng.noise``, ``rng.cuda``) as uint8 tensors;
* ``checkpoint.json``: the recipe, the epoch and step reached, the history, the best epoch and its validation
  ELBO, the early-stopping counter, the wall time so far, the optimizers' hyperparameters and the learning
  rate schedulers' states, the output folder and name, and the weights file with its sha256.

Writes are atomic: the tensors go to a new file under their epoch's name, then the JSON that points at them
replaces the old one, then the previous epoch's tensors are removed. A crash at any point leaves one
consistent checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from explorer_core.atomic import save_tensors, write_json

FORMAT = "aevb-explorer-checkpoint/1"
JSON_NAME = "checkpoint.json"
#: the names of every epoch's weights file (:func:`weights_name`)
WEIGHTS_GLOB = "checkpoint-*.safetensors"


def weights_name(epoch: int) -> str:
    """The file name of the weights saved after ``epoch``: ``checkpoint-<epoch>.safetensors``."""
    return f"checkpoint-{epoch}.safetensors"


#: A checkpoint description is small; anything larger is not one of ours.
MAX_JSON_BYTES = 16 * 1024 * 1024


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, corrupt, or belongs to another recipe; the message says which."""


@dataclass
class TrainingState:
    """Everything the trainer needs to go on after ``epoch`` exactly as an uninterrupted run would.

    Attributes:
        recipe: ``TrainConfig.to_dict()`` of the run.
        out_dir, name: where the final ``name.{safetensors,json}`` goes.
        epoch: the last finished epoch (1-based); ``step``: optimizer steps taken so far.
        history: one dict per finished epoch (train and validation ELBO in nats per image, family metrics).
        best_val, best_epoch, stale: the best validation ELBO so far, its epoch, and epochs since it.
        wall_seconds: training time spent over all sittings (seconds).
        stopped: why the last sitting ended (None while training).
        model, best: state dicts (tensors); optimizers: per group ``state_dict()``; schedulers: their
            ``state_dict()``s; rng: named ``torch.uint8`` state tensors.
    """

    recipe: dict[str, Any]
    out_dir: str
    name: str
    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val: float = float("-inf")
    best_epoch: int = 0
    stale: int = 0
    wall_seconds: float = 0.0
    stopped: str | None = None
    model: dict[str, torch.Tensor] = field(default_factory=dict)
    best: dict[str, torch.Tensor] = field(default_factory=dict)
    optimizers: dict[str, dict[str, Any]] = field(default_factory=dict)
    schedulers: list[dict[str, Any]] = field(default_factory=list)
    rng: dict[str, torch.Tensor] = field(default_factory=dict)


def _flatten_optimizer(group: str, state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer ``state_dict`` into named tensors and JSON-ready hyperparameters."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, per_param in state_dict["state"].items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt.{group}.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(group: str, tensors: dict[str, torch.Tensor], described: dict) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"opt.{group}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            index, name = key[len(prefix) :].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    for index, values in (described.get("scalars") or {}).items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": described["param_groups"]}


def save_checkpoint(run_dir: Path, state: TrainingState) -> Path:
    """Write ``state`` into ``run_dir`` atomically (see the module docstring); returns the JSON path."""
    from explorer_core.artifacts import sha256_of

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    tensors |= {f"model.{k}": v for k, v in state.model.items()}
    tensors |= {f"best.{k}": v for k, v in state.best.items()}
    tensors |= {f"rng.{k}": v for k, v in state.rng.items()}
    optimizers = {}
    for group, sd in state.optimizers.items():
        flat, described = _flatten_optimizer(group, sd)
        tensors |= flat
        optimizers[group] = described
    weights = run_dir / weights_name(state.epoch)
    save_tensors(tensors, weights)
    description = {
        "format": FORMAT,
        "recipe": state.recipe,
        "out_dir": state.out_dir,
        "name": state.name,
        "epoch": state.epoch,
        "step": state.step,
        "history": state.history,
        "best_val": state.best_val if state.best_val != float("-inf") else None,
        "best_epoch": state.best_epoch,
        "stale": state.stale,
        "wall_seconds": state.wall_seconds,
        "stopped": state.stopped,
        "optimizers": optimizers,
        "schedulers": state.schedulers,
        "weights": weights.name,
        "sha256": sha256_of(weights),
    }
    path = run_dir / JSON_NAME
    write_json(path, description)
    for old in run_dir.glob(WEIGHTS_GLOB):
        if old.name != weights.name:
            old.unlink(missing_ok=True)
    return path


def has_checkpoint(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a checkpoint description (not whether it is valid)."""
    return (Path(run_dir) / JSON_NAME).is_file()


def read_checkpoint_description(run_dir: Path) -> dict[str, Any]:
    """The checkpoint's JSON (recipe, epoch, history ...) without its tensors.

    Raises:
        CheckpointError: missing, not a regular file, too large, or not a checkpoint description.
    """
    path = Path(run_dir) / JSON_NAME
    try:
        if not path.is_file() or path.is_symlink():
            raise CheckpointError(f"{path}: no checkpoint here.")
        if path.stat().st_size > MAX_JSON_BYTES:
            raise CheckpointError(f"{path}: too large to be a checkpoint description.")
        description = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable checkpoint ({err}).") from err
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a checkpoint of this program (format {FORMAT}).")
    for key, kind in (("recipe", dict), ("epoch", int), ("history", list), ("weights", str)):
        if not isinstance(description.get(key), kind):
            raise CheckpointError(f"{path}: field {key!r} is missing or not a {kind.__name__}.")
    return description


def load_checkpoint(run_dir: Path) -> TrainingState:
    """Read the checkpoint in ``run_dir`` back into a :class:`TrainingState` (tensors on the CPU).

    Raises:
        CheckpointError: missing or corrupt files (the weights' sha256 is checked), a weights path that
            leaves the folder.
    """
    from explorer_core.artifacts import sha256_of

    run_dir = Path(run_dir)
    d = read_checkpoint_description(run_dir)
    weights = (run_dir / d["weights"]).resolve()
    if weights.parent != run_dir.resolve() or not weights.is_file():
        raise CheckpointError(f"{run_dir}: checkpoint weights {d['weights']!r} are missing.")
    if sha256_of(weights) != d.get("sha256"):
        raise CheckpointError(f"{weights.name}: sha256 does not match checkpoint.json (corrupt).")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{weights.name}: unreadable ({err}).") from err

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    best_val = d.get("best_val")
    return TrainingState(
        recipe=d["recipe"],
        out_dir=str(d.get("out_dir") or run_dir),
        name=str(d.get("name") or run_dir.name),
        epoch=int(d["epoch"]),
        step=int(d.get("step") or 0),
        history=list(d["history"]),
        best_val=float("-inf") if best_val is None else float(best_val),
        best_epoch=int(d.get("best_epoch") or 0),
        stale=int(d.get("stale") or 0),
        wall_seconds=float(d.get("wall_seconds") or 0.0),
        stopped=d.get("stopped"),
        model=part("model."),
        best=part("best."),
        optimizers={g: _unflatten_optimizer(g, tensors, o) for g, o in (d.get("optimizers") or {}).items()},
        schedulers=list(d.get("schedulers") or []),
        rng=part("rng."),
    )
