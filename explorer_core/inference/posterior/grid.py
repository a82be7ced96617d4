"""The true posterior p(z|x) of one image under a model with a 2-D latent, on a grid (quadrature):
the evidence log p(x), the posterior's mean and covariance, and the ELBO of any Gaussian q by quadrature
(:func:`grid_posterior`, :func:`gaussian_elbo`); the contour of a 2-D Gaussian (:func:`ellipse`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch.distributions import MultivariateNormal, Normal

from explorer_core.inference.posterior.densities import (
    PosteriorError,
    _amortized_q,
    _gaussian,
    _one_image,
    log_joint,
)
from explorer_core.models.base import LatentVariableModel

#: nodes per axis of the fine grid (the window is refined so that the posterior spans most of it)
DEFAULT_RESOLUTION = 48
#: nodes per axis of the coarse grids that find the window
COARSE_RESOLUTION = 32
#: the window holds every grid point whose log density is within this many nats of the peak; beyond it the
#: posterior density is below e^-25 of its peak, so the mass left out is negligible (< 1e-6 nats)
TAIL_NATS = 25.0
#: nodes per axis of the scan of the prior's bulk (mean +- 4 standard deviations) for other modes
SCAN_RESOLUTION = 32
PRIOR_SCAN_SDS = 4.0
#: fine-grid nodes more than TAIL_NATS + this below the peak on the coarse grid (and outside q_phi's window)
#: are not decoded: they take the coarse grid's value
SKIP_MARGIN = 15.0
#: nodes per axis of the quadrature of a Gaussian q's ELBO in its own coordinates (:func:`gaussian_elbo`)
Q_NODES = 24
#: half-width of the window around q(z|x), in its standard deviations (mass outside: < 1e-7)
Q_HALF_WIDTH = 6.0
#: the stated tolerance on log p(x) by quadrature (nats): the fine grid's spacing is halved until log p(x)
#: moves by less than this (:func:`grid_posterior`)
EVIDENCE_TOLERANCE = 0.01
#: at most this many halvings of the fine grid's spacing (each decodes about three times the grid's nodes)
MAX_REFINEMENTS = 2


@dataclass
class GridPosterior:
    """p(z|x) of one image on a grid over its 2-D latent space (Riemann sum quadrature on a uniform grid).

    Shapes: the grid has ``n1`` nodes along z1 and ``n2`` along z2; arrays over it are [n2, n1] (rows: z2,
    columns: z1, as a heat map draws them). Tensors are float64 on the CPU. Nats per image throughout.

    Attributes:
        z1, z2: the grid's nodes along each axis, [n1] and [n2].
        log_joint: log p(x, z) at each node (the unnormalised log posterior), [n2, n1].
        log_density: log p(z|x) at each node, a density per unit area of z, [n2, n1].
        log_evidence: log p(x) = log sum_i p(x, z_i) dA (logsumexp + log cell area).
        evidence_error: how far log p(x) moved at the grid's last halving of its spacing (nats; below
            :data:`EVIDENCE_TOLERANCE` unless :data:`MAX_REFINEMENTS` halvings did not get there): the stated
            quadrature error of ``log_evidence`` (see :func:`grid_posterior`).
        refinements: halvings of the fine grid's spacing made to reach the tolerance (0: none needed).
        mean, cov: the posterior's mean [2] and covariance [2, 2].
        cell_area: dA = dz1 * dz2.
        q_mean, q_cov: q_phi(z|x)'s mean [2] and covariance [2, 2].
        elbo_q: ELBO(q_phi) by quadrature in q_phi's own coordinates (:func:`gaussian_elbo`).
        kl_q: KL(q_phi || p(z|x)) = log_evidence - elbo_q.
        q_mass: sum_i q_phi(z_i) dA, ~1 when the grid holds and resolves q_phi (a check).
        edge_nats: peak log density minus the largest log density on the window's border (>= ``tail``
            unless the window could not be widened enough).
        floor_log_joint: the smallest finite log p(x, z) on the grid (normally ``tail`` nats or more below
            the peak): what :meth:`elbo` assumes of a q's mass off the grid (beyond the window the posterior
            keeps falling, so this is optimistic, but far below where the posterior's mass is).
        decoder_calls: latents decoded, all grids together (the cost).
        seconds: wall-clock time of :func:`grid_posterior`.
    """

    z1: torch.Tensor
    z2: torch.Tensor
    log_joint: torch.Tensor
    log_density: torch.Tensor
    log_evidence: float
    mean: torch.Tensor
    cov: torch.Tensor
    cell_area: float
    q_mean: torch.Tensor
    q_cov: torch.Tensor
    elbo_q: float = math.nan
    kl_q: float = math.nan
    q_mass: float = math.nan
    edge_nats: float = math.nan
    evidence_error: float = math.nan
    refinements: int = 0
    floor_log_joint: float = math.nan
    decoder_calls: int = 0
    seconds: float = 0.0
    _points: torch.Tensor | None = field(default=None, repr=False)

    @property
    def points(self) -> torch.Tensor:
        """The nodes as latents [n2 * n1, 2] (row-major over [n2, n1])."""
        if self._points is None:
            zz1, zz2 = torch.meshgrid(self.z1, self.z2, indexing="xy")
            self._points = torch.stack([zz1.reshape(-1), zz2.reshape(-1)], dim=-1)
        return self._points

    def elbo(
        self, mean: torch.Tensor, cov: torch.Tensor | None = None, scale_tril: torch.Tensor | None = None
    ):
        """ELBO(q) of a Gaussian q = N(mean, cov) by quadrature on this grid, a float64 scalar tensor (nats):
        (1 - m) sum_i w_i log p(x, z_i) + m b + H(q), with w_i = q(z_i) / sum_j q(z_j), H(q) in closed form,
        m the mass of q off the grid's rectangle (from q's marginals: P(z1 off) + P(z2 off), at most 1) and
        b = :attr:`floor_log_joint`. Differentiable in ``mean`` and ``cov`` (or ``scale_tril``). Accurate
        while q lies on the grid and is wider than a cell or two (q\\* and q_phi are; see :attr:`q_mass`);
        the off-grid term only keeps a fit from spreading q off the grid, where the self-normalised sum
        alone would reward it with entropy (a q* from q_phi on test image 8 of vae-cb-l2 grew to 21 standard
        deviations wide, its grid ELBO 1017.6 nats while its own, :func:`gaussian_elbo`, was -6499)."""
        q = MultivariateNormal(
            mean.double(),
            covariance_matrix=None if cov is None else cov.double(),
            scale_tril=None if scale_tril is None else scale_tril.double(),
            validate_args=False,
        )
        weights = torch.softmax(q.log_prob(self.points), dim=0)
        on_grid = (weights * self.log_joint.reshape(-1)).sum()
        if not math.isfinite(self.floor_log_joint):
            return on_grid + q.entropy()
        half = torch.stack([self.z1[1] - self.z1[0], self.z2[1] - self.z2[0]]) / 2
        lo = torch.stack([self.z1[0], self.z2[0]]) - half
        hi = torch.stack([self.z1[-1], self.z2[-1]]) + half
        marginal = Normal(q.mean, q.covariance_matrix.diagonal().sqrt())
        # P(z_j < lo_j) + P(z_j > hi_j), the second as P(z_j < 2 mu_j - hi_j) (no cancellation)
        off = (marginal.cdf(lo) + marginal.cdf(2 * q.mean - hi)).sum().clamp(max=1.0)
        return (1 - off) * on_grid + off * self.floor_log_joint + q.entropy()

    def mode_start(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A Gaussian on the posterior's highest node: (that node [2], the covariance of the posterior mass
        within 10 nats of it [2, 2], or the posterior's covariance if that is degenerate) - the second
        start of the q\\* fits, for when q_phi sits on a worse mode."""
        flat = self.log_density.reshape(-1)
        top = int(flat.argmax())
        near = flat >= flat[top] - 10.0
        pts, w = self.points[near], torch.softmax(flat[near], 0)
        centred = pts - w @ pts
        cov = (centred * w[:, None]).T @ centred
        if torch.linalg.eigvalsh(cov).min() <= 1e-12 * float(cov.trace()) or cov.trace() <= 0:
            cov = self.cov
        return self.points[top].clone(), cov

    def kl(self, mean: torch.Tensor, cov: torch.Tensor) -> float:
        """KL(q || p(z|x)) = log p(x) - ELBO(q) for q = N(mean, cov), nats (quadrature)."""
        with torch.no_grad():
            return self.log_evidence - float(self.elbo(mean, cov))


