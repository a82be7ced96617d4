"""A bounded cache shared by every session of the server that builds each entry once (no Streamlit here).

Work a visitor can start with a parameter of its own (a posterior of a drawing, a GIF of a seed) is kept by
what it computed from, so the same request is computed once and then served from memory, and a flood of
different requests cannot grow the server's memory without bound (issue 34): at most ``max_entries``
entries and ``max_bytes`` bytes, least recently used first out. Requests for an entry being built wait for
that one build (a single flight per key) instead of building it again beside it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class OnceCache(Generic[V]):
    """Entries built once per key, shared by every session, bounded in count and bytes.

    Args:
        max_entries: entries kept at most (>= 1).
        max_bytes: their total size at most (>= 1), by ``size``; an entry larger than this is built and
            returned but not kept.
        size: the bytes of one entry (default: ``len``, for ``bytes``).

    Raises:
        ValueError: (on construction) a bound below 1.
    """

    def __init__(
        self,
        max_entries: int = 32,
        max_bytes: int = 64 * 2**20,
        size: Callable[[V], int] = len,  # type: ignore[assignment]
    ):
        if max_entries < 1 or max_bytes < 1:
            raise ValueError(f"bounds must be >= 1, got {max_entries} entries and {max_bytes} bytes.")
        self.max_entries, self.max_bytes = int(max_entries), int(max_bytes)
        self._size = size
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()
        self.builds = 0  # how many times a build function ran to the end (for tests and benchmarks)

    @property
    def size_bytes(self) -> int:
        """The bytes held now (by ``size``)."""
        with self._lock:
            return sum(n for _, n in self._items.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def get(self, key: Hashable) -> V | None:
        """The entry kept under ``key``, or None (nothing is built)."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key][0]

    def get_or_build(self, key: Hashable, build: Callable[[], V]) -> V:
        """The entry ``key``: from memory, or ``build()`` (once, whoever else asks meanwhile waits for it).

        Raises:
            whatever ``build`` raises (nothing is kept then; the next request builds again).
        """
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
            gate = self._building.setdefault(key, threading.Lock())
        with gate:  # one build per key at a time: the others wait for it and then find it kept
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key][0]
            done, value = False, None
            try:
                value = build()
                done = True
            finally:
                with self._lock:  # kept before the gate goes, so no request falls between the two
                    self._building.pop(key, None)
                    if done:
                        self.builds += 1
                        self._keep(key, value)  # type: ignore[arg-type]
            return value  # type: ignore[return-value]

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._items.clear()

    def _keep(self, key: Hashable, value: V) -> None:
        """Keep ``value`` under ``key`` within the bounds (the caller holds the lock)."""
        n = int(self._size(value))
        if n > self.max_bytes:
            return
        self._items[key] = (value, n)
        while len(self._items) > self.max_entries or sum(m for _, m in self._items.values()) > self.max_bytes:
            self._items.popitem(last=False)


def approx_nbytes(value: object, _depth: int = 0) -> int:
    """The bytes of the arrays inside ``value`` (numpy arrays, torch tensors, ``bytes``, and those inside
    dataclasses, lists, tuples and dicts, four levels deep), plus 64 for each other object: the size a
    :class:`OnceCache` of computed results charges each entry."""
    import dataclasses

    import numpy as np

    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    try:
        import torch

        if isinstance(value, torch.Tensor):
            return int(value.element_size() * value.nelement())
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if _depth >= 4:
        return 64
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return 64 + sum(approx_nbytes(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value))
    if isinstance(value, list | tuple):
        return 64 + sum(approx_nbytes(v, _depth + 1) for v in value)
    if isinstance(value, dict):
        return 64 + sum(approx_nbytes(v, _depth + 1) for v in value.values())
    return 64
