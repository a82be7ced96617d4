"""The model families of the MNIST explorers, one record each: the one place that says what a family is.

Every other module asks :data:`FAMILIES` (or :func:`model_family`) instead of comparing family names:
which module and config classes rebuild a model and which schema its JSON config must fit
(:mod:`explorer_core.artifacts`), the class of its training recipe (:mod:`explorer_core.training.recipes`),
the paper's recipe, the shipped presets and the short ``quick`` recipe
(:mod:`explorer_core.training`), how a trained model is evaluated (:mod:`explorer_core.evaluation.metrics`)
and previewed during a run (:mod:`explorer_core.jobs`), how much memory a run's activations take, the family's
page (file, url path, title, icon), what its model picker shows and opens first (``views/_models.py``), and
what the Training page offers for it (``views/training.py``).

The families (tutorial sections 5.3-5.6): ``vae`` (Kingma & Welling 2014), ``cvae`` (Sohn et al. 2015),
``gmvae`` (a Gaussian mixture prior over clusters) and ``vrnn`` (Chung et al. 2015). Factor analysis (section
5.2) is not one of them: it is fitted live on its own page, never trained, saved or loaded here.

Nothing here imports Streamlit, the trainer or the job manager (they import this module); the recipe classes
import this module only inside their methods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import torch

from explorer_core.evaluation.metrics import cluster_metrics, evaluate_gmvae, evaluate_vae, evaluate_vrnn
from explorer_core.models.base import LatentVariableModel
from explorer_core.models.gmvae import GMVAE
from explorer_core.models.vae import CVAE, VAE
from explorer_core.models.vrnn import VRNN
from explorer_core.training.recipes import RECIPES, GMVAETrainConfig, RecipeSpec, TrainConfig, VRNNTrainConfig
from explorer_core.untrusted import Flag, ListOf, Num, Obj, Text

#: pixels of an MNIST image (28 x 28), the models' data_dim
PIXELS = 784
#: the likelihoods a model's JSON may name
LIKELIHOOD_NAMES = ("continuous_bernoulli", "bernoulli")
#: the hidden widths in a model's or a recipe's JSON
HIDDEN_SCHEMA = ListOf(Num(1, 8192, integer=True), max_len=16, min_len=1)


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


@dataclass(frozen=True)
class TrainingChoice:
    """One entry of the Training page's family list (the GMVAE has one per estimator).

    Attributes:
        key: the entry's id (widget keys use it), e.g. ``"gmvae-gumbel"``.
        label: what the list shows, e.g. ``"GMVAE (Gumbel)"``.
        fixed: the recipe fields this entry sets (the presets it offers are those with these values).
        run_slug: how the ids of its runs begin (``<slug>-<date>-<time>-<hex>``).
    """

    key: str
    label: str
    fixed: Mapping[str, Any]
    run_slug: str

    def matches(self, config: TrainConfig) -> bool:
        """Whether ``config`` has every value this entry fixes."""
        return all(getattr(config, name) == value for name, value in self.fixed.items())


@dataclass(frozen=True)
class RecipeField:
    """A family's own hyperparameter on the Training page's form: a field of its recipe class and its number
    box.

    Attributes:
        name: the field of the family's ``train_config_class``.
        label: the box's label.
        key: the widget key's prefix (``<key>_<choice>_<preset>``).
        step: the box's step; a float step makes a float box, an int step an int box.
        only_with: the box is shown only when the recipe has these values (e.g. ``estimator="gumbel"``).
        fallback: the field whose value the box shows while this one is None.
    """

    name: str
    label: str
    key: str
    step: float | int
    only_with: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    fallback: str | None = None

    def shown_for(self, config: TrainConfig) -> bool:
        """Whether the box belongs on the form of ``config``."""
        return all(getattr(config, name) == value for name, value in self.only_with.items())

    def value_for(self, config: TrainConfig) -> float | int:
        """The box's starting value: the field of ``config`` (or its fallback's), a float for a float step."""
        value = getattr(config, self.name)
        if value is None and self.fallback is not None:
            value = getattr(config, self.fallback)
        return float(value) if isinstance(self.step, float) else value


@dataclass(frozen=True)
class ModelFamily:
    """Everything the app knows about one model family.

    Attributes:
        name: the family's id, as stored in a model's JSON (``"vae"``).
        short_name: how texts and the model picker name it (``"VAE"``: the picker is ``"VAE model"``).
        model_class: the module (its config class, recipe class, paper's recipe and the recipe fields of its
            config are its :attr:`recipe`, from :data:`explorer_core.training.recipes.RECIPES`).
        preferred_models: the shipped models its page opens first (the first that exists).
        presets: the shipped models' recipes by name, as changes to the paper's recipe (see README).
        quick: the ``quick`` recipe, a lecture-sized run (about a minute on a 2-core CPU).
        choices: the family's entries on the Training page.
        form_fields: its own hyperparameters on the Training page.
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
        config_schema: its config as a model's JSON holds it (``model.config.to_dict()``), untrusted input
            checked by :mod:`explorer_core.artifacts` before a module is built: every field required (a
            few that came later may be missing), typed and bounded, MNIST's shapes fixed.
    """

    name: str
    short_name: str
    model_class: type[LatentVariableModel]
    preferred_models: tuple[str, ...]
    presets: Mapping[str, Mapping[str, Any]]
    quick: Mapping[str, Any]
    choices: tuple[TrainingChoice, ...]
    form_fields: tuple[RecipeField, ...]
    tsne_view: bool
    anneals_temperature: bool
    has_clusters: bool
    evaluate: Evaluate
    epoch_metrics: Callable[[LatentVariableModel, torch.Tensor, torch.Tensor | None], dict[str, float]]
    preview: Callable[[LatentVariableModel, int, torch.Generator], torch.Tensor]
    activations_per_example: Callable[[TrainConfig], int]
    config_schema: Obj

    @property
    def recipe(self) -> RecipeSpec:
        """Its training recipe's description (:data:`explorer_core.training.recipes.RECIPES`)."""
        return RECIPES[self.name]

    @property
    def config_class(self) -> type:
        """The model's config dataclass (``model_class(config_class(**d))`` rebuilds a model from its JSON
        config ``d``)."""
        return self.recipe.model_config_class

    @property
    def train_config_class(self) -> type[TrainConfig]:
        """The class of its training recipe (see :class:`~explorer_core.training.recipes.RecipeSpec`)."""
        return self.recipe.train_config_class

    @property
    def recipe_defaults(self) -> Mapping[str, Any]:
        """The paper's recipe: the fields of ``train_config_class`` whose values differ from its defaults."""
        return self.recipe.defaults

    @property
    def model_fields(self) -> tuple[str, ...]:
        """The recipe's fields, besides ``latent_dim`` and ``hidden``, that go into its config class."""
        return self.recipe.model_fields

    @property
    def fixed_likelihood(self) -> str | None:
        """The only likelihood the family has (None: ``likelihood`` is chosen in the recipe)."""
        return self.recipe.fixed_likelihood

    @property
    def conditional(self) -> bool:
        """The model is conditioned on the label y (the model protocol's ``conditional``)."""
        return self.model_class.conditional

    def choice_for(self, config: TrainConfig) -> TrainingChoice:
        """The Training page's entry that ``config`` belongs to (the first whose fixed values it has)."""
        return next((c for c in self.choices if c.matches(config)), self.choices[0])


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