def _grid(lo: torch.Tensor, hi: torch.Tensor, n1: int, n2: int) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.linspace(float(lo[0]), float(hi[0]), n1, dtype=torch.float64),
        torch.linspace(float(lo[1]), float(hi[1]), n2, dtype=torch.float64),
    )


def _evaluate(model, x, y, z1, z2, chunk) -> torch.Tensor:
    zz1, zz2 = torch.meshgrid(z1, z2, indexing="xy")
    points = torch.stack([zz1.reshape(-1), zz2.reshape(-1)], dim=-1)
    with torch.no_grad():
        values = log_joint(model, x, points, y, chunk).double().cpu()
    values = torch.nan_to_num(values, nan=-math.inf)
    return values.reshape(len(z2), len(z1))


def _evaluate_where_needed(
    model, x, y, z1, z2, chunk, coarse, threshold, q_lo, q_hi, known: torch.Tensor | None = None
) -> tuple[torch.Tensor, int]:
    """The fine grid's log p(x, z) [n2, n1], decoding only the nodes that can matter: those inside q_phi's
    window and those whose nearest node of the ``coarse`` grid (z1c, z2c, values [n2c, n1c]) or one of its
    eight neighbours is at least ``threshold``. The others, far below the peak, take the nearest coarse
    value (finite, so a q passing over them during a fit still has an ELBO). ``known``: the values of a grid
    twice as coarse on the same window (the nodes [::2, ::2] of this one), not decoded again. Returns the
    values and the number of nodes decoded."""
    c1, c2, cv = coarse
    i = ((z1 - c1[0]) / (c1[1] - c1[0])).round().long().clamp(0, len(c1) - 1)
    j = ((z2 - c2[0]) / (c2[1] - c2[0])).round().long().clamp(0, len(c2) - 1)
    dilated = torch.nn.functional.max_pool2d(cv[None, None], 3, stride=1, padding=1)[0, 0]
    values = cv[j][:, i].clone()
    zz1, zz2 = torch.meshgrid(z1, z2, indexing="xy")
    in_q = (zz1 >= q_lo[0]) & (zz1 <= q_hi[0]) & (zz2 >= q_lo[1]) & (zz2 <= q_hi[1])
    need = in_q | (dilated[j][:, i] >= threshold)
    if known is not None:
        values[::2, ::2] = known
        need[::2, ::2] = False
    points = torch.stack([zz1[need], zz2[need]], dim=-1)
    with torch.no_grad():
        exact = log_joint(model, x, points, y, chunk).double().cpu()
    values[need] = torch.nan_to_num(exact, nan=-math.inf)
    return values, int(need.sum())


