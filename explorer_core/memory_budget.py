"""One memory budget for the whole server (issue 34; no Streamlit here).

The per-session limit (:func:`explorer_core.compute_budget.session_memory_limit`) bounds what one visitor's
configuration may need, but not how many of them the server holds: six visitors reloading a heavy Watch link
with different values took a 24 GB machine's server from 1.4 to 5.4 GB in 45 s, and a class of thirty would
have run it out of memory. So every large object a visitor's link or button creates reserves its estimate from
the process's :class:`MemoryBudget` *before* it is built; above the budget the visitor is told that the server
is full and what would fit, and nothing is built. A reservation is held by the session's work
(:class:`explorer_core.session_work.SessionWork`) beside the object and given back when the object is replaced
or the session's work is released (a closed tab, after its grace).

The budget's size is ``AEVB_SERVER_MEMORY_MB`` when set (a whole number of MiB >= 64), else
:data:`DEFAULT_FRACTION` of the machine's total memory (``/proc/meminfo``'s MemTotal, or ``os.sysconf``):
12 GiB of this project's 24 GiB machines. The operator's own work reserves too (so the sum stays true) but is
never refused. Thread-safe.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

ENV_SERVER_MEMORY = "AEVB_SERVER_MEMORY_MB"
#: the share of the machine's memory that visitors' work may reserve by default
DEFAULT_FRACTION = 0.5
#: the smallest budget a setting may ask for (MiB)
MIN_BUDGET_MB = 64


def total_memory_bytes() -> int | None:
    """The machine's total memory in bytes (``MemTotal`` in ``/proc/meminfo``, else ``os.sysconf``); None
    when neither says."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def default_budget_bytes() -> int:
    """The server's budget in bytes: ``AEVB_SERVER_MEMORY_MB`` when it is a whole number >= 64, else
    :data:`DEFAULT_FRACTION` of :func:`total_memory_bytes` (4 GiB when the machine does not say)."""
    text = os.environ.get(ENV_SERVER_MEMORY, "").strip()
    if text:
        try:
            mb = int(text)
            if mb >= MIN_BUDGET_MB:
                return mb * 2**20
        except ValueError:
            pass
    total = total_memory_bytes()
    return int(DEFAULT_FRACTION * total) if total else 4 * 2**30


class ServerFullError(RuntimeError):
    """A reservation that does not fit the server's memory budget; the message says what would fit."""


@dataclass
class Reservation:
    """Bytes reserved from a :class:`MemoryBudget` for one object; :meth:`release` gives them back (once;
    later calls do nothing)."""

    budget: MemoryBudget
    nbytes: int
    what: str
    _released: bool = field(default=False, repr=False)

    def release(self) -> None:
        """Give the bytes back to the budget (idempotent)."""
        self.budget._give_back(self)

    @property
    def released(self) -> bool:
        return self._released


class MemoryBudget:
    """The bytes the server's visitors' objects may hold together.

    Args:
        limit_bytes: the budget (> 0).

    Raises:
        ValueError: (on construction) a budget <= 0.
    """

    def __init__(self, limit_bytes: int):
        if limit_bytes <= 0:
            raise ValueError(f"the budget must be > 0 bytes, got {limit_bytes}.")
        self.limit_bytes = int(limit_bytes)
        self._reserved = 0
        self._peak = 0
        self._lock = threading.Lock()

    @property
    def reserved_bytes(self) -> int:
        """The bytes reserved now."""
        with self._lock:
            return self._reserved

    @property
    def peak_bytes(self) -> int:
        """The most ever reserved at once (for benchmarks)."""
        with self._lock:
            return self._peak

    @property
    def free_bytes(self) -> int:
        """What a visitor may still reserve (0 when the operator's work went over)."""
        with self._lock:
            return max(0, self.limit_bytes - self._reserved)

    def reserve(
        self, nbytes: int, what: str, operator: bool = False, replacing: Reservation | None = None
    ) -> Reservation:
        """Reserve ``nbytes`` for ``what`` (a short name: "a Watch run"), before it is built.

        The operator is never refused (its bytes count all the same). ``replacing``: the reservation of the
        object the new one will replace; its bytes count as free for this check (the old object goes when the
        new one is stored), but it stays held until it is released.

        Raises:
            ServerFullError: a visitor's reservation above what is free; the message says how much is free.
            ValueError: a negative size.
        """
        if nbytes < 0:
            raise ValueError(f"cannot reserve {nbytes} bytes.")
        with self._lock:
            free = self.limit_bytes - self._reserved
            if replacing is not None and not replacing._released and replacing.budget is self:
                free += replacing.nbytes
            if not operator and nbytes > free:
                raise ServerFullError(
                    f"the server is full: {what} needs about {_mb(nbytes)}, and {_mb(max(free, 0))} of the "
                    f"{_mb(self.limit_bytes)} the server gives its visitors are free now. Try a smaller "
                    "configuration, or again in a minute (a closed tab gives its share back after a while)."
                )
            self._reserved += int(nbytes)
            self._peak = max(self._peak, self._reserved)
            return Reservation(self, int(nbytes), what)

    def _give_back(self, reservation: Reservation) -> None:
        with self._lock:
            if reservation._released:
                return
            reservation._released = True
            self._reserved -= reservation.nbytes


def _mb(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.0f} MB"


_PROCESS: MemoryBudget | None = None
_PROCESS_LOCK = threading.Lock()


def server_memory() -> MemoryBudget:
    """The process's one budget (:func:`default_budget_bytes`), created on first use."""
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None:
            _PROCESS = MemoryBudget(default_budget_bytes())
        return _PROCESS
