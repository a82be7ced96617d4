"""Watch it learn's configuration: what a run is (:class:`WatchConfig`, checked on construction), how a link
carries it (:func:`config_from_query`, :func:`config_query`) and the images it trains and is measured on
(:class:`WatchData`, :func:`load_watch_data`). No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from explorer_core.data import load_mnist_splits, preprocess_for_evaluation
from explorer_core.inference.aevb import (
    check_learning_rate,
)
from explorer_core.models.configs import parse_widths
from explorer_core.models.vae import VAEConfig
from explorer_core.training.recipes import LIKELIHOOD_PREPROCESSINGS
from explorer_core.url_state import read_query

#: the likelihoods a watched VAE can have; each trains on the first preprocessing its likelihood allows
LIKELIHOODS = tuple(LIKELIHOOD_PREPROCESSINGS)
#: The tutorial's experiment-2 pattern, scaled to a live demo: E, M, E, M x 250 steps.
EM_SCHEDULE: tuple[tuple[str, int], ...] = (
    ("e_step", 250),
    ("m_step", 250),
    ("e_step", 250),
    ("m_step", 250),
)
IWAE_KS = (1, 4, 16, 64, 256)
MAX_TRAIN = 60_000 - 10_000
MAX_EVAL = 2_000
MAX_MAP = 5_000
MAX_HIDDEN = 2048
MAX_LATENT = 64
IMAGE_SIDE = 28
#: the latest frames of the latent map kept for its GIF (:meth:`WatchExperiment.recent_maps`)
MAP_GIF_FRAMES = 60


class WatchError(ValueError):
    """A configuration the page cannot run (the message says what to change)."""


@dataclass(frozen=True)
class WatchConfig:
    """Everything that defines a live run. Validated on construction (:class:`WatchError` on nonsense).

    Attributes:
        latent_dim: L, 1..64.
        hidden: hidden widths of the encoder MLP (the decoder mirrors them), each 1..2048, 1 to 4 layers.
        likelihood: ``"bernoulli"`` (binarized MNIST) or ``"continuous_bernoulli"`` (dequantized MNIST).
        n_train: training images (the first n of MNIST's training split), 100..50,000.
        batch_size: minibatch size, 1..n_train.
        lr_inference, lr_generative: Adam learning rates of phi and theta, in (0, 10].
        iwae_k: importance samples per validation image in the IWAE bound, 1..1024.
        n_eval: validation images in the curves (the last 10,000 training images are the validation split).
        n_map: validation images drawn on the latent map (their posterior means).
        seed: seeds the initial parameters, the minibatch order, the training noise and the fixed
            evaluation noise.
    """

    latent_dim: int = 2
    hidden: tuple[int, ...] = (256, 256)
    likelihood: str = "bernoulli"
    n_train: int = 10_000
    batch_size: int = 100
    lr_inference: float = 1e-3
    lr_generative: float = 1e-3
    iwae_k: int = 16
    n_eval: int = 100
    n_map: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
            for name in ("latent_dim", "n_train", "batch_size", "iwae_k", "n_eval", "n_map", "seed"):
                value = getattr(self, name)
                if isinstance(value, float) and not value.is_integer():
                    raise WatchError(f"{name} must be a whole number, got {value}.")
                object.__setattr__(self, name, int(value))
            check_learning_rate(self.lr_inference)
            check_learning_rate(self.lr_generative)
        except (TypeError, ValueError) as err:
            raise WatchError(str(err)) from err
        checks = [
            (1 <= self.latent_dim <= MAX_LATENT, f"latent dimension L must be in 1..{MAX_LATENT}"),
            (
                1 <= len(self.hidden) <= 4 and all(1 <= h <= MAX_HIDDEN for h in self.hidden),
                f"hidden sizes must be 1 to 4 layers of 1..{MAX_HIDDEN} units",
            ),
            (self.likelihood in LIKELIHOODS, f"likelihood must be one of {LIKELIHOODS}"),
            (100 <= self.n_train <= MAX_TRAIN, f"training images must be in 100..{MAX_TRAIN:,}"),
            (1 <= self.batch_size <= self.n_train, "batch size must be between 1 and the training images"),
            (1 <= self.iwae_k <= 1024, "k (IWAE samples) must be in 1..1024"),
            (10 <= self.n_eval <= MAX_EVAL, f"validation images for the curves must be in 10..{MAX_EVAL:,}"),
            (10 <= self.n_map <= MAX_MAP, f"map points must be in 10..{MAX_MAP:,}"),
            (0 <= self.seed < 2**31, "seed must be in 0..2^31-1"),
        ]
        for ok, message in checks:
            if not ok:
                raise WatchError(f"{message}.")

    @property
    def preprocessing(self) -> str:
        """``binarized`` or ``dequantized``, matching the likelihood."""
        return LIKELIHOOD_PREPROCESSINGS[self.likelihood][0]

    def model_config(self) -> VAEConfig:
        """The :class:`VAEConfig` of the model (no dropout: the curves must be deterministic)."""
        return VAEConfig(
            latent_dim=self.latent_dim, hidden=self.hidden, dropout=0.0, likelihood=self.likelihood
        )


def _hidden_from_text(text: str) -> tuple[int, ...]:
    """A link's hidden widths: ``"256-256"`` -> (256, 256) (``models.configs.parse_widths``).

    Raises:
        ValueError: not whole numbers separated by ``-``, or a width below 1.
    """
    return parse_widths(text, separator="-")


#: a configuration in a link: query parameter -> (:class:`WatchConfig` field, parse of its text)
QUERY_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "L": ("latent_dim", int),
    "hidden": ("hidden", _hidden_from_text),
    "lik": ("likelihood", str),
    "n": ("n_train", int),
    "batch": ("batch_size", int),
    "seed": ("seed", int),
    "eval": ("n_eval", int),
    "map": ("n_map", int),
    "lr_phi": ("lr_inference", float),
    "lr_theta": ("lr_generative", float),
    "k": ("iwae_k", int),
}


def config_from_query(
    query: Mapping[str, str],
    base: WatchConfig | None = None,
    choices: Mapping[str, Sequence[Any]] | None = None,
) -> WatchConfig:
    """The configuration a link describes (:data:`QUERY_FIELDS`), from ``base`` (default
    :class:`WatchConfig`): each parameter is taken when its text parses, the configuration stays valid and
    the value is one of ``choices[field]`` (when the page offers only those); otherwise it is ignored. Never
    raises: a link's text is untrusted input (read by :func:`explorer_core.url_state.read_query`)."""
    config = base or WatchConfig()
    values = read_query(query, {name: parse for name, (_, parse) in QUERY_FIELDS.items()})
    for name, value in values.items():
        field_name = QUERY_FIELDS[name][0]
        if choices and field_name in choices and value not in choices[field_name]:
            continue
        try:
            config = replace(config, **{field_name: value})
        except (ValueError, TypeError, OverflowError):  # WatchError is a ValueError
            continue
    return config


def config_query(config: WatchConfig) -> dict[str, str]:
    """The query parameters of ``config`` (:data:`QUERY_FIELDS`), the inverse of :func:`config_from_query`."""
    out = {}
    for name, (field_name, _) in QUERY_FIELDS.items():
        value = getattr(config, field_name)
        out[name] = (
            "-".join(map(str, value))
            if field_name == "hidden"
            else f"{value:g}"
            if isinstance(value, float)
            else str(value)
        )
    return out


@dataclass(frozen=True)
class WatchData:
    """The images of a run, preprocessed once.

    Attributes:
        x_train: float32 [n_train, 784] in [0, 1]; the minibatches come from here.
        x_eval, y_eval: the fixed validation subset of the curves, [n_eval, 784] and int64 [n_eval].
        x_map, y_map: the validation images shown on the latent map, [n_map, 784] and [n_map].
        x_test: float32 [N_test, 784], the MNIST test set (used once, at export), or ``None``.
        checksums: md5 of the MNIST files read (provenance).
    """

    x_train: torch.Tensor
    x_eval: torch.Tensor
    y_eval: torch.Tensor
    x_map: torch.Tensor
    y_map: torch.Tensor
    x_test: torch.Tensor | None = None
    checksums: dict[str, str] = field(default_factory=dict)


def load_watch_data(config: WatchConfig, directory: str | Path | None = None) -> WatchData:
    """MNIST for ``config``: the first ``n_train`` training images, validation images from MNIST's last
    10,000 training images (the split the trainer holds out), and the test set for the export.

    Preprocessing is deterministic (:func:`explorer_core.data.preprocess_for_evaluation`): binarized at
    pixel >= 128 or dequantized once with a fixed seed.

    Raises:
        MNISTUnavailable: the MNIST files are missing or damaged.
    """
    splits = load_mnist_splits(n_validation=10_000, directory=directory)
    kind = config.preprocessing
    x_val = preprocess_for_evaluation(splits.x_val, kind)
    n_eval, n_map = config.n_eval, config.n_map
    return WatchData(
        x_train=preprocess_for_evaluation(splits.x_train[: config.n_train], kind),
        x_eval=x_val[:n_eval],
        y_eval=splits.y_val[:n_eval],
        # the map shows other validation images than the curves when there are enough of them
        x_map=x_val[-n_map:],
        y_map=splits.y_val[-n_map:],
        x_test=preprocess_for_evaluation(splits.x_test, kind),
        checksums=dict(splits.checksums),
    )
