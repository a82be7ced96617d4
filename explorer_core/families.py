"""The model families of the MNIST explorers, one record each: the one place in the core that says what a
family is.

Every other module of the core asks :data:`FAMILIES` (or :func:`model_family`) instead of comparing family
names: which module and config classes rebuild a model and which schema its JSON config must fit
(:mod:`explorer_core.artifacts`; the schema is derived from the config class's limits), the class of its
training recipe and the paper's recipe (read from that class, :mod:`explorer_core.training.recipes`), the
shipped presets and the short ``quick`` recipe (:mod:`explorer_core.training`), the variants its runs are
named after (:mod:`explorer_core.jobs`), how a trained model is evaluated
(:mod:`explorer_core.evaluation.metrics`) and previewed during a run, how much memory a run's activations
take, and what its model picker shows and opens first (``views/_models.py``).

What the pages show of a family (its page's file, title, icon and home card, its metrics row, its entries and
number boxes on the Training page, with their labels and widget keys) is not here: it is the family's entry
in ``views/pages.py``.

The families (tutorial sections 5.3-5.6): ``vae`` (Kingma & Welling 2014), ``cvae`` (Sohn et al. 2015),
``gmvae`` (a Gaussian mixture prior over clusters) and ``vrnn`` (Chung et al. 2015). Factor analysis (section
5.2) is not one of them: it is fitted live on its own page, never trained, saved or loaded here.

Nothing here imports Streamlit, the trainer or the job manager (they import this module); the recipe classes
(:mod:`explorer_core.training.recipes`) do not import it at all: a recipe is read without the models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import torch

from explorer_core.evaluation.metrics import cluster_metrics, evaluate_gmvae, evaluate_vae, evaluate_vrnn
from explorer_core.models.base import LatentVariableModel
from explorer_core.models.configs import Limit, limits
from explorer_core.models.gmvae import GMVAE
from explorer_core.models.vae import CVAE, VAE
from explorer_core.models.vrnn import VRNN
from explorer_core.training.recipes import (
    RECIPE_CLASSES,
    GMVAETrainConfig,
    TrainConfig,
    VRNNTrainConfig,
    recipe_class,
)
from explorer_core.untrusted import Flag, ListOf, Num, Obj, Text

#: pixels of an MNIST image (28 x 28), the models' data_dim
PIXELS = 784
#: the shape fields of a model config that a model's JSON must hold at MNIST's values (the app reads
#: MNIST models only): pixels per image, label classes, rows and row width
MNIST_SHAPES: Mapping[str, int] = MappingProxyType(
    {"data_dim": PIXELS, "n_classes": 10, "n_rows": 28, "row_dim": 28}
)


def limit_schema(limit: Limit) -> Num | Text | ListOf:
    """The JSON schema (:mod:`explorer_core.untrusted`) of a value within a config field's ``limit``: a text
    among its choices, a list of 1 to ``max_items`` numbers, or a number in [lo, hi] (None too when the
    limit is ``optional``)."""
    if limit.choices is not None:
        return Text(choices=limit.choices, optional=limit.optional)
    if limit.max_items is None:
        return Num(limit.lo, limit.hi, integer=limit.integer, optional=limit.optional)
    number = Num(limit.lo, limit.hi, integer=limit.integer)
    return ListOf(number, max_len=limit.max_items, min_len=1, optional=limit.optional)


def config_schema(config_class: type, later: frozenset[str] = frozenset()) -> Obj:
    """The JSON schema of a model config (``model.config.to_dict()``), derived from its class: each field's
    :class:`~explorer_core.models.configs.Limit` (:func:`limit_schema`), a flag for a bool field, MNIST's
    value for a shape field (:data:`MNIST_SHAPES`); every field required but those in ``later`` (fields
    that came after some shipped JSONs were written); no other key.

    Raises:
        TypeError: a field with neither a limit nor a bool type nor an MNIST shape (its JSON would be
            unchecked).
    """
    fields: dict[str, Any] = {}
    for f, limit in limits(config_class):
        if f.name in MNIST_SHAPES:
            fields[f.name] = Num(MNIST_SHAPES[f.name], MNIST_SHAPES[f.name], integer=True)
        elif limit is not None:
            fields[f.name] = limit_schema(limit)
        elif f.type in ("bool", bool):
            fields[f.name] = Flag()
        else:
            raise TypeError(f"{config_class.__name__}.{f.name} has no Limit: its JSON would go unchecked.")
    return Obj(fields, required=frozenset(fields) - later, extra="reject")


def model_field_schemas() -> dict[str, Num | Text | ListOf | Flag]:
    """The JSON schema of each recipe field that goes into a model config (``latent_dim``, ``hidden`` and
    every recipe class's ``model_fields``), as a recipe's JSON may hold it whatever its family: the union
    of the limits of that field over the config classes that have it (``latent_dim``: 1..1024 though the
    VRNN's stops at 256; ``TrainConfig.model_config`` then checks the family's own), in recipe field order.

    Raises:
        TypeError: a field without a limit, or whose limits are of different kinds (a number here, choices
            there).
    """
    names = dict.fromkeys(["latent_dim", "hidden", *(n for c in RECIPE_CLASSES for n in c.model_fields)])
    found: dict[str, list[Limit | str]] = {name: [] for name in names}
    for config_class in dict.fromkeys(c.model_config_class for c in RECIPE_CLASSES):
        for f, limit in limits(config_class):
            if f.name in found:
                found[f.name].append("flag" if limit is None and f.type in ("bool", bool) else limit)
    out: dict[str, Num | Text | ListOf | Flag] = {}
    for name, seen in found.items():
        if seen and all(x == "flag" for x in seen):
            out[name] = Flag()
            continue
        if (
            not all(isinstance(x, Limit) for x in seen)
            or len({(x.choices is None, x.max_items) for x in seen}) != 1
        ):
            raise TypeError(
                f"{name} has no limit, or limits of different kinds, in the config classes: {seen}."
            )
        if seen[0].choices is not None:
            out[name] = Text(choices=tuple(dict.fromkeys(c for x in seen for c in x.choices)))
        else:
            union = Limit(
                min(x.lo for x in seen), max(x.hi for x in seen), seen[0].integer, max_items=seen[0].max_items
            )
            out[name] = limit_schema(union)
    return out


class UnknownFamilyError(ValueError):
    """A family name that is not in :data:`FAMILIES`; the message lists the known ones."""


class Evaluate(Protocol):
    """Test metrics of a trained model of one family (see :mod:`explorer_core.evaluation.metrics`)."""

    def __call__(
        self,
        model: LatentVariableModel,
        x: torch.Tensor,
        labels: torch.Tensor,
        iwae_k: int = 0,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Metrics in nats per image for preprocessed images x [N, 784] and their labels [N] (the CVAE's
        condition; the GMVAE's cluster accuracy); ``iwae_k`` importance samples where the family reports the
        IWAE bound, ``progress(done, total)`` for that pass."""


def recipe_field_schemas() -> dict[str, Num | Text | ListOf | Flag]:
    """The JSON schema of every recipe field whose limit is written on a class: those that go into a model
    config (:func:`model_field_schemas`), those with a :class:`~explorer_core.models.configs.Limit` of their
    own on a recipe class (``epochs``, ``preprocessing``, ``temperature_final`` ...) and the flags, in the
    order of the recipe classes' fields. Not here: ``family`` (the registry's names) and the fields whose
    recipe class checks a rule of its own (``lr``, ``patience``, ``max_minutes``, ``max_grad_norm``,
    ``seed``).
    """
    model = model_field_schemas()
    out: dict[str, Num | Text | ListOf | Flag] = {}
    for recipe in RECIPE_CLASSES:
        for f, limit in limits(recipe):
            if f.name in out:
                continue
            if f.name in model:
                out[f.name] = model[f.name]
            elif limit is not None:
                out[f.name] = limit_schema(limit)
            elif f.type in ("bool", bool):
                out[f.name] = Flag()
    return out


@dataclass(frozen=True)
class RecipeVariant:
    """One way a family is trained that its runs are named after (the GMVAE has one per estimator).

    Attributes:
        run_slug: how the ids of its runs begin (``<slug>-<date>-<time>-<hex>``), e.g. ``"gmvae-gumbel"``.
        fixed: the recipe fields this variant sets (its presets are those with these values).
    """

    run_slug: str
    fixed: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def matches(self, config: TrainConfig) -> bool:
        """Whether ``config`` has every value this variant fixes."""
        return all(getattr(config, name) == value for name, value in self.fixed.items())


@dataclass(frozen=True)
class ModelFamily:
    """Everything the app knows about one model family.

    Attributes:
        name: the family's id, as stored in a model's JSON (``"vae"``).
        short_name: how texts and the model picker name it (``"VAE"``: the picker is ``"VAE model"``).
        model_class: the module (its recipe class, :attr:`train_config_class`, names its config class, the
            recipe fields of that config and the paper's recipe).
        preferred_models: the shipped models its page opens first (the first that exists).
        presets: the shipped models' recipes by name, as changes to the paper's recipe (see README).
        quick: the ``quick`` recipe, a lecture-sized run (about a minute on a 2-core CPU).
        variants: the ways it is trained that its runs are named after (the first: the default).
        tsne_view: training embeds test images with t-SNE for the latent-map view (``tsne_points``).
        anneals_temperature: the model has a Gumbel temperature that the trainer sets every epoch
            (``TrainConfig.temperature_at``) and logs.
        has_clusters: the model has a mixture over clusters y (q(y|x), p(z|y)): the cluster views apply.
        evaluate: its test metrics (see :class:`Evaluate`).
        epoch_metrics: its own metrics on the validation split, logged every epoch
            (``(model, x, labels) -> dict``; empty when it has none).
        preview: ``(model, n, generator) -> [n, ...]`` images in [0, 1] that show a run's progress (fixed
            noise from ``generator``, so that epochs are comparable); called without gradients, in eval mode.
        activations_per_example: forward values one training example holds (pre- and post-activation) under
            a recipe, for the memory estimate of a run.
        later_config_fields: the fields of its config that a model's JSON may lack (they came later).
    """

    name: str
    short_name: str
    model_class: type[LatentVariableModel]
    preferred_models: tuple[str, ...]
    presets: Mapping[str, Mapping[str, Any]]
    quick: Mapping[str, Any]
    variants: tuple[RecipeVariant, ...]
    tsne_view: bool
    anneals_temperature: bool
    has_clusters: bool
    evaluate: Evaluate
    epoch_metrics: Callable[[LatentVariableModel, torch.Tensor, torch.Tensor | None], dict[str, float]]
    preview: Callable[[LatentVariableModel, int, torch.Generator], torch.Tensor]
    activations_per_example: Callable[[TrainConfig], int]
    later_config_fields: frozenset[str] = frozenset()

    @property
    def train_config_class(self) -> type[TrainConfig]:
        """The class of its training recipe (:func:`explorer_core.training.recipes.recipe_class`)."""
        return recipe_class(self.name)

    @property
    def config_class(self) -> type:
        """The model's config dataclass (``model_class(config_class(**d))`` rebuilds a model from its JSON
        config ``d``), as its recipe class names it."""
        return self.train_config_class.model_config_class

    @property
    def config_schema(self) -> Obj:
        """Its config as a model's JSON holds it (``model.config.to_dict()``), untrusted input checked by
        :mod:`explorer_core.artifacts` before a module is built: :func:`config_schema` of its config class
        (every field required but :attr:`later_config_fields`, typed and bounded by the class's limits,
        MNIST's shapes fixed)."""
        return config_schema(self.config_class, self.later_config_fields)

    @property
    def recipe_defaults(self) -> Mapping[str, Any]:
        """The paper's recipe: the fields of ``train_config_class`` whose values differ from its defaults."""
        return self.train_config_class.paper

    @property
    def model_fields(self) -> tuple[str, ...]:
        """The recipe's fields, besides ``latent_dim`` and ``hidden``, that go into its config class."""
        return self.train_config_class.model_fields

    @property
    def fixed_likelihood(self) -> str | None:
        """The only likelihood the family has (None: ``likelihood`` is chosen in the recipe)."""
        return self.train_config_class.fixed_likelihood

    @property
    def conditional(self) -> bool:
        """The model is conditioned on the label y (the model protocol's ``conditional``)."""
        return self.model_class.conditional

    def variant_for(self, config: TrainConfig) -> RecipeVariant:
        """The variant that ``config`` belongs to (the first whose fixed values it has, else the first)."""
        return next((v for v in self.variants if v.matches(config)), self.variants[0])

    def variant(self, run_slug: str) -> RecipeVariant:
        """The variant whose runs begin with ``run_slug``.

        Raises:
            KeyError: the family has no such variant.
        """
        found = next((v for v in self.variants if v.run_slug == run_slug), None)
        if found is None:
            raise KeyError(
                f"{self.name} has no variant {run_slug!r}; known: {[v.run_slug for v in self.variants]}."
            )
        return found


# ----------------------------------------------------------------------------------- what differs


def _evaluate_vae(model, x, labels, iwae_k=0, progress=None) -> dict[str, Any]:
    """The VAE's and CVAE's metrics: the labels go in only where the model is conditioned on them."""
    return evaluate_vae(model, x, labels if model.conditional else None, iwae_k=iwae_k, progress=progress)


def _evaluate_gmvae(model, x, labels, iwae_k=0, progress=None) -> dict[str, Any]:
    return evaluate_gmvae(model, x, labels)


def _evaluate_vrnn(model, x, labels, iwae_k=0, progress=None) -> dict[str, Any]:
    return evaluate_vrnn(model, x)


def _no_epoch_metrics(model, x, labels) -> dict[str, float]:
    return {}


def _decoder_preview(model, n: int, generator: torch.Generator) -> torch.Tensor:
    """The decoder's Bernoulli/CB parameter lambda(z) at z from the prior (the CVAE cycles labels 0..9)."""
    device = next(model.parameters()).device
    y = (torch.arange(n) % 10).to(device) if model.conditional else None
    eps = torch.randn(n, model.config.latent_dim, generator=generator)
    return torch.sigmoid(model.decoder_logits(model.prior_noise_to_z(eps, y), y))


def _sample_preview(model, n: int, generator: torch.Generator) -> torch.Tensor:
    """The model's own samples: the GMVAE's Bernoulli means cycling the clusters, the VRNN's row-by-row
    means."""
    return model.sample(n, generator=generator, means=True)


def _mlp_activations(config: TrainConfig) -> int:
    """An encoder and a decoder MLP: 784 -> hidden -> 2L, L -> hidden -> 2 x 784, per reparameterised
    sample."""
    widths = [PIXELS, *config.hidden, 2 * config.latent_dim, *reversed(config.hidden), PIXELS * 2]
    return 2 * sum(widths) * config.n_samples


def _gmvae_activations(config: GMVAETrainConfig) -> int:
    """The MLPs once per cluster (the marginal estimator sums over all C), or twice (Gumbel)."""
    return _mlp_activations(config) * (config.n_clusters if config.estimator == "marginal" else 2)


def _vrnn_activations(config: VRNNTrainConfig) -> int:
    """Per row (28): the MLPs, the LSTM's gates and the row's values."""
    rows = 28
    return rows * (2 * sum(config.hidden) + 8 * config.rnn_hidden * config.rnn_layers + 4 * 28)


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


_VAE_PRESETS = {
    "vae-cb-l20": {"epochs": 100, "patience": 15},
    "vae-cb-l2": {"latent_dim": 2, "epochs": 30, "patience": 6},
    "vae-bernoulli-l20": {
        "likelihood": "bernoulli",
        "preprocessing": "dynamic_binarized",
        "dropout": 0.0,
        "epochs": 100,
        "batch_size": 100,
        "lr": 1e-3,
        "lr_schedule": "cosine",
        "patience": 100,
        "iwae_k": 1000,
    },
}
_CVAE_PRESETS = {
    "cvae-cb-l20": {"epochs": 140, "lr_schedule": "cosine", "patience": 140},
    "cvae-cb-l2": {"latent_dim": 2, "epochs": 30, "patience": 6},
}
_GMVAE_PRESETS = {
    # at least the reference's 78 epochs, then on while the validation ELBO improves (patience 10)
    "gmvae-marginal": {"epochs": 100, "min_epochs": 78, "patience": 10},
    # recipe v3 (issue 36): fresh binarization of every training minibatch, 200 epochs, the last one kept;
    # screened first (seeds 0-7 to epoch 20, train --epochs 20), the kept restart resumed to 200
    "gmvae-marginal-v3": {"fresh_binarization": True, "epochs": 200, "keep_epoch": "last"},
    "gmvae-gumbel": {
        "estimator": "gumbel",
        "temperature": 1.0,
        "temperature_final": 0.5,
        "epochs": 40,
        "patience": 40,
    },
    "gmvae-gumbel-v3": {
        "estimator": "gumbel",
        "temperature": 1.0,
        "temperature_final": 0.5,
        "epochs": 40,
        "fresh_binarization": True,
        "keep_epoch": "last",
    },
}


def _vae_family(
    name: str,
    short_name: str,
    model_class: type[LatentVariableModel],
    *,
    preferred_models: tuple[str, ...],
    presets: Mapping[str, Mapping[str, Any]],
) -> ModelFamily:
    """The record of the VAE or the CVAE: the two share their config and recipe classes, the quick recipe,
    the evaluation, the decoder preview and the memory estimate; their one variant's runs are called
    ``name``."""
    return ModelFamily(
        name=name,
        short_name=short_name,
        model_class=model_class,
        preferred_models=preferred_models,
        presets=_frozen({k: _frozen(v) for k, v in presets.items()}),
        quick=_frozen({"latent_dim": 2, "epochs": 2, "tsne_points": 0}),
        variants=(RecipeVariant(name),),
        tsne_view=True,
        anneals_temperature=False,
        has_clusters=False,
        evaluate=_evaluate_vae,
        epoch_metrics=_no_epoch_metrics,
        preview=_decoder_preview,
        activations_per_example=_mlp_activations,
    )


#: every family, in the order the app lists them
FAMILIES: Mapping[str, ModelFamily] = MappingProxyType(
    {
        "vae": _vae_family(
            "vae",
            "VAE",
            VAE,
            preferred_models=("vae-cb-l2", "vae-cb-l20"),
            presets=_VAE_PRESETS,
        ),
        "cvae": _vae_family(
            "cvae",
            "CVAE",
            CVAE,
            preferred_models=("cvae-cb-l2", "cvae-cb-l20"),
            presets=_CVAE_PRESETS,
        ),
        "gmvae": ModelFamily(
            name="gmvae",
            short_name="GMVAE",
            model_class=GMVAE,
            preferred_models=("gmvae-marginal", "gmvae-gumbel"),
            presets=_frozen({k: _frozen(v) for k, v in _GMVAE_PRESETS.items()}),
            quick=_frozen({"epochs": 1, "hidden": (256, 256), "latent_dim": 16}),
            variants=(
                RecipeVariant("gmvae", _frozen({"estimator": "marginal"})),
                RecipeVariant("gmvae-gumbel", _frozen({"estimator": "gumbel"})),
            ),
            tsne_view=False,
            anneals_temperature=True,
            has_clusters=True,
            evaluate=_evaluate_gmvae,
            epoch_metrics=cluster_metrics,
            preview=_sample_preview,
            activations_per_example=_gmvae_activations,
            later_config_fields=frozenset({"straight_through", "likelihood"}),
        ),
        "vrnn": ModelFamily(
            name="vrnn",
            short_name="VRNN",
            model_class=VRNN,
            preferred_models=("vrnn",),
            presets=_frozen({"vrnn": _frozen({"epochs": 4, "lr_schedule": "cosine", "patience": 4})}),
            quick=_frozen({"epochs": 1, "hidden": (128, 128), "rnn_hidden": 64, "rnn_layers": 1}),
            variants=(RecipeVariant("vrnn"),),
            tsne_view=False,
            anneals_temperature=False,
            has_clusters=False,
            evaluate=_evaluate_vrnn,
            epoch_metrics=_no_epoch_metrics,
            preview=_sample_preview,
            activations_per_example=_vrnn_activations,
            later_config_fields=frozenset({"likelihood"}),
        ),
    }
)


def model_family(name: str) -> ModelFamily:
    """The record of the family called ``name``.

    Raises:
        UnknownFamilyError: no family has that name (``"unknown model family 'x'; known: [...]."``).
    """
    spec = FAMILIES.get(name) if isinstance(name, str) else None
    if spec is None:
        raise UnknownFamilyError(f"unknown model family {name!r}; known: {sorted(FAMILIES)}.")
    return spec


def is_model_family(name: object) -> bool:
    """Whether ``name`` is the name of a family (any other value, a non-string too, is not)."""
    return isinstance(name, str) and name in FAMILIES
