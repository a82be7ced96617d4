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
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer_core.data import load_mnist_splits, preprocess_for_evaluation
from explorer_core.evaluation.metrics import active_dimensions, iwae_bound
from explorer_core.explore.latent import fit_pca
from explorer_core.inference.aevb import (
    PHASES,
    AEVBOptimizers,
    NonFiniteError,
    check_learning_rate,
)
from explorer_core.inference.schedule import PhaseQueue
from explorer_core.inference.stepper import PhasedStepper, StepperSnapshot, segments_until
from explorer_core.models.configs import parse_widths
from explorer_core.models.vae import VAE, VAEConfig
from explorer_core.training.recipes import LIKELIHOOD_PREPROCESSINGS, TrainConfig
from explorer_core.url_state import read_query

#: the likelihoods a watched VAE can have; each trains on the first preprocessing its likelihood allows
LIKELIHOODS = tuple(LIKELIHOOD_PREPROCESSINGS)
#: The tutorial's experiment-2 pattern, scaled to a live demo: E, M, E, M x 250 steps.
EM_SCHEDULE: tuple[tuple[str, int], ...] = (
    ("e_step", 250),
    ("m_step", 250),
    ("e_step", 250),
    ("m_step", 250),
)
IWAE_KS = (1, 4, 16, 64, 256)
MAX_TRAIN = 60_000 - 10_000
MAX_EVAL = 2_000
MAX_MAP = 5_000
#: validation images per decoder pass of an evaluation (:meth:`WatchExperiment.measure`): the page gives way
#: to gestures between two (a pass of 25 images with k = 16 is about 6 ms here)
EVAL_CHUNK = 25
MAX_HIDDEN = 2048
MAX_LATENT = 64
IMAGE_SIDE = 28
#: the latest frames of the latent map kept for its GIF (:meth:`WatchExperiment.recent_maps`)
MAP_GIF_FRAMES = 60


class WatchError(ValueError):
    """A configuration the page cannot run (the message says what to change)."""


@dataclass(frozen=True)
class WatchConfig:
    """Everything that defines a live run. Validated on construction (:class:`WatchError` on nonsense).

    Attributes:
        latent_dim: L, 1..64.
        hidden: hidden widths of the encoder MLP (the decoder mirrors them), each 1..2048, 1 to 4 layers.
        likelihood: ``"bernoulli"`` (binarized MNIST) or ``"continuous_bernoulli"`` (dequantized MNIST).
        n_train: training images (the first n of MNIST's training split), 100..50,000.
        batch_size: minibatch size, 1..n_train.
        lr_inference, lr_generative: Adam learning rates of phi and theta, in (0, 10].
        iwae_k: importance samples per validation image in the IWAE bound, 1..1024.
        n_eval: validation images in the curves (the last 10,000 training images are the validation split).
        n_map: validation images drawn on the latent map (their posterior means).
        seed: seeds the initial parameters, the minibatch order, the training noise and the fixed
            evaluation noise.
    """

    latent_dim: int = 2
    hidden: tuple[int, ...] = (256, 256)
    likelihood: str = "bernoulli"
    n_train: int = 10_000
    batch_size: int = 100
    lr_inference: float = 1e-3
    lr_generative: float = 1e-3
    iwae_k: int = 16
    n_eval: int = 100
    n_map: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
            for name in ("latent_dim", "n_train", "batch_size", "iwae_k", "n_eval", "n_map", "seed"):
                value = getattr(self, name)
                if isinstance(value, float) and not value.is_integer():
                    raise WatchError(f"{name} must be a whole number, got {value}.")
                object.__setattr__(self, name, int(value))
            check_learning_rate(self.lr_inference)
            check_learning_rate(self.lr_generative)
        except (TypeError, ValueError) as err:
            raise WatchError(str(err)) from err
        checks = [
            (1 <= self.latent_dim <= MAX_LATENT, f"latent dimension L must be in 1..{MAX_LATENT}"),
            (
                1 <= len(self.hidden) <= 4 and all(1 <= h <= MAX_HIDDEN for h in self.hidden),
                f"hidden sizes must be 1 to 4 layers of 1..{MAX_HIDDEN} units",
            ),
            (self.likelihood in LIKELIHOODS, f"likelihood must be one of {LIKELIHOODS}"),
            (100 <= self.n_train <= MAX_TRAIN, f"training images must be in 100..{MAX_TRAIN:,}"),
            (1 <= self.batch_size <= self.n_train, "batch size must be between 1 and the training images"),
            (1 <= self.iwae_k <= 1024, "k (IWAE samples) must be in 1..1024"),
            (10 <= self.n_eval <= MAX_EVAL, f"validation images for the curves must be in 10..{MAX_EVAL:,}"),
            (10 <= self.n_map <= MAX_MAP, f"map points must be in 10..{MAX_MAP:,}"),
            (0 <= self.seed < 2**31, "seed must be in 0..2^31-1"),
        ]
        for ok, message in checks:
            if not ok:
                raise WatchError(f"{message}.")

    @property
    def preprocessing(self) -> str:
        """``binarized`` or ``dequantized``, matching the likelihood."""
        return LIKELIHOOD_PREPROCESSINGS[self.likelihood][0]

    def model_config(self) -> VAEConfig:
        """The :class:`VAEConfig` of the model (no dropout: the curves must be deterministic)."""
        return VAEConfig(
            latent_dim=self.latent_dim, hidden=self.hidden, dropout=0.0, likelihood=self.likelihood
        )


