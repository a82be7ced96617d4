"""Training recipes: the fields every family's training shares (:class:`TrainConfig`) and each family's own
(:class:`GMVAETrainConfig`, :class:`VRNNTrainConfig`), validated on construction.

The recipe classes describe themselves, in class attributes: the families each is the recipe of
(``families``: the VAE and the CVAE train with :class:`TrainConfig` itself, so a VAE's recipe has no
``n_clusters``), its model's config class (``model_config_class``, :mod:`explorer_core.models.configs`), the
recipe fields that go into that config (``model_fields``), the one likelihood of its families
(``fixed_likelihood``) and the paper's recipe (``paper``). :func:`recipe_class` finds a family's class
among :data:`RECIPE_CLASSES`; :meth:`TrainConfig.for_family` and :meth:`TrainConfig.from_dict` build with it,
and each record of the family registry (:mod:`explorer_core.families`) reads its recipe facts there.
Imports go one way: the registry imports this module, and this module imports no model and no registry.

A recipe holds its own family's fields only; :meth:`TrainConfig.from_dict` names a field of another family
as such (the shipped JSONs written before the split were rewritten once, without those fields).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from explorer_core.data import PREPROCESSINGS
from explorer_core.inference.aevb import check_learning_rate
from explorer_core.models.configs import GMVAEConfig, Limit, MLPConfig, VAEConfig, VRNNConfig

LR_SCHEDULES = ("constant", "cosine")
#: which epoch a run saves (``TrainConfig.keep_epoch``)
KEEP_EPOCHS = ("best", "last")
#: Which preprocessings suit which likelihood.
LIKELIHOOD_PREPROCESSINGS = {
    "continuous_bernoulli": ("dequantized",),
    "bernoulli": ("binarized", "dynamic_binarized"),
}
#: the family of a recipe (or a recipe's JSON) that names none
DEFAULT_FAMILY = "vae"


def _count(lo: int, hi: int) -> Limit:
    """The limit of a recipe's count (epochs, images, samples): a whole number in lo..hi."""
    return Limit(lo, hi, integer=True, between=True)


def recipe_field_names(config_class: type[TrainConfig]) -> frozenset[str]:
    """The names of the fields of a recipe class (``family`` included)."""
    return frozenset(f.name for f in dataclasses.fields(config_class))


