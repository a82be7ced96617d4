"""The true posterior p(z|x) beside the amortized q(z|x), and the inference gap split in two: one module per
concept (:mod:`.grid`, :mod:`.iwae`, :mod:`.qstar`, :mod:`.gaps`, their shared inputs in :mod:`.densities`);
this package gathers their public names, so ``from explorer_core.inference.posterior import gap_split`` works.

The tutorial's AEVB is approximate EM: the E-step fits q(z|x) to p(z|x), and what it leaves open is the gap
log p(x) - ELBO(q) = KL(q(z|x) || p(z|x)). For a Gaussian-latent model (the VAE and the CVAE of
:mod:`explorer_core.models.vae`, or any model whose ``encode`` gives a Gaussian q(z|x)) this module computes

* for a **2-dimensional latent**, the posterior itself, on a grid (:func:`grid_posterior`, :mod:`.grid`):
  the unnormalised log posterior log p(x|z) + log p(z) (the CVAE: log p(x|z, y) + log p(z|y) under the
  image's label) on a window found from q(z|x) and refined until it holds the posterior's mass, normalised
  by quadrature. That gives the evidence log p(x), the posterior's mean and covariance, and, for any
  Gaussian q, its ELBO and KL(q || p(z|x)) = log p(x) - ELBO(q) with no Monte Carlo noise;
* the **IWAE bound** for several k (:func:`iwae_bounds`, :mod:`.iwae`, with the one estimator
  :func:`iwae_bound`; Burda, Grosse & Salakhutdinov 2016, eq. 8), each the mean of independent repeats with
  its standard error, judged against log p(x) by :func:`bound_allowance`;
* the **optimal Gaussian q\\*(z|x)** for one image (:func:`fit_optimal_gaussian`, :mod:`.qstar`): a
  diagonal or a full-covariance Gaussian fitted by gradient ascent on this image's ELBO, started from
  q_phi's output (a per-image E-step), as an iterator of intermediate states that a page can animate; its
  parameters (:class:`WhitenedGaussian`) are those of the batched fit of :func:`test_set_gaps` too;
* the **split of the gap** (:func:`gap_split`, :mod:`.gaps`; Cremer, Li & Duvenaud 2018, "Inference
  Suboptimality in Variational Autoencoders", ICML, section 3 and table 1): approximation gap =
  log p(x) - ELBO(q\\*), amortization gap = ELBO(q\\*) - ELBO(q_phi), where q\\* is the best q in q_phi's own
  family (diagonal Gaussians); the full-covariance q\\* says how much of the approximation gap is the
  diagonal assumption. For L > 2 there is no grid: log p(x) is estimated by IWAE with k = 5000, a
  stochastic **lower bound** (:attr:`GapSplit.evidence_is_lower_bound`), which pulls the approximation gap
  down, while a q\\* fit that stops short of the optimum pushes it up: for L > 2 the split is an estimate,
  not a bound;
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

from explorer_core.inference.posterior.densities import PosteriorError, check_model, log_joint
from explorer_core.inference.posterior.gaps import (
    CONTINUATION_STEPS,
    EVIDENCE_K,
    FIT_GAIN_NATS,
    GRID_FIT_STEPS,
    MAX_CONTINUATIONS,
    MODE_TOLERANCE_NATS,
    MODE_TOLERANCE_SES,
    GapSplit,
    gap_split,
    phi_on_worse_mode,
    test_set_gaps,
    worse_mode_tolerance,
)
from explorer_core.inference.posterior.grid import (
    COARSE_RESOLUTION,
    DEFAULT_RESOLUTION,
    EVIDENCE_TOLERANCE,
    MAX_REFINEMENTS,
    PRIOR_SCAN_SDS,
    Q_HALF_WIDTH,
    Q_NODES,
    SCAN_RESOLUTION,
    SKIP_MARGIN,
    TAIL_NATS,
    GridPosterior,
    ellipse,
    gaussian_elbo,
    grid_posterior,
)
from explorer_core.inference.posterior.iwae import (
    FLOAT32_RELATIVE,
    IWAE_KS,
    IWAE_REPEATS,
    MC_ERROR_SES,
    IWAEBound,
    bound_allowance,
    importance_log_weights,
    iwae_bound,
    iwae_bounds,
)
from explorer_core.inference.posterior.qstar import (
    COVARIANCES,
    QStarState,
    WhitenedGaussian,
    fit_optimal_gaussian,
    optimal_gaussian,
)

__all__ = [
    "COARSE_RESOLUTION",
    "CONTINUATION_STEPS",
    "COVARIANCES",
    "DEFAULT_RESOLUTION",
    "EVIDENCE_K",
    "EVIDENCE_TOLERANCE",
    "FIT_GAIN_NATS",
    "FLOAT32_RELATIVE",
    "GRID_FIT_STEPS",
    "IWAE_KS",
    "IWAE_REPEATS",
    "MAX_CONTINUATIONS",
    "MAX_REFINEMENTS",
    "MC_ERROR_SES",
    "MODE_TOLERANCE_NATS",
    "MODE_TOLERANCE_SES",
    "PRIOR_SCAN_SDS",
    "Q_HALF_WIDTH",
    "Q_NODES",
    "SCAN_RESOLUTION",
    "SKIP_MARGIN",
    "TAIL_NATS",
    "GapSplit",
    "GridPosterior",
    "IWAEBound",
    "PosteriorError",
    "QStarState",
    "WhitenedGaussian",
    "bound_allowance",
    "check_model",
    "ellipse",
    "fit_optimal_gaussian",
    "gap_split",
    "gaussian_elbo",
    "grid_posterior",
    "importance_log_weights",
    "iwae_bound",
    "iwae_bounds",
    "log_joint",
    "optimal_gaussian",
    "phi_on_worse_mode",
    "test_set_gaps",
    "worse_mode_tolerance",
]
