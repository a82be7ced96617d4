"""Who may change things: the operator's passphrase in class mode (no Streamlit here).

``make run`` serves on localhost only: whoever can open the page is the person at the machine, and may start,
cancel, resume and delete training runs. ``make serve`` opens the app to a class (``AEVB_CLASS_MODE=1``):
then everyone can explore every page and model, but changing things needs the operator's passphrase, taken
from the environment variable ``AEVB_OPERATOR_PASSPHRASE`` (never written to a file or a log). The
comparison is constant-time (``hmac.compare_digest`` of the two SHA-256 digests, so the length is not
revealed either). Without a passphrase set, class mode is read-only for everyone.

Attempts are rate-limited (:class:`PassphraseGate`, one per process: :data:`PASSPHRASE_GATE`): after two
failed attempts in a row (typos) a session waits 1 s, then 2, 4, ... up to 60 s before its next attempt is
even compared; and once the whole process has seen more than 10 failures within a minute, every session
waits a growing delay too (a class of scripted sessions cannot share the work). A failure is logged with the
session's short id and the counts, never with the text that was tried.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

ENV_CLASS_MODE = "AEVB_CLASS_MODE"
ENV_PASSPHRASE = "AEVB_OPERATOR_PASSPHRASE"
ENV_SESSION_LIMIT = "AEVB_SESSION_RUN_LIMIT"
#: queued or running runs one browser session may have started at once
DEFAULT_SESSION_RUN_LIMIT = 2


def class_mode() -> bool:
    """Whether the app is served to others (``AEVB_CLASS_MODE`` is ``1``, ``true`` or ``yes``)."""
    return os.environ.get(ENV_CLASS_MODE, "").strip().lower() in ("1", "true", "yes", "on")


def passphrase_configured() -> bool:
    """Whether an operator passphrase is set (an empty one counts as none)."""
    return bool(os.environ.get(ENV_PASSPHRASE, ""))


def check_passphrase(given: str | None) -> bool:
    """True when ``given`` is the operator's passphrase (constant-time; False when none is configured)."""
    expected = os.environ.get(ENV_PASSPHRASE, "")
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(
        hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest(),
        hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest(),
    )


def may_change(unlocked: bool) -> bool:
    """Whether a session may start, cancel, resume or delete runs: always outside class mode; in class mode
    only once it gave the passphrase (``unlocked``)."""
    return (not class_mode()) or bool(unlocked)


def session_run_limit() -> int:
    """Queued or running runs a session may have started at once (``AEVB_SESSION_RUN_LIMIT``, default 2)."""
    try:
        value = int(os.environ.get(ENV_SESSION_LIMIT, DEFAULT_SESSION_RUN_LIMIT))
    except ValueError:
        return DEFAULT_SESSION_RUN_LIMIT
    return max(1, min(value, 100))


# --------------------------------------------------------------------------------- passphrase attempts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    """What came of a passphrase attempt.

    Attributes:
        ok: the passphrase was right (the session may change things).
        checked: the attempt was compared at all (False: refused because it came too soon).
        wait_s: seconds before this session's next attempt is compared (0 after a success).
    """

    ok: bool
    checked: bool
    wait_s: float

    def message(self) -> str:
        """One line for the person who typed it."""
        if self.ok:
            return "Unlocked."
        wait = f"try again in {max(1, round(self.wait_s))} s"
        if not self.checked:
            return f"Too many attempts: not checked; {wait}."
        return f"That is not the operator's passphrase ({wait})."


class PassphraseGate:
    """A rate limit of operator-passphrase attempts, per session and per process, with a growing delay.

    Per session: the first ``session_free_failures`` failures in a row cost nothing; after ``n`` more the next
    attempt is compared only ``base_delay_s * 2**(n-1)`` seconds (at most ``max_delay_s``) after the last
    one; a success clears the session's count. Per process:
    once more than ``process_free_failures`` failures (any sessions) fall within the last ``window_s``
    seconds, every attempt waits ``base_delay_s * 2**(excess-1)`` seconds (at most ``max_delay_s``) after
    the last failure. An attempt that comes too soon is refused without being compared. Thread-safe.

    Args:
        base_delay_s, max_delay_s: the first delay and the cap, in seconds.
        window_s: the process's window of recent failures, in seconds.
        session_free_failures: failures in a row a session may make without a delay (typos).
        process_free_failures: failures the process allows within the window before it delays everyone.
        check: compares a passphrase (default :func:`check_passphrase`).
        clock: seconds, monotonic (tests pass a fake one).
    """

    #: sessions remembered at most (the oldest are forgotten first)
    MAX_SESSIONS = 10_000

    def __init__(
        self,
        base_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        window_s: float = 60.0,
        session_free_failures: int = 2,
        process_free_failures: int = 10,
        check: Callable[[str | None], bool] = check_passphrase,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.base_delay_s = float(base_delay_s)
        self.max_delay_s = float(max_delay_s)
        self.window_s = float(window_s)
        self.session_free_failures = int(session_free_failures)
        self.process_free_failures = int(process_free_failures)
        self._check = check
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[int, float]] = {}  # session -> (failures in a row, last failure)
        self._recent: deque[float] = deque()  # times of the process's failures within the window

    def _delay(self, n: int) -> float:
        return 0.0 if n <= 0 else min(self.max_delay_s, self.base_delay_s * 2 ** (n - 1))

    def wait_s(self, session_id: str) -> float:
        """Seconds before an attempt of ``session_id`` will be compared (0: now)."""
        with self._lock:
            return self._wait_locked(str(session_id), self._clock())

    def _wait_locked(self, session_id: str, now: float) -> float:
        while self._recent and now - self._recent[0] > self.window_s:
            self._recent.popleft()
        waits = [0.0]
        failures, last = self._sessions.get(session_id, (0, 0.0))
        if failures:
            waits.append(last + self._delay(failures - self.session_free_failures) - now)
        excess = len(self._recent) - self.process_free_failures
        if excess > 0:
            waits.append(self._recent[-1] + self._delay(excess) - now)
        return max(waits)

    def attempt(self, session_id: str, given: str | None) -> Attempt:
        """Compare ``given`` for ``session_id`` unless it comes too soon; a failure is counted and logged
        (without ``given``)."""
        session_id = str(session_id)
        with self._lock:
            now = self._clock()
            wait = self._wait_locked(session_id, now)
            if wait > 0:
                log.warning("operator passphrase: attempt refused, too soon (session %s)", session_id[:8])
                return Attempt(False, False, wait)
        ok = self._check(given)  # constant-time, outside the lock
        with self._lock:
            now = self._clock()
            if ok:
                self._sessions.pop(session_id, None)
                return Attempt(True, True, 0.0)
            failures = self._sessions.pop(session_id, (0, 0.0))[0] + 1
            self._sessions[session_id] = (failures, now)
            while len(self._sessions) > self.MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._recent.append(now)
            wait = self._wait_locked(session_id, now)
            recent = len(self._recent)
        log.warning(
            "operator passphrase: failed attempt (session %s: %d in a row; %d in the process within %g s)",
            session_id[:8],
            failures,
            recent,
            self.window_s,
        )
        return Attempt(False, True, wait)


#: the process's one gate (every page that takes the passphrase uses it)
PASSPHRASE_GATE = PassphraseGate()
