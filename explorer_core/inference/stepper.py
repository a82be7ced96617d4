"""One phased AEVB stepper for the stepped experiments (factor analysis, "Watch it learn").

The tutorial's EM view of AEVB (Yang 2022, arXiv 2208.07818, sections 3-4) alternates approximate E-steps
(phi only) and M-steps (theta only). A :class:`PhasedStepper` owns what both experiments step: the model,
its two optimizers (:class:`explorer_core.inference.aevb.AEVBOptimizers`), a seeded minibatch order over the
training data, the queue of phases still to run (:class:`explorer_core.inference.schedule.PhaseQueue`) and
the record of the phases already run (``[phase, first_step, last_step]`` runs). One step is one
:func:`explorer_core.inference.aevb.aevb_step`, the step of every trainer of the explorer. What an
experiment measures after its steps, and when, is the experiment's own (the FA page measures after every
step, the Watch page after a frame of them). No Streamlit here; not thread-safe on its own (its owner
guards it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from explorer_core.inference.aevb import AEVBOptimizers, Snapshot, aevb_step
from explorer_core.inference.schedule import MAX_QUEUED_STEPS, PhaseQueue, add_segment


@dataclass(frozen=True)
class StepperSnapshot:
    """What :meth:`PhasedStepper.restore` brings back: ``steps`` taken, copies of the model's parameters
    (``parameters``, in ``model.parameters()`` order) and of both optimizers' states."""

    steps: int
    state: Snapshot

    @property
    def parameters(self) -> list[torch.Tensor]:
        """The parameter copies, in ``model.parameters()`` order."""
        return self.state[0]


