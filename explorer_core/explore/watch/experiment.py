"""Watch it learn's experiment: :class:`WatchExperiment`, a VAE trained live phase by phase (frame by frame or
in its own thread) and measured on fixed validation images with fixed noise
(:mod:`explorer_core.explore.watch.measurement`). No Streamlit here.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from explorer_core.explore.latent import manifold_points
from explorer_core.explore.watch.config import (
    EM_SCHEDULE,
    IMAGE_SIDE,
    MAP_GIF_FRAMES,
    WatchConfig,
    WatchData,
    WatchError,
    load_watch_data,
)
from explorer_core.explore.watch.measurement import (
    WatchFrame,
    WatchHistory,
    WatchMetrics,
    map_plane,
    measure_vae,
    square_region,
)
from explorer_core.imaging import tile
from explorer_core.inference.aevb import (
    PHASES,
    AEVBOptimizers,
    NonFiniteError,
    check_learning_rate,
)
from explorer_core.inference.stepper import (
    PhasedStepper,
    SteppedExperiment,
    StepperSnapshot,
    segments_until,
)
from explorer_core.models.vae import VAE
from explorer_core.training.recipes import TrainConfig


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


class WatchExperiment(SteppedExperiment):
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
    def last_phase(self) -> str:
        """The phase of the latest step shown (``init`` before any)."""
        return self.latest.phase

    @property
    def latest(self) -> WatchFrame:
        """The latest evaluation."""
        assert self.frame_obj is not None
        return self.frame_obj

    queue_error = WatchError

    def _queue_guard(self) -> threading.Lock:
        """The queue changes under :attr:`lock` (the background thread takes from it)."""
        return self.lock

    def _queued(self) -> None:
        """Queued steps end free play (:attr:`autoplay`) in the same breath, so no free step can follow them
        before the caller's next :meth:`start`: the queue runs unmixed."""
        self.autoplay = None

    def enqueue_schedule(self, schedule: tuple[tuple[str, int], ...] = EM_SCHEDULE) -> None:
        """Queue a whole schedule of ``(phase, steps)`` segments (default: the page's E/M schedule), all or
        nothing; it ends free play as :meth:`enqueue` does.

        Raises:
            WatchError: unknown phase or a step count outside the queue's room.
        """
        super().enqueue_schedule(schedule)

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
    def measure(self, give_way: Callable[[], object] | None = None) -> WatchMetrics:
        """The validation numbers of :attr:`view_model` with the run's fixed noise (:func:`measure_vae`);
        ``give_way`` is called between two chunks of images."""
        return measure_vae(self.view_model, self._x_eval, self._eval_eps, give_way)

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
        previous = None if self.frame_obj is None else self.frame_obj.coords
        coords, centre, basis, explained = map_plane(self.latent_means(), previous)
        return WatchFrame(
            step=step,
            phase=phase,
            metrics=metrics,
            coords=coords,
            centre=centre,
            basis=basis,
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
        uv = manifold_points(region[0], region[1], n)  # (the VAE page's manifold grid)
        return tile(self.decode_means(self.latest.plane_to_z(uv)), n, pad=0)

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
        """:func:`square_region` of the latest frame's map points (growing from ``previous``)."""
        return square_region(self.latest.coords, previous)

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
