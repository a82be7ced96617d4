"""The figures of a model page's metrics row, per family: what each shows of a model's stored test-set
metrics (:class:`explorer_core.artifacts.ModelDescription`), with its format and help. Each family names its
tuple in its entry of ``views/pages.py``; :mod:`views.components.model_metrics` draws the row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from explorer_core.artifacts import ModelDescription
from explorer_core.evaluation.metrics import ACTIVE_UNIT_VARIANCE
from views.components.model_panel import Metric


def _or_dash(value: object) -> str:
    return "–" if value is None else str(value)


@dataclass(frozen=True)
class Figure:
    """One figure of a family's row: ``value(description)`` shown with ``fmt`` (a dash when ``None``), or
    ``text(description)`` when given; ``help`` may hold ``{n_clusters}`` (the description's C)."""

    label: str
    value: Callable[[ModelDescription], object] = lambda d: None
    fmt: str = "{}"
    help: str | None = None
    text: Callable[[ModelDescription], str] | None = None

    def metric(self, d: ModelDescription) -> Metric:
        """The figure of the model described by ``d``."""
        help = None if self.help is None else self.help.format(n_clusters=_or_dash(d.n_clusters))
        if self.text is not None:
            return Metric(self.label, text=self.text(d), help=help)
        return Metric(self.label, self.value(d), self.fmt, help)


#: the VAE's and the CVAE's figures
LATENT_FIGURES = (
    Figure(
        "Test ELBO", lambda d: d.test.elbo, "{:.1f}", "nats per image, mean over the 10,000 MNIST test images"
    ),
    Figure("Reconstruction", lambda d: d.test.reconstruction, "{:.1f}", "E_q[log p(x|z)], nats per image"),
    Figure("KL(q(z|x) ‖ p(z))", lambda d: d.test.kl, "{:.2f}", "nats per image"),
    Figure(
        "Active units",
        lambda d: d.test.active_units,
        "{}",
        "latent dimensions the encoder uses: their posterior mean varies across the test images "
        f"(Var_x E_q[z_d] > {ACTIVE_UNIT_VARIANCE:g}, Burda et al. 2016)",
    ),
    Figure("Latent dim L", lambda d: d.latent_dim, "{}"),
)

#: the GMVAE's figures
GMVAE_FIGURES = (
    Figure(
        "Test ELBO",
        lambda d: d.test.elbo,
        "{:.2f}",
        "nats per image on the 10,000 binarized test images, marginalised over y, with the −log C term "
        "(C = {n_clusters}): a true lower bound on log p(x)",
    ),
    Figure(
        "ELBO without −log C",
        lambda d: d.test.elbo_without_log_c,
        "{:.2f}",
        "the reference implementation's convention (it omits the constant −log C), for comparison",
    ),
    Figure(
        "H(q(y|x))",
        lambda d: d.test.conditional_entropy,
        "{:.3f}",
        "mean conditional entropy of the cluster posterior, nats (0: every image sure of its cluster)",
    ),
    Figure(
        "Cluster accuracy",
        lambda d: d.test.cluster_accuracy,
        "{:.2%}",
        "fraction of test images whose cluster argmax q(y|x) is matched to their digit by Hungarian "
        "matching of the contingency table (the reference: 83.51 %)",
    ),
    Figure(
        "Reconstruction",
        lambda d: d.test.reconstruction,
        "{:.1f}",
        "Σ_y q(y|x) E_q(z|x,y)[log p(x|z)], nats",
    ),
    Figure("Clusters C · L", text=lambda d: f"{_or_dash(d.n_clusters)} · {_or_dash(d.latent_dim)}"),
)
#: the VRNN's figures
VRNN_FIGURES = (
    Figure(
        "Test ELBO",
        lambda d: d.test.elbo,
        "{:.2f}",
        "nats per image, mean over the 10,000 binarized MNIST test images (one sample per image). "
        "The tutorial's VRNN: −78.29 at its best epoch.",
    ),
    Figure(
        "Reconstruction",
        lambda d: d.test.reconstruction,
        "{:.2f}",
        "Σ_t E_q[log p(x_t|h_t, z_t)], nats per image",
    ),
    Figure(
        "Total KL per image",
        lambda d: d.test.kl,
        "{:.2f}",
        "Σ_t KL(q(z_t|h_t, x_t) ‖ p(z_t|h_t)), nats per image: how much the latents are used (the "
        "reference's .sample() left them nearly unused)",
    ),
    Figure("Latent per row L", lambda d: d.latent_dim, "{}", "z_t ∈ R^L for each of the 28 rows"),
    Figure(
        "LSTM",
        help="layers × hidden units of the recurrence h_t",
        text=lambda d: f"{_or_dash(d.rnn_layers)} × {_or_dash(d.rnn_hidden)}",
    ),
)