def _coarser_move(values: torch.Tensor, cell_area: float, log_evidence: float) -> float:
    """The largest |log p(x) on a grid of every other node - ``log_evidence``| over the four such grids
    (offsets 0 and 1 along each axis) of a grid's log p(x, z) ``values`` [n2, n1]: how far log p(x) moves
    from twice this spacing to this one, nats."""
    return max(
        abs(
            float(torch.logsumexp(values[a::2, b::2].reshape(-1), 0)) + math.log(4 * cell_area) - log_evidence
        )
        for a in (0, 1)
        for b in (0, 1)
    )


def _halve(z: torch.Tensor) -> torch.Tensor:
    """The nodes [n] with the midpoints between them added, [2n - 1] (the old nodes at the even indices)."""
    return torch.linspace(float(z[0]), float(z[-1]), 2 * len(z) - 1, dtype=torch.float64)


def _kept_span(keep: torch.Tensor) -> tuple[int, int, int, int]:
    """First and last column (z1) and row (z2) index where ``keep`` [n2, n1] holds."""
    cols = torch.nonzero(keep.any(0)).reshape(-1)
    rows = torch.nonzero(keep.any(1)).reshape(-1)
    return int(cols[0]), int(cols[-1]), int(rows[0]), int(rows[-1])


def grid_posterior(
    model: LatentVariableModel,
    x: torch.Tensor,
    y: torch.Tensor | int | None = None,
    *,
    resolution: int = DEFAULT_RESOLUTION,
    coarse_resolution: int = COARSE_RESOLUTION,
    tail: float = TAIL_NATS,
    max_rounds: int = 12,
    scan_resolution: int = SCAN_RESOLUTION,
    chunk: int = 4096,
    evidence_tolerance: float = EVIDENCE_TOLERANCE,
    max_refinements: int = MAX_REFINEMENTS,
) -> GridPosterior:
    """The posterior p(z|x) of one image under a model with a 2-D latent, by quadrature on a grid.

    The window is found from q_phi(z|x) (its mean +- 6 standard deviations) and refined on coarse grids
    (``coarse_resolution`` nodes per axis) until it holds the posterior's mass: a side is pushed out while
    the log density on it is within ``tail`` nats of the peak, and the window shrinks to the nodes within
    ``tail`` nats (plus one cell) when the posterior fills less than a quarter of it. A scan of the prior's
    bulk (mean +- 4 sd, ``scan_resolution`` nodes per axis) then looks for mass elsewhere (a second mode,
    or a better one that q_phi missed: a 2-D VAE has them); if it finds any, the search starts again from a
    window that holds both. (A mode narrower than the scan's spacing and away from q_phi can still be
    missed: a limit of any grid.) The fine grid then spans that window and q_phi's own window, with a
    spacing of 1/(``resolution`` - 1) of the posterior's extent on each axis (finer where q_phi is narrower;
    at most 4 x ``resolution`` nodes per axis before the refinement below), and is widened again if the
    posterior reaches its border. Of the fine grid only the nodes within q_phi's window and those near
    coarse nodes within ``tail`` + 15 nats of the peak are decoded; the others (far below the peak: no mass)
    take the coarse grid's nearest value.

    The quadrature's error is then measured, not assumed: log p(x) on the four grids of every other node
    (twice the spacing) is compared with log p(x) on the whole grid; while the largest difference is
    ``evidence_tolerance`` (0.01 nats) or more, the spacing is halved (2n - 1 nodes per axis, the old nodes
    kept and not decoded again) and log p(x) compared with the previous grid's, at most ``max_refinements``
    times. The last move is reported as :attr:`GridPosterior.evidence_error`. A ReLU decoder's log density
    is only piecewise smooth, so the Riemann sum converges like a power of the spacing (about h^2 to h^3
    on vae-cb-l2), not faster than any power: the error of the finer grid is then at most the move that
    reached it. On the first 200 MNIST test images under ``vae-cb-l2``, doubling the spacing of the
    48-node grid moved log p(x) by a median of 0.002 nats, and by 0.01 or more (up to 0.32) on 11 of them,
    which are refined.

    Args:
        model: a VAE or CVAE (``encode`` gives a Gaussian q(z|x)) with latent_dim 2.
        x: one image, [D] or [1, D], as the model was trained on (e.g. dequantized for a CB model).
        y: its label (int or int64 tensor) for a conditional model; ignored by an unconditional one.
        resolution: nodes per axis across the posterior's extent on the fine grid (>= 8).
        coarse_resolution: nodes per axis of the window-finding grids (>= 8).
        scan_resolution: nodes per axis of the prior scan.
        tail: nats below the peak that the window must hold.
        max_rounds: at most this many coarse grids.
        chunk: decoder batch size.
        evidence_tolerance: nats; the grid is refined until log p(x) moves by less than this.
        max_refinements: at most this many halvings of the spacing (the reported error may then exceed the
            tolerance).

    Returns:
        A :class:`GridPosterior` (log p(x), the grid's log density, the posterior's mean and covariance,
        ELBO(q_phi) and KL(q_phi || p(z|x)) by quadrature), in nats per image.

    Raises:
        PosteriorError: the latent space is not 2-D, q(z|x) is not Gaussian, a conditional model without a
            label, more than one image, non-finite pixels, a resolution below 8, or a log posterior that is
            nowhere finite.

    Source: the gap log p(x) - ELBO = KL(q || p(z|x)) (Kingma & Welling 2014, eq. 1; tutorial section 5);
    the 2-D posterior drawn against q as in Cremer, Li & Duvenaud 2018, figure 2.
    """
    start = time.perf_counter()
    if resolution < 8 or coarse_resolution < 8:
        raise PosteriorError(f"resolution must be at least 8, got {min(resolution, coarse_resolution)}.")
    x, y = _one_image(model, x, y)
    q = _amortized_q(model, x, y)
    if q.event_shape[0] != 2:
        raise PosteriorError(
            f"the grid posterior needs a 2-dimensional latent space, this model has L = {q.event_shape[0]} "
            "(use gap_split, which estimates log p(x) by IWAE for L > 2)."
        )
    q_mean, q_cov = q.mean, q.covariance_matrix
    q_sd = q_cov.diagonal().sqrt()
    q_lo, q_hi = q_mean - Q_HALF_WIDTH * q_sd, q_mean + Q_HALF_WIDTH * q_sd
    calls = 0

    def find_window(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float, tuple]:
        """Coarse grids from [lo, hi]: push out the sides the posterior reaches, zoom in when it is small."""
        nonlocal calls
        nc = coarse_resolution
        for _ in range(max_rounds):
            z1, z2 = _grid(lo, hi, nc, nc)
            values = _evaluate(model, x, y, z1, z2, chunk)
            calls += values.numel()
            peak = values.max()
            if not torch.isfinite(peak):
                raise PosteriorError("log p(x|z) + log p(z) is nowhere finite on the window.")
            i0, i1, j0, j1 = _kept_span(values >= peak - tail)
            width = hi - lo
            grow_lo, grow_hi = torch.tensor([i0 == 0, j0 == 0]), torch.tensor([i1 == nc - 1, j1 == nc - 1])
            if grow_lo.any() or grow_hi.any():
                lo, hi = lo - width * grow_lo, hi + width * grow_hi
                continue
            cell = width / (nc - 1)
            new_lo = torch.stack([z1[i0], z2[j0]]) - cell
            new_hi = torch.stack([z1[i1], z2[j1]]) + cell
            shrink = (new_hi - new_lo) < 0.25 * width
            if not shrink.any():
                return new_lo, new_hi, float(peak), (z1, z2, values)
            lo, hi = torch.where(shrink, new_lo, lo), torch.where(shrink, new_hi, hi)
        return lo, hi, float(peak), (z1, z2, values)

    lo, hi, peak, coarse = find_window(q_lo.clone(), q_hi.clone())
    # a scan of the prior's bulk for mass that q_phi's neighbourhood does not lead to (another mode)
    with torch.no_grad():
        prior = model.prior(y)
        p_mean = prior.mean.reshape(-1, 2)[0].double().cpu()
        p_sd = prior.variance.reshape(-1, 2)[0].double().cpu().sqrt()
    s1, s2 = _grid(
        p_mean - PRIOR_SCAN_SDS * p_sd, p_mean + PRIOR_SCAN_SDS * p_sd, scan_resolution, scan_resolution
    )
    scan = _evaluate(model, x, y, s1, s2, chunk)
    calls += scan.numel()
    top = max(peak, float(scan.max()))
    zz1, zz2 = torch.meshgrid(s1, s2, indexing="xy")
    high = scan >= top - tail
    outside = high & ((zz1 < lo[0]) | (zz1 > hi[0]) | (zz2 < lo[1]) | (zz2 > hi[1]))
    if outside.any():
        cell = torch.stack([s1[1] - s1[0], s2[1] - s2[0]])
        found_lo = torch.stack([zz1[high].min(), zz2[high].min()]) - cell
        found_hi = torch.stack([zz1[high].max(), zz2[high].max()]) + cell
        start_lo, start_hi = found_lo, found_hi
        if peak >= top - tail:  # q_phi's mode still counts
            start_lo, start_hi = torch.minimum(lo, found_lo), torch.maximum(hi, found_hi)
        lo, hi, peak, coarse = find_window(start_lo, start_hi)
    # the fine grid: the posterior's window, spacing from its extent (and q_phi's width), joined with q_phi's
    post_lo, post_hi = lo, hi
    for _ in range(4):
        spacing = torch.minimum((post_hi - post_lo) / (resolution - 1), q_sd / 2)
        lo, hi = torch.minimum(post_lo, q_lo), torch.maximum(post_hi, q_hi)
        n = ((hi - lo) / spacing).ceil().long() + 1
        n = n.clamp(resolution, 4 * resolution)
        z1, z2 = _grid(lo, hi, int(n[0]), int(n[1]))
        values, exact = _evaluate_where_needed(
            model, x, y, z1, z2, chunk, coarse, peak - tail - SKIP_MARGIN, q_lo, q_hi
        )
        calls += exact
        peak = float(values.max())
        keep = values >= peak - tail
        i0, i1, j0, j1 = _kept_span(keep)
        grow_lo = torch.tensor([i0 == 0, j0 == 0])
        grow_hi = torch.tensor([i1 == len(z1) - 1, j1 == len(z2) - 1])
        if not (grow_lo.any() or grow_hi.any()):
            break
        width = post_hi - post_lo
        post_lo = torch.minimum(post_lo, lo) - width * grow_lo
        post_hi = torch.maximum(post_hi, hi) + width * grow_hi
    cell_area = float((z1[1] - z1[0]) * (z2[1] - z2[0]))
    log_evidence = float(torch.logsumexp(values.reshape(-1), 0)) + math.log(cell_area)
    # the quadrature's error: log p(x) on the grids of every other node (twice the spacing) against this one;
    # while it moves by the tolerance or more, halve the spacing (the old nodes are kept) and compare again
    evidence_error, refinements = _coarser_move(values, cell_area, log_evidence), 0
    while evidence_error >= evidence_tolerance and refinements < max_refinements:
        z1, z2 = _halve(z1), _halve(z2)
        values, exact = _evaluate_where_needed(
            model, x, y, z1, z2, chunk, coarse, peak - tail - SKIP_MARGIN, q_lo, q_hi, known=values
        )
        calls += exact
        cell_area = float((z1[1] - z1[0]) * (z2[1] - z2[0]))
        finer = float(torch.logsumexp(values.reshape(-1), 0)) + math.log(cell_area)
        evidence_error, log_evidence, refinements = abs(finer - log_evidence), finer, refinements + 1
        peak = float(values.max())
    log_density = values - log_evidence
    border = torch.cat([values[0], values[-1], values[:, 0], values[:, -1]])
    grid = GridPosterior(
        z1=z1,
        z2=z2,
        log_joint=values,
        log_density=log_density,
        log_evidence=log_evidence,
        mean=torch.zeros(2, dtype=torch.float64),
        cov=torch.zeros(2, 2, dtype=torch.float64),
        cell_area=cell_area,
        q_mean=q_mean,
        q_cov=q_cov,
        edge_nats=float(peak - border.max()),
        evidence_error=evidence_error,
        refinements=refinements,
        floor_log_joint=float(values[torch.isfinite(values)].min()),
        decoder_calls=calls,
    )
    p = torch.softmax(values.reshape(-1), 0)
    pts = grid.points
    mean = p @ pts
    centred = pts - mean
    grid.mean, grid.cov = mean, (centred * p[:, None]).T @ centred
    grid.elbo_q = gaussian_elbo(model, x, y, q_mean, q_cov)
    calls += Q_NODES**2
    grid.decoder_calls = calls
    with torch.no_grad():
        grid.q_mass = float(torch.logsumexp(q.log_prob(pts), 0).exp() * cell_area)
    grid.kl_q = log_evidence - grid.elbo_q
    grid.seconds = time.perf_counter() - start
    return grid


