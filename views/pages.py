"""What the app's pages are: file, title, URL path, icon and home card; for a model family's page also what
the views show of the family: its metrics row and its part of the Training page's form.

The views' record of each model family (the core's record, :mod:`explorer_core.families`, knows models and
recipes, not pages, labels or widget keys) and the facts of the other pages, in the order the sidebar and
the home page list them. Adding a family: its core record, its model, its entry here, its page and its tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from views.components.metric_figures import GMVAE_FIGURES, LATENT_FIGURES, VRNN_FIGURES, Figure
from views.training_form import GMVAE_FORM, LATENT_FORM, VRNN_FORM, NumberBox, TrainingChoice


@dataclass(frozen=True)
class FamilyViews:
    """What the views show of one model family.

    Attributes:
        metrics: the figures of its pages' metrics row (:mod:`views.components.model_metrics`).
        training: its entries in the Training page's family list, one per variant of its runs.
        form: its own number boxes on the Training page's form.
        quick_seconds: wall-clock seconds of ``python -m explorer_core train FAMILY --preset quick`` (load,
            train, test metrics) on the project's 2-core CPU, measured 2026-12-04 with other work running
            (README, Training): the quick recipe's label says it (None: "about a minute").
    """

    metrics: tuple[Figure, ...]
    training: tuple[TrainingChoice, ...]
    form: tuple[NumberBox, ...] = ()
    quick_seconds: int | None = None


@dataclass(frozen=True)
class PageFacts:
    """One page: ``file`` (relative to the repository), ``title``, ``url_path``, ``icon`` (a Material icon,
    ``:material/<name>:``: its font ships with Streamlit, where an emoji is an empty box on a machine
    without an emoji font), ``summary`` (the home page's card; empty for pages without a card),
    ``card_label`` (the card's link; empty: the title), ``family`` (a model family's page: what the views
    show of the family; None for the other pages).

    The card's picture is ``pretrained/cards/<name>.png`` (``python -m explorer_core.cards``), its name the
    page's key in :data:`PAGES` with ``_`` for ``-`` (:attr:`card_picture`)."""

    file: str
    title: str
    url_path: str
    icon: str
    summary: str = ""
    card_label: str = ""
    family: FamilyViews | None = None

    @property
    def card_picture(self) -> str:
        """The name of the card's picture (``factor_analysis`` for ``factor-analysis``)."""
        return self.url_path.replace("-", "_")


def _latent_views(name: str, label: str, quick_seconds: int) -> FamilyViews:
    """The views' facts of the VAE or the CVAE: the same metrics row and number box, one Training entry
    ``label`` (key and variant ``name``)."""
    return FamilyViews(LATENT_FIGURES, (TrainingChoice(name, label, name),), LATENT_FORM, quick_seconds)


#: every page but Home, in the sidebar's (and the home cards') order; the model families' under their
#: family's name
PAGES: dict[str, PageFacts] = {
    "factor-analysis": PageFacts(
        "views/factor_analysis.py",
        "Factor analysis",
        "factor-analysis",
        ":material/square_foot:",
        "Watch the ELBO close on the exact evidence, with the data, the model's samples and the posteriors "
        "live.",
        card_label="Factor analysis: E- and M-steps",
    ),
    "vae": PageFacts(
        "views/vae.py",
        "VAE latent space",
        "vae",
        ":material/cyclone:",
        "Drag z and watch the decoder; see q(z|x) and z = μ + σ·ε for a test image or your drawing, the ELBO "
        "split into reconstruction and KL, and interpolations.",
        family=_latent_views("vae", "VAE", quick_seconds=42),
    ),
    "watch": PageFacts(
        "views/watch.py",
        "Watch it learn",
        "watch",
        ":material/visibility:",
        "Train a small VAE in your session by E-, M- or joint steps, and watch its latent map form.",
    ),
    "cvae": PageFacts(
        "views/cvae.py",
        "Conditional VAE",
        "cvae",
        ":material/label:",
        "The label sets the class, z the style: decode one z under all ten labels, re-label an image, see "
        "the learned priors p(z|y).",
        family=_latent_views("cvae", "CVAE", quick_seconds=28),
    ),
    "gmvae": PageFacts(
        "views/gmvae.py",
        "Gaussian mixture VAE",
        "gmvae",
        ":material/extension:",
        "Ten clusters found without labels, ordered by their matched digit; q(y|x), the confusion matrix, "
        "and the two estimators side by side.",
        family=FamilyViews(
            GMVAE_FIGURES,
            (
                TrainingChoice("gmvae-marginal", "GMVAE (marginal)", "gmvae"),
                TrainingChoice("gmvae-gumbel", "GMVAE (Gumbel)", "gmvae-gumbel"),
            ),
            GMVAE_FORM,
            quick_seconds=50,
        ),
    ),
    "vrnn": PageFacts(
        "views/vrnn.py",
        "Variational RNN",
        "vrnn",
        ":material/history_edu:",
        "A latent z_t per row: watch digits grow one row at a time, complete a digit's top rows, see where "
        "the KL is spent.",
        family=FamilyViews(
            VRNN_FIGURES, (TrainingChoice("vrnn", "VRNN", "vrnn"),), VRNN_FORM, quick_seconds=73
        ),
    ),
    "training": PageFacts(
        "views/training.py",
        "Training",
        "training",
        ":material/model_training:",
        "Start a run (the paper's recipe or a one-minute one), watch its curves and samples, find it in its "
        "page's model picker.",
        card_label="Training in the background",
    ),
}
#: the model families' pages by family name (those with ``family`` facts)
FAMILY_PAGES: dict[str, PageFacts] = {name: page for name, page in PAGES.items() if page.family is not None}