@dataclass(frozen=True)
class TrainConfig(MLPConfig):
    """A training recipe (model architecture + optimisation + data), validated on construction: the fields
    every family shares, and the whole recipe of the VAE and the CVAE. A family with fields of its own has a
    subclass (its record's ``train_config_class``); build one with :meth:`for_family` or :meth:`from_dict`.

    Attributes:
        family: a name in :data:`explorer_core.families.FAMILIES` whose ``train_config_class`` is this
            object's class (:meth:`for_family` gives each family's paper defaults).
        latent_dim, hidden, dropout, likelihood: the architecture (see ``VAEConfig``; the GMVAE and the VRNN
            have no dropout and a Bernoulli likelihood).
        preprocessing: one of ``PREPROCESSINGS``, matching the likelihood.
        epochs: at most this many passes over the training split.
        batch_size, lr: Adam minibatch size and learning rate (the paper: 100, 3e-4).
        n_validation: images at the end of the training set held out for model selection.
        n_samples: reparameterised samples per image in the training estimator.
        patience: stop when the validation ELBO has not improved for this many epochs (None: never).
        min_epochs: early stopping (``patience``) never ends a run before this many epochs.
        max_minutes: stop after the first epoch that ends past this wall-clock budget (None: no limit).
        max_grad_norm: clip the gradient norm to this before each step (None: no clipping).
        lr_schedule: ``"constant"`` or ``"cosine"`` (annealed to zero over ``epochs``, stepped per epoch).
        iwae_k: importance samples for the IWAE bound in the final test metrics (0: skip).
        tsne_points: test images embedded with t-SNE for the latent-map view (0: skip).
        seed: seeds initialisation, order and noise.
        fresh_binarization: with ``preprocessing="binarized"``, the training images are binarized afresh for
            every minibatch (x ~ Bernoulli(pixel / 255), a new draw each epoch; Rui Shu's GMVAE recipe) while
            validation, test and the app keep the fixed threshold, so their numbers stay comparable.
        keep_epoch: which epoch's weights the run saves: ``"best"`` (the best validation ELBO; early
            stopping's choice) or ``"last"`` (a fixed-length run whose model is its last epoch).

    Class attributes (what the recipe class is; a subclass with fields of its own sets them all):
        families: the families trained with this class (:func:`recipe_class`).
        model_config_class: their model's config dataclass (:mod:`explorer_core.models.configs`), which
            :meth:`model_config` checks the architecture with.
        model_fields: the recipe's fields, besides ``latent_dim`` and ``hidden``, that go into that config.
        fixed_likelihood: the only likelihood those families have (None: ``likelihood`` is chosen here).
        paper: the paper's recipe, the fields whose values differ from this class's defaults (the
            tutorial's sections 5.3-5.6 and the papers they cite).

    Raises:
        ValueError: (on construction) an unknown family, a family whose recipe is another class, a value out
            of range, a likelihood that does not fit the preprocessing or the family, an invalid architecture.
        TypeError: (on construction) a field this class does not have (another family's, or none's).
    """

    families: ClassVar[tuple[str, ...]] = ("vae", "cvae")
    model_config_class: ClassVar[type] = VAEConfig
    model_fields: ClassVar[tuple[str, ...]] = ("dropout", "likelihood")
    fixed_likelihood: ClassVar[str | None] = None
    paper: ClassVar[Mapping[str, Any]] = MappingProxyType({})

    family: str = DEFAULT_FAMILY
    latent_dim: int = 20
    hidden: tuple[int, ...] = (500, 500)
    dropout: float = 0.1
    likelihood: str = "continuous_bernoulli"
    preprocessing: str = Limit(choices=PREPROCESSINGS).field("dequantized")
    epochs: int = _count(1, 10_000).field(46)
    batch_size: int = _count(1, 60_000).field(100)
    lr: float = 3e-4
    n_validation: int = _count(0, 30_000).field(10_000)
    n_samples: int = _count(1, 1000).field(1)
    patience: int | None = None
    min_epochs: int = _count(0, 10_000).field(0)
    max_minutes: float | None = None
    max_grad_norm: float | None = None
    lr_schedule: str = Limit(choices=LR_SCHEDULES).field("constant")
    iwae_k: int = _count(0, 100_000).field(0)
    tsne_points: int = _count(0, 10_000).field(3000)
    seed: int = 0
    fresh_binarization: bool = False
    keep_epoch: str = Limit(choices=KEEP_EPOCHS).field("best")

    @classmethod
    def for_family(cls, family: str, **overrides: Any) -> TrainConfig:
        """The paper's recipe for ``family`` (its recipe class's ``paper``) with ``overrides`` applied, as the
        family's recipe class (:func:`recipe_class`).

        Raises:
            ValueError: unknown family, a family whose class is not this one or a subclass, or an invalid
                value.
            TypeError: an override that is not a field of the family's recipe.
        """
        target = recipe_class(family, cls)
        return target(**{"family": family, **target.paper, **overrides})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """The recipe of its JSON form (:meth:`to_dict`: a run's ``config.json``, a model's ``recipe``, a
        checkpoint's), as the ``train_config_class`` of its ``family`` (default ``"vae"``).

        Raises:
            ValueError: unknown family, a field of another family's recipe, or an invalid value.
            TypeError: a key that is no family's field.
        """
        family = data.get("family", DEFAULT_FAMILY)
        target = recipe_class(family, cls)
        own = recipe_field_names(target)
        for name in data:
            if name not in own and any(name in recipe_field_names(r) for r in RECIPE_CLASSES):
                raise ValueError(
                    f"{name} is not a setting of a {family} recipe (it is another family's; a recipe written "
                    "before each family had its own settings holds it: write it again without it)."
                )
        return target(**data)

    def __post_init__(self) -> None:
        """``hidden`` as a tuple of ints, then every check (see the class's Raises)."""
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        target = recipe_class(self.family)
        if type(self) is not target:
            raise ValueError(
                f"a {self.family} recipe is a {target.__name__}, not a {type(self).__name__} (build it with "
                f"TrainConfig.for_family or TrainConfig.from_dict)."
            )
        self.check_field("preprocessing")
        allowed = LIKELIHOOD_PREPROCESSINGS.get(self.likelihood, ())
        if self.preprocessing not in allowed:
            raise ValueError(
                f"a {self.likelihood} likelihood needs data preprocessed as one of {allowed}, "
                f"not {self.preprocessing!r}."
            )
        check_learning_rate(self.lr)
        for name in (
            "epochs",
            "min_epochs",
            "batch_size",
            "n_validation",
            "n_samples",
            "iwae_k",
            "tsne_points",
        ):
            self.check_field(name)
        self.check_field("lr_schedule")
        if self.max_minutes is not None and not 0 < self.max_minutes <= 7 * 24 * 60:
            raise ValueError(f"max_minutes must be in (0, 10080], got {self.max_minutes}.")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}.")
        self.check_field("keep_epoch")
        if self.fresh_binarization and self.preprocessing != "binarized":
            raise ValueError(
                f"fresh_binarization needs preprocessing 'binarized', not {self.preprocessing!r}."
            )
        self._check_family_fields()
        self.model_config()  # architecture checks

    def _check_family_fields(self) -> None:
        """The checks of a family's own fields that its model config does not make (none here).

        Raises:
            ValueError: a value out of range.
        """

    def model_config(self) -> dict[str, Any]:
        """The config dict of the model module: ``latent_dim``, ``hidden`` and the family's ``model_fields``
        (validated by the family's config class).

        Raises:
            ValueError: a likelihood the family does not have, or an invalid architecture.
        """
        config: dict[str, Any] = {"latent_dim": self.latent_dim, "hidden": list(self.hidden)}
        config |= {name: getattr(self, name) for name in self.model_fields}
        if self.fixed_likelihood is not None and self.likelihood != self.fixed_likelihood:
            likelihood = self.fixed_likelihood.replace("_", " ").title()
            raise ValueError(f"the {self.family} has a {likelihood} likelihood, not {self.likelihood!r}.")
        self.model_config_class(**config)
        return config


