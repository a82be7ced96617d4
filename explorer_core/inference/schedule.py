"""The phase queue of the stepped experiments (factor analysis, "Watch it learn"): what E-, M- and joint
steps are still to run, in order.

The tutorial's EM view of AEVB (Yang 2022, arXiv 2208.07818, sections 3-4) alternates approximate E-steps
(phi only) and M-steps (theta only). A page queues them with the step buttons or a whole schedule
(E, M, E, M ...); the experiment works the queue off a few steps at a time. A :class:`PhaseQueue` holds
``[phase, steps left]`` segments; two adjacent segments of one phase are merged, so the queue never holds
an empty segment and never two neighbours of one phase. It does not run anything and knows no model, and
it is not thread-safe on its own (the owner guards it).

:func:`add_segment` keeps the other record: maximal runs of one phase among the steps already taken, as
``[phase, first_step, last_step]`` (1-based step numbers), which the learning curves shade.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

from explorer_core.inference.aevb import PHASES

#: the most steps a queue may hold at once
MAX_QUEUED_STEPS = 1_000_000


class PhaseQueue:
    """A FIFO of ``(phase, steps)`` segments; phases are ``joint``, ``e_step`` and ``m_step``.

    Args:
        max_steps: the most steps the queue may hold in all.
    """

    def __init__(self, max_steps: int = MAX_QUEUED_STEPS):
        self.max_steps = int(max_steps)
        self._segments: deque[list] = deque()  # [phase, steps left], steps left >= 1
        self._total = 0  # steps in all (kept, so that reading it never walks the deque)

    def enqueue(self, phase: str, n_steps: int) -> None:
        """Append ``n_steps`` steps of ``phase`` (merged into the last segment when it is of that phase).

        Raises:
            ValueError: unknown phase, or a step count that is not a whole number in 1..(room left).
        """
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}.")
        room = self.max_steps - self.queued_steps
        try:
            n = int(n_steps)
        except (TypeError, ValueError) as err:
            raise ValueError(f"step count must be a whole number, got {n_steps!r}.") from err
        if n != n_steps or not 1 <= n <= room:
            raise ValueError(f"step count must be between 1 and {room:,}, got {n_steps}.")
        if self._segments and self._segments[-1][0] == phase:
            self._segments[-1][1] += n
        else:
            self._segments.append([phase, n])
        self._total += n

    def enqueue_schedule(self, schedule: Iterable[tuple[str, int]]) -> None:
        """Append a whole schedule of ``(phase, steps)`` segments, all or nothing.

        Raises:
            ValueError: as :meth:`enqueue`, for any of its segments (the queue is then unchanged).
        """
        schedule = [(str(p), n) for p, n in schedule]
        trial = PhaseQueue(self.max_steps - self.queued_steps)
        for phase, n in schedule:
            trial.enqueue(phase, n)
        for phase, n in schedule:
            self.enqueue(phase, n)

    def head(self) -> tuple[str, int] | None:
        """The phase of the next step and the steps left in its segment; ``None`` when empty."""
        try:
            first = self._segments[0]
        except IndexError:
            return None
        return first[0], first[1]

    def take(self, n_steps: int) -> None:
        """Mark ``n_steps`` steps of the head segment as done (the segment goes when none are left).

        Raises:
            ValueError: the queue is empty or its head holds fewer steps.
        """
        if not self._segments or not 0 <= n_steps <= self._segments[0][1]:
            raise ValueError(f"cannot take {n_steps} steps from the queue's head {self.head()}.")
        self._segments[0][1] -= n_steps
        self._total -= n_steps
        if self._segments[0][1] == 0:
            self._segments.popleft()

    def clear(self) -> None:
        """Drop every queued step."""
        self._segments.clear()
        self._total = 0

    @property
    def queued_steps(self) -> int:
        """Steps waiting in the queue."""
        return self._total

    def segments(self) -> list[tuple[str, int]]:
        """The queue as a list of ``(phase, steps left)``."""
        return [(p, n) for p, n in self._segments]

    def __len__(self) -> int:
        """The number of segments (not steps)."""
        return len(self._segments)

    def __bool__(self) -> bool:
        return bool(self._segments)

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(self.segments())

    def __getitem__(self, i: int) -> list:
        """Segment ``i`` as ``[phase, steps left]`` (a copy)."""
        return list(self._segments[i])


def add_segment(segments: list[list], phase: str, first: int, last: int) -> None:
    """Record that steps ``first..last`` (1-based, inclusive) were taken in ``phase``: extend the last
    ``[phase, first_step, last_step]`` run when it is of that phase and ends at ``first - 1``, else start a
    new run. ``segments`` is changed in place."""
    if last < first:
        return
    if segments and segments[-1][0] == phase and segments[-1][2] == first - 1:
        segments[-1][2] = last
    else:
        segments.append([phase, first, last])
