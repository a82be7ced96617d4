"""The true posterior p(z|x) beside the amortized q(z|x), and the inference gap split in two.

The tutorial's AEVB is approximate EM: the E-step fits q(z|x) to p(z|x), and what it leaves open is the gap
log p(x) - ELBO(q) = KL(q(z|x) || p(z|x)). For a Gaussian-latent model (the VAE and the CVAE of
:mod:`explorer_core.models.vae`, or any model whose ``encode`` gives a Gaussian q(z|x)) this module computes

* for a **2-dimensional latent**, the posterior itself, on a grid (:func:`grid_posterior`): the unnormalised
  log posterior log p(x|z) + log p(z) (the CVAE: log p(x|z, y) + log p(z|y) under the image's label) on a
  window found from q(z|x) and refined until it holds the posterior's mass, normalised by quadrature. That
  gives the evidence log p(x), the posterior's mean and covariance, and, for any Gaussian q, its ELBO and
  KL(q || p(z|x)) = log p(x) - ELBO(q) with no Monte Carlo noise;
* the **IWAE bound** for several k (:func:`iwae_bounds`; Burda, Grosse & Salakhutdinov 2016, eq. 8), each
  the mean of independent repeats with its standard error, judged against log p(x) by
  :func:`bound_allowance`;
* the **optimal Gaussian q\\*(z|x)** for one image (:func:`fit_optimal_gaussian`): a diagonal or a full-
  covariance Gaussian fitted by gradient ascent on this image's ELBO, started from q_phi's output (a per-image
  E-step), as an iterator of intermediate states that a page can animate;
* the **split of the gap** (:func:`gap_split`; Cremer, Li & Duvenaud 2018, "Inference Suboptimality in
  Variational Autoencoders", ICML, section 3 and table 1): approximation gap = log p(x) - ELBO(q\\*),
  amortization gap = ELBO(q\\*) - ELBO(q_phi), where q\\* is the best q in q_phi's own family (diagonal
  Gaussians); the full-covariance q\\* says how much of the approximation gap is the diagonal assumption.
  For L > 2 there is no grid: log p(x) is estimated by IWAE with k = 5000, a stochastic **lower bound**
  (:attr:`GapSplit.evidence_is_lower_bound`), which pulls the approximation gap down, while a q\\* fit that
  stops short of the optimum pushes it up: for L > 2 the split is an estimate, not a bound;
* the same over a test set (:func:`test_set_gaps`, for ``python -m explorer_core gaps``).

All figures are in nats per image. Every density is a ``torch.distributions`` object: the model's own
``decode(z, y)``, ``prior(y)`` and ``encode(x, y)``, and ``MultivariateNormal`` for q\\*. The decoder is
called on batches of grid points (``chunk`` at a time). Nothing here imports Streamlit.

How q\\* is fitted (one choice, documented): for L = 2 the objective is the ELBO computed by quadrature on the
posterior's grid, ELBO(q) = sum_i w_i log p(x, z_i) + H(q) with w_i proportional to q(z_i) (self-normalised
over the grid; q's mass off the grid is charged the grid's lowest log p(x, z), :meth:`GridPosterior.elbo`)
and H(q) the Gaussian's entropy in closed form. It is deterministic and costs no decoder call
per step, because log p(x, z_i) is already on the grid; the best state seen is kept. :func:`gap_split`
fits from q_phi and from the posterior's highest mode and keeps the better after recomputing each candidate's
ELBO in its own coordinates (:func:`gaussian_elbo`), so ELBO(q\\*) >= ELBO(q_phi); whether the page says
that q_phi sits on a worse mode is :func:`phi_on_worse_mode` of those two fits. For L > 2 it is
stochastic gradient ascent on the reparameterised ELBO (``n_noise`` fresh draws
per step, the "sticking the landing" gradient), and the ELBOs reported are re-estimated on fresh noise shared
by q_phi and q\\* (common random numbers). Adam on (mean, log-scale, off-diagonal) in q_phi's whitened
coordinates, with a cosine learning-rate decay.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch.distributions import Independent, MultivariateNormal, Normal

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
#: the k of the IWAE bounds shown beside the posterior
IWAE_KS = (1, 10, 100, 1000)
#: independent repeats of the largest k's IWAE estimate: the pool of importance weights holds this many times
#: max(k) draws, split into disjoint groups of k (each smaller k gets proportionally more repeats); the
#: standard error of each bound's mean comes from the spread of its repeats (with 4 repeats, as before, it was
#: itself too noisy to judge a bound by)
IWAE_REPEATS = 8
#: a Monte Carlo mean of a lower bound (an IWAE bound, or IWAE_1 = the ELBO) counts as consistent with the
#: value it bounds while it lies within this many of its standard errors (plus the quadrature's error and
#: float32 rounding, :func:`bound_allowance`) beyond it
MC_ERROR_SES = 3.0
#: float32 rounding of log p(x|z) (a sum of 784 float32 terms, ~2,000 nats): allowed relative to |log p(x)|
FLOAT32_RELATIVE = 8 * torch.finfo(torch.float32).eps
#: the stated tolerance on log p(x) by quadrature (nats): the fine grid's spacing is halved until log p(x)
#: moves by less than this (:func:`grid_posterior`)
EVIDENCE_TOLERANCE = 0.01
#: at most this many halvings of the fine grid's spacing (each decodes about three times the grid's nodes)
MAX_REFINEMENTS = 2
#: the "q_phi sits on a worse mode" rule (:func:`phi_on_worse_mode`): the fit of q* from the posterior's top
#: mode must beat the fit from q_phi by more than this many nats ...
MODE_TOLERANCE_NATS = 0.5
#: ... and by more than this many standard errors of the difference of the two ELBOs (Monte Carlo ELBOs)
MODE_TOLERANCE_SES = 3.0
#: importance samples of the evidence estimate for L > 2 (Cremer et al. 2018 use k = 5000 too)
EVIDENCE_K = 5000
COVARIANCES = ("diagonal", "full")
#: Adam steps of a q* fit on the grid in :func:`gap_split` (from q_phi, learning rate 0.2 with cosine decay:
#: within 1e-4 nats of 150 steps on the test images tried)
GRID_FIT_STEPS = 100
#: a q* fit on the grid counts as converged when CONTINUATION_STEPS more steps from its end (a fresh Adam,
#: learning rate 0.2) gain less than this (nats, grid ELBO); :func:`gap_split` continues each fit until then,
#: at most MAX_CONTINUATIONS times (a q_phi 13 standard deviations from the posterior, test image 33 of
#: cvae-cb-l2, had not arrived after 150 steps: 0.57 nats short, which read as "a worse mode")
FIT_GAIN_NATS = 1e-3
CONTINUATION_STEPS = 25
MAX_CONTINUATIONS = 8


class PosteriorError(ValueError):
    """The model, image or label cannot be used here (message says why)."""


# --- inputs and the model's densities -------------------------------------------------------------------
def _one_image(
    model: LatentVariableModel, x: torch.Tensor, y: torch.Tensor | int | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """x as [1, D] on the model's device and dtype, y as int64 [1] (or None)."""
    try:
        reference = next(model.parameters())
    except StopIteration:  # a parameter-free model
        reference = torch.zeros((), dtype=x.dtype, device=x.device)
    x = x.to(reference)
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() != 2 or x.shape[0] != 1:
        raise PosteriorError(f"one image at a time: x must be [D] or [1, D], got {tuple(x.shape)}.")
    if not torch.isfinite(x).all():
        raise PosteriorError("the image has NaN or infinite pixels.")
    conditional = bool(getattr(model, "conditional", False))
    if y is None:
        if conditional:
            raise PosteriorError("this model is conditional: give the image's label y.")
        return x, None
    if not conditional:
        return x, None  # an unconditional model ignores labels
    y = torch.as_tensor(y, dtype=torch.long, device=x.device).reshape(-1)[:1]
    return x, y


