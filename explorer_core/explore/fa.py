"""A factor-analysis AEVB run that can be stepped phase by phase: the tutorial's experiments 1 and 2.

The FA page keeps one :class:`FAExperiment` per browser session; the ``fa`` CLI command runs one headless.
After every gradient step the experiment measures the test-set ELBO estimate, the exact evidence and the
exact gap (:func:`explorer_core.evaluation.evaluate_fa`) and appends them to its history.

What the page says about a phase is computed from what the phase did (:func:`last_phase_change`,
:func:`describe_phase_change`), never from what theory says a phase usually does: a change smaller than
:data:`PHASE_CHANGE_TOLERANCE` reads as none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from explorer_core.data import FADataset
from explorer_core.evaluation.metrics import FAMetrics, evaluate_fa
from explorer_core.inference.aevb import NonFiniteError, check_learning_rate, make_optimizers
from explorer_core.inference.fa_em import FAMaximumLikelihood, fit_fa_em
from explorer_core.inference.schedule import add_segment
from explorer_core.inference.stepper import PhasedStepper, SteppedExperiment
from explorer_core.models.factor_analysis import FAConfig, FactorAnalysis, fa_marginal

#: The tutorial's experiment 2: E 1000, M 1000, E 1000, M 1000 steps.
PAPER_EM_SCHEDULE: tuple[tuple[str, int], ...] = (
    ("e_step", 1000),
    ("m_step", 1000),
    ("e_step", 1000),
    ("m_step", 1000),
)
MAX_BATCH_SIZE = 10_000
MAX_ELBO_SAMPLES = 1000
#: K x test points of one measurement at most: the page's bound on a step's time and memory (the metrics
#: of a step grow with K x test points)
MAX_SAMPLE_POINTS = 200_000
#: model samples drawn for the 3-D view at most (whatever the test set's size)
MAX_VIEW_SAMPLES = 5_000
#: nats per test point: a change over a phase (or a difference between two evidences) smaller than this in
#: magnitude reads as "unchanged" ("level with") in the page's sentences. The metrics are float32 means of a
#: few nats over the test set (rounding about 1e-6); an E-phase leaves the evidence bit-identical.
PHASE_CHANGE_TOLERANCE = 1e-4


def elbo_samples_limit(n_test: int) -> int:
    """The largest K (reparameterised samples per test point) whose measurement stays within
    :data:`MAX_SAMPLE_POINTS` samples for ``n_test`` test points: 1..:data:`MAX_ELBO_SAMPLES`."""
    return int(max(1, min(MAX_ELBO_SAMPLES, MAX_SAMPLE_POINTS // max(1, int(n_test)))))


def clamp_int(value, lo: int, hi: int, default: int) -> int:
    """``value`` as a whole number in ``lo..hi`` (the nearest one); ``default`` when not a finite number.

    For values that arrive from a browser (a widget's state): never raises."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return int(default)
    if not np.isfinite(number):
        return int(default)
    return int(min(max(round(number), lo), hi))


@dataclass(frozen=True)
class FATrainingConfig:
    """Hyperparameters of an FA run (tutorial defaults: Adam 1e-2, batch 32, full covariance).

    Attributes:
        posterior: posterior family, one of ``"full"``, ``"diagonal"``, ``"fixed"``.
        lr: Adam learning rate of both optimizers, in (0, 10].
        batch_size: minibatch size, 1..10,000 (capped at the training-set size when drawing batches).
        n_elbo_samples: K, reparameterised samples per test point in the reported ELBO estimate.
        seed: seeds the initial parameters, the minibatch order and the reparameterisation noise.
    """

    posterior: str = "full"
    lr: float = 1e-2
    batch_size: int = 32
    n_elbo_samples: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_learning_rate(self.lr)
        if not 1 <= int(self.batch_size) <= MAX_BATCH_SIZE:
            raise ValueError(f"batch size must be between 1 and {MAX_BATCH_SIZE}, got {self.batch_size}.")
        if not 1 <= int(self.n_elbo_samples) <= MAX_ELBO_SAMPLES:
            raise ValueError(f"K must be between 1 and {MAX_ELBO_SAMPLES}, got {self.n_elbo_samples}.")
        FAConfig(posterior=self.posterior)  # validates the family name


@dataclass
class FAHistory:
    """Per-step test metrics. Index 0 is the initial model (phase ``"init"``); entry i > 0 follows step i."""

    phase: list[str] = field(default_factory=list)
    elbo: list[float] = field(default_factory=list)
    evidence: list[float] = field(default_factory=list)
    gap: list[float] = field(default_factory=list)

    def append(self, phase: str, metrics: FAMetrics) -> None:
        """Record the metrics measured after a step of ``phase``."""
        self.phase.append(phase)
        self.elbo.append(metrics.elbo)
        self.evidence.append(metrics.evidence)
        self.gap.append(metrics.gap)

    def __len__(self) -> int:
        return len(self.phase)

    def phase_segments(self) -> list[tuple[str, int, int]]:
        """Maximal runs of one phase as ``(phase, first_step, last_step)``, step numbers 1-based."""
        segments: list[list] = []
        for step, phase in enumerate(self.phase[1:], start=1):
            add_segment(segments, phase, step, step)
        return [(p, a, b) for p, a, b in segments]


def trend(delta: float, tolerance: float = PHASE_CHANGE_TOLERANCE) -> int:
    """The direction of a change ``delta`` (nats per point): +1 when it exceeds ``tolerance``, -1 when it is
    below ``-tolerance``, 0 otherwise (a change within the tolerance reads as none).

    Raises:
        ValueError: ``delta`` is not a finite number, or ``tolerance`` is negative or not finite.
    """
    delta, tolerance = float(delta), float(tolerance)
    if not (np.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"the tolerance must be a finite number >= 0, got {tolerance}.")
    if not np.isfinite(delta):
        raise ValueError(f"a change must be a finite number, got {delta}.")
    return 1 if delta > tolerance else -1 if delta < -tolerance else 0


def change_words(before: float, after: float, tolerance: float = PHASE_CHANGE_TOLERANCE) -> str:
    """How a quantity went from ``before`` to ``after`` (nats per point), in words that follow the measured
    change: ``"rose by 0.8376 (-6.6083 → -5.7707)"``, ``"fell by ..."``, or
    ``"stayed at -6.6083 (to within 0.0001)"`` (a change within ``tolerance``, see :func:`trend`; the
    tolerance is stated). Amounts are printed with 4 decimals.

    Raises:
        ValueError: a value that is not finite, or a negative tolerance (:func:`trend`).
    """
    delta = float(after) - float(before)
    direction = trend(delta, tolerance)
    if direction == 0:
        return f"stayed at {float(after):.4f} (to within {tolerance:g})"
    verb = "rose" if direction > 0 else "fell"
    return f"{verb} by {abs(delta):.4f} ({float(before):.4f} → {float(after):.4f})"


def relation_words(value: float, reference: float, tolerance: float = PHASE_CHANGE_TOLERANCE) -> str:
    """Where ``value`` lies against ``reference`` (both nats per point), by the same rule as :func:`trend`:
    ``"0.1234 below"``, ``"0.1234 above"`` or ``"level with"`` (within ``tolerance``).

    Raises:
        ValueError: a value that is not finite, or a negative tolerance.
    """
    delta = float(value) - float(reference)
    direction = trend(delta, tolerance)
    if direction == 0:
        return "level with"
    return f"{abs(delta):.4f} {'above' if direction > 0 else 'below'}"


@dataclass(frozen=True)
class PhaseChange:
    """What one phase did: the exact test metrics at the step it started from and after its last step.

    Attributes:
        phase: ``"e_step"``, ``"m_step"`` or ``"joint"``.
        first_step, last_step: the phase's steps, 1-based (it started from the model after
            ``first_step - 1`` steps).
        elbo, evidence, gap: ``(before, after)`` of the exact ELBO (evidence - gap), the exact evidence
            log p(x) and the exact gap KL(q(z|x) || p(z|x)), means over the test points in nats per point.
    """

    phase: str
    first_step: int
    last_step: int
    elbo: tuple[float, float]
    evidence: tuple[float, float]
    gap: tuple[float, float]

    @property
    def steps(self) -> int:
        """Steps in the phase."""
        return self.last_step - self.first_step + 1


def last_phase_change(history: FAHistory) -> PhaseChange | None:
    """The latest phase of ``history`` (its last maximal run of one phase, the one still running included)
    as a :class:`PhaseChange`; ``None`` before the first step. The ELBO is the exact one, evidence - gap
    (not the K-sample estimate, whose noise could reverse a small change)."""
    segments = history.phase_segments()
    if not segments:
        return None
    phase, first, last = segments[-1]
    ends = (first - 1, last)
    evidence = tuple(float(history.evidence[i]) for i in ends)
    gap = tuple(float(history.gap[i]) for i in ends)
    elbo = tuple(e - g for e, g in zip(evidence, gap, strict=True))
    return PhaseChange(phase, first, last, elbo, evidence, gap)


PHASE_NAMES = {"e_step": "E-step", "m_step": "M-step", "joint": "joint AEVB"}
PHASE_PARAMETERS = {
    "e_step": "φ trained, θ frozen",
    "m_step": "θ trained, φ frozen",
    "joint": "φ and θ trained together",
}
#: what a measured change of the gap means in each phase: (gap fell, gap unchanged, gap rose). An E-phase
#: holds θ, so p(z|x) stays and only q(z|x) moves; an M-phase holds φ, so q(z|x) = N(Vx, Σ) stays.
GAP_MEANING = {
    "e_step": (
        "With θ held still, q(z|x) moved towards the exact posterior p(z|x): the bound tightened",
        "With θ held still, q(z|x) ended as far from the exact posterior p(z|x) as it started",
        "With θ held still, q(z|x) moved away from the exact posterior p(z|x): the bound loosened",
    ),
    "m_step": (
        "With q(z|x) held still, θ moved the exact posterior p(z|x) towards it: the bound tightened",
        "With q(z|x) held still, the exact posterior p(z|x) ended as far from it as it started",
        "With q(z|x) held still, θ moved the exact posterior p(z|x) away from it: the bound loosened",
    ),
    "joint": (
        "q(z|x) and p(z|x) both moved and ended closer together: the bound tightened",
        "q(z|x) and p(z|x) both moved and ended as far apart as they started",
        "q(z|x) and p(z|x) both moved and ended further apart: the bound loosened",
    ),
}


def describe_phase_change(change: PhaseChange | None, tolerance: float = PHASE_CHANGE_TOLERANCE) -> str:
    """The page's sentence (Markdown) on what the latest phase did, from its measured changes only.

    The rule: each of the exact ELBO, the evidence log p(x) and the gap is said to have risen, fallen or
    stayed according to the sign of its change over the phase (after its last step minus before its first),
    a change within ``tolerance`` (default :data:`PHASE_CHANGE_TOLERANCE`, nats per point) counting as none
    (:func:`trend`, :func:`change_words`). What the change of the gap means follows from which parameters the
    phase held still (:data:`GAP_MEANING`); nothing is said that the numbers did not show (theory says an
    exact E-step closes the gap and an M-step raises the ELBO, but a gradient phase need not do either).

    Args:
        change: from :func:`last_phase_change`; ``None`` before the first step.
        tolerance: nats per point, finite and >= 0.

    Raises:
        ValueError: an unknown phase, a value that is not finite, or a bad tolerance.
    """
    if change is None:
        return "No step yet: θ and φ are random."
    if change.phase not in PHASE_NAMES:
        raise ValueError(f"unknown phase {change.phase!r}: expected one of {sorted(PHASE_NAMES)}.")
    d_gap = change.gap[1] - change.gap[0]
    span = (
        f"step {change.first_step}" if change.steps == 1 else f"steps {change.first_step}–{change.last_step}"
    )
    meaning = GAP_MEANING[change.phase][trend(d_gap, tolerance) + 1]
    return (
        f"Last phase: **{PHASE_NAMES[change.phase]}** × {change.steps} ({span}; "
        f"{PHASE_PARAMETERS[change.phase]}). Over it, in nats per point, the exact ELBO "
        f"{change_words(*change.elbo, tolerance)}, the evidence log p(x) "
        f"{change_words(*change.evidence, tolerance)} and the gap {change_words(*change.gap, tolerance)}. "
        f"{meaning}."
    )


class FAExperiment(SteppedExperiment):
    """A stepped AEVB run of factor analysis on a fixed data set.

    Args:
        dataset: from :func:`explorer_core.data.make_fa_dataset`.
        config: hyperparameters (validated on construction).
        mle: the maximum-likelihood fit of ``dataset.x_train`` if already known (else computed by EM).

    Raises:
        ValueError: invalid hyperparameters.
    """

    def __init__(
        self,
        dataset: FADataset,
        config: FATrainingConfig | None = None,
        mle: FAMaximumLikelihood | None = None,
    ):
        self.dataset = dataset
        self.config = config or FATrainingConfig()
        torch.manual_seed(self.config.seed)
        self.model = FactorAnalysis(FAConfig(posterior=self.config.posterior, seed=self.config.seed))
        self.optimizers = make_optimizers(self.model, self.config.lr)
        #: the model, its optimizers, the minibatch order and the queue of phases still to run
        self.stepper = PhasedStepper(
            self.model, self.optimizers, dataset.x_train, self.config.batch_size, self.config.seed
        )
        self.mle = mle if mle is not None else fit_fa_em(dataset.x_train)
        x_test64 = dataset.x_test.to(torch.float64)
        self.true_evidence = float(fa_marginal(dataset.true_W, dataset.true_sigma).log_prob(x_test64).mean())
        self.mle_evidence = float(self.mle.evidence(dataset.x_test).mean())
        self.history = FAHistory()
        self.history.append("init", self._measure())
        self.error: str | None = None
        self.seconds = 0.0

    # --- settings that apply from the next step on -----------------------------------------------------
    def update_config(self, **changes) -> None:
        """Change ``lr``, ``batch_size`` or ``n_elbo_samples`` for the following steps.

        Raises:
            ValueError: an invalid value, or a change of posterior family or seed (those need a new run).
        """
        if {"posterior", "seed"} & changes.keys():
            raise ValueError("The posterior family and the seed are fixed for a run: start a new one.")
        new = replace(self.config, **changes)
        if new.lr != self.config.lr:
            self.optimizers.set_learning_rate(new.lr)
        self.stepper.batch_size = new.batch_size
        self.config = new

    # --- stepping ----------------------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        """Gradient steps taken so far."""
        return len(self.history) - 1

    @property
    def latest(self) -> FAMetrics:
        """Metrics after the latest step (or of the initial model)."""
        return FAMetrics(
            self.history.elbo[-1], self.history.evidence[-1], self.history.gap[-1], float("nan"), float("nan")
        )

    def enqueue_schedule(self, schedule: tuple[tuple[str, int], ...] = PAPER_EM_SCHEDULE) -> None:
        """Queue a whole schedule of ``(phase, steps)`` segments (default: the tutorial's experiment 2)."""
        super().enqueue_schedule(schedule)

    def run_pending(self, max_steps: int, time_budget_s: float | None = None) -> int:
        """Run up to ``max_steps`` queued steps (and stop early once ``time_budget_s`` has passed).

        A NaN or inf stops the run: the queue is cleared, :attr:`error` says what happened, and the model
        keeps its last good state. Returns the number of steps run.
        """
        start = time.perf_counter()
        done = 0
        while self.pending and done < max_steps:
            phase, _ = self.pending.head()
            if not self._step(phase):
                self.pending.clear()
                break
            done += 1
            self.pending.take(1)
            if time_budget_s is not None and time.perf_counter() - start > time_budget_s:
                break
        self.seconds += time.perf_counter() - start
        return done

    def run(self, phase: str, n_steps: int) -> int:
        """Run ``n_steps`` steps of ``phase`` now (after anything already queued). Returns steps run."""
        self.enqueue(phase, n_steps)
        return self.run_pending(self.queued_steps)

    def _step(self, phase: str) -> bool:
        """One gradient step and its metrics; False (with :attr:`error` set) if it was not applied."""
        snapshot = self.stepper.snapshot()
        try:
            self.stepper.step(phase)
            metrics = self._measure()
            if not all(np.isfinite([metrics.elbo, metrics.evidence, metrics.gap])):
                raise NonFiniteError("The test metrics became NaN or inf after the step.")
        except (NonFiniteError, ValueError, RuntimeError) as err:
            self.stepper.restore(snapshot)
            self.error = (
                f"Stopped at step {self.steps + 1} ({phase}): {err} "
                f"The model was kept as it was after step {self.steps}."
            )
            return False
        self.history.append(phase, metrics)
        return True

    def _measure(self) -> FAMetrics:
        return evaluate_fa(self.model, self.dataset.x_test, self.config.n_elbo_samples)

    # --- views -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def model_samples(self, n: int = 1000, seed: int = 0) -> np.ndarray:
        """``n`` points from the current model (at most :data:`MAX_VIEW_SAMPLES`), [n, D], drawn with fixed
        noise so they move smoothly."""
        n = max(1, min(int(n), MAX_VIEW_SAMPLES))
        return self.model.sample(n, generator=torch.Generator().manual_seed(seed)).numpy()

    @torch.no_grad()
    def posteriors_of(self, index: int) -> dict[str, np.ndarray]:
        """q(z|x) and the exact p(z|x) for test point ``index``: means [L] and covariances [L, L].

        Raises:
            IndexError: no such test point.
        """
        if not 0 <= index < len(self.dataset.x_test):
            raise IndexError(f"test point {index} does not exist (0..{len(self.dataset.x_test) - 1}).")
        x = self.dataset.x_test[index : index + 1]
        q, p = self.model.encode(x), self.model.exact_posterior(x)
        return {
            "q_mean": q.mean[0].numpy(),
            "q_cov": q.covariance_matrix.expand(1, -1, -1)[0].numpy(),
            "p_mean": p.mean[0].numpy(),
            "p_cov": p.covariance_matrix.expand(1, -1, -1)[0].numpy(),
        }
