"""The config dataclass of each model family: everything needed to rebuild a module, validated on
construction, with its JSON form (``to_dict``). Plain dataclasses: importing this module imports no torch and
no model, so a training recipe (``explorer_core.training.recipes``) can check an architecture without
building one. Each model module re-exports its config (``from explorer_core.models.vae import VAEConfig``).

Every value limit of a config is written once, as its field's :class:`Limit` (``field(metadata=...)``): the
config checks it on construction (:meth:`MLPConfig.check_limits`), and the JSON schema of a model's config
(:mod:`explorer_core.families`, read by :mod:`explorer_core.artifacts`) is derived from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

#: the likelihoods of the VAE and the CVAE
LIKELIHOODS = ("continuous_bernoulli", "bernoulli")
#: the GMVAE's training estimators
ESTIMATORS = ("marginal", "gumbel")
#: the metadata key of a field's :class:`Limit`
LIMIT = "limit"


@dataclass(frozen=True)
class Limit:
    """The values one config field may take: a number in [lo, hi] (``integer``: a whole number, written
    ``lo..hi``), one of ``choices``, or (``max_items`` set) a sequence of 1 to ``max_items`` numbers, each in
    [lo, hi]; ``optional``: None too. ``message``: the error's text instead of the default one (``{value}``:
    the value refused); ``between``: the default text says "between lo and hi" (a recipe's counts).
    """

    lo: float | None = None
    hi: float | None = None
    integer: bool = False
    choices: tuple[str, ...] | None = None
    max_items: int | None = None
    message: str | None = None
    optional: bool = False
    between: bool = False

    def field(self, default: Any) -> Any:
        """A dataclass field with ``default`` and this limit (``x: int = Limit(1, 8).field(2)``)."""
        return field(default=default, metadata={LIMIT: self})

    def range_text(self) -> str:
        """``1..1024`` (whole numbers) or ``[0.01, 100]``."""
        return f"{self.lo}..{self.hi}" if self.integer else f"[{self.lo:g}, {self.hi:g}]"

    def check(self, name: str, value: Any) -> None:
        """Whether ``value`` is one the field ``name`` may take.

        Raises:
            ValueError: it is not (``"latent_dim must be in 1..1024, got 0."``, or ``message``).
        """
        if value is None and self.optional:
            return
        if self.choices is not None:
            ok = value in self.choices
            default = f"{name} must be one of {self.choices}, got {value!r}."
        elif self.max_items is not None:
            if len(value) > self.max_items:
                raise ValueError(f"{name}: at most {self.max_items} sizes, got {len(value)}.")
            ok = len(value) >= 1 and all(self.lo <= v <= self.hi for v in value)
            default = f"{name} sizes must be in {self.range_text()}, got {value}."
        else:
            ok = self.lo <= value <= self.hi
            where = f"between {self.lo} and {self.hi}" if self.between else f"in {self.range_text()}"
            default = f"{name} must be {where}, got {value}."
        if not ok:
            raise ValueError(self.message.format(value=value) if self.message else default)


def limit_of(config_class: type, name: str) -> Limit:
    """The :class:`Limit` of the field ``name`` of a config dataclass.

    Raises:
        KeyError: no such field, or it has no limit.
    """
    limit = next((limit for f, limit in limits(config_class) if f.name == name), None)
    if limit is None:
        raise KeyError(f"{config_class.__name__}.{name} has no Limit.")
    return limit


def limits(config_class: type) -> Iterator[tuple[dataclasses.Field, Limit | None]]:
    """Each field of a config dataclass with its :class:`Limit` (None: a field without one), in field
    order."""
    for f in dataclasses.fields(config_class):
        yield f, f.metadata.get(LIMIT)


#: the hidden widths of every MLP config: 1 to 16 layers of 1..8192 units (16: the cap of a model's JSON)
HIDDEN_LIMIT = Limit(1, 8192, integer=True, max_items=16)


class MLPConfig:
    """What a model's config dataclass with MLP widths ``hidden`` (a tuple) shares: the check of its fields'
    :class:`Limit` s and its JSON form."""

    def __post_init__(self) -> None:
        """``hidden`` as a tuple of ints, then :meth:`check_limits`."""
        self.check_limits()

    def check_limits(self) -> None:
        """Store ``hidden`` as a tuple of ints (through ``object.__setattr__``: the configs are frozen), then
        check every field's :class:`Limit`: the fields with choices first, then the others in field order.

        Raises:
            ValueError: the first value out of its limit (the message names it).
        """
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        checks = [(f.name, limit) for f, limit in limits(type(self)) if limit is not None]
        for name, limit in sorted(checks, key=lambda c: c[1].choices is None):
            limit.check(name, getattr(self, name))

    def check_field(self, name: str) -> None:
        """Check the field ``name`` against its :class:`Limit` (:func:`limit_of`).

        Raises:
            ValueError: out of its limit.
        """
        limit_of(type(self), name).check(name, getattr(self, name))

    def to_dict(self) -> dict:
        """JSON-ready data (``hidden`` as a list): what ``artifacts`` writes as the model's config."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


@dataclass(frozen=True)
class VAEConfig(MLPConfig):
    """Everything needed to rebuild a :class:`VAE` or :class:`CVAE`.

    Attributes:
        latent_dim: L.
        hidden: widths of the hidden layers of both MLPs (the paper: 500, 500).
        dropout: dropout probability after each hidden layer (the paper: 0.1).
        likelihood: ``"continuous_bernoulli"`` (dequantized data) or ``"bernoulli"`` (binarized data).
        data_dim: pixels per image.
        n_classes: label classes (used by the CVAE only).
    """

    latent_dim: int = Limit(1, 1024, integer=True).field(20)
    hidden: tuple[int, ...] = HIDDEN_LIMIT.field((500, 500))
    dropout: float = Limit(0, 0.95).field(0.1)
    likelihood: str = Limit(choices=LIKELIHOODS).field("continuous_bernoulli")
    data_dim: int = 784
    n_classes: int = 10


@dataclass(frozen=True)
class GMVAEConfig(MLPConfig):
    """Everything needed to rebuild a :class:`GMVAE`.

    Attributes:
        n_clusters: C, the number of mixture components (the paper: 10).
        latent_dim: L (the paper: 64).
        hidden: widths of the hidden layers of every MLP (the paper: 512, 512).
        estimator: the training estimator, ``"marginal"`` or ``"gumbel"``.
        temperature: tau of the relaxed categorical (gumbel only; the trainer may anneal it).
        straight_through: gumbel only; forward with the hard one-hot, backward through the relaxed sample.
        data_dim: pixels per image.
        likelihood: always ``"bernoulli"`` (binary images).
    """

    n_clusters: int = Limit(2, 100, integer=True).field(10)
    latent_dim: int = Limit(1, 1024, integer=True).field(64)
    hidden: tuple[int, ...] = HIDDEN_LIMIT.field((512, 512))
    estimator: str = Limit(choices=ESTIMATORS).field("marginal")
    temperature: float = Limit(0.01, 100).field(1.0)
    straight_through: bool = False
    data_dim: int = 784
    likelihood: str = Limit(
        choices=("bernoulli",), message="the GMVAE has a Bernoulli likelihood (binarized images)."
    ).field("bernoulli")


@dataclass(frozen=True)
class VRNNConfig(MLPConfig):
    """Everything needed to rebuild a :class:`VRNN`.

    Attributes:
        n_rows, row_dim: T and the width of a row (28 x 28 for MNIST).
        latent_dim: L, the size of each z_t (the paper: 2).
        rnn_hidden, rnn_layers: the LSTM (the paper: 256, 2).
        hidden: hidden widths of the prior, posterior and decoder MLPs (the paper: 500, 500).
        likelihood: always ``"bernoulli"``.
    """

    n_rows: int = Limit(1, 1024, integer=True).field(28)
    row_dim: int = Limit(1, 4096, integer=True).field(28)
    latent_dim: int = Limit(1, 256, integer=True).field(2)
    rnn_hidden: int = Limit(1, 4096, integer=True).field(256)
    rnn_layers: int = Limit(1, 8, integer=True).field(2)
    hidden: tuple[int, ...] = HIDDEN_LIMIT.field((500, 500))
    likelihood: str = Limit(
        choices=("bernoulli",), message="the VRNN has a Bernoulli likelihood (binarized images)."
    ).field("bernoulli")

    @property
    def data_dim(self) -> int:
        """Pixels per image (T * row width)."""
        return self.n_rows * self.row_dim


def parse_widths(text: str, separator: str = ",") -> tuple[int, ...]:
    """The hidden widths written as text: ``"500, 500"`` -> (500, 500) (the Training page's box), or with
    ``separator="-"`` ``"256-256"`` -> (256, 256) (Watch it learn's link). Spaces and empty parts are
    ignored; the widths' upper limit is the config's (:data:`HIDDEN_LIMIT`), checked when one is built.

    Raises:
        ValueError: a part that is not a whole number, or no width, or a width below 1.
    """
    try:
        sizes = tuple(int(part) for part in text.replace(" ", "").split(separator) if part)
    except ValueError as err:
        between = "commas" if separator == "," else repr(separator)
        message = f"hidden layers must be whole numbers separated by {between}, got {text!r}."
        raise ValueError(message) from err
    if not sizes or min(sizes) < 1:
        raise ValueError(f"give at least one hidden layer of positive width, got {text!r}.")
    return sizes