def _amortized_q(model: LatentVariableModel, x: torch.Tensor, y: torch.Tensor | None) -> MultivariateNormal:
    """q_phi(z|x) for one image as a full-covariance ``MultivariateNormal`` (float64), event [L].

    Raises:
        PosteriorError: ``encode`` does not give a Gaussian over one latent vector.
    """
    with torch.no_grad():
        q = model.encode(x, y)
    if not isinstance(q, torch.distributions.Distribution) or q.batch_shape.numel() != 1:
        raise PosteriorError(
            f"{type(model).__name__}: q(z|x) of one image is not one Gaussian (batch shape "
            f"{tuple(getattr(q, 'batch_shape', ()))}): the posterior view needs a VAE or a CVAE."
        )
    prior = model.prior(y)
    if prior.batch_shape.numel() != 1 or prior.event_shape != q.event_shape:
        raise PosteriorError(
            f"{type(model).__name__}: its prior is not one distribution over q(z|x)'s latent (batch shape "
            f"{tuple(prior.batch_shape)}): the posterior view needs a VAE or a CVAE."
        )
    if isinstance(q, MultivariateNormal):
        L = q.event_shape[0]
        mean, cov = q.mean.reshape(-1, L)[0], q.covariance_matrix.reshape(-1, L, L)[0]
    elif isinstance(q, Independent) and isinstance(q.base_dist, Normal) and len(q.event_shape) == 1:
        mean = q.mean.reshape(-1, q.event_shape[0])[0]
        cov = torch.diag(q.variance.reshape(-1, q.event_shape[0])[0])
    else:
        raise PosteriorError(
            f"{type(model).__name__}: q(z|x) is a {type(q).__name__}, not a Gaussian over one latent vector "
            "(the posterior view needs a VAE or a CVAE)."
        )
    return _gaussian(mean.double().cpu(), cov.double().cpu())


def check_model(model: LatentVariableModel) -> int:
    """The latent dimension L of a model this module can use (its q(z|x) of one image is one Gaussian and
    its prior one distribution over the same latent: the VAE and the CVAE).

    Raises:
        PosteriorError: any other model (the message says why).
    """
    config = getattr(model, "config", None)
    data_dim = int(getattr(config, "data_dim", 784))
    x, y = _one_image(model, torch.zeros(1, data_dim), 0)
    try:
        return _amortized_q(model, x, y).event_shape[0]
    except (TypeError, ValueError, RuntimeError, AttributeError, IndexError) as err:
        if isinstance(err, PosteriorError):
            raise
        raise PosteriorError(
            f"{type(model).__name__}: not a model with one Gaussian q(z|x) ({err})."
        ) from err


