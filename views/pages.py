"""What the app's pages are: file, title, URL path, icon, and the one sentence the home page's card says.

The page facts of the model families (the core's registry, :mod:`explorer_core.families`, knows models, not
pages) and of the other pages, in the order the sidebar lists them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageFacts:
    """One page: ``file`` (relative to the repository), ``title``, ``url_path``, ``icon`` (a Material icon,
    ``:material/<name>:``: its font ships with Streamlit, where an emoji is an empty box on a machine
    without an emoji font), ``summary`` (the home page's card; empty for pages without a card)."""

    file: str
    title: str
    url_path: str
    icon: str
    summary: str = ""


#: every page but Home, in the sidebar's order; the model families' under their family's name
PAGES: dict[str, PageFacts] = {
    "factor-analysis": PageFacts(
        "views/factor_analysis.py", "Factor analysis", "factor-analysis", ":material/square_foot:"
    ),
    "vae": PageFacts(
        "views/vae.py",
        "VAE latent space",
        "vae",
        ":material/cyclone:",
        "Drag z and watch the decoder; see q(z|x) and z = μ + σ·ε for a test image or your drawing, the ELBO "
        "split into reconstruction and KL, and interpolations.",
    ),
    "watch": PageFacts("views/watch.py", "Watch it learn", "watch", ":material/visibility:"),
    "cvae": PageFacts(
        "views/cvae.py",
        "Conditional VAE",
        "cvae",
        ":material/label:",
        "The label sets the class, z the style: decode one z under all ten labels, re-label an image, see "
        "the learned priors p(z|y).",
    ),
    "gmvae": PageFacts(
        "views/gmvae.py",
        "Gaussian mixture VAE",
        "gmvae",
        ":material/extension:",
        "Ten clusters found without labels, ordered by their matched digit; q(y|x), the confusion matrix, "
        "and the two estimators side by side.",
    ),
    "vrnn": PageFacts(
        "views/vrnn.py",
        "Variational RNN",
        "vrnn",
        ":material/history_edu:",
        "A latent z_t per row: watch digits grow one row at a time, complete a digit's top rows, see where "
        "the KL is spent.",
    ),
    "training": PageFacts("views/training.py", "Training", "training", ":material/model_training:"),
}