def gaussian_elbo(
    model: LatentVariableModel,
    x: torch.Tensor,
    y: torch.Tensor | int | None,
    mean: torch.Tensor,
    cov: torch.Tensor,
    n: int = Q_NODES,
    chunk: int = 4096,
) -> float:
    """ELBO(q) of a 2-D Gaussian q = N(mean, cov) by quadrature in q's own coordinates, nats per image:
    nodes z = mean + L u on a uniform n x n grid of u over [-6, 6]^2 (L L^T = cov), weights proportional to
    N(u; 0, I), so sum_i w_i log p(x, z_i) + H(q) with H in closed form. Independent of the posterior's grid,
    so it is exact however narrow or far q is (n^2 decoder calls).

    Raises:
        PosteriorError: see :func:`grid_posterior` (image, label); mean not [2] or cov not [2, 2].
    """
    x, y = _one_image(model, x, y)
    mean, cov = mean.double().cpu(), cov.double().cpu()
    if mean.shape != (2,) or cov.shape != (2, 2):
        raise PosteriorError(f"a 2-D Gaussian needs mean [2] and cov [2, 2], got {tuple(mean.shape)}.")
    q = _gaussian(mean, cov)
    axis = torch.linspace(-Q_HALF_WIDTH, Q_HALF_WIDTH, n, dtype=torch.float64)
    uu1, uu2 = torch.meshgrid(axis, axis, indexing="xy")
    u = torch.stack([uu1.reshape(-1), uu2.reshape(-1)], dim=-1)
    weights = torch.softmax(Normal(0.0, 1.0).log_prob(u).sum(-1), 0)
    with torch.no_grad():
        values = log_joint(model, x, mean + u @ q.scale_tril.T, y, chunk).double().cpu()
    return float((weights * values).sum() + q.entropy())


def ellipse(mean: torch.Tensor, cov: torch.Tensor, n_sigma: float = 1.0, n: int = 100) -> torch.Tensor:
    """The n_sigma contour of a 2-D Gaussian N(mean, cov) (the 1 sigma and 2 sigma ellipses drawn over the
    posterior), as n + 1 points [n + 1, 2] (closed: the last is the first), float64.

    Raises:
        PosteriorError: mean is not [2] or cov not [2, 2].
    """
    mean, cov = torch.as_tensor(mean, dtype=torch.float64), torch.as_tensor(cov, dtype=torch.float64)
    if mean.shape != (2,) or cov.shape != (2, 2):
        raise PosteriorError(
            f"an ellipse needs mean [2] and cov [2, 2], got {tuple(mean.shape)}, {tuple(cov.shape)}."
        )
    angle = torch.linspace(0, 2 * math.pi, n + 1, dtype=torch.float64)
    circle = torch.stack([angle.cos(), angle.sin()], dim=-1)
    return mean + n_sigma * circle @ torch.linalg.cholesky(cov).T