def _gaussian(mean: torch.Tensor, cov: torch.Tensor) -> MultivariateNormal:
    return MultivariateNormal(mean, covariance_matrix=cov, validate_args=False)


def log_joint(
    model: LatentVariableModel,
    x: torch.Tensor,
    z: torch.Tensor,
    y: torch.Tensor | None = None,
    chunk: int = 4096,
) -> torch.Tensor:
    """log p(x|z) + log p(z) (the CVAE: log p(x|z, y) + log p(z|y)) for one image and many z.

    Args:
        model: a model with ``decode(z, y)`` and ``prior(y)`` (``torch.distributions`` objects).
        x: the image, [1, D] (as :func:`_one_image` gives it).
        z: latents [N, L], any dtype (cast to the model's); gradients flow through when z requires them.
        y: int64 [1] label of a conditional model, else None.
        chunk: decoder calls per batch (memory: chunk x D floats per temporary).

    Returns:
        [N], nats, in the model's dtype.
    """
    prior = model.prior(y)
    z = z.to(x)
    parts = []
    for part in z.split(chunk):
        y_k = None if y is None else y.expand(len(part))
        parts.append(model.decode(part, y_k).log_prob(x) + prior.log_prob(part))
    return torch.cat(parts)


# --- the grid posterior (L = 2) ----------------------------------------------------------------------------
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


# --- IWAE --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IWAEBound:
    """The IWAE bound with k importance samples (Burda et al. 2016, eq. 8), nats per image.

    Attributes:
        k: importance samples per estimate.
        estimate: the mean over ``replicates`` independent estimates of log (1/k) sum_i w_i.
        stderr: the standard error of that mean (NaN with a single replicate).
        replicates: independent estimates averaged.
    """

    k: int
    estimate: float
    stderr: float
    replicates: int


