"""Factor analysis fitted with AEVB, as in the tutorial (Yang 2022, section 5.2).

Generative model (theta = W, sigma):  p(z) = N(0, I_L),  p(x|z) = N(W z, diag(sigma^2)),  sigma = softplus.
Amortized posterior (phi = V, Sigma): q(z|x) = N(V x, Sigma), Sigma shared across x, parameterised by its
Cholesky factor. Three posterior families:

* ``full``: a full lower-triangular Cholesky factor (positive diagonal through softplus). This family
  contains the exact posterior, so an E-phase run to convergence makes the ELBO tight.
* ``diagonal``: a learnable diagonal Sigma.
* ``fixed``: a fixed small diagonal Sigma (only V is learned); the paper notes it works when small.

Because everything is linear-Gaussian, the evidence log p(x) = log N(x; 0, W W^T + Phi), the exact
posterior p(z|x) = N(S W^T Phi^-1 x, S) with S = (I + W^T Phi^-1 W)^-1 (Murphy 2012, section 12.1.2;
Bishop PRML eq. 12.66-12.67) and the gap KL(q(z|x) || p(z|x)) = log p(x) - ELBO are all closed forms.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from explorer_core.models.base import ELBOTerms, LatentVariableModel

POSTERIOR_FAMILIES = ("full", "diagonal", "fixed")


def _softplus_inverse(y: float) -> float:
    return y + math.log(-math.expm1(-y))


def fa_marginal(W: torch.Tensor, sigma: torch.Tensor) -> MultivariateNormal:
    """The FA evidence distribution p(x) = N(0, W W^T + diag(sigma^2)), event shape [D].

    Args:
        W: factor loadings [D, L]; sigma: noise standard deviations [D] (same dtype and device).
    """
    cov = W @ W.T + torch.diag(sigma**2)
    return MultivariateNormal(W.new_zeros(W.shape[0]), covariance_matrix=cov, validate_args=False)


@dataclass(frozen=True)
class FAConfig:
    """Everything needed to rebuild a :class:`FactorAnalysis` module.

    Attributes:
        data_dim: D, observed dimensions.
        latent_dim: L, latent factors.
        posterior: one of ``POSTERIOR_FAMILIES``.
        fixed_posterior_std: the standard deviation of every latent under the ``fixed`` family.
        seed: torch seed for the initial parameters (W, pre-sigma and V drawn from N(0, 1) as in the paper).
    """

    data_dim: int = 3
    latent_dim: int = 2
    posterior: str = "full"
    fixed_posterior_std: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.posterior not in POSTERIOR_FAMILIES:
            raise ValueError(f"posterior must be one of {POSTERIOR_FAMILIES}, got {self.posterior!r}.")
        if self.data_dim < 1 or self.latent_dim < 1:
            raise ValueError("data_dim and latent_dim must be positive.")
        if not 0.0 < self.fixed_posterior_std <= 10.0:
            raise ValueError(f"fixed_posterior_std must be in (0, 10], got {self.fixed_posterior_std}.")

    def to_dict(self) -> dict:
        """The config as JSON-ready data."""
        return asdict(self)


class FactorAnalysis(LatentVariableModel):
    """The FA model and its linear-Gaussian amortized posterior (tutorial section 5.2).

    Shapes: x is [batch, D], z is [batch, L] (or [K, batch, L] for K samples).
    """

    def __init__(self, config: FAConfig | None = None):
        super().__init__()
        self.config = config or FAConfig()
        D, L = self.config.data_dim, self.config.latent_dim
        g = torch.Generator().manual_seed(self.config.seed)
        # generative parameters theta
        self.W = nn.Parameter(torch.randn(D, L, generator=g))
        self.pre_sigma = nn.Parameter(torch.randn(D, generator=g))
        # inference parameters phi
        self.V = nn.Parameter(torch.randn(L, D, generator=g))
        posterior = self.config.posterior
        if posterior == "full":
            self.chol_offdiag = nn.Parameter(torch.zeros(L, L))
            self.pre_chol_diag = nn.Parameter(torch.full((L,), _softplus_inverse(1.0)))
        elif posterior == "diagonal":
            self.pre_chol_diag = nn.Parameter(torch.full((L,), _softplus_inverse(1.0)))
        else:
            self.register_buffer("fixed_chol_diag", torch.full((L,), self.config.fixed_posterior_std))

    # --- parameters ---------------------------------------------------------------------------------
    @property
    def sigma(self) -> torch.Tensor:
        """Noise standard deviations, [D] (softplus of an unconstrained parameter)."""
        return F.softplus(self.pre_sigma)

    @property
    def posterior_scale_tril(self) -> torch.Tensor:
        """Cholesky factor of the shared posterior covariance Sigma, [L, L], positive diagonal."""
        if self.config.posterior == "fixed":
            return torch.diag(self.fixed_chol_diag)
        diag = torch.diag(F.softplus(self.pre_chol_diag))
        if self.config.posterior == "full":
            return diag + torch.tril(self.chol_offdiag, diagonal=-1)
        return diag

    def inference_parameters(self) -> Iterator[nn.Parameter]:
        """phi: V and the Cholesky parameters of Sigma (none of them under the ``fixed`` family's Sigma)."""
        yield self.V
        if self.config.posterior == "full":
            yield self.chol_offdiag
        if self.config.posterior in ("full", "diagonal"):
            yield self.pre_chol_diag

    def generative_parameters(self) -> Iterator[nn.Parameter]:
        """theta: W and the pre-softplus noise scales."""
        yield self.W
        yield self.pre_sigma

    # --- distributions -----------------------------------------------------------------------------
    def prior(self, y: torch.Tensor | None = None) -> MultivariateNormal:
        """p(z) = N(0, I_L)."""
        L = self.config.latent_dim
        eye = torch.eye(L, dtype=self.W.dtype, device=self.W.device)
        return MultivariateNormal(self.W.new_zeros(L), scale_tril=eye, validate_args=False)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> MultivariateNormal:
        """q(z|x) = N(V x, Sigma), batch shape [batch]; x is [batch, D]."""
        return MultivariateNormal(x @ self.V.T, scale_tril=self.posterior_scale_tril, validate_args=False)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> Independent:
        """p(x|z) = N(W z, diag(sigma^2)), event shape [D]; z is [..., L]."""
        return Independent(Normal(z @ self.W.T, self.sigma, validate_args=False), 1, validate_args=False)

    def marginal(self) -> MultivariateNormal:
        """The evidence distribution p(x) = N(0, W W^T + Phi), event shape [D]."""
        return fa_marginal(self.W, self.sigma)

    def exact_posterior(self, x: torch.Tensor) -> MultivariateNormal:
        """p(z|x) = N(S W^T Phi^-1 x, S), S = (I + W^T Phi^-1 W)^-1 (Murphy 2012, 12.1.2), batch [batch]."""
        W_over_phi = self.W / (self.sigma**2)[:, None]  # Phi^-1 W, [D, L]
        eye = torch.eye(self.config.latent_dim, dtype=self.W.dtype, device=self.W.device)
        precision = eye + self.W.T @ W_over_phi
        cov = torch.cholesky_inverse(torch.linalg.cholesky(precision))
        mean = x @ W_over_phi @ cov  # (S W^T Phi^-1 x)^T, with S symmetric
        return MultivariateNormal(mean, scale_tril=torch.linalg.cholesky(cov), validate_args=False)

    # --- the quantities the tutorial plots -----------------------------------------------------------
    def elbo_terms(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        n_samples: int = 1,
        q: MultivariateNormal | None = None,
    ) -> ELBOTerms:
        """The AEVB estimator of the per-example ELBO (tutorial eq. in section 5.2.3), nats per point.

        ``reconstruction`` is the mean of log p(x|z_k) over ``n_samples`` reparameterised samples
        z_k = V x + chol(Sigma) eps_k; ``kl`` is KL(q(z|x) || p(z)) in closed form. All tensors [batch].
        ``q`` may pass an already computed ``self.encode(x)``.

        Raises:
            ValueError: n_samples < 1.
        """
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
        q = q if q is not None else self.encode(x)
        z = q.rsample((n_samples,))  # [K, batch, L]
        reconstruction = self.decode(z).log_prob(x).mean(0)
        kl = kl_divergence(q, self.prior())
        return ELBOTerms(reconstruction - kl, reconstruction, kl)

    def evidence(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) = log N(x; 0, W W^T + Phi), [batch], nats per point."""
        return self.marginal().log_prob(x)

    def gap(self, x: torch.Tensor, q: MultivariateNormal | None = None) -> torch.Tensor:
        """Exact KL(q(z|x) || p(z|x)) = log p(x) - ELBO, [batch], nats per point (closed form).

        ``q`` may pass an already computed ``self.encode(x)``.
        """
        return kl_divergence(q if q is not None else self.encode(x), self.exact_posterior(x))

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
        means: bool = False,
    ) -> torch.Tensor:
        """Draw ``n`` points x = W z + sigma * eps with z, eps ~ N(0, I), [n, D] (``means``: W z).

        The noise comes from ``generator`` so that, with a generator re-seeded the same way, samples
        of successive models move continuously as the parameters change.

        Raises:
            ValueError: ``y`` is given (factor analysis has no labels).
        """
        if y is not None:
            raise ValueError("factor analysis has no labels: y must be None.")
        z = torch.randn(n, self.config.latent_dim, generator=generator, dtype=self.W.dtype)
        eps = torch.randn(n, self.config.data_dim, generator=generator, dtype=self.W.dtype)
        mean = z.to(self.W.device) @ self.W.T
        return mean if means else mean + eps.to(self.W.device) * self.sigma