class PhasedStepper:
    """A model stepped phase by phase (``joint``, ``e_step``, ``m_step``) from a queue of phases.

    Args:
        model: any :class:`explorer_core.models.base.LatentVariableModel`.
        optimizers: its inference and generative optimizers.
        x_train: the training data [n, ...] on the model's device.
        batch_size: minibatch size (capped at ``n``); may be changed between steps.
        seed: seeds the minibatch order (a generator seeded with ``seed + 1``).
        max_queued_steps: the most steps the queue may hold at once.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizers: AEVBOptimizers,
        x_train: torch.Tensor,
        batch_size: int,
        seed: int,
        max_queued_steps: int = MAX_QUEUED_STEPS,
    ):
        self.model = model
        self.optimizers = optimizers
        self.x_train = x_train
        self.batch_size = int(batch_size)
        self.queue = PhaseQueue(max_queued_steps)
        #: gradient steps taken
        self.steps = 0
        #: maximal runs of one phase among the steps taken, ``[phase, first_step, last_step]`` (1-based)
        self.segments: list[list] = []
        self._generator = torch.Generator().manual_seed(int(seed) + 1)
        self._order = torch.empty(0, dtype=torch.long)
        self._cursor = 0

    # --- the queue ------------------------------------------------------------------------------------
    def enqueue(self, phase: str, n_steps: int) -> None:
        """Queue ``n_steps`` steps of ``phase``.

        Raises:
            ValueError: unknown phase, or a step count outside 1..(the queue's room).
        """
        self.queue.enqueue(phase, n_steps)

    def enqueue_schedule(self, schedule: Iterable[tuple[str, int]]) -> None:
        """Queue a whole schedule of ``(phase, steps)`` segments, all or nothing.

        Raises:
            ValueError: as :meth:`enqueue`, for any segment (the queue is then unchanged).
        """
        self.queue.enqueue_schedule(schedule)

    @property
    def queued_steps(self) -> int:
        """Steps waiting in the queue."""
        return self.queue.queued_steps

    @property
    def queue_room(self) -> int:
        """Steps the queue can still take (0 when it is full)."""
        return max(0, self.queue.max_steps - self.queue.queued_steps)

    # --- stepping -------------------------------------------------------------------------------------
    def next_batch(self) -> torch.Tensor:
        """The next minibatch [min(batch_size, n), ...] of a seeded random order of the training data (a new
        order once the current one is used up)."""
        x = self.x_train
        b = min(self.batch_size, len(x))
        if self._cursor + b > len(self._order):
            self._order = torch.randperm(len(x), generator=self._generator).to(x.device)
            self._cursor = 0
        index = self._order[self._cursor : self._cursor + b]
        self._cursor += b
        return x[index]

    def step(self, phase: str, kl_weight: float = 1.0) -> float:
        """One :func:`~explorer_core.inference.aevb.aevb_step` of ``phase`` on the next minibatch, recorded
        in :attr:`segments`. Returns the minibatch mean ELBO (nats per example) before the update.

        Raises:
            ValueError: unknown phase or kl_weight out of range.
            NonFiniteError: NaN or inf loss or gradient (parameters and optimizers left as they were).
        """
        elbo = aevb_step(self.model, self.optimizers, self.next_batch(), phase=phase, kl_weight=kl_weight)
        self.steps += 1
        add_segment(self.segments, phase, self.steps, self.steps)
        return elbo

    def snapshot(self) -> StepperSnapshot:
        """The model's parameters, the optimizers' states and the step count, to :meth:`restore` later."""
        return StepperSnapshot(self.steps, self.optimizers.snapshot(self.model))

    def restore(self, snapshot: StepperSnapshot) -> None:
        """Go back to ``snapshot``: parameters, optimizer states, step count and the phase record (cut at
        that step; the list object is kept)."""
        self.optimizers.restore(self.model, snapshot.state)
        self.steps = snapshot.steps
        self.segments[:] = segments_until(self.segments, snapshot.steps)


def segments_until(segments: list[list], steps: int) -> list[list]:
    """Copies of the phase runs ``[phase, first, last]`` cut at step ``steps``."""
    return [[p, a, min(b, steps)] for p, a, b in segments if a <= steps]


class SteppedExperiment:
    """The skeleton every stepped experiment of the explorer shares (the FA page's :class:`FAExperiment`,
    Watch it learn's :class:`WatchExperiment`): a :class:`PhasedStepper` (:attr:`stepper`) whose queue of
    ``(phase, steps)`` segments the page fills (:meth:`enqueue`, :meth:`enqueue_schedule`,
    :meth:`clear_queue`) and its Play works off, and an :attr:`error` message that a new queue clears.

    A subclass sets :attr:`stepper` and :attr:`error` in its constructor. It may name the error its queue
    raises (:attr:`queue_error`, a ``ValueError`` type), guard the queue with a lock (:meth:`_queue_guard`)
    and act when steps are queued (:meth:`_queued`). How Play runs the queue is the subclass's: FA steps in
    the page's frame (its model is tiny), Watch in a thread of its own so that training goes on while a
    frame is measured and drawn.
    """

    stepper: PhasedStepper
    error: str | None
    #: what :meth:`enqueue` raises for an unknown phase or a step count the queue cannot take
    queue_error: type[ValueError] = ValueError

    def _queue_guard(self) -> contextlib.AbstractContextManager:
        """The lock the queue is changed under (none by default)."""
        return contextlib.nullcontext()

    def _queued(self) -> None:
        """Called (under the guard) after steps were queued."""

    @property
    def pending(self) -> PhaseQueue:
        """The queue of steps still to run."""
        return self.stepper.queue

    @property
    def queued_steps(self) -> int:
        """Steps waiting in the queue."""
        return self.stepper.queued_steps

    @property
    def queue_room(self) -> int:
        """Steps the queue can still take (0 when it is full)."""
        return self.stepper.queue_room

    def enqueue(self, phase: str, n_steps: int) -> None:
        """Queue ``n_steps`` steps of ``phase`` (``e_step``, ``m_step`` or ``joint``); clears :attr:`error`.

        Raises:
            queue_error: unknown phase, or a step count outside 1..(the queue's room).
        """
        with self._queue_guard():
            try:
                self.stepper.enqueue(phase, n_steps)
            except ValueError as err:
                raise (err if isinstance(err, self.queue_error) else self.queue_error(str(err))) from err
            self._queued()
            self.error = None

    def enqueue_schedule(self, schedule: Iterable[tuple[str, int]]) -> None:
        """Queue a whole schedule of ``(phase, steps)`` segments, all or nothing; clears :attr:`error`.

        Raises:
            queue_error: as :meth:`enqueue`, for any segment (the queue is then unchanged).
        """
        with self._queue_guard():
            try:
                self.stepper.enqueue_schedule(schedule)
            except ValueError as err:
                raise (err if isinstance(err, self.queue_error) else self.queue_error(str(err))) from err
            self._queued()
            self.error = None

    def clear_queue(self) -> None:
        """Drop every queued step."""
        with self._queue_guard():
            self.pending.clear()
