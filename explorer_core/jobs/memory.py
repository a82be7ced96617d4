"""Memory checked before it is spent: parameters and activations of a training config, the memory the device
has, and the validation that turns an absurd config into one clear message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from explorer_core.artifacts import (
    RECIPE_FIELDS,
)
from explorer_core.data import MNIST_TEST, MNIST_TRAIN
from explorer_core.device import available_memory
from explorer_core.families import PIXELS, model_family
from explorer_core.jobs.store import ConfigRejectedError
from explorer_core.training.recipes import TrainConfig
from explorer_core.untrusted import (
    Obj,
    SchemaError,
    check,
)

#: bytes a fresh worker process with torch loaded takes on the CPU, on top of the estimate
CPU_PROCESS_OVERHEAD = 400 * 2**20
#: a configuration is rejected when its estimate is above this fraction of the available memory
MEMORY_FRACTION = 0.8


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


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def validate_config(
    config: TrainConfig | dict[str, Any], device: str = "cpu", n_train: int | None = None
) -> TrainConfig:
    """Check a configuration before a job starts: every value (the checks of its family's recipe class; a
    dict is read by :meth:`TrainConfig.from_dict`) and the memory estimate against what ``device`` has free
    (at most :data:`MEMORY_FRACTION` of it).

    Returns:
        The validated recipe, of its family's class (a :class:`TrainConfig`).

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
            config = TrainConfig.from_dict(checked)
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
