"""Evaluation of trained models on held-out data: factor analysis and the VAE family.

Factor analysis: the test-set ELBO estimate, the exact evidence and the exact gap (tutorial section 5.2.4).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

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
    totals = torch.zeros(3, dtype=torch.float64)
    means = []
    for start in range(0, n, batch_size):
        xb = x[start : start + batch_size]
        yb = None if y is None else y[start : start + batch_size]
        terms = model.elbo_terms(xb, yb)
        totals += torch.stack([terms.elbo.sum(), terms.reconstruction.sum(), terms.kl.sum()]).double().cpu()
        means.append(model.encode(xb, yb).mean.double().cpu())
    mu = torch.cat(means)
    result = {
        "elbo": float(totals[0] / n),
        "reconstruction": float(totals[1] / n),
        "kl": float(totals[2] / n),
        "active_units": int((mu.var(0) > 0.01).sum()),
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
            log_w = torch.cat(chunks)  # [k, batch]
            total += float((torch.logsumexp(log_w, 0) - math.log(iwae_k)).sum())
            if progress is not None:
                progress(min(start + iwae_batch_size, n), n)
        result["iwae_bound"] = total / n
        result["iwae_k"] = iwae_k
        if model.config.likelihood == "bernoulli":  # a log-probability of binary images: an NLL estimate
            result["nll_estimate"] = -total / n
    return result
