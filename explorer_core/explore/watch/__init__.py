"""Watch a VAE learn: a small VAE trained live, phase by phase, with the EM view made visible.

The tutorial's thesis (Yang 2022, arXiv 2208.07818, sections 3-4): AEVB is approximate EM. Maximising the
ELBO over the inference parameters phi is an approximate E-step (it closes the gap
KL(q(z|x) || p(z|x)) = log p(x) - ELBO, and log p(x) cannot move), over the generative parameters theta an
approximate M-step (it raises the bound with q fixed, and usually log p(x) with it). For a deep model log p(x)
is not tractable, so the page plots, in its place, the tightest lower bound on it we have, the IWAE bound
with k importance samples (Burda et al. 2016, eq. 8), and the difference IWAE - ELBO as an estimate of the
gap. The IWAE bound is a lower bound on log p(x), so the plotted gap is a lower estimate of the true one;
and since its proposal is q(z|x), the IWAE bound can rise a little in an E-phase even though log p(x) does not
move.

:class:`WatchExperiment` holds the model (a :class:`explorer_core.models.vae.VAE`), one Adam optimizer for
phi and one for theta, a training subset of MNIST, and a fixed validation subset with FIXED reparameterisation
noise for its evaluations, so the curves move only when the parameters move. Steps are taken by a
:class:`explorer_core.inference.stepper.PhasedStepper` (the FA page's stepper too: one
:func:`explorer_core.inference.aevb.aevb_step` per step, the step of every trainer of the explorer); its queue
of ``(phase, steps)`` segments is worked off either frame by frame (:meth:`WatchExperiment.frame`,
each frame ending with one evaluation, :class:`WatchFrame`) or by the
experiment's own background thread (:meth:`WatchExperiment.start`), whose parameters a caller collects and
evaluates whenever it draws (:meth:`WatchExperiment.collect`); the end of every phase is always evaluated.
No Streamlit here.

The package: :mod:`~explorer_core.explore.watch.config` (the run's configuration, its link, its data),
:mod:`~explorer_core.explore.watch.measurement` (what is measured and drawn of a frame) and
:mod:`~explorer_core.explore.watch.experiment` (the experiment that trains and measures). Its public names are
re-exported here.
"""

from explorer_core.explore.watch.config import (
    EM_SCHEDULE,
    IMAGE_SIDE,
    IWAE_KS,
    LIKELIHOODS,
    MAP_GIF_FRAMES,
    MAX_EVAL,
    MAX_HIDDEN,
    MAX_LATENT,
    MAX_MAP,
    MAX_TRAIN,
    QUERY_FIELDS,
    WatchConfig,
    WatchData,
    WatchError,
    config_from_query,
    config_query,
    load_watch_data,
)
from explorer_core.explore.watch.experiment import WatchExperiment
from explorer_core.explore.watch.measurement import (
    EVAL_CHUNK,
    WatchFrame,
    WatchHistory,
    WatchMetrics,
    map_plane,
    measure_vae,
    square_region,
)

__all__ = [
    "EM_SCHEDULE",
    "EVAL_CHUNK",
    "IMAGE_SIDE",
    "IWAE_KS",
    "LIKELIHOODS",
    "MAP_GIF_FRAMES",
    "MAX_EVAL",
    "MAX_HIDDEN",
    "MAX_LATENT",
    "MAX_MAP",
    "MAX_TRAIN",
    "QUERY_FIELDS",
    "WatchConfig",
    "WatchData",
    "WatchError",
    "WatchExperiment",
    "WatchFrame",
    "WatchHistory",
    "WatchMetrics",
    "config_from_query",
    "config_query",
    "load_watch_data",
    "map_plane",
    "measure_vae",
    "square_region",
]
