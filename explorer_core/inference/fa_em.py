"""Maximum-likelihood factor analysis by closed-form EM (Bishop, PRML, eq. 12.66-12.70): the reference
optimum that the AEVB fit of :mod:`explorer_core.models.factor_analysis` is compared with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer_core.models.factor_analysis import fa_marginal


@dataclass(frozen=True)
class FAMaximumLikelihood:
    """The result of :func:`fit_fa_em`: W [D, L] and sigma [D] (float64), the train log-likelihood per
    point at the last iteration, and the number of EM iterations."""

    W: torch.Tensor
    sigma: torch.Tensor
    train_log_likelihood: float
    iterations: int

    def evidence(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) under the fitted model, [batch], nats per point."""
        return fa_marginal(self.W, self.sigma).log_prob(x.to(self.W.dtype))


def fit_fa_em(
    x: torch.Tensor,
    latent_dim: int = 2,
    max_iterations: int = 100_000,
    tol: float = 1e-10,
    seed: int = 0,
) -> FAMaximumLikelihood:
    """Maximum-likelihood factor analysis (zero-mean model) by textbook EM, run to convergence.

    EM for FA (Bishop, PRML, eq. 12.66-12.70; Ghahramani & Hinton 1996), in float64, with S = X^T X / N:
    E-step  G = (I + W^T Phi^-1 W)^-1,  B = G W^T Phi^-1  (E[z|x] = B x,  E[z z^T|x] = G + B x x^T B^T);
    M-step  W <- S B^T (G + B S B^T)^-1,  Phi <- diag(S - W B S).
    The log-likelihood never decreases; iteration stops when no parameter moves by more than ``tol``.

    Args:
        x: data [N, D], assumed zero-mean (the model has no mean parameter, as in the tutorial).
        latent_dim: L.
        max_iterations, tol: stopping rule.
        seed: seed of the random initial W.

    Raises:
        ValueError: fewer than two points, or non-finite data.
    """
    x = x.detach().to(torch.float64).cpu()
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"x must be [N >= 2, D], got shape {tuple(x.shape)}.")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf.")
    # the fixed-point loop runs on 3x3-sized matrices: numpy's per-call overhead is far below torch's
    X = x.numpy()
    N, D = X.shape
    S = X.T @ X / N
    W = np.random.default_rng(seed).standard_normal((D, latent_dim))
    phi = np.diag(S).copy()
    eye = np.eye(latent_dim)
    for iteration in range(1, max_iterations + 1):  # noqa: B007 (reported after the loop)
        G = np.linalg.inv(eye + W.T @ (W / phi[:, None]))
        B = G @ (W / phi[:, None]).T
        W_new = S @ B.T @ np.linalg.inv(G + B @ S @ B.T)
        phi_new = np.maximum(np.diag(S - W_new @ B @ S), 1e-12)
        change = max(np.abs(W_new - W).max(), np.abs(phi_new - phi).max())
        W, phi = W_new, phi_new
        if change < tol:
            break
    W, phi = torch.from_numpy(W), torch.from_numpy(phi)
    log_likelihood = float(fa_marginal(W, phi.sqrt()).log_prob(x).mean())
    return FAMaximumLikelihood(W, phi.sqrt(), log_likelihood, iteration)