def _hidden_from_text(text: str) -> tuple[int, ...]:
    """A link's hidden widths: ``"256-256"`` -> (256, 256) (``models.configs.parse_widths``).

    Raises:
        ValueError: not whole numbers separated by ``-``, or a width below 1.
    """
    return parse_widths(text, separator="-")


#: a configuration in a link: query parameter -> (:class:`WatchConfig` field, parse of its text)
QUERY_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "L": ("latent_dim", int),
    "hidden": ("hidden", _hidden_from_text),
    "lik": ("likelihood", str),
    "n": ("n_train", int),
    "batch": ("batch_size", int),
    "seed": ("seed", int),
    "eval": ("n_eval", int),
    "map": ("n_map", int),
    "lr_phi": ("lr_inference", float),
    "lr_theta": ("lr_generative", float),
    "k": ("iwae_k", int),
}


def config_from_query(
    query: Mapping[str, str],
    base: WatchConfig | None = None,
    choices: Mapping[str, Sequence[Any]] | None = None,
) -> WatchConfig:
    """The configuration a link describes (:data:`QUERY_FIELDS`), from ``base`` (default
    :class:`WatchConfig`): each parameter is taken when its text parses, the configuration stays valid and
    the value is one of ``choices[field]`` (when the page offers only those); otherwise it is ignored. Never
    raises: a link's text is untrusted input (read by :func:`explorer_core.url_state.read_query`)."""
    config = base or WatchConfig()
    values = read_query(query, {name: parse for name, (_, parse) in QUERY_FIELDS.items()})
    for name, value in values.items():
        field_name = QUERY_FIELDS[name][0]
        if choices and field_name in choices and value not in choices[field_name]:
            continue
        try:
            config = replace(config, **{field_name: value})
        except (ValueError, TypeError, OverflowError):  # WatchError is a ValueError
            continue
    return config


def config_query(config: WatchConfig) -> dict[str, str]:
    """The query parameters of ``config`` (:data:`QUERY_FIELDS`), the inverse of :func:`config_from_query`."""
    out = {}
    for name, (field_name, _) in QUERY_FIELDS.items():
        value = getattr(config, field_name)
        out[name] = (
            "-".join(map(str, value))
            if field_name == "hidden"
            else f"{value:g}"
            if isinstance(value, float)
            else str(value)
        )
    return out


@dataclass(frozen=True)
class WatchData:
    """The images of a run, preprocessed once.

    Attributes:
        x_train: float32 [n_train, 784] in [0, 1]; the minibatches come from here.
        x_eval, y_eval: the fixed validation subset of the curves, [n_eval, 784] and int64 [n_eval].
        x_map, y_map: the validation images shown on the latent map, [n_map, 784] and [n_map].
        x_test: float32 [N_test, 784], the MNIST test set (used once, at export), or ``None``.
        checksums: md5 of the MNIST files read (provenance).
    """

    x_train: torch.Tensor
    x_eval: torch.Tensor
    y_eval: torch.Tensor
    x_map: torch.Tensor
    y_map: torch.Tensor
    x_test: torch.Tensor | None = None
    checksums: dict[str, str] = field(default_factory=dict)


def load_watch_data(config: WatchConfig, directory: str | Path | None = None) -> WatchData:
    """MNIST for ``config``: the first ``n_train`` training images, validation images from MNIST's last
    10,000 training images (the split the trainer holds out), and the test set for the export.

    Preprocessing is deterministic (:func:`explorer_core.data.preprocess_for_evaluation`): binarized at
    pixel >= 128 or dequantized once with a fixed seed.

    Raises:
        MNISTUnavailable: the MNIST files are missing or damaged.
    """
    splits = load_mnist_splits(n_validation=10_000, directory=directory)
    kind = config.preprocessing
    x_val = preprocess_for_evaluation(splits.x_val, kind)
    n_eval, n_map = config.n_eval, config.n_map
    return WatchData(
        x_train=preprocess_for_evaluation(splits.x_train[: config.n_train], kind),
        x_eval=x_val[:n_eval],
        y_eval=splits.y_val[:n_eval],
        # the map shows other validation images than the curves when there are enough of them
        x_map=x_val[-n_map:],
        y_map=splits.y_val[-n_map:],
        x_test=preprocess_for_evaluation(splits.x_test, kind),
        checksums=dict(splits.checksums),
    )


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


