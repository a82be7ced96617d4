"""What the latent pages show of the true posterior of a 2-D VAE or CVAE beside q(z|x): the posterior's
highest-density contours, the evidence and the gap, the IWAE bounds closing on log p(x), and the per-image
fit of the optimal Gaussian q*(z|x) as frames to animate. The computation is
:mod:`explorer_core.inference.posterior`; this module turns it into plain numbers and polylines for a page.
No Streamlit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import contourpy
import numpy as np
import torch

from explorer_core.inference.posterior import (
    IWAE_KS,
    GapSplit,
    GridPosterior,
    fit_optimal_gaussian,
    gap_split,
    grid_posterior,
    iwae_bounds,
)

#: the posterior mass inside the contours drawn: that of a 2-D Gaussian's 1σ and 2σ ellipses
#: (1 - exp(-k²/2) for k = 1, 2), so a Gaussian posterior's contours would lie on q's ellipses when q = p
CONTOUR_MASSES = (1 - math.exp(-0.5), 1 - math.exp(-2.0))
#: optimisation steps of the q* animation (on the grid: no decoder call per step)
QSTAR_STEPS = 150


@dataclass(frozen=True)
class QStarFrame:
    """One frame of the q* fit: its step, mean [2], covariance [2, 2] and ELBO (nats per image);
    ``from_mode``: the fit started from the posterior's top mode instead of q_phi."""

    step: int
    mean: np.ndarray
    cov: np.ndarray
    elbo: float
    from_mode: bool = False


@dataclass(frozen=True)
class PosteriorPicture:
    """The true posterior of one image, ready to draw, and the numbers beside it (nats per image).

    Attributes:
        contours: per mass in :data:`CONTOUR_MASSES`, the polylines [n, 2] (in z) of the smallest region
            holding that posterior mass (a highest-density region; several lines when it has several parts).
        masses: the masses of ``contours``.
        log_evidence: log p(x) by quadrature on the grid.
        elbo_q: ELBO of q_phi(z|x) (quadrature); kl_q: KL(q_phi || p(z|x)) = log p(x) - ELBO.
        post_mean, post_cov: the posterior's mean [2] and covariance [2, 2].
        q_mean, q_cov: q_phi's mean [2] and covariance [2, 2].
        iwae: per k in :data:`explorer_core.inference.posterior.IWAE_KS`: ``(k, bound, standard error)``.
        grid_seconds: the grid's computation time; decoder_calls: latents decoded for it.
        grid: the :class:`GridPosterior` (for the q* fit).
    """

    contours: list[list[np.ndarray]]
    masses: tuple[float, ...]
    log_evidence: float
    elbo_q: float
    kl_q: float
    post_mean: np.ndarray
    post_cov: np.ndarray
    q_mean: np.ndarray
    q_cov: np.ndarray
    iwae: list[tuple[int, float, float]]
    grid_seconds: float
    decoder_calls: int
    grid: GridPosterior


def hpd_contours(grid: GridPosterior, masses: tuple[float, ...] = CONTOUR_MASSES) -> list[list[np.ndarray]]:
    """The contours of the highest-density regions of the grid posterior holding each of ``masses``: for a
    mass m, the density level t such that the grid cells with density >= t hold m of the posterior, traced
    by contourpy (marching squares) in z coordinates.

    Returns:
        per mass, a list of polylines [n, 2] (z1, z2).

    Raises:
        ValueError: a mass outside (0, 1).
    """
    if not all(0 < m < 1 for m in masses):
        raise ValueError(f"masses must be in (0, 1), got {masses}.")
    density = grid.log_density.numpy()
    flat = np.sort(density.reshape(-1))[::-1]
    cell_mass = np.exp(flat) * grid.cell_area
    cumulative = np.cumsum(cell_mass) / max(cell_mass.sum(), 1e-300)
    generator = contourpy.contour_generator(grid.z1.numpy(), grid.z2.numpy(), density)
    out = []
    for m in masses:
        level = float(flat[min(int(np.searchsorted(cumulative, m)), len(flat) - 1)])
        out.append([np.asarray(line, dtype=np.float64) for line in generator.lines(level) if len(line) > 1])
    return out


def posterior_picture(
    model: torch.nn.Module, x: torch.Tensor, y: int | None = None, seed: int = 0, iwae_samples: int = 4000
) -> PosteriorPicture:
    """The true posterior of one image x [D] (as the model was trained on) under a 2-D VAE or CVAE (``y``: the
    CVAE's label), its contours, and the IWAE bounds for k = 1, 10, 100, 1000 from ``iwae_samples`` draws of
    q_phi seeded by ``seed``.

    Raises:
        explorer_core.inference.posterior.PosteriorError: the latent is not 2-D, q(z|x) is not Gaussian, a
            CVAE without a label, or a log posterior that is nowhere finite.
    """
    grid = grid_posterior(model, x, y)
    generator = torch.Generator().manual_seed(int(seed))
    bounds = iwae_bounds(model, x, y, ks=IWAE_KS, n_samples=iwae_samples, generator=generator)
    return PosteriorPicture(
        contours=hpd_contours(grid),
        masses=CONTOUR_MASSES,
        log_evidence=grid.log_evidence,
        elbo_q=grid.elbo_q,
        kl_q=grid.kl_q,
        post_mean=grid.mean.numpy(),
        post_cov=grid.cov.numpy(),
        q_mean=grid.q_mean.numpy(),
        q_cov=grid.q_cov.numpy(),
        iwae=[(b.k, b.estimate, b.stderr) for b in bounds],
        grid_seconds=grid.seconds,
        decoder_calls=grid.decoder_calls,
        grid=grid,
    )


def qstar_frames(
    model: torch.nn.Module,
    x: torch.Tensor,
    picture: PosteriorPicture,
    y: int | None = None,
    steps: int = QSTAR_STEPS,
    every: int = 5,
) -> tuple[list[QStarFrame], GapSplit]:
    """The per-image E-step as frames, and the split of the gap it ends on.

    The frames: a diagonal q* fitted on this image's grid ELBO from q_phi (step 0), one frame every
    ``every`` steps. The split: :func:`explorer_core.inference.posterior.gap_split` on the same grid (given
    this fit's last state, so it is not made twice), whose q* is the better of the fits from q_phi and from
    the posterior's top mode; when that one is better (q_phi
    sat on a worse mode, which gradient ascent from it cannot leave), it is appended as a last frame.

    Raises:
        explorer_core.inference.posterior.PosteriorError: see :func:`fit_optimal_gaussian`.
    """
    states = list(
        fit_optimal_gaussian(model, x, y, covariance="diagonal", grid=picture.grid, steps=steps, every=every)
    )
    frames = [QStarFrame(s.step, s.mean.numpy(), s.cov.numpy(), float(s.elbo)) for s in states]
    split = gap_split(model, x, y, grid=picture.grid, diagonal_from_phi=states[-1])
    best = split.q_star
    if split.elbo_optimal > frames[-1].elbo + 1e-6:
        frames.append(QStarFrame(best.step, best.mean.numpy(), best.cov.numpy(), split.elbo_optimal, True))
    return frames, split
