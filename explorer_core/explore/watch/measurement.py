"""What Watch it learn measures of its VAE: the validation ELBO and IWAE bound with fixed noise, their
gap, the two ELBO terms and the KL per dimension (:class:`WatchMetrics`, :func:`measure_vae`), one frame
of the curves and the latent map (:class:`WatchFrame`, :func:`map_plane`, :func:`square_region`) and the
history of the frames (:class:`WatchHistory`). No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from explorer_core.evaluation.metrics import active_dimensions, iwae_bound
from explorer_core.explore.latent import fit_pca
from explorer_core.models.vae import VAE

#: validation images per decoder pass of an evaluation (:func:`measure_vae`): the page gives way to gestures
#: between two (a pass of 25 images with k = 16 is about 6 ms here)
EVAL_CHUNK = 25


@dataclass(frozen=True)
class WatchMetrics:
    """One evaluation on the fixed validation subset, means over its images in nats per image.

    Attributes:
        elbo: the ELBO estimate E_q[log p(x|z)] - KL(q(z|x) || p(z)) with the k fixed samples in the first
            term and the KL in closed form (Kingma & Welling 2014, eq. 10).
        iwae: the IWAE bound log (1/k) sum_k p(x, z_k) / q(z_k|x) with the same k samples (Burda et al. 2016,
            eq. 8); a lower bound on log p(x) that is >= the ELBO in expectation.
        gap: iwae - elbo, a lower estimate of KL(q(z|x) || p(z|x)) (tutorial section 4).
        reconstruction: E_q[log p(x|z)] (k-sample estimate); kl: KL(q(z|x) || p(z)).
        kl_per_dim: KL per latent dimension, [L] (a dimension with ~0 nats is inactive).
        k: samples used.
        active_units: latent dimensions whose posterior mean varies across the images, Var_x(E_q[z_d]) > 0.01
            (Burda et al. 2016, section 5.2; :func:`explorer_core.evaluation.metrics.active_dimensions`).
        active_dims: which dimensions those are, [L].
    """

    elbo: float
    iwae: float
    gap: float
    reconstruction: float
    kl: float
    kl_per_dim: tuple[float, ...]
    k: int
    active_units: int = 0
    active_dims: tuple[bool, ...] = ()


@dataclass
class WatchFrame:
    """What the page draws after a frame: the metrics and the latent map of the model now.

    Attributes:
        step: gradient steps taken so far; phase: the phase of this frame's steps (``init`` at step 0).
        metrics: see :class:`WatchMetrics`.
        coords: posterior means of the map images on the map plane, [n_map, 2] float32. For L = 2 the latent
            itself; for L > 2 the plane of the first two principal components, rotated (and reflected) to
            agree best with the previous frame's coordinates (orthogonal Procrustes), so it does not flip.
        centre, basis: the plane, z = centre + u e1 + v e2 with orthonormal rows e1, e2 of basis [2, L].
        explained: fraction of the variance of the means on e1 and e2 (1, 1 for L = 2).
        seconds: wall time of this frame's evaluation, and of its steps when :meth:`WatchExperiment.frame` ran
            them (the background thread's steps run while other frames are drawn).
        steps_run: steps in this frame (:meth:`WatchExperiment.frame` only; 0 from the background thread).
    """

    step: int
    phase: str
    metrics: WatchMetrics
    coords: np.ndarray
    centre: np.ndarray
    basis: np.ndarray
    explained: tuple[float, float]
    seconds: float = 0.0
    steps_run: int = 0

    def plane_to_z(self, uv: np.ndarray) -> np.ndarray:
        """Map coordinates [n, 2] (or [2]) to latents [n, L] (or [L])."""
        return self.centre + np.asarray(uv, dtype=np.float32) @ self.basis


@dataclass
class WatchHistory:
    """The curves: one entry per evaluation (index 0: the initial model)."""

    step: list[int] = field(default_factory=list)
    phase: list[str] = field(default_factory=list)
    elbo: list[float] = field(default_factory=list)
    iwae: list[float] = field(default_factory=list)
    gap: list[float] = field(default_factory=list)
    reconstruction: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    train_elbo: list[float | None] = field(default_factory=list)
    k: list[int] = field(default_factory=list)
    #: maximal runs of one phase among the steps taken, ``[phase, first_step, last_step]`` (1-based step
    #: numbers): the experiment's :attr:`PhasedStepper.segments`
    segments: list[list] = field(default_factory=list)

    def append(self, step: int, phase: str, m: WatchMetrics, train_elbo: float | None) -> None:
        """Record an evaluation after ``step`` steps."""
        self.step.append(step)
        self.phase.append(phase)
        for name in ("elbo", "iwae", "gap", "reconstruction", "kl", "k"):
            getattr(self, name).append(getattr(m, name))
        self.train_elbo.append(train_elbo)

    def __len__(self) -> int:
        return len(self.step)


def _orthogonal_align(new: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """The orthogonal 2 x 2 matrix R minimising ||new R - previous|| (orthogonal Procrustes, Schoenemann
    1966): new and previous are [n, 2] coordinates of the same points."""
    u, _, vt = np.linalg.svd(new.T.astype(np.float64) @ previous.astype(np.float64))
    return (u @ vt).astype(np.float32)


@torch.no_grad()
def measure_vae(
    model: VAE, x_eval: torch.Tensor, eps: torch.Tensor, give_way: Callable[[], object] | None = None
) -> WatchMetrics:
    """ELBO, IWAE bound, their gap, the two ELBO terms and the KL per dimension of ``model`` on the
    validation images ``x_eval`` [n_eval, D], with the fixed noise ``eps`` [k, n_eval, L]
    (z_k = mu(x) + sigma(x) eps_k), so that the numbers change only when the parameters do. Means over
    images, nats per image.

    Both come from the model's :meth:`~explorer_core.models.vae.VAE.importance_terms` (one decoder pass per
    chunk of :data:`EVAL_CHUNK` images; every term is per image, so the chunks change nothing but the float
    rounding): the ELBO as in Kingma & Welling 2014, eq. 10 (closed-form KL, the mean over the k samples in
    the reconstruction term); the IWAE bound as in Burda et al. 2016, eq. 8. Active units as
    :func:`explorer_core.evaluation.metrics.active_dimensions`. ``give_way`` is called between two chunks
    (the page's compute budget waits there while other pages answer gestures).
    """
    k = eps.shape[0]
    parts: list[tuple[torch.Tensor, ...]] = []
    for start in range(0, len(x_eval), EVAL_CHUNK):
        if parts and give_way is not None:
            give_way()
        rows = slice(start, start + EVAL_CHUNK)
        terms = model.importance_terms(x_eval[rows], k=k, eps=eps[:, rows])
        t = terms.elbo
        iwae = iwae_bound(terms.log_weights)  # [chunk]
        parts.append((t.elbo, iwae, t.reconstruction, t.kl, terms.kl_per_dim, terms.posterior.mean))
    columns = (torch.cat(column) for column in zip(*parts, strict=True))
    elbo, iwae, reconstruction, kl, kl_per_dim, means = columns
    values = torch.stack([elbo.mean(), iwae.mean(), reconstruction.mean(), kl.mean()])
    e, i, r, kk = values.double().cpu().tolist()
    per_dim = kl_per_dim.double().mean(0).cpu().tolist()
    active = active_dimensions(means).tolist()
    return WatchMetrics(e, i, i - e, r, kk, tuple(per_dim), k, sum(active), tuple(active))


def map_plane(
    mu: np.ndarray, previous: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    """The latent map of posterior means ``mu`` [n, L] on a plane: (coordinates [n, 2], centre [L], basis
    [2, L], the share of variance each axis explains). L = 1: the one dimension (and 0); L = 2: z itself;
    L > 2: the first two principal components (:func:`explorer_core.explore.latent.fit_pca`), turned by
    orthogonal Procrustes to match the ``previous`` frame's coordinates [n, 2] (when given), so that the map
    does not flip from frame to frame."""
    L = mu.shape[1]
    if L == 1:
        centre, basis = np.zeros(1, np.float32), np.array([[1.0], [0.0]], np.float32)
        coords = np.c_[mu[:, 0], np.zeros(len(mu), np.float32)]
        explained = (1.0, 0.0)
    elif L == 2:
        centre, basis, explained = np.zeros(2, np.float32), np.eye(2, dtype=np.float32), (1.0, 1.0)
        coords = mu
    else:
        plane = fit_pca(mu)
        centre, basis, explained = plane.centre, plane.basis, plane.explained
        coords = plane(mu)
        if previous is not None and previous.shape == coords.shape:
            r = _orthogonal_align(coords, previous)
            coords, basis = coords @ r, (basis.T @ r).T
    return (
        np.ascontiguousarray(coords, dtype=np.float32),
        centre.astype(np.float32),
        np.ascontiguousarray(basis, dtype=np.float32),
        explained,
    )


def square_region(
    coords: np.ndarray, previous: tuple[tuple[float, float], tuple[float, float]] | None = None
) -> tuple[tuple[float, float], tuple[float, float]]:
    """A square region around the map points ``coords`` [n, 2] (99 % of them, 20 % margin, at least
    [-1, 1]), which only grows while the map spreads (from ``previous``; it shrinks by 5 % a frame at most),
    so the view does not jitter from frame to frame."""
    lo, hi = np.quantile(coords, 0.005, axis=0), np.quantile(coords, 0.995, axis=0)
    half = max(float(np.max(np.abs(np.r_[lo, hi]))) * 1.2, 1.0)
    if previous is not None:
        prev_half = max(abs(previous[0][0]), abs(previous[0][1]))
        # shrink slowly (5 % per frame), grow at once
        half = max(half, 0.95 * prev_half) if half < prev_half else half
    half = float(np.ceil(half * 10) / 10)
    return (-half, half), (-half, half)
