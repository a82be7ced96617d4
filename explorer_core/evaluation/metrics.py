"""Evaluation of trained models on held-out data: factor analysis, the VAE family, the GMVAE and the VRNN.

Factor analysis: the test-set ELBO estimate, the exact evidence and the exact gap (tutorial section 5.2.4).
Which function evaluates which MNIST family is said once, in :mod:`explorer_core.families`
(``FAMILIES[name].evaluate`` and ``.epoch_metrics``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from explorer_core.inference.posterior.iwae import iwae_bound
from explorer_core.models.factor_analysis import FactorAnalysis


@dataclass(frozen=True)
class FAMetrics:
    """Test-set metrics of a factor-analysis model, each a mean over points in nats per point.

    Attributes:
        elbo: the AEVB estimate of the ELBO with ``n_samples`` reparameterised samples per point.
        evidence: exact log p(x) = log N(x; 0, W W^T + Phi).
        gap: exact KL(q(z|x) || p(z|x)), so that the exact ELBO is ``evidence - gap``.
        reconstruction, kl: the two terms of the ELBO estimate (``elbo = reconstruction - kl``).
    """

    elbo: float
    evidence: float
    gap: float
    reconstruction: float
    kl: float

    @property
    def exact_elbo(self) -> float:
        """The ELBO without Monte Carlo noise: evidence - gap."""
        return self.evidence - self.gap

    def to_dict(self) -> dict[str, float]:
        """JSON-ready data."""
        return asdict(self)


@torch.no_grad()
def evaluate_fa(model: FactorAnalysis, x: torch.Tensor, n_samples: int = 1) -> FAMetrics:
    """Evaluate a factor-analysis model on a data set x [N, D] (means over the N points).

    Raises:
        ValueError: n_samples < 1, or the model's covariance is not positive definite.
    """
    q = model.encode(x)
    terms = model.elbo_terms(x, n_samples=n_samples, q=q)
    stacked = torch.stack(
        [
            terms.elbo.mean(),
            model.evidence(x).mean(),
            model.gap(x, q=q).mean(),
            terms.reconstruction.mean(),
            terms.kl.mean(),
        ]
    )
    return FAMetrics(*(float(v) for v in stacked.cpu()))


#: a latent dimension is active when the variance of its posterior mean across the data exceeds this
#: (Burda, Grosse & Salakhutdinov 2016, section 5.2)
ACTIVE_UNIT_VARIANCE = 0.01


def active_dimensions(mu) -> torch.Tensor:
    """Which latent dimensions are active, bool [L]: those whose posterior mean mu(x) varies across the images
    with variance > :data:`ACTIVE_UNIT_VARIANCE` (Burda, Grosse & Salakhutdinov 2016, section 5.2).

    Args:
        mu: posterior means [n, L] (a tensor or an array; n >= 2).
    """
    return torch.as_tensor(mu).double().var(0).cpu() > ACTIVE_UNIT_VARIANCE


def active_units(mu) -> int:
    """The number of active latent dimensions (:func:`active_dimensions`) of posterior means [n, L]."""
    return int(active_dimensions(mu).sum())


def _sum_over_batches(
    n: int, batch_size: int, batch: Callable[[slice], tuple[Sequence[torch.Tensor], Any]]
) -> tuple[torch.Tensor, list[Any]]:
    """Sums of per-image values over a test set of ``n`` images, taken ``batch_size`` images at a time.

    ``batch(rows)`` evaluates the images ``rows`` (a slice) and returns k per-image values [b] each (nats per
    image) and one more thing to keep per batch. Returns the k sums (float64 [k] on the CPU; each batch's sum
    is taken on the device, then added in float64) and the kept things, in order.
    """
    totals: torch.Tensor | None = None
    kept = []
    for start in range(0, n, batch_size):
        values, keep = batch(slice(start, start + batch_size))
        sums = torch.stack([v.sum() for v in values]).double().cpu()
        totals = sums if totals is None else totals + sums
        kept.append(keep)
    return totals, kept


@torch.no_grad()
def evaluate_vae(
    model,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    iwae_k: int = 0,
    batch_size: int = 500,
    iwae_batch_size: int = 25,
    iwae_chunk: int = 250,
    seed: int = 0,
    progress=None,
) -> dict[str, float]:
    """Test-set metrics of a VAE or CVAE (eval mode), means over images in nats per image.

    Args:
        model: a :class:`explorer_core.models.vae.VAE` or ``CVAE``.
        x: preprocessed images [N, 784] on the model's device; y: labels [N] (needed by the CVAE).
        iwae_k: importance samples per image for the IWAE bound (Burda et al. 2016, eq. 8); 0 skips it.
            With k >= 1000 its negation is the usual estimate of the negative log-likelihood.
        seed: seeds the reparameterisation noise, so the figure is reproducible.
        progress: optional callable(done_images, total_images) for the IWAE pass.

    Returns:
        ``elbo`` (single-sample AEVB estimate), ``reconstruction``, ``kl``, ``active_units`` (latents whose
        posterior mean varies across the data with variance > 0.01, Burda et al. 2016, section 5.2), and,
        when ``iwae_k`` > 0, ``iwae_bound`` and, for a Bernoulli likelihood (binary images, where log p(x)
        is a log-probability), ``nll_estimate`` = -iwae_bound.
    """
    model.eval()
    torch.manual_seed(seed)
    n = len(x)

    def batch(rows: slice) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        xb, yb = x[rows], None if y is None else y[rows]
        terms = model.elbo_terms(xb, yb)
        return (terms.elbo, terms.reconstruction, terms.kl), model.encode(xb, yb).mean.double().cpu()

    totals, means = _sum_over_batches(n, batch_size, batch)
    mu = torch.cat(means)
    result = {
        "elbo": float(totals[0] / n),
        "reconstruction": float(totals[1] / n),
        "kl": float(totals[2] / n),
        "active_units": active_units(mu),
        "n_images": n,
    }
    if iwae_k > 0:
        total = 0.0
        for start in range(0, n, iwae_batch_size):
            xb = x[start : start + iwae_batch_size]
            yb = None if y is None else y[start : start + iwae_batch_size]
            chunks = [
                model.log_weights(xb, yb, min(iwae_chunk, iwae_k - done)).double()
                for done in range(0, iwae_k, iwae_chunk)
            ]
            total += float(iwae_bound(torch.cat(chunks)).sum())  # log-weights [k, batch]
            if progress is not None:
                progress(min(start + iwae_batch_size, n), n)
        result["iwae_bound"] = total / n
        result["iwae_k"] = iwae_k
        if model.config.likelihood == "bernoulli":  # a log-probability of binary images: an NLL estimate
            result["nll_estimate"] = -total / n
    return result


def hungarian_match(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one matching of clusters to classes that maximises the images they share: Hungarian
    matching (scipy.optimize.linear_sum_assignment) of a clusters x classes contingency table [C, K] of
    counts. Returns (matched count [C'] of each matched pair, the class matched to each cluster [C], -1 when
    unmatched, as with more clusters than classes)."""
    table = np.asarray(table)
    rows, cols = linear_sum_assignment(table, maximize=True)
    matched = np.full(table.shape[0], -1, dtype=np.int64)
    matched[rows] = cols
    return table[rows, cols], matched


