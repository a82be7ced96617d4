"""One compute budget for the work that runs inside visitors' sessions (no Streamlit here).

In class mode several pages compute in the visitor's own session: Watch it learn trains a VAE in a thread
while ▶ Play runs, the FA page steps its model, the VRNN page generates row by row. Unbounded, sixteen
visitors pressing Play made the lecturer's pages 15-20x slower and each visitor's Play crawled (issue 23).
The budget bounds that work:

* **Slots.** A fixed number of sessions may run such work at once: :func:`default_slots` (the machine's
  cores minus one, at least 1; ``AEVB_SESSION_COMPUTE_SLOTS`` overrides). A session takes a slot with
  :meth:`ComputeBudget.acquire` when its Play starts and gives it back with :meth:`ComputeBudget.release`
  when Play pauses, its queue is done or its trainer ends.
* **A waiting line.** A session that finds no slot joins a FIFO line; ``acquire`` tells it its place
  (1 = next), and it is granted a slot, in order, when one frees up and it asks again.
* **Heartbeats and reclaim.** Every ``acquire`` (a frame of Play, a poll of the waiting line) or
  :meth:`ComputeBudget.heartbeat` renews the session's claim. A holder or a waiter that has not been heard
  of for ``timeout_s`` seconds (a closed tab, a session that ended mid-Play, a stuck script) loses its slot
  or its place: nothing leaks.
* **Turns.** A holder keeps its slot for at most ``turn_s`` seconds while others wait (free Play would run
  for ever); then its next ``acquire`` puts it at the back of the line (``AEVB_SESSION_TURN_S``, default
  120 s). With nobody waiting, a holder keeps its slot as long as it plays.
* **Operator bypass.** The operator's session (class mode, passphrase given; or any session outside class
  mode) is never queued nor paced: the lecturer's demo always runs. It does not take a slot.
* **Fair share.** Each slot holder runs at most ``step_rate`` steps per second (a token bucket):
  :meth:`ComputeBudget.take_steps` (non-blocking, for a page's frame that runs a few steps) and
  :meth:`ComputeBudget.pace` (blocking, for a trainer thread, one call per step).
* **Gestures first.** While any page answers a gesture (:meth:`ComputeBudget.gesture`: a page run, a pad
  move, a cluster pick) and for ``gesture_linger_s`` after (the server still sends the answer then), a paced
  trainer waits before its next step, at most ``gesture_wait_s`` per step, and does not catch up
  afterwards; a visitor's frame of Play and a poll of the line wait likewise
  (:meth:`ComputeBudget.wait_for_gestures`). They all run in the server's process, and their Python holds
  the GIL that the gesture's script needs. A gesture also counts from the moment its request arrives
  (:meth:`ComputeBudget.announce_gesture`), a few ms before its run starts. A run never waits for its own
  gesture.
* **A visitor's gestures are rate-limited** (:data:`GESTURE_RATE` a second, bursts of
  :data:`GESTURE_BURST`; :meth:`ComputeBudget.gesture_priority`): beyond it a gesture is answered without
  priority, so a script clicking fast cannot freeze the holder. The operator's are never limited.
* **Memory.** A holder may declare the bytes its work holds (``memory_bytes``); the holders together stay
  within ``memory_limit_bytes``. :func:`session_memory_limit` is the most one session's configuration may
  need (``AEVB_SESSION_MEMORY_MB``, default 1024); pages refuse a configuration above it before anything is
  built.

* **Heavy one-off work** (:meth:`ComputeBudget.one_off`: a true posterior's grid, a q* fit, a gap split,
  a GIF build, a Watch configuration's first build and its Reset) takes a slot for as long as it runs, in
  the same line as Play: a visitor waits (its place shown by ``on_wait``) instead of running it beside the
  holders. A one-off job at the head of the line does not wait for a Play holder's turn: a holder that has
  had its slot for :data:`ONE_OFF_PREEMPT_AFTER_S` steps aside at its next frame, first in line after the
  job. A one-off holder is not reclaimed for silence while its block runs (it gives the slot back when
  the block ends, whatever happens in it). A browser that already holds a slot (its own Play) runs it
  inside that slot. The operator's never waits.
* **A starved turn pauses, and starving is bounded.** The seconds a holder's paced steps and frames wait for
  other sessions' gestures do not count towards its turn (:meth:`ComputeBudget.credit_turn`), and a holder
  gives at most :data:`MAX_YIELD_SHARE` of its recent time to them (:meth:`ComputeBudget.yield_to_gestures`):
  scripts clicking fast cannot stop the holder, nor use up its turn.

Work that answers one gesture (a pad move, the encoding of a drawing, a cluster pick) never takes a slot:
it is short, and a visitor must never wait behind someone's training for it.

The process has one budget, :func:`process_budget`. Everything here is thread-safe; times are seconds of
``time.monotonic`` (a test passes its own clock).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

ENV_SLOTS = "AEVB_SESSION_COMPUTE_SLOTS"
ENV_STEP_RATE = "AEVB_SESSION_STEP_RATE"
ENV_SESSION_MEMORY = "AEVB_SESSION_MEMORY_MB"
ENV_TURN = "AEVB_SESSION_TURN_S"
#: seconds a holder keeps its slot while others wait
DEFAULT_TURN_S = 120.0
#: seconds without a heartbeat after which a holder's slot (or a waiter's place) is reclaimed
DEFAULT_TIMEOUT_S = 10.0
#: steps per second one slot holder may run at most. The trainer runs in the server's process, and every
#: step's Python holds the GIL that the pages answering a gesture need too: the rate is what keeps the
#: lecturer's pages near their unloaded time while a holder still runs the 50 steps a second issue 23 asks
#: for (make bench-class; the measurements at 120 and at 55-60 are in BENCHMARKS.md).
DEFAULT_STEP_RATE = 60.0
#: bytes one session's in-session work may need at most (Watch it learn's configuration)
DEFAULT_SESSION_MEMORY_MB = 1024
#: the largest burst of steps a holder may take at once (in seconds of its rate)
BURST_S = 0.5
#: seconds a trainer's step waits at most while pages answer gestures (:meth:`ComputeBudget.gesture`)
GESTURE_WAIT_S = 0.25
#: seconds after the last gesture's block ends during which paced work still waits: the server then still
#: finishes that run and sends its answer (about as long again as the block, make bench-class)
GESTURE_LINGER_S = 0.03
#: seconds a gesture announced on its arrival (:meth:`ComputeBudget.announce_gesture`) holds paced work back
#: until its run enters its gesture block: the server starts a run a few ms after the request arrives (5 ms
#: p50 under a class's load, up to about 35 ms; make bench-class), and a trainer's step begun meanwhile ran
#: beside the gesture
GESTURE_ANNOUNCE_S = 0.05
#: gestures per second one visitor's session may make with priority (a token bucket of
#: :data:`GESTURE_BURST` gestures): a script pressing "Next row" 13 times a second cut a holder's training
#: from 60 to 3.3 steps a second (issue 34); a person clicks 2-4 times a second. Beyond it a gesture is
#: still answered, but paced work does not wait for it. The operator's gestures are never limited.
GESTURE_RATE = 5.0
#: the most gestures in a row a visitor may make with priority before the rate applies
GESTURE_BURST = 10
#: sessions whose gesture buckets are remembered (the least recently seen are forgotten beyond it)
GESTURE_SESSIONS = 4096
#: the most of its time a slot holder gives to other sessions' gestures (its steps and frames wait for them
#: up to this share, measured over the last :data:`YIELD_MEMORY_S` seconds; beyond it they do not wait): two
#: scripts pressing "Next row" 13 times a second cut a holder from 47.5 to 5.5 steps a second (issue 34)
MAX_YIELD_SHARE = 0.5
#: seconds over which a holder's time given to gestures, and a session's time in gesture runs, are counted
#: (exponentially decaying sums)
YIELD_MEMORY_S = 2.0
#: the most of the server's recent time one visitor's gesture runs may take before its next gesture waits:
#: a script pressing "Next row" 13 times a second kept the server's Python busy with its runs (the slot
#: holder fell from 56 to 7 steps a second, the lecturer's gestures 10x slower); a person's clicks on a page
#: that answers in 100-300 ms stay under it
GESTURE_SHARE = 0.5
#: the longest a visitor's gesture waits for its session's share
MAX_GESTURE_DELAY_S = 2.0
#: seconds between two looks at the line of a session waiting for heavy one-off work
ONE_OFF_POLL_S = 0.25
#: seconds a session waits at most for a slot for heavy one-off work before it is told to try again
ONE_OFF_MAX_WAIT_S = 300.0
#: seconds a Play holder keeps its slot at least before a one-off job waiting at the head of the line takes
#: it (the holder steps aside, first in line after the job, and its Play goes on when the job is done): a
#: true posterior of a second must not wait for a turn of 120 s, nor a stream of them stop a holder's Play
ONE_OFF_PREEMPT_AFTER_S = 10.0


class ComputeBusyError(RuntimeError):
    """No slot came for a heavy one-off job within its longest wait (:meth:`ComputeBudget.one_off`); the
    message says so in words for the visitor."""


def default_slots() -> int:
    """Slots of the process's budget: ``AEVB_SESSION_COMPUTE_SLOTS`` when it is a whole number >= 1 (at
    most 1024), else the CPU cores this process may use minus one, at least 1."""
    text = os.environ.get(ENV_SLOTS, "").strip()
    if text:
        try:
            return max(1, min(int(text), 1024))
        except ValueError:
            pass
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def default_step_rate() -> float:
    """Steps per second per slot holder: ``AEVB_SESSION_STEP_RATE`` when it is a number > 0, else
    :data:`DEFAULT_STEP_RATE`."""
    try:
        rate = float(os.environ.get(ENV_STEP_RATE, DEFAULT_STEP_RATE))
    except ValueError:
        return DEFAULT_STEP_RATE
    return rate if rate > 0 and rate == rate and rate != float("inf") else DEFAULT_STEP_RATE


def default_turn_s() -> float:
    """Seconds a holder keeps its slot while others wait: ``AEVB_SESSION_TURN_S`` when it is a number >= 1,
    else :data:`DEFAULT_TURN_S`."""
    try:
        turn = float(os.environ.get(ENV_TURN, DEFAULT_TURN_S))
    except ValueError:
        return DEFAULT_TURN_S
    return turn if 1 <= turn < float("inf") else DEFAULT_TURN_S


def session_memory_limit() -> int:
    """Bytes one session's configuration may need at most: ``AEVB_SESSION_MEMORY_MB`` (MiB, >= 16) or
    :data:`DEFAULT_SESSION_MEMORY_MB`."""
    try:
        mb = int(os.environ.get(ENV_SESSION_MEMORY, DEFAULT_SESSION_MEMORY_MB))
    except ValueError:
        mb = DEFAULT_SESSION_MEMORY_MB
    return max(16, mb) * 2**20


@dataclass(frozen=True)
class Ticket:
    """What :meth:`ComputeBudget.acquire` answered.

    Attributes:
        granted: the session may run its work now (it holds a slot, or it is the operator's).
        position: 0 when granted, else the session's place in the waiting line (1 = next).
        waiting: sessions in the line.
        holders: sessions that hold a slot now.
        slots: slots in all.
        bypass: granted as the operator's session (no slot taken, not paced).
        reason: when not granted, why, in words (``"busy"`` or a memory note).
    """

    granted: bool
    position: int
    waiting: int
    holders: int
    slots: int
    bypass: bool = False
    reason: str = ""

    def message(self, then: str = "Play starts by itself when it is your turn") -> str:
        """One line for the visitor: what is going on and where they are in line; ``then``: what happens
        when the visitor's turn comes."""
        if self.granted:
            return "Running." if not self.bypass else "Running (operator: not limited)."
        place = {1: "next", 2: "2nd", 3: "3rd"}.get(self.position, f"{self.position}th")
        busy = (
            f"The server is busy: {self.holders} of {self.slots} compute slot{'s' * (self.slots != 1)} "
            "in use by other visitors"
        )
        if self.reason and self.reason != "busy":
            busy = self.reason
        return f"{busy}. You are {place} in line ({self.waiting} waiting); {then}."


@dataclass
class _Holder:
    seen: float
    memory: int
    tokens: float
    refilled: float
    since: float
    pinned: bool = False  # a one-off job's block runs: not reclaimed for silence
    yielded: float = 0.0  # seconds given to gestures lately (decaying, :data:`YIELD_MEMORY_S`)
    yielded_at: float = 0.0  # (clock) when ``yielded`` was last brought up to date


class ComputeBudget:
    """Slots for in-session work, a FIFO waiting line, heartbeat reclaim, operator bypass and a per-holder
    step rate (see the module docstring).

    Args:
        slots: sessions that may hold a slot at once (default :func:`default_slots`), >= 1.
        timeout_s: seconds without a heartbeat before a holder or a waiter is dropped, > 0.
        step_rate: steps per second per holder (default :func:`default_step_rate`), > 0.
        memory_limit_bytes: bytes the holders may declare together (default: unlimited).
        turn_s: seconds a holder keeps its slot while others wait (default :func:`default_turn_s`).
        clock: monotonic seconds (default ``time.monotonic``).
        sleep: how :meth:`pace` waits (default ``time.sleep``).
        gesture_wait_s: seconds a paced step, frame or poll waits at most for gestures.
        gesture_linger_s: seconds after the last gesture ended during which they still wait.

    Raises:
        ValueError: a non-positive ``slots``, ``timeout_s`` or ``step_rate``.
    """

    def __init__(
        self,
        slots: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        step_rate: float | None = None,
        memory_limit_bytes: int | None = None,
        turn_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        gesture_wait_s: float = GESTURE_WAIT_S,
        gesture_linger_s: float = GESTURE_LINGER_S,
    ):
        self.slots = int(slots) if slots is not None else default_slots()
        self.timeout_s = float(timeout_s)
        self.step_rate = float(step_rate) if step_rate is not None else default_step_rate()
        if self.slots < 1 or not self.timeout_s > 0 or not self.step_rate > 0:
            raise ValueError(
                f"slots must be >= 1, timeout_s and step_rate > 0; got {slots}, {timeout_s}, {step_rate}."
            )
        self.memory_limit_bytes = memory_limit_bytes
        self.turn_s = float(turn_s) if turn_s is not None else default_turn_s()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._holders: dict[str, _Holder] = {}
        self._one_off_waiting: set[str] = set()  # holders in the line for a one-off job
        self._line: OrderedDict[str, tuple[float, int]] = OrderedDict()  # holder -> (last seen, memory)
        self.gesture_wait_s = float(gesture_wait_s)
        self._gestures = 0
        self._no_gesture = threading.Event()
        self._no_gesture.set()
        self.gesture_linger_s = max(0.0, float(gesture_linger_s))
        self._gesture_ended = float("-inf")  # (clock) when the last gesture ended
        self._inside = threading.local()  # .depth: the gesture blocks the calling thread is in
        self._announced: deque[float] = deque()  # (clock) until when each gesture announced waits for its run
        # per visitor session: (tokens, clock of the last refill) of its gesture bucket; operator sessions
        self._gesture_buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._operator_sessions: OrderedDict[str, None] = OrderedDict()
        self.unprioritised_gestures = 0  # gestures over a session's rate, since the start
        self.delayed_gestures = 0  # gestures that waited for their session's share, since the start
        # per visitor session: (busy seconds of its gesture runs, decaying; clock when last updated)
        self._busy: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.reclaimed = 0  # holders and waiters dropped for silence, since the start

    # --- slots ------------------------------------------------------------------------------------------
    def acquire(self, holder: str, operator: bool = False, memory_bytes: int = 0) -> Ticket:
        """Take a slot for ``holder`` (a session id), or keep its place in line; also its heartbeat.

        A holder that already holds a slot keeps it (and its heartbeat is renewed), unless its turn is over
        (held for ``turn_s`` seconds while others wait): then it goes to the back of the line. Otherwise it
        is granted
        a slot when one is free, no one is ahead of it in line, and the memory it declares fits beside the
        other holders'; else it joins (or stays in) the line. ``operator``: granted at once, no slot taken.

        Args:
            holder: who asks (the same id for every call of one session).
            operator: the operator's session (never queued).
            memory_bytes: bytes its work will hold (counted against ``memory_limit_bytes``).

        Returns:
            A :class:`Ticket`: granted, or the place in line.
        """
        holder = str(holder)
        memory = max(0, int(memory_bytes))
        with self._lock:
            now = self._clock()
            self._reclaim_locked(now)
            if operator:
                self._release_locked(holder)
                return self._ticket_locked(True, 0, bypass=True)
            held = self._holders.get(holder)
            if held is not None and self._line and now - held.since > self.turn_s:
                del self._holders[holder]  # its turn is over: to the back of the line
                self._line[holder] = (now, memory)
                return self._ticket_locked(
                    False,
                    len(self._line),
                    reason=f"Your turn of {self.turn_s:.0f} s is over and others are waiting",
                )
            if held is not None and not held.pinned and self._one_off_first_locked(now, held):
                del self._holders[holder]  # a short one-off job goes first; Play resumes right after it
                ahead = [(h, v) for h, v in self._line.items() if h in self._one_off_waiting]
                rest = [(h, v) for h, v in self._line.items() if h not in self._one_off_waiting]
                self._line = OrderedDict([*ahead, (holder, (now, memory)), *rest])
                return self._ticket_locked(
                    False,
                    len(ahead) + 1,
                    reason="Another visitor's short computation (a true posterior, a GIF) runs first",
                )
            if held is not None:
                held.seen = now
                held.memory = memory
                return self._ticket_locked(True, 0)
            self._line[holder] = (now, memory)  # joins at the back, or keeps its place
            position = list(self._line).index(holder) + 1
            reason = "busy"
            if position == 1 and len(self._holders) < self.slots:
                if self._fits_locked(memory):
                    del self._line[holder]
                    self._holders[holder] = _Holder(now, memory, self.step_rate * BURST_S, now, now)
                    return self._ticket_locked(True, 0)
                reason = (
                    "The server's memory for visitors' runs is taken by other visitors (this configuration "
                    f"needs about {memory / 2**20:,.0f} MB)"
                )
            return self._ticket_locked(False, position, reason=reason)

    def heartbeat(self, holder: str) -> bool:
        """Renew ``holder``'s claim (slot or place in line); returns whether it holds a slot."""
        with self._lock:
            now = self._clock()
            held = self._holders.get(str(holder))
            if held is not None:
                held.seen = now
                return True
            if str(holder) in self._line:
                self._line[str(holder)] = (now, self._line[str(holder)][1])
            return False

    def release(self, holder: str) -> None:
        """Give back ``holder``'s slot, or leave the line (no-op for an unknown holder)."""
        with self._lock:
            self._release_locked(str(holder))

    def holds(self, holder: str) -> bool:
        """Whether ``holder`` holds a slot now."""
        with self._lock:
            self._reclaim_locked(self._clock())
            return str(holder) in self._holders

    def position(self, holder: str) -> int | None:
        """``holder``'s place in line (1 = next), 0 when it holds a slot, ``None`` when neither."""
        with self._lock:
            self._reclaim_locked(self._clock())
            if str(holder) in self._holders:
                return 0
            line = list(self._line)
            return line.index(str(holder)) + 1 if str(holder) in line else None

    def reclaim(self) -> list[str]:
        """Drop every holder and waiter not heard of for ``timeout_s`` seconds; returns who was dropped."""
        with self._lock:
            return self._reclaim_locked(self._clock())

    def snapshot(self) -> dict[str, object]:
        """``{"slots", "holders": [ids], "waiting": [ids in order], "memory_bytes", "reclaimed"}``."""
        with self._lock:
            self._reclaim_locked(self._clock())
            return {
                "slots": self.slots,
                "holders": list(self._holders),
                "waiting": list(self._line),
                "memory_bytes": sum(h.memory for h in self._holders.values()),
                "reclaimed": self.reclaimed,
            }

    def yield_to_gestures(self, holder: str) -> float:
        """A holder's frame of Play (Python that holds the GIL a gesture's run needs) waits while pages
        answer gestures (:meth:`wait_for_gestures`), at most ``gesture_wait_s``, and never beyond its share
        :data:`MAX_YIELD_SHARE` of the last :data:`YIELD_MEMORY_S` seconds; the seconds waited do not count
        towards its turn (:meth:`credit_turn`). Returns them."""
        waited = self.wait_for_gestures(self._yield_allowance(holder, self.gesture_wait_s))
        if waited > 0:
            with self._lock:
                held = self._holders.get(str(holder))
                if held is not None:
                    self._count_yield_locked(held, self._clock(), waited)
            self.credit_turn(holder, waited)
        return waited

    def _yield_allowance(self, holder: str, limit_s: float) -> float:
        """How long ``holder`` may still wait for gestures now: ``limit_s``, or less (down to 0) once it has
        given :data:`MAX_YIELD_SHARE` of the last :data:`YIELD_MEMORY_S` seconds to them. A session that
        holds no slot (a poll of the line) waits the whole limit."""
        with self._lock:
            held = self._holders.get(str(holder))
            if held is None:
                return limit_s
            now = self._clock()
            self._count_yield_locked(held, now, 0.0)
            room = MAX_YIELD_SHARE * YIELD_MEMORY_S - held.yielded
            return max(0.0, min(limit_s, room))

    @staticmethod
    def _count_yield_locked(held: _Holder, now: float, seconds: float) -> None:
        """Bring ``held.yielded`` (an exponentially decaying sum, time constant :data:`YIELD_MEMORY_S`) up to
        ``now`` and add ``seconds`` given to gestures."""
        if held.yielded_at:
            held.yielded *= math.exp(-max(0.0, now - held.yielded_at) / YIELD_MEMORY_S)
        held.yielded_at = now
        held.yielded += seconds

    def credit_turn(self, holder: str, seconds: float) -> None:
        """``seconds`` that ``holder`` could not use (its frame waited for other sessions' gestures) do not
        count towards its turn: its turn's start moves that much later (no-op for a non-holder)."""
        if not seconds > 0:
            return
        with self._lock:
            held = self._holders.get(str(holder))
            if held is not None:
                held.since = min(self._clock(), held.since + float(seconds))

    @contextlib.contextmanager
    def one_off(
        self,
        holder: str,
        operator: bool = False,
        *,
        group: str | None = None,
        on_wait: Callable[[Ticket], None] | None = None,
        poll_s: float = ONE_OFF_POLL_S,
        max_wait_s: float = ONE_OFF_MAX_WAIT_S,
    ) -> Iterator[Ticket]:
        """Heavy one-off work (a posterior grid, a q* fit, a gap split, a GIF build, a Watch run's first
        build) runs inside this block, holding a slot of the budget for as long as it runs.

        The operator's runs at once (no slot). A session whose browser ``group`` already holds a slot (a
        holder id ``"<group>/..."``: its own Play on some page) runs inside that slot. Otherwise ``holder``
        joins the line (:meth:`acquire`), and the block waits until it is granted, looking every ``poll_s``
        seconds and telling ``on_wait`` its :class:`Ticket` each time (a page shows the place in line; a
        Streamlit run that the visitor left ends there, ``on_wait`` raising). While the block runs the slot
        is not reclaimed for silence; it is given back when the block ends, also on an exception. A job
        joins the line ahead of the sessions waiting to Play (behind other jobs), and a Play holder that has
        had its slot for :data:`ONE_OFF_PREEMPT_AFTER_S` steps aside for it at its next frame.

        Yields:
            The granted :class:`Ticket`.

        Raises:
            ComputeBusyError: no slot within ``max_wait_s`` seconds (the place in line is given up).
        """
        holder = str(holder)
        if operator:
            yield self._ticket_now(True, bypass=True)
            return
        if group is not None and self._group_holds(str(group)):
            yield self._ticket_now(True)
            return
        start = self._clock()
        with self._lock:  # a short job goes ahead of the Play waiting in line (behind the other short jobs)
            self._one_off_waiting.add(holder)
            if holder not in self._line and holder not in self._holders:
                ahead = [(h, v) for h, v in self._line.items() if h in self._one_off_waiting]
                rest = [(h, v) for h, v in self._line.items() if h not in self._one_off_waiting]
                self._line = OrderedDict([*ahead, (holder, (start, 0)), *rest])
        try:
            while True:
                ticket = self.acquire(holder)
                if ticket.granted:
                    with self._lock:
                        self._one_off_waiting.discard(holder)
                        held = self._holders.get(holder)
                        if held is not None:
                            held.pinned = True
                    break
                if self._clock() - start >= max_wait_s:
                    raise ComputeBusyError(
                        f"{ticket.message(then='try again in a minute')} (no turn came within "
                        f"{max_wait_s:.0f} s)"
                    )
                if on_wait is not None:
                    on_wait(ticket)
                self._sleep(poll_s)
            yield ticket
        finally:
            with self._lock:
                self._one_off_waiting.discard(holder)
            self.release(holder)

    def _one_off_first_locked(self, now: float, held: _Holder) -> bool:
        """Whether a one-off job waits at the head of the line with every slot taken, and ``held`` (a Play
        holder) has had its slot for :data:`ONE_OFF_PREEMPT_AFTER_S` at least: then it steps aside."""
        if not self._line or len(self._holders) < self.slots:
            return False
        first = next(iter(self._line))
        return first in self._one_off_waiting and now - held.since >= ONE_OFF_PREEMPT_AFTER_S

    def _group_holds(self, group: str) -> bool:
        """Whether a holder of ``group`` (id ``"<group>/..."``) holds a slot now."""
        with self._lock:
            self._reclaim_locked(self._clock())
            return any(h.startswith(group + "/") for h in self._holders)

    def _ticket_now(self, granted: bool, bypass: bool = False) -> Ticket:
        with self._lock:
            return self._ticket_locked(granted, 0, bypass=bypass)

    # --- the step rate ----------------------------------------------------------------------------------
    def take_steps(self, holder: str, wanted: int) -> int:
        """How many of ``wanted`` steps ``holder`` may run now (0..wanted), at most ``step_rate`` a second
        on average (a token bucket holding up to :data:`BURST_S` seconds of steps). Non-blocking; also a
        heartbeat. A session that holds no slot gets 0; use it only for slot holders (the operator's session
        is not paced: it never calls this)."""
        wanted = max(0, int(wanted))
        with self._lock:
            held = self._holders.get(str(holder))
            if held is None:
                return 0
            now = self._clock()
            held.seen = now
            self._refill(held, now)
            n = min(wanted, int(held.tokens + 1e-6))
            held.tokens -= n
            return n

    def pace(self, holder: str) -> bool:
        """One step of a trainer thread: wait (``sleep``) until ``holder`` may take it at ``step_rate``, then
        take it. Returns False without waiting when ``holder`` holds no slot (the thread should stop). Not a
        heartbeat: a trainer whose page went away loses its slot after ``timeout_s``.

        Gestures first: the step is taken only when no page answers a gesture (:meth:`gesture`), checked
        again after every wait for the rate (a trainer spends most of its time there, so a gesture that
        began meanwhile is seen), for at most ``gesture_wait_s`` in all per step."""
        allowance = self.gesture_wait_s
        while True:
            waited = self.wait_for_gestures(self._yield_allowance(holder, allowance))
            allowance -= waited
            with self._lock:
                held = self._holders.get(str(holder))
                if held is None:
                    return False
                now = self._clock()
                if waited > 0:  # the time given to the gesture earns no steps (no burst right after it)
                    held.refilled = min(now, held.refilled + waited)
                    held.since += waited  # nor does it count towards the holder's turn
                    self._count_yield_locked(held, now, waited)
                self._refill(held, now)
                if held.tokens >= 1 - 1e-6:  # (a refill may fall a rounding error short of a whole step)
                    held.tokens -= 1
                    return True
                wait = max((1 - held.tokens) / self.step_rate, 1e-4)
            self._sleep(wait)

    def wait_for_gestures(self, limit_s: float | None = None) -> float:
        """Wait while pages answer gestures, and ``gesture_linger_s`` after the last one ended, at most
        ``limit_s`` (default ``gesture_wait_s``) in all; the seconds waited (0.0 at once when none runs or
        just ran; the whole limit when the gestures outlast it). A paced trainer's step, a visitor's frame
        of Play and a poll of the line call it. Inside a gesture block of its own (a visitor's frame drawn in
        the run that answers that visitor's click) it returns 0.0 at once: the run is the gesture."""
        limit = self.gesture_wait_s if limit_s is None else limit_s
        if limit <= 0 or getattr(self._inside, "depth", 0):  # a thread never waits for its own gesture
            return 0.0
        start = self._clock()
        for _ in range(1000):  # (each round waits; the bound only guards against a clock that stands still)
            now = self._clock()
            left = limit - (now - start)
            if left <= 0:
                return max(now - start, limit)
            if not self._no_gesture.is_set():  # a gesture runs
                if not self._no_gesture.wait(left):
                    return max(self._clock() - start, limit)
                continue
            quiet = self._quiet_from(now)  # the linger after the last one, or one announced
            if quiet <= now:
                return now - start
            self._sleep(min(quiet - now, left))
        return self._clock() - start

    def announce_gesture(self, session: str | None = None) -> None:
        """A gesture's request has arrived (the server's event loop calls this; its run starts a few ms
        later): paced work waits as if it ran, until its run enters :meth:`gesture` or for
        ``GESTURE_ANNOUNCE_S`` at most. A visitor ``session`` over its gesture rate is not announced."""
        with self._lock:
            if session is not None and not self._gesture_tokens_locked(session, take=False):
                return
            self._announced.append(self._clock() + GESTURE_ANNOUNCE_S)

    def gesture_priority(self, session: str | None, operator: bool = False) -> bool:
        """Whether a gesture of ``session`` now gets priority, taking one of its tokens when it does: always
        for the operator (remembered, so that its arrivals are announced too) and without a session; for a
        visitor, while its bucket (:data:`GESTURE_RATE` a second, :data:`GESTURE_BURST` at most) holds one."""
        if session is None:
            return True
        with self._lock:
            if operator:
                self._operator_sessions[session] = None
                self._operator_sessions.move_to_end(session)
                while len(self._operator_sessions) > GESTURE_SESSIONS:
                    self._operator_sessions.popitem(last=False)
                return True
            allowed = self._gesture_tokens_locked(session, take=True)
            if not allowed:
                self.unprioritised_gestures += 1
            return allowed

    def _gesture_tokens_locked(self, session: str, take: bool) -> bool:
        """Whether ``session``'s gesture bucket holds a token (refilled to now), taking it when ``take``."""
        if session in self._operator_sessions:
            return True
        now = self._clock()
        tokens, refilled = self._gesture_buckets.pop(session, (float(GESTURE_BURST), now))
        tokens = min(float(GESTURE_BURST), tokens + (now - refilled) * GESTURE_RATE)
        allowed = tokens >= 1
        if allowed and take:
            tokens -= 1
        self._gesture_buckets[session] = (tokens, now)  # (most recently seen last)
        while len(self._gesture_buckets) > GESTURE_SESSIONS:
            self._gesture_buckets.popitem(last=False)
        return allowed

    def _quiet_from(self, now: float) -> float:
        """(clock) from when paced work may go on, no gesture running: the linger after the last gesture,
        the end of the latest gesture announced."""
        with self._lock:
            while self._announced and self._announced[0] <= now:
                self._announced.popleft()
            announced = self._announced[-1] if self._announced else float("-inf")
        return max(self._gesture_ended + self.gesture_linger_s, announced)

    @contextlib.contextmanager
    def gesture(self, session: str | None = None, operator: bool = False) -> Iterator[None]:
        """While the ``with`` block runs (a page answering one gesture), paced trainers wait before their
        next step (:meth:`pace`, at most ``gesture_wait_s`` each step). Nested and concurrent blocks count:
        trainers go on when the last one ends. The operator's trainer is not paced, so it never waits.

        A visitor's ``session`` over its gesture rate (:meth:`gesture_priority`) runs its block without
        priority: nobody waits for it. A visitor's session whose gesture runs took more than
        :data:`GESTURE_SHARE` of the server's recent time (:data:`YIELD_MEMORY_S`) first waits (sleeps,
        holding no GIL) until it is under it again, at most :data:`MAX_GESTURE_DELAY_S`: a script clicking
        many times a second gets its runs spaced out instead of taking the server's Python from everyone
        else. A block nested in a gesture of the same thread is part of it."""
        outer = not getattr(self._inside, "depth", 0)
        if outer and session is not None and not operator:
            delay = self._gesture_delay(session)
            if delay > 0:
                self.delayed_gestures += 1
                self._sleep(delay)
        started = self._clock()
        try:
            if outer and not self.gesture_priority(session, operator):
                yield
                return
            with self._lock:
                self._gestures += 1
                self._no_gesture.clear()
                if self._announced:  # the run of the oldest gesture announced has begun
                    self._announced.popleft()
            self._inside.depth = getattr(self._inside, "depth", 0) + 1
            try:
                yield
            finally:
                self._inside.depth -= 1
                with self._lock:
                    self._gestures -= 1
                    if self._gestures == 0:
                        self._gesture_ended = self._clock()
                        self._no_gesture.set()
        finally:
            if outer and session is not None and not operator:
                self._count_busy(session, self._clock() - started)

    def _gesture_delay(self, session: str) -> float:
        """Seconds ``session``'s next gesture waits before it runs: until its recent busy time (decaying,
        time constant :data:`YIELD_MEMORY_S`) is back under :data:`GESTURE_SHARE` of that time; 0 when it
        is under; at most :data:`MAX_GESTURE_DELAY_S`."""
        with self._lock:
            busy, at = self._busy.get(session, (0.0, self._clock()))
            busy *= math.exp(-max(0.0, self._clock() - at) / YIELD_MEMORY_S)
        allowed = GESTURE_SHARE * YIELD_MEMORY_S
        if busy <= allowed:
            return 0.0
        return min(MAX_GESTURE_DELAY_S, YIELD_MEMORY_S * math.log(busy / allowed))

    def _count_busy(self, session: str, seconds: float) -> None:
        """Add ``seconds`` of a gesture run to ``session``'s decaying busy time."""
        with self._lock:
            now = self._clock()
            busy, at = self._busy.pop(session, (0.0, now))
            busy = busy * math.exp(-max(0.0, now - at) / YIELD_MEMORY_S) + max(0.0, seconds)
            self._busy[session] = (busy, now)
            while len(self._busy) > GESTURE_SESSIONS:
                self._busy.popitem(last=False)

    # --- internals --------------------------------------------------------------------------------------
    def _refill(self, held: _Holder, now: float) -> None:
        held.tokens = min(self.step_rate * BURST_S, held.tokens + (now - held.refilled) * self.step_rate)
        held.refilled = now

    def _fits_locked(self, memory: int) -> bool:
        if self.memory_limit_bytes is None or memory <= 0:
            return True
        used = sum(h.memory for h in self._holders.values())
        return used + memory <= self.memory_limit_bytes or not self._holders

    def _release_locked(self, holder: str) -> None:
        self._holders.pop(holder, None)
        self._line.pop(holder, None)

    def _reclaim_locked(self, now: float) -> list[str]:
        gone = [
            h for h, held in self._holders.items() if now - held.seen > self.timeout_s and not held.pinned
        ]
        gone += [h for h, (seen, _) in self._line.items() if now - seen > self.timeout_s]
        for h in gone:
            self._release_locked(h)
        self.reclaimed += len(gone)
        return gone

    def _ticket_locked(self, granted: bool, position: int, bypass: bool = False, reason: str = "") -> Ticket:
        return Ticket(granted, position, len(self._line), len(self._holders), self.slots, bypass, reason)


_PROCESS_BUDGET: ComputeBudget | None = None
_PROCESS_LOCK = threading.Lock()


def process_budget() -> ComputeBudget:
    """The process's one :class:`ComputeBudget` (module level, created on first use from the environment:
    :func:`default_slots`, :func:`default_step_rate`; the holders' memory together at most four sessions'
    :func:`session_memory_limit`)."""
    global _PROCESS_BUDGET
    with _PROCESS_LOCK:
        if _PROCESS_BUDGET is None:
            _PROCESS_BUDGET = ComputeBudget(memory_limit_bytes=4 * session_memory_limit())
        return _PROCESS_BUDGET
