"""Watch it learn within the server's budget (issue 23): the memory a configuration needs, estimated before
it is accepted, and a live run whose training thread keeps to its slot's step rate.

The estimate reuses the Training page's pieces (:mod:`explorer_core.jobs.memory`: the parameter count on
PyTorch's ``meta`` device and the family registry's activations per example) and adds what only a live run
holds: the IWAE evaluation of ``n_eval`` validation images with ``k`` samples each (``k x n_eval`` decoder
passes at once, without gradients: at its peak two neighbouring layers' values, and the pixel-wise logits,
log-probabilities and the broadcast images) and the fixed evaluation noise. A unit test checks the
estimate against the memory the hostile-class probe measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache

from explorer_core.device import available_memory
from explorer_core.explore.watch import WatchConfig, WatchExperiment
from explorer_core.families import PIXELS, model_family
from explorer_core.jobs.memory import MEMORY_FRACTION, MemoryEstimate, count_parameters
from explorer_core.training.recipes import TrainConfig

#: copies of the parameters a live run holds: the live model, its gradients, Adam's two moments, the view
#: model, and the last good snapshot (parameters and moments)
PARAMETER_COPIES = 8
#: MNIST test images, read once at export
TEST_IMAGES = 10_000


def _train_config(config: WatchConfig) -> TrainConfig:
    return TrainConfig(
        family="vae",
        latent_dim=config.latent_dim,
        hidden=tuple(config.hidden),
        dropout=0.0,
        likelihood=config.likelihood,
        preprocessing=config.preprocessing,
        batch_size=config.batch_size,
        n_samples=1,
    )


@lru_cache(maxsize=256)  # a frame of Play asks for it (the parameter count builds the model on "meta")
def watch_memory(config: WatchConfig) -> MemoryEstimate:
    """A rough upper estimate, in bytes, of what a live run of ``config`` holds at once (see the module
    docstring): parameters (:data:`PARAMETER_COPIES` float32 copies), activations (a training minibatch's
    values and gradients, plus one evaluation's forward values for ``iwae_k x n_eval`` samples) and data
    (the training, validation, map and test images as float32, and the noise [k, n_eval, L])."""
    train = _train_config(config)
    params = count_parameters(train)
    per_example = model_family("vae").activations_per_example(train)
    widths = [config.latent_dim, *config.hidden]
    per_sample = 2 * max(widths) + 3 * PIXELS  # one evaluation sample's floats at the decoder's peak
    activations = 2 * 4 * per_example * config.batch_size + 4 * per_sample * config.iwae_k * config.n_eval
    images = config.n_train + config.n_eval + config.n_map + TEST_IMAGES
    data = 4 * images * PIXELS + 4 * config.iwae_k * config.n_eval * config.latent_dim
    return MemoryEstimate(params, PARAMETER_COPIES * 4 * params, activations, data)


def memory_refusal(config: WatchConfig, limit_bytes: int, device: str = "cpu") -> str | None:
    """Why ``config`` cannot run in a visitor's session, in one sentence; ``None`` when it fits: its estimate
    (:func:`watch_memory`) must be at most ``limit_bytes`` (the per-session limit of the compute budget)
    and at most :data:`explorer_core.jobs.memory.MEMORY_FRACTION` of what ``device`` has free."""
    need = watch_memory(config).total_bytes
    free = available_memory(device)
    cap = limit_bytes if free is None else min(limit_bytes, int(MEMORY_FRACTION * free))
    if need <= cap:
        return None
    return (
        f"this configuration needs about {need / 2**20:,.0f} MB (k = {config.iwae_k} IWAE samples × "
        f"{config.n_eval:,} validation images are evaluated at once), more than the {cap / 2**20:,.0f} MB a "
        "session may use here: lower k, the validation images or the hidden widths."
    )


def with_iwae_k(config: WatchConfig, k: int) -> WatchConfig:
    """``config`` with ``k`` IWAE samples (to estimate a change of k before it is made)."""
    return replace(config, iwae_k=int(k))


class PacedWatchExperiment(WatchExperiment):
    """A :class:`WatchExperiment` whose training thread asks :attr:`pacer` before each step.

    ``pacer()`` (e.g. ``ComputeBudget.pace`` of this session's slot) waits until the step may be taken and
    returns True, or returns False when the slot is gone (reclaimed or released): the thread then stops after
    that step. ``None``: not paced (the operator's session, or outside class mode). Everything else is the
    parent's (same arguments and errors).
    """

    pacer: Callable[[], bool] | None = None

    def _step_locked(self, phase: str) -> None:
        pacer = self.pacer
        if pacer is not None and not pacer():
            self._halt.set()  # the slot is gone: this is the last step
        super()._step_locked(phase)
