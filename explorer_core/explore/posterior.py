"""What the latent pages show of the true posterior of a 2-D VAE or CVAE beside q(z|x): the posterior's
highest-density contours, the evidence and the gap, the IWAE bounds closing on log p(x), and the per-image
fit of the optimal Gaussian q*(z|x) as frames to animate. The computation is
:mod:`explorer_core.inference.posterior`; this module turns it into plain numbers and polylines for a page.
No Streamlit.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, replace

import contourpy
import numpy as np
import torch

from explorer_core.inference.posterior import (
    IWAE_KS,
    IWAE_REPEATS,
    GapSplit,
    GridPosterior,
    IWAEBound,
    bound_allowance,
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
class IWAERow:
    """One IWAE bound as the page shows it beside the quadrature evidence, nats per image.

    Attributes:
        k: importance samples per estimate; repeats: independent estimates averaged.
        mean: the mean of the repeats; stderr: its standard error (NaN with one repeat).
        allowance: how far ``mean`` may lie above log p(x) and count as equal to it
            (:func:`explorer_core.inference.posterior.bound_allowance`: 3 standard errors + the grid's
            error + float32 rounding).
        verdict: ``"below"`` (mean <= log p(x)), ``"at"`` (above it, but within ``allowance``: Monte Carlo
            noise; the bound is shown as log p(x)), or ``"above"`` (beyond ``allowance``: a contradiction,
            shown as it is and flagged: the grid has missed posterior mass, or the estimate is wrong).
        shown: the number printed for the bound: ``mean``, or log p(x) when ``verdict`` is ``"at"``.
        gap: log p(x) - shown (>= 0 unless ``verdict`` is ``"above"``).
    """

    k: int
    mean: float
    stderr: float
    repeats: int
    allowance: float
    verdict: str
    shown: float
    gap: float


def iwae_row(bound: IWAEBound, log_evidence: float, evidence_error: float) -> IWAERow:
    """One IWAE bound (a mean over repeats with its standard error) judged against the evidence log p(x)
    by quadrature, whose error is ``evidence_error`` (nats per image): a bound's expectation never exceeds
    log p(x) (Burda et al. 2016, theorem 1), so a mean above it within
    :func:`explorer_core.inference.posterior.bound_allowance` is noise and shown as log p(x), and one beyond
    it is a contradiction, kept and flagged (see :class:`IWAERow`).

    Raises:
        ValueError: a negative standard error or ``evidence_error``.
    """
    allowance = bound_allowance(bound.stderr, evidence_error, log_evidence)
    excess = bound.estimate - log_evidence
    verdict = "below" if excess <= 0 else "at" if excess <= allowance else "above"
    shown = log_evidence if verdict == "at" else bound.estimate
    return IWAERow(
        bound.k,
        bound.estimate,
        bound.stderr,
        bound.replicates,
        allowance,
        verdict,
        shown,
        log_evidence - shown,
    )


@dataclass(frozen=True)
class PosteriorPicture:
    """The true posterior of one image, ready to draw, and the numbers beside it (nats per image).

    Attributes:
        contours: per mass in :data:`CONTOUR_MASSES`, the polylines [n, 2] (in z) of the smallest region
            holding that posterior mass (a highest-density region; several lines when it has several parts).
        masses: the masses of ``contours``.
        log_evidence: log p(x) by quadrature on the grid; evidence_error: its stated error (how far it moved
            at the grid's last halving, :attr:`GridPosterior.evidence_error`).
        elbo_q: ELBO of q_phi(z|x) (quadrature); kl_q: KL(q_phi || p(z|x)) = log p(x) - ELBO.
        post_mean, post_cov: the posterior's mean [2] and covariance [2, 2].
        q_mean, q_cov: q_phi's mean [2] and covariance [2, 2].
        iwae: per k in :data:`explorer_core.inference.posterior.IWAE_KS`, an :class:`IWAERow` (mean over
            independent repeats, standard error, and the verdict against ``log_evidence``).
        iwae_seconds: the IWAE bounds' computation time.
        grid_seconds: the grid's computation time; decoder_calls: latents decoded for it.
        grid: the :class:`GridPosterior` (for the q* fit).
    """

    contours: list[list[np.ndarray]]
    masses: tuple[float, ...]
    log_evidence: float
    evidence_error: float
    elbo_q: float
    kl_q: float
    post_mean: np.ndarray
    post_cov: np.ndarray
    q_mean: np.ndarray
    q_cov: np.ndarray
    iwae: list[IWAERow]
    grid_seconds: float
    decoder_calls: int
    grid: GridPosterior
    iwae_seconds: float = 0.0


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


@torch.inference_mode(False)
def posterior_picture(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: int | None = None,
    seed: int = 0,
    iwae_samples: int = IWAE_REPEATS * max(IWAE_KS),
) -> PosteriorPicture:
    """The true posterior of one image x [D] (as the model was trained on) under a 2-D VAE or CVAE (``y``: the
    CVAE's label), its contours, log p(x) by quadrature with its error (the grid refined until it moves by
    less than 0.01 nats), and the IWAE bounds for k = 1, 10, 100, 1000 from ``iwae_samples`` draws of q_phi
    seeded by ``seed`` (8 independent repeats of k = 1000 by default, more of each smaller k), each judged
    against the evidence (:func:`iwae_row`). Nats per image.

    Raises:
        explorer_core.inference.posterior.PosteriorError: the latent is not 2-D, q(z|x) is not Gaussian, a
            CVAE without a label, or a log posterior that is nowhere finite.
    """
    grid = grid_posterior(model, x, y)
    generator = torch.Generator().manual_seed(int(seed))
    start = time.perf_counter()
    bounds = iwae_bounds(model, x, y, ks=IWAE_KS, n_samples=iwae_samples, generator=generator)
    iwae_seconds = time.perf_counter() - start
    return PosteriorPicture(
        contours=hpd_contours(grid),
        masses=CONTOUR_MASSES,
        log_evidence=grid.log_evidence,
        evidence_error=grid.evidence_error,
        elbo_q=grid.elbo_q,
        kl_q=grid.kl_q,
        post_mean=grid.mean.numpy(),
        post_cov=grid.cov.numpy(),
        q_mean=grid.q_mean.numpy(),
        q_cov=grid.q_cov.numpy(),
        iwae=[iwae_row(b, grid.log_evidence, grid.evidence_error) for b in bounds],
        grid_seconds=grid.seconds,
        decoder_calls=grid.decoder_calls,
        grid=grid,
        iwae_seconds=iwae_seconds,
    )


@torch.inference_mode(False)
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
    ``every`` steps, and, when the split had to continue that fit to converge, its end as one frame more; the
    last one's ELBO recomputed in its own coordinates (:attr:`GapSplit.elbo_from_phi`).
    The split: :func:`explorer_core.inference.posterior.gap_split` on the same grid (given this fit's last
    state, so it is not made twice), whose q* is the best of q_phi and the fits from q_phi and from the
    posterior's top mode. Exactly when the worse-mode rule holds (:attr:`GapSplit.phi_on_worse_mode`: the
    fit from the top mode beats the fit from q_phi by more than 0.5 nats; q_phi sat on a worse mode, which
    gradient ascent from it cannot leave), the fit from the top mode is appended as a last frame, marked
    ``from_mode``.

    Raises:
        explorer_core.inference.posterior.PosteriorError: see :func:`fit_optimal_gaussian`.
    """
    states = list(
        fit_optimal_gaussian(model, x, y, covariance="diagonal", grid=picture.grid, steps=steps, every=every)
    )
    frames = [QStarFrame(s.step, s.mean.numpy(), s.cov.numpy(), float(s.elbo)) for s in states]
    split = gap_split(model, x, y, grid=picture.grid, diagonal_from_phi=states[-1])
    # the last frame of the fit from q_phi: the fit as gap_split continued it until it converged (a frame
    # more, when it had not), with its ELBO by the quadrature in its own coordinates (the grid's is off by up
    # to a nat or so when the fit ends narrower than a grid cell)
    end = split.q_star_from_phi
    if end is not None and end.step > states[-1].step:
        frames.append(QStarFrame(end.step, end.mean.numpy(), end.cov.numpy(), split.elbo_from_phi))
    else:
        frames[-1] = replace(frames[-1], elbo=split.elbo_from_phi)
    best = split.q_star_from_mode
    if split.phi_on_worse_mode and best is not None:
        frames.append(QStarFrame(best.step, best.mean.numpy(), best.cov.numpy(), best.elbo, True))
    return frames, split


def image_key(x: torch.Tensor) -> str:
    """What identifies an input image [D] for the caches of its posterior: the sha256 of its float32
    pixels (a test image or a drawing), 32 hex digits."""
    return hashlib.sha256(x.detach().float().cpu().numpy().tobytes()).hexdigest()[:32]


#: the seed of the gap split's Monte Carlo draws on the pages (the same image gives the same numbers)
SPLIT_SEED = 0


@torch.inference_mode(False)
def seeded_gap_split(model: torch.nn.Module, x: torch.Tensor, y: int | None = None) -> GapSplit:
    """:func:`explorer_core.inference.posterior.gap_split` of image ``x`` [D] (``y``: the CVAE's label) with
    its draws seeded by :data:`SPLIT_SEED`, outside any inference mode the caller is in (the q* fit needs
    gradients). Raises as ``gap_split``."""
    return gap_split(model, x, y, generator=torch.Generator().manual_seed(SPLIT_SEED))
