"""Evaluation of trained models on held-out data.

Factor analysis: the test-set ELBO estimate, the exact evidence and the exact gap (tutorial section 5.2.4).
"""

from __future__ import annotations

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