def _binarized_recipe(**fields: Any) -> Mapping[str, Any]:
    """The paper's recipe of a family trained on binarized images (the GMVAE, the VRNN): a Bernoulli
    likelihood, no dropout, Adam at lr 1e-3 and no t-SNE, plus the family's own ``fields`` (its widths...)."""
    return MappingProxyType(
        {
            **fields,
            "dropout": 0.0,
            "likelihood": "bernoulli",
            "preprocessing": "binarized",
            "lr": 1e-3,
            "tsne_points": 0,
        }
    )


@dataclass(frozen=True)
class GMVAETrainConfig(TrainConfig):
    """The GMVAE's recipe: the shared fields and its mixture's.

    Attributes:
        n_clusters, estimator, temperature, straight_through: the model's (see ``GMVAEConfig``: clusters C
            in 2..100, ``"marginal"`` or ``"gumbel"``, the Gumbel-softmax temperature in [0.01, 100], the
            straight-through Gumbel estimator).
        temperature_final: the Gumbel temperature is annealed geometrically from ``temperature`` to this one
            over the epochs, in [0.01, 100] (None: constant).

    Raises:
        ValueError: (on construction) as :class:`TrainConfig`, or one of these out of range.
    """

    families: ClassVar[tuple[str, ...]] = ("gmvae",)
    model_config_class: ClassVar[type] = GMVAEConfig
    model_fields: ClassVar[tuple[str, ...]] = ("n_clusters", "estimator", "temperature", "straight_through")
    fixed_likelihood: ClassVar[str | None] = "bernoulli"
    paper: ClassVar[Mapping[str, Any]] = _binarized_recipe(latent_dim=64, hidden=(512, 512))

    n_clusters: int = 10
    estimator: str = "marginal"
    temperature: float = 1.0
    temperature_final: float | None = Limit(0.01, 100, optional=True).field(None)
    straight_through: bool = False

    def _check_family_fields(self) -> None:
        """``temperature_final`` in [0.01, 100] or None (the model config checks the others).

        Raises:
            ValueError: out of range.
        """
        self.check_field("temperature_final")

    def temperature_at(self, epoch: int) -> float:
        """The Gumbel temperature during ``epoch`` (1-based): geometric from ``temperature`` to
        ``temperature_final`` over the epochs, or constant."""
        if self.temperature_final is None or self.epochs <= 1:
            return self.temperature
        frac = (epoch - 1) / (self.epochs - 1)
        return self.temperature * (self.temperature_final / self.temperature) ** frac


@dataclass(frozen=True)
class VRNNTrainConfig(TrainConfig):
    """The VRNN's recipe: the shared fields and its LSTM's.

    Attributes:
        rnn_hidden, rnn_layers: the LSTM's units per layer (1..4096) and layers (1..8), see ``VRNNConfig``
            (which checks them).

    Raises:
        ValueError: (on construction) as :class:`TrainConfig`, or an LSTM size out of range.
    """

    families: ClassVar[tuple[str, ...]] = ("vrnn",)
    model_config_class: ClassVar[type] = VRNNConfig
    model_fields: ClassVar[tuple[str, ...]] = ("rnn_hidden", "rnn_layers")
    fixed_likelihood: ClassVar[str | None] = "bernoulli"
    paper: ClassVar[Mapping[str, Any]] = _binarized_recipe(
        latent_dim=2, hidden=(500, 500), max_grad_norm=10.0
    )

    rnn_hidden: int = 256
    rnn_layers: int = 2


#: every recipe class (each names its ``families``)
RECIPE_CLASSES: tuple[type[TrainConfig], ...] = (TrainConfig, GMVAETrainConfig, VRNNTrainConfig)
#: every family with a recipe, in the order the app lists them (:data:`explorer_core.families.FAMILIES`
#: has the same names)
RECIPE_FAMILIES: tuple[str, ...] = tuple(name for cls in RECIPE_CLASSES for name in vars(cls)["families"])
_RECIPE_CLASS_OF: Mapping[str, type[TrainConfig]] = MappingProxyType(
    {name: cls for cls in RECIPE_CLASSES for name in vars(cls)["families"]}
)


def recipe_class(family: object, base: type[TrainConfig] = TrainConfig) -> type[TrainConfig]:
    """The recipe class of ``family`` (the one of :data:`RECIPE_CLASSES` that names it in its own
    ``families``), which must be ``base`` or a subclass of it.

    Raises:
        ValueError: unknown family, or its recipe class is not ``base`` or a subclass of it.
    """
    found = _RECIPE_CLASS_OF.get(family) if isinstance(family, str) else None
    if found is None:
        raise ValueError(f"family must be one of {sorted(RECIPE_FAMILIES)}, got {family!r}.")
    if not issubclass(found, base):
        raise ValueError(f"a {family} recipe is a {found.__name__}, not a {base.__name__}.")
    return found
