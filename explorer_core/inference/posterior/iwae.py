"""The IWAE bound (Burda, Grosse & Salakhutdinov 2016, eq. 8): the one estimator (:func:`iwae_bound`),
the importance weights of one image (:func:`importance_log_weights`), the bounds for several k with their
standard errors (:func:`iwae_bounds`) and how far a Monte Carlo mean may pass what it bounds
(:func:`bound_allowance`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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
from explorer_core.models.base import LatentVariableModel

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


def iwae_bound(log_w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """The importance-weighted bound log (1/k) sum_k w_k from the log-weights
    log w_k = log p(x, z_k) - log q(z_k|x) of k samples z_k ~ q(z|x) along ``dim`` (Burda et al. 2016, eq. 8):
    float64, nats per image, ``log_w``'s shape without ``dim`` (the log-weights [k, n] of n images give [n]).
    A lower bound on log p(x) that tightens as k grows (k = 1: the ELBO). The one IWAE estimator: the test
    metrics (:func:`explorer_core.evaluation.metrics.evaluate_vae`), Watch's curves, the bounds beside the
    posterior and the evidence of the gap split all take it."""
    return torch.logsumexp(log_w.double(), dim) - math.log(log_w.shape[dim])


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
        estimates = iwae_bound(log_weights[: reps * k].reshape(reps, k), 1)
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
