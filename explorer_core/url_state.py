"""A view's state in the URL: the one codec every page uses to read a link's query parameters (no Streamlit).

A link is untrusted text: each parameter is parsed by its own parser, cut to :data:`MAX_TEXT` characters
first; a parameter that does not parse (``ValueError``, ``TypeError``, ``OverflowError``) is left out, never
an error. The parsers here cover what the pages carry: numbers in a range, finite floats, one of a set of
choices. Pages write their state back with ``views.components.page_state.url_out``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
#: the most characters of a parameter's text that are read
MAX_TEXT = 64


def read_query(query: Mapping[str, Any], spec: Mapping[str, Callable[[str], Any]]) -> dict[str, Any]:
    """The parameters of ``spec`` (name -> parser) that ``query`` holds and that parse, by name; the others
    are left out. Never raises."""
    out: dict[str, Any] = {}
    for name, parse in spec.items():
        text = query.get(name)
        if text is None:
            continue
        try:
            out[name] = parse(str(text)[:MAX_TEXT])
        except (ValueError, TypeError, OverflowError):
            continue
    return out


def finite_float(text: str) -> float:
    """A finite float from URL text.

    Raises:
        ValueError: not a number, or not finite.
    """
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """A parser of a whole number in [lo, hi] from URL text (raising ``ValueError`` outside it)."""

    def parse(text: str) -> int:
        value = int(text)
        if not lo <= value <= hi:
            raise ValueError(text)
        return value

    return parse


def one_of(options: Sequence[T]) -> Callable[[str], T]:
    """A parser that accepts one of ``options``: the option whose text is the URL text, or (a float option)
    whose value it is; ``ValueError`` otherwise."""

    def parse(text: str) -> T:
        for option in options:
            if str(option) == text:
                return option
        for option in options:
            if isinstance(option, float) and float(text) == option:
                return option
        raise ValueError(text)

    return parse