def cluster_accuracy(
    assignments: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    n_clusters: int,
    n_classes: int = 10,
) -> dict:
    """Unsupervised cluster accuracy by Hungarian matching (scipy.optimize.linear_sum_assignment) on the
    clusters x labels contingency table, the measure of the tutorial's section 5.5 and of VaDE.

    Args:
        assignments: cluster index per image [N] (e.g. argmax q(y|x)), ints in 0..n_clusters-1.
        labels: true class per image [N], ints in 0..n_classes-1.

    Returns:
        ``accuracy`` (fraction of images whose cluster is matched to their label; with more clusters than
        classes, unmatched clusters count as errors), ``matched_label`` per cluster (-1 when unmatched),
        ``contingency`` [n_clusters][n_classes] counts, ``usage`` (fraction of images per cluster).

    Raises:
        ValueError: lengths differ or values are out of range.
    """
    a = np.asarray(assignments, dtype=np.int64).ravel()
    y = np.asarray(labels, dtype=np.int64).ravel()
    if a.shape != y.shape:
        raise ValueError(f"{len(a)} assignments for {len(y)} labels.")
    if len(a) and (a.min() < 0 or a.max() >= n_clusters or y.min() < 0 or y.max() >= n_classes):
        raise ValueError("cluster or label index out of range.")
    table = np.zeros((n_clusters, n_classes), dtype=np.int64)
    np.add.at(table, (a, y), 1)
    counts, matched = hungarian_match(table)
    return {
        "accuracy": float(counts.sum() / max(len(a), 1)),
        "matched_label": matched.tolist(),
        "contingency": table.tolist(),
        "usage": (table.sum(1) / max(len(a), 1)).tolist(),
    }


