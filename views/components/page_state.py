"""A page's state: first values of its widgets, values queued for widgets already drawn, and the state that
travels in the URL (``st.query_params``), so a lecturer can hand out a link that opens exactly one view."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from explorer_core.access import may_change
from views._models import available_models

#: the session state key that holds whether this session gave the operator's passphrase (Training page)
OPERATOR_KEY = "tr_operator"


def session_id() -> str:
    """This browser session's id (Streamlit's), for the per-session limits (passphrase attempts, the
    compute budget)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return str(ctx.session_id) if ctx is not None else "no-session"


def operator() -> bool:
    """Whether this session may change things on the server: always outside class mode, in class mode once
    it gave the operator's passphrase on the Training page (``explorer_core.access.may_change``)."""
    return may_change(bool(st.session_state.get(OPERATOR_KEY)))


def init_state(defaults: dict[str, Any]) -> None:
    """Give widget keys their first values (widgets are then created without ``value=``)."""
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


def apply_pending(prefix: str) -> None:
    """Values queued by a map click for widgets that were already drawn; applied before any is drawn."""
    pending = st.session_state.pop(f"{prefix}_pending", None)
    if pending:
        for key, value in pending.items():
            st.session_state[key] = value


#: the seeds a page takes (its number inputs and its URL): 0..SEED_MAX
SEED_MAX = 2**31 - 1


def next_seed(seed: Any) -> int:
    """The seed after ``seed`` (new noise, same view): ``seed + 1``, and at :data:`SEED_MAX` one below it, so
    the new seed is always another one in 0..SEED_MAX (what the page's own URL parser accepts), never a
    jump back to 0. A value that is not a whole number in range (from a browser) gives 1."""
    try:
        value = int(seed)
    except (TypeError, ValueError, OverflowError):
        return 1
    if not 0 <= value <= SEED_MAX:
        return 1
    return value + 1 if value < SEED_MAX else SEED_MAX - 1


def reseed_button(label: str, key: str, seed_key: str, where: Any = st) -> None:
    """A button that moves the integer seed in ``st.session_state[seed_key]`` on (:func:`next_seed`: new
    noise, same view), drawn in ``where`` (a column; default: the page)."""
    where.button(
        label,
        key=key,
        on_click=lambda: st.session_state.update({seed_key: next_seed(st.session_state.get(seed_key, 0))}),
    )


# ----------------------------------------------------------------------------------- state in the URL


def url_in(prefix: str, spec: dict[str, tuple[str, Callable[[str], Any]]]) -> None:
    """Once per session and page: take the page's state from the URL's query parameters.

    ``spec`` maps a parameter name to (state key, parse); ``parse`` turns the text into a value or raises
    ``ValueError`` (the parameter is then ignored). Call before the widgets are drawn.
    """
    flag = f"{prefix}_url_read"
    if st.session_state.get(flag):
        return
    st.session_state[flag] = True
    for name, (key, parse) in spec.items():
        text = st.query_params.get(name)
        if text is None:
            continue
        try:
            st.session_state[key] = parse(str(text)[:64])
        except (ValueError, TypeError):
            continue


def url_out(values: dict[str, Any]) -> None:
    """Write the page's state to the URL (only the parameters whose text changed)."""
    for name, value in values.items():
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        if st.query_params.get(name) != text:
            st.query_params[name] = text


def finite_float(text: str) -> float:
    """A finite float from URL text; ``ValueError`` otherwise."""
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(text)
    return value


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """A parser of an int in [lo, hi] from URL text."""

    def parse(text: str) -> int:
        value = int(text)
        if not lo <= value <= hi:
            raise ValueError(text)
        return value

    return parse


def model_from_url(family: str, prefix: str) -> None:
    """Before the picker is drawn (once per session): the model named by the URL's ``model`` parameter."""
    flag = f"{prefix}_url_model"
    if st.session_state.get(flag):
        return
    st.session_state[flag] = True
    name = st.query_params.get("model")
    if not name:
        return
    for meta in available_models(family):
        if meta.get("name") == name:
            st.session_state[f"{prefix}_model"] = meta["path"]
            return


def model_name(meta: dict[str, Any]) -> str:
    """The model's name as the URL carries it."""
    return str(meta.get("name", Path(meta["path"]).stem))