def _noise(shape: Sequence[int], generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(*shape, generator=generator, dtype=torch.float32)


def importance_log_weights(
    model: LatentVariableModel,
    x: torch.Tensor,
    y: torch.Tensor | int | None = None,
    n: int = 1000,
    *,
    proposal: MultivariateNormal | None = None,
    generator: torch.Generator | None = None,
    chunk: int = 1000,
) -> torch.Tensor:
    """log p(x, z_s) - log r(z_s) for n draws z_s from a Gaussian proposal r, [n] float64, nats.

    r is q_phi(z|x) by default; the model's own ``log_weights`` is used then when it takes the noise
    (``eps=``), otherwise the weights are built from ``decode``/``prior``/``encode``. A ``proposal`` (e.g.
    q\\*) replaces q_phi. The noise comes from ``generator`` (reproducible).

    Raises:
        PosteriorError: see :func:`grid_posterior` (image, label, a non-Gaussian q).
    """
    x, y = _one_image(model, x, y)
    q = _amortized_q(model, x, y) if proposal is None else proposal
    L = q.event_shape[0]
    own = getattr(model, "log_weights", None)
    out = []
    with torch.no_grad():
        for size in [chunk] * (n // chunk) + ([n % chunk] if n % chunk else []):
            eps = _noise((size, L), generator)
            if proposal is None and own is not None and _takes_eps(own):
                out.append(own(x, y, k=size, eps=eps.unsqueeze(1)).reshape(-1).double().cpu())
                continue
            z = q.mean + eps.double() @ q.scale_tril.T
            out.append(log_joint(model, x, z, y, chunk).double().cpu() - q.log_prob(z))
    return torch.cat(out)


def _takes_eps(fn: Callable) -> bool:
    import inspect

    try:
        return "eps" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _logmeanexp(w: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.logsumexp(w, dim) - math.log(w.shape[dim])


def iwae_bounds(
    model: LatentVariableModel,
    x: torch.Tensor,
    y: torch.Tensor | int | None = None,
    ks: Sequence[int] = IWAE_KS,
    *,
    n_samples: int | None = None,
    generator: torch.Generator | None = None,
    log_weights: torch.Tensor | None = None,
) -> list[IWAEBound]:
    """The IWAE bound of one image for each k in ``ks`` (Burda et al. 2016, eq. 8), nats per image.

    One pool of ``n_samples`` importance weights from q_phi (default :data:`IWAE_REPEATS` x max(ks)) is
    split, for each k, into n_samples // k disjoint groups of k; each group gives one independent estimate,
    and their mean and its standard error (their standard deviation / sqrt(repeats)) are reported. The
    expected bound rises with k towards log p(x) and never passes it; a mean can, by Monte Carlo noise
    (judge it with :func:`bound_allowance`).

    Args:
        ks: the k's, each >= 1 and <= n_samples.
        log_weights: a pool already drawn (:func:`importance_log_weights`), [n], instead of a new one.

    Raises:
        PosteriorError: an empty or invalid ``ks``, or see :func:`importance_log_weights`.
    """
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise PosteriorError(f"every k must be at least 1, got {ks}.")
    if log_weights is None:
        n_samples = n_samples or IWAE_REPEATS * max(ks)
        if n_samples < max(ks):
            raise PosteriorError(f"n_samples ({n_samples}) must be at least the largest k ({max(ks)}).")
        log_weights = importance_log_weights(model, x, y, n_samples, generator=generator)
    bounds = []
    for k in ks:
        reps = len(log_weights) // k
        if reps < 1:
            raise PosteriorError(f"{len(log_weights)} weights are too few for k = {k}.")
        estimates = _logmeanexp(log_weights[: reps * k].reshape(reps, k), 1)
        stderr = float(estimates.std() / math.sqrt(reps)) if reps > 1 else math.nan
        bounds.append(IWAEBound(k, float(estimates.mean()), stderr, reps))
    return bounds


def bound_allowance(stderr: float, evidence_error: float = 0.0, value: float = 0.0) -> float:
    """How far (nats per image) the Monte Carlo mean of a lower bound may lie beyond the value it bounds and
    still count as equal to it: :data:`MC_ERROR_SES` x ``stderr`` (the mean's standard error) +
    ``evidence_error`` (the bounded value's own error, e.g. :attr:`GridPosterior.evidence_error`) + float32
    rounding (:data:`FLOAT32_RELATIVE` x |``value``|). Used for IWAE_k <= log p(x) and ELBO <= IWAE_k (the
    expectations obey them exactly: Burda et al. 2016, theorem 1); a NaN ``stderr`` (one repeat) counts as 0.

    Raises:
        ValueError: a negative ``stderr`` or ``evidence_error``.
    """
    stderr = 0.0 if math.isnan(stderr) else stderr
    evidence_error = 0.0 if math.isnan(evidence_error) else evidence_error
    if stderr < 0 or evidence_error < 0:
        raise ValueError(f"errors must be >= 0, got stderr {stderr}, evidence_error {evidence_error}.")
    return MC_ERROR_SES * stderr + evidence_error + FLOAT32_RELATIVE * abs(value)


# --- the optimal Gaussian q* ----------------------------------------------------------------------------
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
    mu0, sd0 = start_mean, start_cov.diagonal().sqrt()
    rows, cols = torch.tril_indices(L, L, offset=-1)
    n_off = L * (L - 1) // 2 if covariance == "full" else 0
    if n_off:  # start from the whole covariance: T0 = cholesky of the correlation matrix
        t0 = torch.linalg.cholesky(start_cov / (sd0[:, None] * sd0[None, :]))
    else:
        t0 = torch.eye(L, dtype=torch.float64)
    shift = torch.zeros(L, dtype=torch.float64, requires_grad=True)
    log_scale = t0.diagonal().log().clone().requires_grad_(True)
    off = t0[rows, cols].clone()[:n_off].requires_grad_(True)
    # no gradients into the model's parameters: torch.autograd.grad on ours only
    leaves = [shift, log_scale] + ([off] if n_off else [])

    def parts(s, ls, o):
        tri = torch.diag(ls.exp())
        if n_off:
            tri = tri.index_put((rows, cols), o)
        return mu0 + sd0 * s, sd0[:, None] * tri

    def objective() -> torch.Tensor:
        mean, scale_tril = parts(shift, log_scale, off)
        if grid is not None:
            return grid.elbo(mean, scale_tril=scale_tril)
        return _mc_elbo(model, x, y, mean, scale_tril, _noise((n_noise, L), generator), stick=True)

    def state(step: int, value: float, done: bool = False, params=None) -> QStarState:
        s, ls, o = params if params is not None else (shift, log_scale, off)
        with torch.no_grad():
            mean, scale_tril = parts(s, ls, o)
            return QStarState(step, mean.clone(), scale_tril @ scale_tril.T, value, covariance, done)

    optimizer = torch.optim.Adam(leaves, lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr / 50)
    best_value, best = -math.inf, None
    for step in range(steps + 1):
        with torch.enable_grad():
            value_t = objective()
        value = float(value_t.detach())
        if not math.isfinite(value):
            break
        if value > best_value or grid is None:  # Monte Carlo values are noisy: keep the last iterate
            best_value = value
            best = (shift.detach().clone(), log_scale.detach().clone(), off.detach().clone())
        if step % every == 0:
            yield state(step, value)
        if step == steps:
            break
        grads = torch.autograd.grad(value_t, leaves)
        for leaf, grad in zip(leaves, grads, strict=True):
            leaf.grad = -grad  # ascent
        optimizer.step()
        scheduler.step()
    if best is None:  # q_phi itself was not finite
        raise PosteriorError("the ELBO of q_phi is not finite for this image.")
    yield state(step, best_value, True, best)


def optimal_gaussian(model, x, y=None, **kwargs) -> QStarState:
    """The final state of :func:`fit_optimal_gaussian` (the best q\\* found); same arguments."""
    *_, final = fit_optimal_gaussian(model, x, y, every=10**9, **kwargs)
    return final


# --- the split of the gap -------------------------------------------------------------------------------
@dataclass(frozen=True)
class GapSplit:
    """The inference gap of one image split as in Cremer, Li & Duvenaud 2018 (table 1), nats per image.

    Attributes:
        latent_dim: L.
        log_evidence: log p(x): quadrature on the grid (L = 2), else the larger of two IWAE-5000 estimates
            (proposals q_phi and the full-covariance q\\*), a stochastic lower bound.
        evidence_method: ``"quadrature"`` or ``"iwae-5000"``.
        evidence_is_lower_bound: True for IWAE (which pulls the approximation gaps down; a q\\* fit short of
            its optimum pushes them up).
        elbo_amortized: ELBO(q_phi).
        elbo_optimal: ELBO(q\\*) of the best diagonal Gaussian (q_phi's family).
        elbo_optimal_full: ELBO of the best full-covariance Gaussian.
        inference_gap: log p(x) - ELBO(q_phi) = KL(q_phi || p(z|x)).
        approximation_gap: log p(x) - ELBO(q\\*).
        amortization_gap: ELBO(q\\*) - ELBO(q_phi).
        approximation_gap_full: log p(x) - ELBO(q\\*_full); approximation_gap minus this is what the
            diagonal assumption costs.
        q_star, q_star_full: the fitted states (means and covariances).
        seconds: wall-clock time.
        elbo_from_phi: L = 2: the ELBO of the diagonal q\\* fitted from q_phi (continued until converged:
            :data:`FIT_GAIN_NATS`), by :func:`gaussian_elbo`; NaN for L > 2 (no second start).
        elbo_from_mode: L = 2: the ELBO of the diagonal q\\* fitted from the posterior's top mode
            (:meth:`GridPosterior.mode_start`), by :func:`gaussian_elbo`; NaN for L > 2.
        elbo_difference_stderr: the standard error of elbo_from_mode - elbo_from_phi: 0 for the quadrature
            ELBOs of L = 2 (deterministic; their quadrature error is covered by
            :data:`MODE_TOLERANCE_NATS`).
        q_star_from_phi, q_star_from_mode: L = 2: the diagonal q\\* fitted from q_phi and from the top mode,
            each continued until converged (``step``: all its steps; ``elbo``: elbo_from_phi,
            elbo_from_mode); None for L > 2.
    """

    latent_dim: int
    log_evidence: float
    evidence_method: str
    evidence_is_lower_bound: bool
    elbo_amortized: float
    elbo_optimal: float
    elbo_optimal_full: float
    q_star: QStarState
    q_star_full: QStarState
    seconds: float
    elbo_from_phi: float = math.nan
    elbo_from_mode: float = math.nan
    elbo_difference_stderr: float = 0.0
    q_star_from_phi: QStarState | None = None
    q_star_from_mode: QStarState | None = None

    @property
    def phi_on_worse_mode(self) -> bool:
        """Whether q_phi sits on a worse mode than the posterior's top one: :func:`phi_on_worse_mode` of
        :attr:`elbo_from_phi`, :attr:`elbo_from_mode` and :attr:`elbo_difference_stderr` (False for L > 2)."""
        return phi_on_worse_mode(self.elbo_from_phi, self.elbo_from_mode, self.elbo_difference_stderr)

    @property
    def inference_gap(self) -> float:
        return self.log_evidence - self.elbo_amortized

    @property
    def approximation_gap(self) -> float:
        return self.log_evidence - self.elbo_optimal

    @property
    def amortization_gap(self) -> float:
        return self.elbo_optimal - self.elbo_amortized

    @property
    def approximation_gap_full(self) -> float:
        return self.log_evidence - self.elbo_optimal_full

    def as_dict(self) -> dict[str, float | int | str | bool]:
        """The figures as JSON-ready data (no tensors)."""
        return {
            "latent_dim": self.latent_dim,
            "log_evidence": self.log_evidence,
            "evidence_method": self.evidence_method,
            "evidence_is_lower_bound": self.evidence_is_lower_bound,
            "elbo_amortized": self.elbo_amortized,
            "elbo_optimal": self.elbo_optimal,
            "elbo_optimal_full": self.elbo_optimal_full,
            "inference_gap": self.inference_gap,
            "approximation_gap": self.approximation_gap,
            "amortization_gap": self.amortization_gap,
            "approximation_gap_full": self.approximation_gap_full,
            "seconds": self.seconds,
        }


def worse_mode_tolerance(stderr: float = 0.0) -> float:
    """The margin (nats per image) by which the q\\* fitted from the posterior's top mode must beat the q\\*
    fitted from q_phi before the page says that q_phi sits on a worse mode: max(:data:`MODE_TOLERANCE_NATS`,
    :data:`MODE_TOLERANCE_SES` x ``stderr``), with ``stderr`` the standard error of the difference of the
    two ELBOs (0 for deterministic quadrature ELBOs; for Monte Carlo ELBOs on shared noise, the standard
    error of the paired difference). A NaN ``stderr`` counts as 0.

    Why 0.5 nats: the two ELBOs are quadratures (:func:`gaussian_elbo`, 24 x 24 nodes) of two separate fits,
    each continued until it gains less than :data:`FIT_GAIN_NATS` (so a difference is two local optima, not
    a fit still on its way); on the first 40 test images of vae-cb-l2 and of cvae-cb-l2, the fits from q_phi
    and from the top mode that end on the same mode differ by at most 0.003 nats, and those that end on
    different modes (5 images of vae-cb-l2, none of cvae-cb-l2) by 11.6 to 336 nats. Half a nat is far
    above the first (the quadrature's error: about 1e-3 nats, at most 0.015 seen) and far below the second.

    Raises:
        ValueError: a negative ``stderr``.
    """
    if stderr < 0:
        raise ValueError(f"stderr must be >= 0, got {stderr}.")
    return max(MODE_TOLERANCE_NATS, MODE_TOLERANCE_SES * (0.0 if math.isnan(stderr) else stderr))


def phi_on_worse_mode(elbo_from_phi: float, elbo_from_mode: float, stderr: float = 0.0) -> bool:
    """The rule behind the closing note of the per-image E-step, "q_phi sits on a worse mode": True exactly
    when ELBO(q\\* from the posterior's top mode) - ELBO(q\\* from q_phi) > :func:`worse_mode_tolerance`
    (``stderr``), i.e. the top-mode fit wins by more than 0.5 nats and by more than 3 standard errors of the
    difference (nats per image, scalars). False when either ELBO is NaN (no fit from the mode, L > 2).

    Source: the amortization gap of Cremer, Li & Duvenaud 2018, section 3: a q_phi on a worse mode is an
    amortization failure that gradient ascent from q_phi cannot undo.

    Raises:
        ValueError: a negative ``stderr``.
    """
    tolerance = worse_mode_tolerance(stderr)
    if math.isnan(elbo_from_phi) or math.isnan(elbo_from_mode):
        return False
    return elbo_from_mode - elbo_from_phi > tolerance


def gap_split(
    model: LatentVariableModel,
    x: torch.Tensor,
    y: torch.Tensor | int | None = None,
    *,
    grid: GridPosterior | None = None,
    generator: torch.Generator | None = None,
    steps: int | None = None,
    evidence_k: int = EVIDENCE_K,
    eval_noise: int = 1000,
    n_noise: int = 64,
    diagonal_from_phi: QStarState | None = None,
) -> GapSplit:
    """Approximation and amortization gaps of one image (Cremer, Li & Duvenaud 2018, section 3, table 1).

    L = 2: everything by quadrature on the grid (``grid``, or a new :func:`grid_posterior`); q\\* fitted on
    the grid's ELBO twice, from q_phi and from the posterior's highest mode
    (:meth:`GridPosterior.mode_start`), the better kept (a 2-D VAE's q_phi can sit on a mode far worse than
    the best one; a fit from q_phi alone would count that amortization failure as approximation gap).
    Each fit is continued from its end until :data:`CONTINUATION_STEPS` more steps gain less than
    :data:`FIT_GAIN_NATS`
    (at most :data:`MAX_CONTINUATIONS` times), so that two fits that differ have stopped on different
    local optima, not on the way. Every candidate's ELBO (q_phi, both fits) is then recomputed by
    :func:`gaussian_elbo` in its own coordinates, which does not depend on the grid resolving it, and the
    best is kept. A caller that has already fitted the diagonal q\\* from q_phi on this grid (an animation
    of that fit) passes its final state as ``diagonal_from_phi``, and that fit is not made again (only
    continued, if it had not converged).
    L > 2: q\\* fitted by stochastic gradient ascent from q_phi; ELBO(q_phi) and ELBO(q\\*) re-estimated on
    ``eval_noise`` fresh draws shared by both (if q\\* then scores below q_phi, q_phi is kept: it is in the
    family); log p(x) by IWAE with k = ``evidence_k`` under q_phi and under the full q\\*, the larger kept
    (a lower bound: the approximation gap is then a lower bound and the split says so).

    Raises:
        PosteriorError: see :func:`grid_posterior` and :func:`fit_optimal_gaussian`.
    """
    start = time.perf_counter()
    x, y = _one_image(model, x, y)
    q = _amortized_q(model, x, y)
    L = q.event_shape[0]
    if L == 2:
        grid = grid if grid is not None else grid_posterior(model, x, y)
        steps = steps if steps is not None else GRID_FIT_STEPS
        mode = grid.mode_start()
        phi = replace(_phi_state(q), elbo=grid.elbo_q)

        def exact(state: QStarState) -> QStarState:
            return replace(state, elbo=gaussian_elbo(model, x, y, state.mean, state.cov))

        def converged(state: QStarState) -> QStarState:
            """The fit continued from its end until CONTINUATION_STEPS more steps gain < FIT_GAIN_NATS."""
            for _ in range(MAX_CONTINUATIONS):
                more = optimal_gaussian(
                    model,
                    x,
                    y,
                    covariance=state.covariance,
                    grid=grid,
                    steps=CONTINUATION_STEPS,
                    init=(state.mean, state.cov),
                )
                if not more.elbo > state.elbo + FIT_GAIN_NATS:
                    break
                state = replace(more, step=state.step + more.step)
            return state

        best: dict[str, QStarState] = {}
        starts: dict[str, QStarState] = {}
        for c in COVARIANCES:
            fits = [
                exact(
                    converged(
                        diagonal_from_phi
                        if c == "diagonal" and i is None and diagonal_from_phi is not None
                        else optimal_gaussian(model, x, y, covariance=c, grid=grid, steps=steps, init=i)
                    )
                )
                for i in (None, mode)
            ]
            if c == "diagonal":  # the two starts, for the worse-mode rule
                starts = {"phi": fits[0], "mode": fits[1]}
            # q_phi is in both families, the best diagonal Gaussian in the full family
            best[c] = max([phi, *best.values(), *fits], key=lambda st: st.elbo)
        return GapSplit(
            2,
            grid.log_evidence,
            "quadrature",
            False,
            grid.elbo_q,
            best["diagonal"].elbo,
            best["full"].elbo,
            best["diagonal"],
            best["full"],
            time.perf_counter() - start,
            elbo_from_phi=starts["phi"].elbo,
            elbo_from_mode=starts["mode"].elbo,
            elbo_difference_stderr=0.0,
            q_star_from_phi=starts["phi"],
            q_star_from_mode=starts["mode"],
        )
    kwargs = {"grid": None, "steps": steps, "n_noise": n_noise, "generator": generator}
    diag = optimal_gaussian(model, x, y, covariance="diagonal", **kwargs)
    full = optimal_gaussian(model, x, y, covariance="full", **kwargs)
    eps = _noise((eval_noise, L), generator)
    with torch.no_grad():
        elbos = [
            float(_mc_elbo(model, x, y, s.mean, torch.linalg.cholesky(s.cov), eps))
            for s in (_phi_state(q), diag, full)
        ]
    amortized, optimal, optimal_full = elbos[0], max(elbos[:2]), max(elbos)
    evidence = max(
        float(_logmeanexp(importance_log_weights(model, x, y, evidence_k, generator=generator), 0)),
        float(
            _logmeanexp(
                importance_log_weights(
                    model, x, y, evidence_k, proposal=_gaussian(full.mean, full.cov), generator=generator
                ),
                0,
            )
        ),
    )
    return GapSplit(
        L,
        evidence,
        f"iwae-{evidence_k}",
        True,
        amortized,
        optimal,
        optimal_full,
        diag,
        full,
        time.perf_counter() - start,
    )


def _phi_state(q: MultivariateNormal) -> QStarState:
    return QStarState(0, q.mean, q.covariance_matrix, math.nan, "diagonal")


def _gap_split_batch(
    model: LatentVariableModel,
    x: torch.Tensor,
    y: torch.Tensor | None,
    *,
    generator: torch.Generator | None,
    steps: int = 150,
    lr: float = 0.2,
    n_noise: int = 64,
    eval_noise: int = 1000,
    evidence_k: int = EVIDENCE_K,
    chunk: int = 250,
) -> list[dict[str, float | int | str | bool]]:
    """:func:`gap_split` for L > 2 on a batch of images x [B, D] (labels y [B] for a conditional model) at
    once: the same estimators (q\\* by Adam on the STL reparameterised ELBO from q_phi, each image with its
    own parameters; ELBOs re-estimated on shared fresh noise; log p(x) the larger of IWAE-``evidence_k``
    under q_phi and under the full q\\*), but one decoder call for all B images per step. Rows as
    :meth:`GapSplit.as_dict`; ``seconds`` is the batch's time divided by B."""
    start = time.perf_counter()
    B = x.shape[0]
    with torch.no_grad():
        q = model.encode(x, y)
    L = q.event_shape[0]
    mu0 = q.mean.double().cpu()
    sd0 = q.variance.double().cpu().sqrt()
    prior = model.prior(y)
    rows, cols = torch.tril_indices(L, L, offset=-1)

    def joint(z: torch.Tensor) -> torch.Tensor:  # z [S, B, L] -> log p(x, z) [S, B]
        zz = z.to(x)
        y_s = None if y is None else y.expand(z.shape[0], B)
        return (model.decode(zz, y_s).log_prob(x) + prior.log_prob(zz)).double().cpu()

    def tril(ls: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
        t = torch.diag_embed(ls.exp())
        if off.shape[-1]:
            t = t.index_put((torch.arange(B)[:, None], rows[None], cols[None]), off)
        return sd0[:, :, None] * t

    def elbo(mean, scale_tril, eps, stick=False) -> torch.Tensor:  # [B]
        qq = MultivariateNormal(mean, scale_tril=scale_tril, validate_args=False)
        if stick:
            qq = MultivariateNormal(mean.detach(), scale_tril=scale_tril.detach(), validate_args=False)
        parts = []
        for part in eps.split(chunk):
            z = mean + torch.einsum("sbj,bij->sbi", part.double(), scale_tril)
            parts.append(joint(z) - qq.log_prob(z))
        return torch.cat(parts).mean(0)

    fitted = {}
    for covariance in COVARIANCES:
        shift = torch.zeros(B, L, dtype=torch.float64, requires_grad=True)
        log_scale = torch.zeros(B, L, dtype=torch.float64, requires_grad=True)
        n_off = L * (L - 1) // 2 if covariance == "full" else 0
        off = torch.zeros(B, n_off, dtype=torch.float64, requires_grad=True)
        leaves = [shift, log_scale] + ([off] if n_off else [])
        optimizer = torch.optim.Adam(leaves, lr=lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr / 50)
        for _ in range(steps):
            with torch.enable_grad():
                value = elbo(
                    mu0 + sd0 * shift, tril(log_scale, off), _noise((n_noise, B, L), generator), True
                )
                grads = torch.autograd.grad(value.sum(), leaves)
            for leaf, grad in zip(leaves, grads, strict=True):
                leaf.grad = -grad
            optimizer.step()
            scheduler.step()
        with torch.no_grad():
            fitted[covariance] = (mu0 + sd0 * shift.detach(), tril(log_scale.detach(), off.detach()))
    eps = _noise((eval_noise, B, L), generator)
    with torch.no_grad():
        amortized = elbo(mu0, torch.diag_embed(sd0), eps)
        optimal = torch.maximum(amortized, elbo(*fitted["diagonal"], eps))
        optimal_full = torch.maximum(optimal, elbo(*fitted["full"], eps))
        evidence = []
        for mean, scale_tril in ((mu0, torch.diag_embed(sd0)), fitted["full"]):
            proposal = MultivariateNormal(mean, scale_tril=scale_tril, validate_args=False)
            weights = []
            for size in [chunk] * (evidence_k // chunk) + (
                [evidence_k % chunk] if evidence_k % chunk else []
            ):
                z = mean + torch.einsum("sbj,bij->sbi", _noise((size, B, L), generator).double(), scale_tril)
                weights.append(joint(z) - proposal.log_prob(z))
            evidence.append(_logmeanexp(torch.cat(weights), 0))
        log_evidence = torch.maximum(*evidence)
    seconds = (time.perf_counter() - start) / B
    out = []
    for b in range(B):
        row = {
            "latent_dim": L,
            "log_evidence": float(log_evidence[b]),
            "evidence_method": f"iwae-{evidence_k}",
            "evidence_is_lower_bound": True,
            "elbo_amortized": float(amortized[b]),
            "elbo_optimal": float(optimal[b]),
            "elbo_optimal_full": float(optimal_full[b]),
            "seconds": seconds,
        }
        row["inference_gap"] = row["log_evidence"] - row["elbo_amortized"]
        row["approximation_gap"] = row["log_evidence"] - row["elbo_optimal"]
        row["amortization_gap"] = row["elbo_optimal"] - row["elbo_amortized"]
        row["approximation_gap_full"] = row["log_evidence"] - row["elbo_optimal_full"]
        out.append(row)
    return out


# --- over a test set ---------------------------------------------------------------------------------------
def test_set_gaps(
    model: LatentVariableModel,
    x: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    seed: int = 0,
    steps: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 25,
) -> dict[str, float | int | str | bool]:
    """Mean gaps over the images x [N, D] (labels [N] for a conditional model), nats per image.

    L = 2: :func:`gap_split` image by image (quadrature). L > 2: the same Monte Carlo estimators as
    :func:`gap_split`, ``batch_size`` images per decoder call (:func:`_gap_split_batch`).

    Returns:
        ``n``, ``latent_dim``, ``evidence_method``, ``evidence_is_lower_bound``, and for each of
        log_evidence, elbo_amortized, elbo_optimal, elbo_optimal_full, inference_gap, approximation_gap,
        amortization_gap, approximation_gap_full: its mean and its standard error (``<name>_stderr``), for
        the gaps also the median (``<name>_median``), and ``seconds_per_image``. The noise comes from a
        generator seeded with ``seed``.

    Raises:
        PosteriorError: see :func:`gap_split`.
    """
    generator = torch.Generator().manual_seed(seed)
    rows = []
    conditional = bool(getattr(model, "conditional", False))
    if conditional and labels is None:
        raise PosteriorError("this model is conditional: give the images' labels.")
    if len(x) == 0:
        raise PosteriorError("no images.")
    L = _amortized_q(model, *_one_image(model, x[0], labels[0] if conditional else None)).event_shape[0]
    if L > 2:  # no grid: the Monte Carlo estimators, batch_size images per decoder call
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            yb = labels[i : i + batch_size].long() if conditional else None
            rows += _gap_split_batch(model, xb, yb, generator=generator, steps=steps or 150)
            if progress is not None:
                progress(len(rows), len(x))
    for i in range(len(x) if L == 2 else 0):
        y = labels[i] if conditional else None
        rows.append(gap_split(model, x[i], y, generator=generator, steps=steps).as_dict())
        if progress is not None:
            progress(i + 1, len(x))
    keys = (
        "log_evidence",
        "elbo_amortized",
        "elbo_optimal",
        "elbo_optimal_full",
        "inference_gap",
        "approximation_gap",
        "amortization_gap",
        "approximation_gap_full",
    )
    out: dict[str, float | int | str | bool] = {
        "n": len(rows),
        "latent_dim": rows[0]["latent_dim"] if rows else 0,
        "evidence_method": rows[0]["evidence_method"] if rows else "",
        "evidence_is_lower_bound": bool(rows and rows[0]["evidence_is_lower_bound"]),
    }
    for key in keys:
        values = torch.tensor([r[key] for r in rows], dtype=torch.float64)
        out[key] = float(values.mean()) if len(values) else math.nan
        out[f"{key}_stderr"] = float(values.std() / math.sqrt(len(values))) if len(values) > 1 else math.nan
        if key.endswith("_gap"):  # heavy-tailed: a few images whose q_phi sits on a far worse mode
            out[f"{key}_median"] = float(values.median()) if len(values) else math.nan
    out["seconds_per_image"] = sum(r["seconds"] for r in rows) / max(1, len(rows))
    return out