@torch.no_grad()
def cluster_posteriors(model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """q(y|x) probabilities of a GMVAE for images x [N, 784]: [N, C] on the CPU (eval mode)."""
    model.eval()
    return torch.cat(
        [model.cluster_posterior(x[s : s + batch_size]).probs.cpu() for s in range(0, len(x), batch_size)]
    )


@torch.no_grad()
def evaluate_gmvae(
    model, x: torch.Tensor, labels: torch.Tensor, batch_size: int = 500, seed: int = 0
) -> dict[str, Any]:
    """Test-set metrics of a GMVAE (eval mode); images x [N, 784] binary, labels [N] (only for accuracy).

    Returns ``elbo`` (the marginalised estimator with its -log C, a true bound, nats per image; single
    reparameterised z per cluster), ``elbo_without_log_c`` (the reference's convention, for comparison),
    ``reconstruction``, ``kl``, ``conditional_entropy`` (mean H(q(y|x)) in nats), ``cluster_accuracy``,
    ``matched_label``, ``cluster_usage`` and ``contingency`` (see :func:`cluster_accuracy`), whatever
    estimator trained the model.
    """
    model.eval()
    torch.manual_seed(seed)
    n = len(x)

    def batch(rows: slice) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        terms = model.marginal_elbo_terms(x[rows])
        qy = model.cluster_posterior(x[rows])
        return (terms.elbo, terms.reconstruction, terms.kl, qy.entropy()), qy.probs.cpu()

    totals, probs = _sum_over_batches(n, batch_size, batch)
    c = model.config.n_clusters
    clusters = cluster_accuracy(torch.cat(probs).argmax(-1), labels.cpu(), c)
    elbo = float(totals[0] / n)
    return {
        "elbo": elbo,
        "elbo_without_log_c": elbo + math.log(c),
        "reconstruction": float(totals[1] / n),
        "kl": float(totals[2] / n),
        "conditional_entropy": float(totals[3] / n),
        "cluster_accuracy": clusters["accuracy"],
        "matched_label": clusters["matched_label"],
        "cluster_usage": clusters["usage"],
        "contingency": clusters["contingency"],
        "n_images": n,
    }


@torch.no_grad()
def evaluate_vrnn(model, x: torch.Tensor, batch_size: int = 500, seed: int = 0) -> dict[str, Any]:
    """Test-set metrics of a VRNN (eval mode) for binary images x [N, 784], nats per image (single-sample
    estimates, as in the reference): ``elbo``, ``reconstruction``, ``kl`` (total KL per image: how much the
    latents are used), and ``per_row_kl`` / ``per_row_reconstruction`` (28 values each, nats per row)."""
    model.eval()
    torch.manual_seed(seed)
    n = len(x)
    rec = torch.zeros(model.config.n_rows, dtype=torch.float64)
    kl = torch.zeros_like(rec)
    for start in range(0, n, batch_size):
        terms = model.row_terms(x[start : start + batch_size])
        rec += terms.reconstruction.sum(0).double().cpu()
        kl += terms.kl.sum(0).double().cpu()
    rec, kl = rec / n, kl / n
    return {
        "elbo": float(rec.sum() - kl.sum()),
        "reconstruction": float(rec.sum()),
        "kl": float(kl.sum()),
        "per_row_reconstruction": [round(float(v), 4) for v in rec],
        "per_row_kl": [round(float(v), 4) for v in kl],
        "n_images": n,
    }


@torch.no_grad()
def cluster_metrics(model, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
    """A GMVAE's cluster metrics on preprocessed images x [N, 784] with labels [N] (tutorial section 5.5):
    ``cluster_accuracy`` (Hungarian matching, :func:`cluster_accuracy`), ``conditional_entropy`` (mean
    H(q(y|x)), nats) and ``min_cluster_usage`` (the smallest share of the images whose argmax of q(y|x) is one
    cluster, in [0, 1]); empty without labels or images. Logged per epoch on the validation split; the
    accuracy is never used for selection (the v3 screening rule uses the entropy and the usage only)."""
    if labels is None or not len(x):
        return {}
    probs = cluster_posteriors(model, x)
    entropy = float(torch.distributions.Categorical(probs=probs).entropy().mean())
    assigned = probs.argmax(-1)
    acc = cluster_accuracy(assigned, labels.cpu(), model.config.n_clusters)["accuracy"]
    counts = torch.bincount(assigned.cpu(), minlength=model.config.n_clusters)
    usage = float(counts.min()) / len(assigned)
    return {"cluster_accuracy": acc, "conditional_entropy": entropy, "min_cluster_usage": usage}
