"""What a session computes with, let go of once its tab has been gone a while (no Streamlit here).

Two pages hold large objects per visitor: Watch it learn's experiment (a VAE, its optimizers, a snapshot,
the history; a training thread while it plays) and the factor-analysis experiment. Streamlit keeps a closed
tab's session, its state included, for ``server.disconnectedSessionTTL`` seconds (120) in case the tab
reconnects, and removes expired sessions only when another session is stored or removed: after a class
leaves, nothing may come to remove them, and their objects stay in the server's memory (issue 23:
``make bench-class`` found the server 12 % above its baseline a minute after 16 visitors left).

So the pages keep those objects in a :class:`SessionWork` (one per session, in the session's state) and the
process's :class:`SessionWorkRegistry` knows every live one by session id. :meth:`SessionWorkRegistry.sweep`
(a timer calls it) asks whether each session still has a connection; one that has had none for
``grace_s`` seconds has its work released: threads stopped, objects dropped. A tab that comes back later
finds its work empty (:attr:`SessionWork.released_at` says so) and starts afresh, as after a reload.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

ENV_GRACE = "AEVB_SESSION_GRACE_S"
#: seconds a class-mode session may be without a connection before its work is released
CLASS_GRACE_S = 30.0
#: outside class mode: as long as Streamlit itself keeps a disconnected session (its default TTL)
DEFAULT_GRACE_S = 120.0


def default_grace_s(class_mode: bool) -> float:
    """Seconds a session may be without a connection before its work goes: ``AEVB_SESSION_GRACE_S`` when it
    is a number >= 1, else :data:`CLASS_GRACE_S` in class mode and :data:`DEFAULT_GRACE_S` outside it."""
    try:
        grace = float(os.environ.get(ENV_GRACE, ""))
    except ValueError:
        grace = float("nan")
    if 1 <= grace < float("inf"):
        return grace
    return CLASS_GRACE_S if class_mode else DEFAULT_GRACE_S


class SessionWork:
    """One session's large objects by name (``"watch"``, ``"fa"``): a small mapping (``in``, ``[]``,
    ``get``, ``len``).

    Attributes:
        released_at: ``time.monotonic()`` when :meth:`release` last emptied it while it held something,
            else None (a page reads it to say why a returning tab starts afresh, then clears it).
    """

    def __init__(self) -> None:
        self._objects: dict[str, Any] = {}
        self._reservations: dict[str, Any] = {}  # name -> a memory reservation (anything with release())
        self._lock = threading.Lock()
        self.released_at: float | None = None
        # a work dropped with its session (Streamlit removed it) gives its reservations back too
        weakref.finalize(self, _release_all, self._reservations)

    def __contains__(self, name: object) -> bool:
        return name in self._objects

    def __getitem__(self, name: str) -> Any:
        return self._objects[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self.put(name, value)

    def put(self, name: str, value: Any, reservation: Any = None) -> None:
        """Hold ``value`` as ``name``, with the memory ``reservation`` made for it
        (:class:`explorer_core.memory_budget.Reservation`, or None); the reservation of the object it replaces
        is given back."""
        with self._lock:
            self._objects[name] = value
            old = self._reservations.pop(name, None)
            if reservation is not None:
                self._reservations[name] = reservation
        if old is not None and old is not reservation:
            old.release()

    def build(
        self, name: str, nbytes: int, what: str, build: Callable[[], Any], budget: Any, operator: bool = False
    ) -> Any:
        """Reserve ``nbytes`` from the server's memory ``budget``
        (:class:`explorer_core.memory_budget.MemoryBudget`; the share of the object ``name`` holds now counts
        as free), then ``build()`` the object and hold it as ``name`` with that reservation; the object.
        Nothing is built when the reservation is refused, and nothing stays reserved when ``build`` raises.

        Raises:
            explorer_core.memory_budget.ServerFullError: the server's budget cannot hold ``nbytes`` for a
                visitor (``operator`` False); what ``build`` raises.
        """
        reservation = budget.reserve(nbytes, what, operator=operator, replacing=self.reservation(name))
        try:
            value = build()
        except BaseException:
            reservation.release()
            raise
        self.put(name, value, reservation)
        return value

    def reservation(self, name: str) -> Any:
        """The memory reservation held for ``name`` (None when there is none)."""
        return self._reservations.get(name)

    def get(self, name: str, default: Any = None) -> Any:
        """The object called ``name``, or ``default``."""
        return self._objects.get(name, default)

    def __len__(self) -> int:
        return len(self._objects)

    def release(self, now: float | None = None) -> int:
        """Stop what runs (each object's ``stop()``, when it has one; errors are ignored: the object is
        being dropped), drop every object and give back its memory reservation; how many there were."""
        with self._lock:
            objects, self._objects = self._objects, {}
            reservations = dict(self._reservations)
            self._reservations.clear()
        for obj in objects.values():
            stop = getattr(obj, "stop", None)
            if callable(stop):
                with contextlib.suppress(Exception):
                    stop()
        for reservation in reservations.values():  # the server's memory budget gets the bytes back
            with contextlib.suppress(Exception):
                reservation.release()
        if objects:
            self.released_at = time.monotonic() if now is None else now
        return len(objects)


def _release_all(reservations: dict[str, Any]) -> None:
    """Give back every reservation of a work that is being garbage-collected (errors ignored)."""
    for reservation in list(reservations.values()):
        with contextlib.suppress(Exception):
            reservation.release()
    reservations.clear()


class SessionWorkRegistry:
    """Every live :class:`SessionWork` of the process by session id, and the sweep that releases the work
    of sessions gone for ``grace_s`` seconds.

    It holds the works weakly: a session that Streamlit removes takes its work with it. Thread-safe.

    Args:
        is_active: whether a session id still has a connection (Streamlit's
            ``Runtime.is_active_session``).
        grace_s: seconds without a connection before the work is released.
        clock: seconds, monotonic (a test passes its own).
    """

    def __init__(
        self, is_active: Callable[[str], bool], grace_s: float, clock: Callable[[], float] = time.monotonic
    ):
        self._is_active = is_active
        self.grace_s = float(grace_s)
        self._clock = clock
        self._works: weakref.WeakValueDictionary[str, SessionWork] = weakref.WeakValueDictionary()
        self._gone_since: dict[str, float] = {}
        self._lock = threading.Lock()

    def track(self, session_id: str, work: SessionWork) -> None:
        """Know ``work`` as the work of ``session_id`` (again: a call on every run is cheap)."""
        with self._lock:
            if self._works.get(session_id) is not work:
                self._works[session_id] = work
            self._gone_since.pop(session_id, None)

    def tracked(self) -> int:
        """Sessions whose work is known."""
        return len(self._works)

    def sweep(self) -> list[str]:
        """Release the work of every session without a connection for ``grace_s`` seconds; their ids.

        A session seen without a connection starts its grace; one seen with a connection again is
        forgiven. When anything was released, a full garbage collection follows
        (:func:`collect_released`): a session's objects are often in reference cycles.
        """
        now = self._clock()
        with self._lock:
            works = list(self._works.items())
        released = []
        for sid, work in works:
            if self._is_active(sid):
                self._gone_since.pop(sid, None)
                continue
            since = self._gone_since.setdefault(sid, now)
            if now - since >= self.grace_s and len(work):
                work.release(now)
                released.append(sid)
        with self._lock:
            live = set(self._works.keys())
            for sid in [s for s in self._gone_since if s not in live]:
                del self._gone_since[sid]
        if released:
            collect_released()
        return released


def collect_released() -> None:
    """Free what released work leaves: a full garbage collection (``runner.postScriptGC`` is off, and a
    quiet server may not run one for a long time), then glibc's ``malloc_trim(0)``, which hands freed heap
    back to the system (nothing happens where there is no glibc)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError, TypeError):
        import ctypes
        import ctypes.util

        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


def _sweep_forever(registry: SessionWorkRegistry, every_s: float) -> None:
    """The sweeper thread: ``registry.sweep()`` every ``every_s`` seconds, for the life of the process."""
    while True:
        time.sleep(every_s)
        with contextlib.suppress(Exception):  # a sweep must never end the thread
            registry.sweep()


#: seconds between two sweeps
SWEEP_S = 10.0
_PROCESS: SessionWorkRegistry | None = None
_PROCESS_LOCK = threading.Lock()


def process_registry(is_active: Callable[[str], bool] | None, grace_s: float) -> SessionWorkRegistry:
    """The process's one registry, created on first use; with ``is_active`` (a server is running) its
    sweeper thread (a daemon, every :data:`SWEEP_S` seconds) is started then too. Without it (no Streamlit
    runtime, e.g. AppTest) nothing is swept."""
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None:
            _PROCESS = SessionWorkRegistry(is_active or (lambda _sid: True), grace_s)
            if is_active is not None:
                sweeper = threading.Thread(
                    target=_sweep_forever, args=(_PROCESS, SWEEP_S), name="aevb-session-sweeper", daemon=True
                )
                sweeper.start()
        return _PROCESS
