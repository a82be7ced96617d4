"""The inference gap split in two (Cremer, Li & Duvenaud 2018, "Inference Suboptimality in Variational
Autoencoders", ICML, section 3 and table 1): approximation gap = log p(x) - ELBO(q*), amortization gap =
ELBO(q*) - ELBO(q_phi), for one image (:func:`gap_split`) and over a test set (:func:`test_set_gaps`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch.distributions import MultivariateNormal

from explorer_core.inference.posterior.densities import (
    PosteriorError,
    _amortized_q,
    _gaussian,
    _noise,
    _one_image,
)
from explorer_core.inference.posterior.grid import GridPosterior, gaussian_elbo, grid_posterior
from explorer_core.inference.posterior.iwae import importance_log_weights, iwae_bound
from explorer_core.inference.posterior.qstar import (
    COVARIANCES,
    QStarState,
    WhitenedGaussian,
    _mc_elbo,
    optimal_gaussian,
)
from explorer_core.models.base import LatentVariableModel

#: the "q_phi sits on a worse mode" rule (:func:`phi_on_worse_mode`): the fit of q* from the posterior's top
#: mode must beat the fit from q_phi by more than this many nats ...
MODE_TOLERANCE_NATS = 0.5
#: ... and by more than this many standard errors of the difference of the two ELBOs (Monte Carlo ELBOs)
MODE_TOLERANCE_SES = 3.0
#: importance samples of the evidence estimate for L > 2 (Cremer et al. 2018 use k = 5000 too)
EVIDENCE_K = 5000
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
        """log p(x) - ELBO(q_phi) = KL(q_phi || p(z|x)), nats per image."""
        return self.log_evidence - self.elbo_amortized

    @property
    def approximation_gap(self) -> float:
        """log p(x) - ELBO(q\\*): what the best Gaussian of q_phi's family leaves open, nats."""
        return self.log_evidence - self.elbo_optimal

    @property
    def amortization_gap(self) -> float:
        """ELBO(q\\*) - ELBO(q_phi): what one encoder for all images costs, nats per image."""
        return self.elbo_optimal - self.elbo_amortized

    @property
    def approximation_gap_full(self) -> float:
        """log p(x) - ELBO(q\\*_full): the approximation gap of full-covariance Gaussians."""
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
        float(iwae_bound(importance_log_weights(model, x, y, evidence_k, generator=generator), 0)),
        float(
            iwae_bound(
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

    def joint(z: torch.Tensor) -> torch.Tensor:  # z [S, B, L] -> log p(x, z) [S, B]
        zz = z.to(x)
        y_s = None if y is None else y.expand(z.shape[0], B)
        return (model.decode(zz, y_s).log_prob(x) + prior.log_prob(zz)).double().cpu()

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
    identity = torch.eye(L, dtype=torch.float64).expand(B, L, L)
    for covariance in COVARIANCES:
        fit = WhitenedGaussian(mu0, sd0, identity, covariance, lr, steps)
        for _ in range(steps):
            with torch.enable_grad():
                value = elbo(*fit.gaussian(), _noise((n_noise, B, L), generator), True)
                fit.ascend(value.sum())
        with torch.no_grad():
            fitted[covariance] = fit.gaussian(fit.snapshot())
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
            evidence.append(iwae_bound(torch.cat(weights), 0))
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