@dataclass
class _Handover:
    """Parameters the background thread copied for an evaluation: after ``step`` steps, the last of
    ``phase``; ``snapshot`` of the stepper then; the mean minibatch ELBO since the previous
    copy (``None`` when no step was taken); the phase runs up to ``step``."""

    step: int
    phase: str
    snapshot: StepperSnapshot
    train_elbo: float | None
    segments: list[list]


class WatchExperiment:
    """A VAE trained live, phase by phase, and measured on fixed validation images with fixed noise.

    Two ways to run the queued steps:

    * :meth:`frame` / :meth:`run` (synchronous): up to N steps of one phase, then one evaluation.
    * :meth:`start` (a background thread owned by this experiment, for the page's Play): the thread takes
      the queued steps one by one (or, with ``autoplay``, steps of that phase while the queue is empty) and
      hands a copy of the parameters to :meth:`collect` whenever it asks for one, and at the end of every
      phase. :meth:`collect` (the page's frame, in the calling thread) evaluates those copies, so the steps go
      on while a frame is measured and drawn: with one torch thread each, training and drawing use two cores.

    Thread safety: :attr:`lock` guards the live model, its optimizers, the queue and the phase record; the
    views (:meth:`measure`, :meth:`latent_means`, :meth:`decode_means`, :meth:`manifold`,
    :meth:`reconstructions`) read :attr:`view_model`, a copy that holds the parameters of :attr:`latest`
    and that only the caller's thread touches.

    Args:
        config: the run's :class:`WatchConfig`.
        data: preprocessed images (default: :func:`load_watch_data`), e.g. a small set for tests.
        device: where the model lives (default CPU).

    Raises:
        WatchError: an invalid configuration (also one that does not fit the data).
        MNISTUnavailable: no data given and the MNIST files are missing.
    """

    #: the background thread stops stepping when no frame was collected for this long (a closed tab)...
    AHEAD_S = 2.0
    #: ... and ends when none was collected for this long
    IDLE_S = 10.0

    def __init__(
        self,
        config: WatchConfig | None = None,
        data: WatchData | None = None,
        device: str | torch.device = "cpu",
    ):
        self.config = config or WatchConfig()
        self.device = torch.device(device)
        self.data = data if data is not None else load_watch_data(self.config)
        c = self.config
        if len(self.data.x_train) < c.batch_size:
            raise WatchError(f"batch size {c.batch_size} is larger than the {len(self.data.x_train)} images.")
        torch.manual_seed(c.seed)
        self.model = VAE(c.model_config()).to(self.device)
        self.model.train()
        self.view_model = VAE(c.model_config()).to(self.device)
        self.view_model.load_state_dict(self.model.state_dict())
        self.view_model.eval()
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        self.optimizers = AEVBOptimizers(
            inference=torch.optim.Adam(self.model.inference_parameters(), lr=c.lr_inference, **fused),
            generative=torch.optim.Adam(self.model.generative_parameters(), lr=c.lr_generative, **fused),
        )
        self._x_train = self.data.x_train.to(self.device)
        self._x_eval = self.data.x_eval.to(self.device)
        self._x_map = self.data.x_map.to(self.device)
        self._eval_eps = self._fixed_noise(c.iwae_k)
        #: the live model, its optimizers, the minibatch order, the queue and the phases run
        self.stepper = PhasedStepper(self.model, self.optimizers, self._x_train, c.batch_size, c.seed)
        self.history = WatchHistory(segments=self.stepper.segments)
        self.error: str | None = None
        self.seconds = 0.0
        self.created = time.time()
        self.lock = threading.RLock()
        self._train_elbos: list[float] = []  # minibatch ELBOs since the last hand-over
        # parameter copies the thread made, not yet evaluated; their own small lock, so that a frame never
        # waits for a training step to end
        self._handed: deque[_Handover] = deque()
        self._handed_lock = threading.Lock()
        self._handed_event = threading.Event()
        self._shown_segments: list[list] = []
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._want = threading.Event()
        self._last_collect = time.monotonic()
        self._want_at = 0  # asked for a hand-over once the live model has taken this many steps
        self.autoplay: str | None = None
        self.frame_obj: WatchFrame | None = None
        #: (step, map coordinates [n_map, 2] float32) of the latest frames, oldest first
        self._maps: deque[tuple[int, np.ndarray]] = deque(maxlen=MAP_GIF_FRAMES)
        self.frame_obj = self._evaluate("init", 0, 0.0)
        self.history.append(0, "init", self.frame_obj.metrics, None)
        self._keep_map(self.frame_obj)
        #: the live model and optimizers as of the last finite evaluation
        self._good: StepperSnapshot = self.stepper.snapshot()

    # --- configuration that may change during a run ---------------------------------------------------
    def _fixed_noise(self, k: int) -> torch.Tensor:
        """Standard-normal noise [k, n_eval, L] from a generator seeded by the run's seed (and k)."""
        g = torch.Generator().manual_seed(self.config.seed * 7919 + 104729 + k)
        return torch.randn(k, len(self.data.x_eval), self.config.latent_dim, generator=g).to(self.device)

    #: beta of the training objective reconstruction - beta * KL (1: the ELBO); the curves always show the
    #: true ELBO
    kl_weight: float = 1.0

    def set_kl_weight(self, beta: float) -> None:
        """Train on reconstruction - beta * KL from the next step on (Higgins et al. 2017's beta-VAE: beta > 1
        pushes latent dimensions to the prior, posterior collapse; a warm-up ramps beta from 0 to 1). The
        evaluations, and the ELBO the curves show, stay the true ELBO (beta = 1).

        Raises:
            WatchError: beta outside [0, 100].
        """
        if not (isinstance(beta, (int, float)) and 0.0 <= float(beta) <= 100.0):
            raise WatchError(f"beta (the KL weight) must be in [0, 100], got {beta!r}.")
        with self.lock:
            self.kl_weight = float(beta)

    def set_learning_rates(
        self, lr_inference: float | None = None, lr_generative: float | None = None
    ) -> None:
        """Change the Adam learning rates of phi and/or theta from the next step on (moments are kept).

        Raises:
            WatchError: a rate outside (0, 10].
        """
        changes = {}
        with self.lock:
            for name, value, opt in (
                ("lr_inference", lr_inference, self.optimizers.inference),
                ("lr_generative", lr_generative, self.optimizers.generative),
            ):
                if value is None:
                    continue
                try:
                    value = check_learning_rate(value)
                except ValueError as err:
                    raise WatchError(str(err)) from err
                for group in opt.param_groups:
                    group["lr"] = value
                changes[name] = value
            self.config = replace(self.config, **changes)

    def set_iwae_k(self, k: int) -> None:
        """Use k importance samples in the evaluations from now on (the curve shows the change of k as a
        step in the IWAE bound; the history records k per point) and re-measure the model shown.

        Raises:
            WatchError: k outside 1..1024.
        """
        new = replace(self.config, iwae_k=int(k)) if int(k) != self.config.iwae_k else self.config
        if new is self.config:
            return
        self.config = new
        self._eval_eps = self._fixed_noise(new.iwae_k)
        shown = self.latest
        self.frame_obj = self._evaluate(shown.phase, shown.step, 0.0)
        self.history.append(shown.step, shown.phase, self.frame_obj.metrics, None)

    # --- the queue ------------------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        """Gradient steps the live model has taken (the background thread may be ahead of :attr:`latest`)."""
        return self.stepper.steps

    @property
    def pending(self) -> PhaseQueue:
        """The queue of steps still to run."""
        return self.stepper.queue

    @property
    def last_phase(self) -> str:
        """The phase of the latest step shown (``init`` before any)."""
        return self.latest.phase

    @property
    def latest(self) -> WatchFrame:
        """The latest evaluation."""
        assert self.frame_obj is not None
        return self.frame_obj

    @property
    def queued_steps(self) -> int:
        """Steps waiting in the queue."""
        return self.pending.queued_steps

    def enqueue(self, phase: str, n_steps: int) -> None:
        """Queue ``n_steps`` steps of ``phase`` (``e_step``, ``m_step`` or ``joint``). Queued steps end free
        play (:attr:`autoplay`) in the same breath, so no free step can follow them before the caller's next
        :meth:`start`: the queue runs unmixed.

        Raises:
            WatchError: unknown phase or a step count outside 1..1,000,000 in all.
        """
        with self.lock:
            try:
                self.pending.enqueue(phase, n_steps)
            except ValueError as err:
                raise WatchError(str(err)) from err
            self.autoplay = None
            self.error = None

    def enqueue_schedule(self, schedule: tuple[tuple[str, int], ...] = EM_SCHEDULE) -> None:
        """Queue a whole schedule of ``(phase, steps)`` segments (all or nothing); it ends free play as
        :meth:`enqueue` does.

        Raises:
            WatchError: as :meth:`enqueue`.
        """
        with self.lock:
            try:
                self.pending.enqueue_schedule(schedule)
            except ValueError as err:
                raise WatchError(str(err)) from err
            self.autoplay = None
            self.error = None

    def clear_queue(self) -> None:
        """Drop every queued step."""
        with self.lock:
            self.pending.clear()

    def segments_shown(self) -> list[list]:
        """The phase runs ``[phase, first, last]`` up to the step of :attr:`latest` (copies)."""
        return [list(s) for s in self._shown_segments]

    # --- stepping -------------------------------------------------------------------------------------
    def _step_locked(self, phase: str) -> None:
        """One step of ``phase`` on the live model (the caller holds :attr:`lock`)."""
        self._train_elbos.append(self.stepper.step(phase, kl_weight=self.kl_weight))

    def _hand_over_locked(self, phase: str) -> None:
        """Copy the live parameters (and the optimizers, to go back to) for :meth:`collect`."""
        with self._handed_lock:
            last = self._handed[-1].step if self._handed else self.latest.step
        if last == self.stepper.steps:
            return
        elbo = float(np.mean(self._train_elbos)) if self._train_elbos else None
        self._train_elbos = []
        segments = segments_until(self.stepper.segments, self.stepper.steps)
        item = _Handover(self.stepper.steps, phase, self.stepper.snapshot(), elbo, segments)
        with self._handed_lock:
            self._handed.append(item)
        self._handed_event.set()

    def frame(self, max_steps: int, time_budget_s: float | None = None) -> WatchFrame | None:
        """Run up to ``max_steps`` queued steps of ONE phase (a frame never spans two phases, so every point
        of the curves belongs to one phase), then evaluate once. Not while the background thread runs.

        Stops early after ``time_budget_s`` seconds of steps. A NaN or inf stops the run: the queue is
        cleared, :attr:`error` says what happened, the model goes back to its state at the start of the
        frame, and ``None`` is returned. Also ``None`` when nothing is queued.

        Raises:
            WatchError: the background thread is running (see :meth:`start`).
        """
        if self.running:
            raise WatchError("the background thread is running: stop it first.")
        with self.lock:
            head = self.pending.head()
            if head is None or max_steps < 1:
                return None
            start = time.perf_counter()
            phase, available = head
            snapshot = self.stepper.snapshot()
            done = 0
            try:
                while done < min(int(max_steps), available):
                    self._step_locked(phase)
                    done += 1
                    if time_budget_s is not None and time.perf_counter() - start > time_budget_s:
                        break
            except (NonFiniteError, RuntimeError) as err:
                self._fail_locked(phase, err, snapshot)
                self.seconds += time.perf_counter() - start
                return None
            self.pending.take(done)
            self._hand_over_locked(phase)
        frame = self._evaluate_handed()
        if frame is not None:
            frame.seconds, frame.steps_run = time.perf_counter() - start, done
            self.seconds += frame.seconds
        return frame

    def run(self, phase: str, n_steps: int, steps_per_frame: int = 50) -> int:
        """Queue ``n_steps`` of ``phase`` and work off the whole queue now, evaluating every
        ``steps_per_frame`` steps. Returns the steps run."""
        self.enqueue(phase, n_steps)
        before = self.steps
        while self.pending and self.frame(steps_per_frame) is not None:
            pass
        return self.steps - before

    def _fail_locked(self, phase: str, err: Exception, snapshot: StepperSnapshot) -> None:
        """Go back to ``snapshot``, clear the queue and say what happened."""
        self.stepper.restore(snapshot)
        with self._handed_lock:
            self._handed.clear()
        self._train_elbos = []
        self.pending.clear()
        self.autoplay = None
        self.error = (
            f"Stopped in a {phase} frame after step {self.steps}: {err} The model was put back as it was "
            f"after step {self.steps}; try smaller learning rates."
        )

    # --- the background thread ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, autoplay: str | None = None) -> None:
        """Start the background thread (no-op when it runs): it works off the queue and, when ``autoplay``
        is a phase, takes steps of that phase while the queue is empty (they never enter the queue, so a
        schedule queued meanwhile runs unmixed). Without ``autoplay`` it ends when the queue is empty. It
        also stops stepping when no frame was collected for :attr:`AHEAD_S` and ends after :attr:`IDLE_S`.

        Raises:
            WatchError: ``autoplay`` is not a phase.
        """
        if autoplay is not None and autoplay not in PHASES:
            raise WatchError(f"phase must be one of {PHASES}, got {autoplay!r}.")
        with self.lock:
            self.autoplay = autoplay
            if self.running:
                return
            self.error = None
            self._halt.clear()
            self._last_collect = time.monotonic()
            self._thread = threading.Thread(target=self._loop, name="watch-learn", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the background thread and wait for it; the steps it took stay, and the parameters as they are
        now are handed over, so the next :meth:`collect` (even without the thread) shows them."""
        self._halt.set()
        self._want.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
        with self.lock:
            self.autoplay = None
            if (
                self.steps and self.error is None
            ):  # the steps since the last frame: the next collect shows them
                self._hand_over_locked(self.stepper.segments[-1][0])

    def _loop(self) -> None:
        try:
            while not self._halt.is_set():
                idle = time.monotonic() - self._last_collect
                if idle > self.IDLE_S:
                    break
                if idle > self.AHEAD_S:  # nobody looks: wait for a frame before stepping on
                    self._want.wait(0.25)
                    continue
                with self.lock:
                    head = self.pending.head()
                    phase = head[0] if head is not None else self.autoplay
                    if phase is None:
                        self._hand_over_locked(self.stepper.segments[-1][0] if self.steps else "init")
                        break
                    try:
                        self._step_locked(phase)
                    except (NonFiniteError, RuntimeError) as err:
                        self._fail_locked(phase, err, self._good)
                        break
                    if head is not None:
                        self.pending.take(1)
                    following = self.pending.head()
                    next_phase = following[0] if following is not None else self.autoplay
                    if next_phase != phase or (self._want.is_set() and self.steps >= self._want_at):
                        self._want.clear()
                        self._hand_over_locked(phase)
        finally:
            self._handed_event.set()  # wake a frame that waits

    def collect(
        self, timeout_s: float = 1.0, min_steps: int = 1, give_way: Callable[[], object] | None = None
    ) -> WatchFrame | None:
        """The page's frame while the thread runs: ask it for the parameters once it has taken ``min_steps``
        steps more than :attr:`latest` shows (or at the end of a phase, whichever comes first), wait up to
        ``timeout_s`` for them, evaluate every copy handed over (the one asked for, and one at the end of
        each phase) and return the newest frame; ``None`` when nothing new came (the thread is done, or
        slower than ``timeout_s``: the copy asked for then comes with a later call). ``give_way`` is
        called before each evaluation, after the wait, and between the evaluation's parts (the page's
        compute budget waits there while other pages answer gestures:
        :meth:`explorer_core.compute_budget.ComputeBudget.wait_for_gestures`).

        A NaN or inf in an evaluation stops the thread, puts the live model back to the last frame that was
        finite, clears the queue and sets :attr:`error`.
        """
        self._last_collect = time.monotonic()
        self._want_at = self.latest.step + max(1, int(min_steps))
        if self.running and not self._has_handed():
            self._handed_event.clear()
            self._want.set()
            if not self._has_handed():  # (handed over between the check and the clear: no wait)
                deadline = time.monotonic() + timeout_s
                while not self._has_handed() and self.running and time.monotonic() < deadline:
                    self._handed_event.wait(max(0.0, min(0.05, deadline - time.monotonic())))
        frame = None
        while True:
            if give_way is not None and self._has_handed():
                give_way()
            got = self._evaluate_handed(give_way)
            if got is None:
                break
            frame = got
        self._last_collect = time.monotonic()
        return frame

    def _has_handed(self) -> bool:
        with self._handed_lock:
            return bool(self._handed)

    def _evaluate_handed(self, give_way: Callable[[], object] | None = None) -> WatchFrame | None:
        """Evaluate the oldest parameter copy handed over (None when there is none); see :meth:`collect`."""
        with self._handed_lock:
            if not self._handed:
                return None
            item = self._handed.popleft()
        start = time.perf_counter()
        with torch.no_grad():
            for p, saved in zip(self.view_model.parameters(), item.snapshot.parameters, strict=True):
                p.copy_(saved)
        try:
            frame = self._evaluate(item.phase, item.step, 0.0, give_way)
            m = frame.metrics
            if not all(math.isfinite(v) for v in (m.elbo, m.iwae, m.reconstruction, m.kl)):
                raise NonFiniteError("the validation ELBO or IWAE bound became NaN or inf.")
        except (NonFiniteError, RuntimeError) as err:
            self._halt.set()
            with self.lock:
                self._fail_locked(item.phase, err, self._good)
            with torch.no_grad():
                for p, saved in zip(self.view_model.parameters(), self._good.parameters, strict=True):
                    p.copy_(saved)
            return None
        self._good = item.snapshot
        self._shown_segments = item.segments
        self.frame_obj = frame
        self._keep_map(frame)
        frame.seconds = time.perf_counter() - start
        self.history.append(item.step, item.phase, m, item.train_elbo)
        return frame

    # --- evaluation -----------------------------------------------------------------------------------
    @torch.no_grad()
    def measure(self, give_way: Callable[[], object] | None = None) -> WatchMetrics:
        """ELBO, IWAE bound, their gap, the two ELBO terms and the KL per dimension on the fixed validation
        subset, with the fixed noise eps [k, n_eval, L] (z_k = mu(x) + sigma(x) eps_k), so that the numbers
        change only when the parameters do. Means over images, nats per image.

        Both come from the model's :meth:`~explorer_core.models.vae.VAE.importance_terms` (one decoder pass
        per chunk of :data:`EVAL_CHUNK` images; every term is per image, so the chunks change nothing but
        the float rounding): the ELBO as in Kingma & Welling 2014, eq. 10 (closed-form KL, the mean over
        the k samples in the reconstruction term); the IWAE bound as in Burda et al. 2016, eq. 8. Active
        units as :func:`explorer_core.evaluation.metrics.active_dimensions`. ``give_way`` is called between
        two chunks (the page's compute budget waits there while other pages answer gestures).
        """
        k = self._eval_eps.shape[0]
        parts: list[tuple[torch.Tensor, ...]] = []
        for start in range(0, len(self._x_eval), EVAL_CHUNK):
            if parts and give_way is not None:
                give_way()
            rows = slice(start, start + EVAL_CHUNK)
            terms = self.view_model.importance_terms(self._x_eval[rows], k=k, eps=self._eval_eps[:, rows])
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

    @torch.no_grad()
    def latent_means(self) -> np.ndarray:
        """Posterior means mu(x) of the map images, [n_map, L] float32."""
        return self.view_model.encode(self._x_map).mean.float().cpu().numpy()

    def _evaluate(
        self, phase: str, step: int, seconds: float, give_way: Callable[[], object] | None = None
    ) -> WatchFrame:
        metrics = self.measure(give_way)
        if give_way is not None:
            give_way()
        mu = self.latent_means()
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
            previous = self.frame_obj
            if previous is not None and previous.coords.shape == coords.shape:
                r = _orthogonal_align(coords, previous.coords)
                coords, basis = coords @ r, (basis.T @ r).T
        return WatchFrame(
            step=step,
            phase=phase,
            metrics=metrics,
            coords=np.ascontiguousarray(coords, dtype=np.float32),
            centre=centre.astype(np.float32),
            basis=np.ascontiguousarray(basis, dtype=np.float32),
            explained=explained,
            seconds=seconds,
        )

    def _keep_map(self, frame: WatchFrame) -> None:
        """Keep ``frame``'s map for the GIF (a re-measure of the same step replaces its map)."""
        if self._maps and self._maps[-1][0] == frame.step:
            self._maps.pop()
        self._maps.append((frame.step, frame.coords))

    def recent_maps(self) -> list[tuple[int, np.ndarray]]:
        """The latent map of the latest :data:`MAP_GIF_FRAMES` frames: ``(step, coordinates [n_map, 2])``,
        oldest first (each frame's own plane; for L > 2 aligned to the previous frame's)."""
        return list(self._maps)

    @property
    def map_labels(self) -> np.ndarray:
        """The digit of each map image, int64 [n_map]."""
        return self.data.y_map.cpu().numpy()

    # --- views ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def decode_means(self, z: np.ndarray) -> np.ndarray:
        """Decoded images E[x|z] for latents [n, L], as [n, 28, 28] floats in [0, 1]."""
        zt = torch.as_tensor(np.atleast_2d(z), dtype=torch.float32, device=self.device)
        images = self.view_model.decode(zt).mean
        return images.clamp(0, 1).reshape(-1, IMAGE_SIDE, IMAGE_SIDE).float().cpu().numpy()

    def manifold(self, region: tuple[tuple[float, float], tuple[float, float]], n: int = 12) -> np.ndarray:
        """Decodings over an n x n grid of the map region (v grows upwards), tiled, [n*28, n*28]."""
        u = np.linspace(*region[0], n)
        v = np.linspace(*region[1], n)[::-1]
        uv = np.stack(np.meshgrid(u, v), -1).reshape(-1, 2)
        images = self.decode_means(self.latest.plane_to_z(uv))
        return images.reshape(n, n, IMAGE_SIDE, IMAGE_SIDE).transpose(0, 2, 1, 3).reshape(n * IMAGE_SIDE, -1)

    @torch.no_grad()
    def reconstructions(self, n: int = 8) -> np.ndarray:
        """The first n curve images (top row) over their reconstructions E[x|z = mu(x)] (bottom row),
        [2*28, n*28] in [0, 1]."""
        n = min(n, len(self._x_eval))
        x = self._x_eval[:n]
        recon = self.view_model.decode(self.view_model.encode(x).mean).mean.clamp(0, 1)
        rows = torch.stack([x, recon]).reshape(2, n, IMAGE_SIDE, IMAGE_SIDE).float().cpu().numpy()
        return rows.transpose(0, 2, 1, 3).reshape(2 * IMAGE_SIDE, n * IMAGE_SIDE)

    def map_region(
        self, previous: tuple[tuple[float, float], tuple[float, float]] | None = None
    ) -> tuple[tuple[float, float], tuple[float, float]]:
        """A square region around the map points (99 % of them, 20 % margin, at least [-1, 1]), which only
        grows while the map spreads (from ``previous``), so the view does not jitter from frame to frame."""
        c = self.latest.coords
        lo, hi = np.quantile(c, 0.005, axis=0), np.quantile(c, 0.995, axis=0)
        half = max(float(np.max(np.abs(np.r_[lo, hi]))) * 1.2, 1.0)
        if previous is not None:
            prev_half = max(abs(previous[0][0]), abs(previous[0][1]))
            # shrink slowly (5 % per frame), grow at once
            half = max(half, 0.95 * prev_half) if half < prev_half else half
        half = float(np.ceil(half * 10) / 10)
        return (-half, half), (-half, half)

    # --- export ---------------------------------------------------------------------------------------
    def recipe(self) -> TrainConfig:
        """The run as a :class:`explorer_core.training.recipes.TrainConfig` (what a run's ``config.json``
        and a model's ``recipe`` hold): the architecture, the data, and theta's learning rate as ``lr``."""

        c = self.config
        return TrainConfig(
            family="vae",
            latent_dim=c.latent_dim,
            hidden=c.hidden,
            dropout=0.0,
            likelihood=c.likelihood,
            preprocessing=c.preprocessing,
            epochs=max(1, math.ceil(self.steps * c.batch_size / max(len(self.data.x_train), 1))),
            batch_size=c.batch_size,
            lr=c.lr_generative,
            tsne_points=0,
            seed=c.seed,
        )

    @torch.no_grad()
    def export(self, root: str | Path, name: str | None = None) -> Path:
        """Save the model as a finished run under ``root`` (normally :func:`explorer_core.jobs.runs_root`),
        so that it appears in the VAE page's model picker: ``root/<id>/<id>.safetensors`` + ``<id>.json``
        (written by :func:`explorer_core.artifacts.save_model`), ``status.json`` (state ``done``),
        ``config.json`` and ``metrics.jsonl`` (one ``step`` row per evaluation). The JSON records the test-set
        ELBO (single-sample estimate, nats per image) of the 10,000 MNIST test images when they are loaded.

        Returns the model's JSON path.

        Raises:
            WatchError: no step taken yet.
            OSError: the folder cannot be written.
        """
        with self.lock:
            return self._export_locked(root, name)

    def _export_locked(self, root: str | Path, name: str | None) -> Path:
        from explorer_core.artifacts import model_meta, save_model
        from explorer_core.evaluation.metrics import evaluate_vae
        from explorer_core.jobs.store import create_run, publish_run, write_metrics

        if self.steps == 0:
            raise WatchError("Take a few steps first: an untrained model is not worth saving.")
        run_id = name or f"watch-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        recipe = self.recipe()
        run_dir = create_run(
            Path(root), run_id, recipe, {"label": "VAE (Watch it learn)", "preset": "watch it learn"}
        )
        self.model.eval()
        try:
            test_metrics = {}
            if self.data.x_test is not None:
                test_metrics = evaluate_vae(self.model, self.data.x_test.to(self.device), seed=0)
        finally:
            self.model.train()
        m = self.latest.metrics
        phases = [{"phase": p, "first_step": a, "last_step": b} for p, a, b in self.history.segments]
        meta = model_meta(
            recipe.to_dict(),
            self.config.preprocessing,
            {
                "stopped": f"exported from the Watch it learn page after {self.steps:,} live steps",
                "wall_seconds": round(self.seconds, 2),
                "device": str(self.device),
                "torch": torch.__version__,
                "n_train": len(self.data.x_train),
                "n_validation": 10_000,
            },
            self.data.checksums,
            test_metrics,
            "nats per image",
            selection="the model as it was when exported (no model selection)",
            # kept in the file for the record (the app's schema reads only the fields above)
            watch={
                "steps": self.steps,
                "phases": phases[-200:],
                "lr_inference": self.config.lr_inference,
                "lr_generative": self.config.lr_generative,
                "validation": {
                    "elbo": m.elbo,
                    "iwae_bound": m.iwae,
                    "iwae_k": m.k,
                    "gap_estimate": m.gap,
                    "n_images": len(self.data.x_eval),
                },
            },
        )
        path = save_model(self.model, "vae", run_dir, run_id, meta)
        rows = [
            {
                "kind": "step",
                "epoch": 1,
                "step": step,
                "total_steps": max(self.steps, 1),
                "train_elbo": elbo if train is None else train,
                "val_elbo": elbo,
                "iwae_bound": iwae,
            }
            for step, elbo, iwae, train in zip(
                self.history.step, self.history.elbo, self.history.iwae, self.history.train_elbo, strict=True
            )
        ]
        write_metrics(run_dir, rows)
        message = f"exported from the Watch it learn page after {self.steps:,} steps"
        publish_run(
            run_dir,
            "done",
            path,
            test_metrics.get("elbo"),
            message,
            created=self.created,
            started=self.created,
            device=str(self.device),
        )
        return path
