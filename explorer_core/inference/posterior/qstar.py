"""The optimal Gaussian q*(z|x) of one image (:func:`fit_optimal_gaussian`): a per-image E-step by
gradient ascent on the image's ELBO from q_phi's output (Cremer, Li & Duvenaud 2018, section 3).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.distributions import MultivariateNormal

from explorer_core.inference.posterior.densities import (
    PosteriorError,
    _amortized_q,
    _noise,
    _one_image,
    log_joint,
)
from explorer_core.inference.posterior.grid import GridPosterior
from explorer_core.models.base import LatentVariableModel

COVARIANCES = ("diagonal", "full")


@dataclass(frozen=True)
class QStarState:
    """One state of the per-image fit of q\\*(z|x) (:func:`fit_optimal_gaussian`).

    Attributes:
        step: optimisation steps taken (0: q_phi itself).
        mean: [L]; cov: [L, L] (float64, CPU).
        elbo: this q's ELBO on the fit's objective (quadrature for L = 2, that step's Monte Carlo estimate
            for L > 2), nats per image.
        covariance: ``"diagonal"`` or ``"full"``.
        done: the last state: the best q seen (not necessarily the last step's).
    """

    step: int
    mean: torch.Tensor
    cov: torch.Tensor
    elbo: float
    covariance: str
    done: bool = False


def _mc_elbo(model, x, y, mean, scale_tril, eps, chunk=4096, stick: bool = False) -> torch.Tensor:
    """Reparameterised ELBO on the given standard-normal noise eps [S, L]: the mean over s of
    log p(x, z_s) - log q(z_s) with z_s = mean + L eps_s and q = N(mean, L L^T), a float64 scalar tensor.

    ``stick``: log q with its parameters detached ("sticking the landing", Roeder, Wu & Duvenaud 2017): the
    same value, an unbiased gradient whose variance vanishes as q nears the posterior."""
    q = MultivariateNormal(mean.double(), scale_tril=scale_tril.double(), validate_args=False)
    z = q.mean + eps.double() @ q.scale_tril.T
    if stick:
        q = MultivariateNormal(q.mean.detach(), scale_tril=q.scale_tril.detach(), validate_args=False)
    return (log_joint(model, x, z, y, chunk).double().cpu() - q.log_prob(z)).mean()


class WhitenedGaussian:
    """The parameters of a Gaussian q being fitted by gradient ascent, in the whitened coordinates of a start
    (Cremer, Li & Duvenaud 2018, section 3: q's parameters optimised per image): mean = mu0 + sd0 * d and
    scale_tril = diag(sd0) T, T lower-triangular with exp(log-scale) on its diagonal (``"diagonal"``: T
    diagonal), so d = 0, T = T0 is the start. Adam on (d, log-scale, off-diagonal) with a cosine learning-rate
    decay from ``lr`` to lr / 50 over ``steps``. Shapes broadcast over leading batch dimensions: one image's
    fit (mu0, sd0 [L], T0 [L, L]; :func:`fit_optimal_gaussian`) or a batch's, each image with its own
    parameters (mu0, sd0 [B, L], T0 [B, L, L]; :func:`explorer_core.inference.posterior.gaps.test_set_gaps`).
    Float64 on the CPU; no gradient reaches the model (``torch.autograd.grad`` on these leaves only).
    """

    def __init__(
        self, mu0: torch.Tensor, sd0: torch.Tensor, t0: torch.Tensor, covariance: str, lr: float, steps: int
    ) -> None:
        L = mu0.shape[-1]
        self.mu0, self.sd0 = mu0, sd0
        self.rows, self.cols = torch.tril_indices(L, L, offset=-1)
        self.n_off = L * (L - 1) // 2 if covariance == "full" else 0
        self.shift = torch.zeros_like(mu0).requires_grad_(True)
        self.log_scale = t0.diagonal(dim1=-2, dim2=-1).log().clone().requires_grad_(True)
        self.off = t0[..., self.rows, self.cols].clone()[..., : self.n_off].requires_grad_(True)
        self.leaves = [self.shift, self.log_scale] + ([self.off] if self.n_off else [])
        self.optimizer = torch.optim.Adam(self.leaves, lr=lr)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, steps, eta_min=lr / 50)

    def gaussian(
        self, params: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean [..., L], scale_tril [..., L, L]) of the current parameters, or of ``params`` (a
        :meth:`snapshot`); differentiable in the current ones."""
        shift, log_scale, off = params if params is not None else (self.shift, self.log_scale, self.off)
        tri = torch.diag_embed(log_scale.exp())
        if self.n_off:
            tri[..., self.rows, self.cols] = off
        return self.mu0 + self.sd0 * shift, self.sd0[..., :, None] * tri

    def snapshot(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A detached copy of the parameters (d, log-scale, off-diagonal), for :meth:`gaussian`."""
        return self.shift.detach().clone(), self.log_scale.detach().clone(), self.off.detach().clone()

    def ascend(self, value: torch.Tensor) -> None:
        """One Adam step up the scalar ``value`` (an ELBO, or a batch's sum of ELBOs), then the schedule's."""
        grads = torch.autograd.grad(value, self.leaves)
        for leaf, grad in zip(self.leaves, grads, strict=True):
            leaf.grad = -grad  # ascent
        self.optimizer.step()
        self.scheduler.step()


def fit_optimal_gaussian(
    model: LatentVariableModel,
    x: torch.Tensor,
    y: torch.Tensor | int | None = None,
    *,
    covariance: str = "diagonal",
    grid: GridPosterior | None = None,
    steps: int | None = None,
    lr: float = 0.2,
    n_noise: int = 64,
    generator: torch.Generator | None = None,
    every: int = 1,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Iterator[QStarState]:
    """Fit the best Gaussian q\\*(z|x) of one image by gradient ascent on its ELBO, from q_phi's output.

    A per-image (non-amortized) E-step: Cremer, Li & Duvenaud 2018, section 3 ("we optimize the parameters
    of q for each datapoint"). Parameters, in q_phi's whitened coordinates: mean = mu_phi + sigma_phi * d;
    scale = diag(sigma_phi) T with T lower-triangular, exp on its diagonal (``"diagonal"``: T diagonal).
    The start (d = 0, T = I) is q_phi. Adam, learning rate ``lr`` with cosine decay to lr / 50.

    Objective: for L = 2 with ``grid`` (a :class:`GridPosterior` of this image), the quadrature ELBO
    (:meth:`GridPosterior.elbo`): deterministic, no decoder call per step. Otherwise stochastic gradient
    ascent on the reparameterised ELBO with ``n_noise`` fresh standard-normal draws per step (from
    ``generator``), in its log-weight form mean_s [log p(x, z_s) - log q(z_s)] with the "sticking the
    landing" gradient (Roeder, Wu & Duvenaud 2017). (Fixed noise was tried first: a full covariance
    overfits its draws.)

    Args:
        covariance: ``"diagonal"`` (q_phi's family, the one that defines the amortization gap) or ``"full"``.
        steps: optimisation steps (default 150; on vae-cb-l20, 100 and 300 steps gave ELBO(q\\*) within
            0.2 nats of each other on two test images).
        lr: Adam's first learning rate, in units of q_phi's standard deviations.
        every: yield every this many steps (the first state, step 0, and the final one always).
        init: (mean [L], cov [L, L]) to start from instead of q_phi (e.g. the grid posterior's mode: a
            second start for when q_phi sits on a worse mode); a diagonal fit uses the diagonal of cov.

    Yields:
        :class:`QStarState` objects: step 0 (q_phi), every ``every`` steps, and a last one with ``done=True``:
        on a grid the best q seen (so its ELBO >= q_phi's), otherwise the last iterate (its ``elbo`` is
        that step's Monte Carlo estimate; :func:`gap_split` re-estimates it).

    Raises:
        PosteriorError: an unknown ``covariance``, steps < 1, a grid for a model with L != 2, or see
            :func:`grid_posterior` (image, label, a non-Gaussian q).
    """
    if covariance not in COVARIANCES:
        raise PosteriorError(f"covariance must be one of {COVARIANCES}, got {covariance!r}.")
    x, y = _one_image(model, x, y)
    q = _amortized_q(model, x, y)
    L = q.event_shape[0]
    if grid is not None and L != 2:
        raise PosteriorError(f"a grid objective needs L = 2, this model has L = {L}.")
    steps = steps if steps is not None else 150
    if steps < 1:
        raise PosteriorError(f"steps must be at least 1, got {steps}.")
    start_mean, start_cov = (q.mean, q.covariance_matrix) if init is None else init
    start_mean, start_cov = start_mean.double().cpu().reshape(L), start_cov.double().cpu().reshape(L, L)
    sd0 = start_cov.diagonal().sqrt()
    if covariance == "full":  # start from the whole covariance: T0 = cholesky of the correlation matrix
        t0 = torch.linalg.cholesky(start_cov / (sd0[:, None] * sd0[None, :]))
    else:
        t0 = torch.eye(L, dtype=torch.float64)
    fit = WhitenedGaussian(start_mean, sd0, t0, covariance, lr, steps)

    def objective() -> torch.Tensor:
        mean, scale_tril = fit.gaussian()
        if grid is not None:
            return grid.elbo(mean, scale_tril=scale_tril)
        return _mc_elbo(model, x, y, mean, scale_tril, _noise((n_noise, L), generator), stick=True)

    def state(step: int, value: float, done: bool = False, params=None) -> QStarState:
        with torch.no_grad():
            mean, scale_tril = fit.gaussian(params)
            return QStarState(step, mean.clone(), scale_tril @ scale_tril.T, value, covariance, done)

    best_value, best = -math.inf, None
    for step in range(steps + 1):
        with torch.enable_grad():
            value_t = objective()
        value = float(value_t.detach())
        if not math.isfinite(value):
            break
        if value > best_value or grid is None:  # Monte Carlo values are noisy: keep the last iterate
            best_value = value
            best = fit.snapshot()
        if step % every == 0:
            yield state(step, value)
        if step == steps:
            break
        fit.ascend(value_t)
    if best is None:  # q_phi itself was not finite
        raise PosteriorError("the ELBO of q_phi is not finite for this image.")
    yield state(step, best_value, True, best)


def optimal_gaussian(model, x, y=None, **kwargs) -> QStarState:
    """The final state of :func:`fit_optimal_gaussian` (the best q\\* found); same arguments."""
    *_, final = fit_optimal_gaussian(model, x, y, every=10**9, **kwargs)
    return final