_DROPOUT = RecipeField("dropout", "Dropout", "tr_drop", 0.05)
_VAE_CONFIG = Obj(
    {
        "latent_dim": Num(1, 1024, integer=True),
        "hidden": HIDDEN_SCHEMA,
        "dropout": Num(0, 0.95),
        "likelihood": Text(choices=LIKELIHOOD_NAMES),
        "data_dim": Num(PIXELS, PIXELS, integer=True),
        "n_classes": Num(10, 10, integer=True),
    },
    required=frozenset({"latent_dim", "hidden", "dropout", "likelihood", "data_dim", "n_classes"}),
    extra="reject",
)
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
    """The record of the VAE or the CVAE: the two share their config class, the paper's recipe, the quick
    recipe, the form, the evaluation, the decoder preview and the memory estimate; the one Training
    entry and its runs are called ``name``."""
    return ModelFamily(
        name=name,
        short_name=short_name,
        model_class=model_class,
        preferred_models=preferred_models,
        presets=_frozen({k: _frozen(v) for k, v in presets.items()}),
        quick=_frozen({"latent_dim": 2, "epochs": 2, "tsne_points": 0}),
        choices=(TrainingChoice(name, short_name, _frozen({}), name),),
        form_fields=(_DROPOUT,),
        tsne_view=True,
        anneals_temperature=False,
        has_clusters=False,
        evaluate=_evaluate_vae,
        epoch_metrics=_no_epoch_metrics,
        preview=_decoder_preview,
        activations_per_example=_mlp_activations,
        config_schema=_VAE_CONFIG,
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
            choices=(
                TrainingChoice(
                    "gmvae-marginal", "GMVAE (marginal)", _frozen({"estimator": "marginal"}), "gmvae"
                ),
                TrainingChoice(
                    "gmvae-gumbel", "GMVAE (Gumbel)", _frozen({"estimator": "gumbel"}), "gmvae-gumbel"
                ),
            ),
            form_fields=(
                RecipeField("n_clusters", "Clusters C", "tr_clusters", 1),
                RecipeField(
                    "temperature", "Temperature (start)", "tr_temp", 0.1, _frozen({"estimator": "gumbel"})
                ),
                RecipeField(
                    "temperature_final",
                    "Temperature (end)",
                    "tr_temp_end",
                    0.1,
                    _frozen({"estimator": "gumbel"}),
                    fallback="temperature",
                ),
            ),
            tsne_view=False,
            anneals_temperature=True,
            has_clusters=True,
            evaluate=_evaluate_gmvae,
            epoch_metrics=cluster_metrics,
            preview=_sample_preview,
            activations_per_example=_gmvae_activations,
            config_schema=Obj(
                {
                    "n_clusters": Num(2, 100, integer=True),
                    "latent_dim": Num(1, 1024, integer=True),
                    "hidden": HIDDEN_SCHEMA,
                    "estimator": Text(choices=("marginal", "gumbel")),
                    "temperature": Num(0.01, 100),
                    "straight_through": Flag(),
                    "data_dim": Num(PIXELS, PIXELS, integer=True),
                    "likelihood": Text(choices=("bernoulli",)),
                },
                required=frozenset(
                    {"n_clusters", "latent_dim", "hidden", "estimator", "temperature", "data_dim"}
                ),
                extra="reject",
            ),
        ),
        "vrnn": ModelFamily(
            name="vrnn",
            short_name="VRNN",
            model_class=VRNN,
            preferred_models=("vrnn",),
            presets=_frozen({"vrnn": _frozen({"epochs": 4, "lr_schedule": "cosine", "patience": 4})}),
            quick=_frozen({"epochs": 1, "hidden": (128, 128), "rnn_hidden": 64, "rnn_layers": 1}),
            choices=(TrainingChoice("vrnn", "VRNN", _frozen({}), "vrnn"),),
            form_fields=(
                RecipeField("rnn_hidden", "LSTM units", "tr_rnn", 1),
                RecipeField("rnn_layers", "LSTM layers", "tr_layers", 1),
            ),
            tsne_view=False,
            anneals_temperature=False,
            has_clusters=False,
            evaluate=_evaluate_vrnn,
            epoch_metrics=_no_epoch_metrics,
            preview=_sample_preview,
            activations_per_example=_vrnn_activations,
            config_schema=Obj(
                {
                    "n_rows": Num(28, 28, integer=True),
                    "row_dim": Num(28, 28, integer=True),
                    "latent_dim": Num(1, 256, integer=True),
                    "rnn_hidden": Num(1, 4096, integer=True),
                    "rnn_layers": Num(1, 8, integer=True),
                    "hidden": HIDDEN_SCHEMA,
                    "likelihood": Text(choices=("bernoulli",)),
                },
                required=frozenset({"n_rows", "row_dim", "latent_dim", "rnn_hidden", "rnn_layers", "hidden"}),
                extra="reject",
            ),
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
