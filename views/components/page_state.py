"""A page's state: first values of its widgets, values queued for widgets already drawn, and the state that
travels in the URL (``st.query_params``), so a lecturer can hand out a link that opens exactly one view."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st

from explorer_core.access import class_mode, may_change
from explorer_core.session_work import SessionWork, default_grace_s, process_registry
from explorer_core.url_state import finite_float, int_in, read_query  # noqa: F401 (the pages read them here)
from views._models import available_models

#: the session state key that holds whether this session gave the operator's passphrase (Training page)
OPERATOR_KEY = "tr_operator"


def session_id() -> str:
    """This browser session's id (Streamlit's), for the per-session limits (passphrase attempts, the
    compute budget)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return str(ctx.session_id) if ctx is not None else "no-session"


#: the cookie Streamlit's server sets once per browser (its XSRF token): the same in every tab, kept on reload
BROWSER_COOKIE = "_streamlit_xsrf"


def browser_id(cookies: Mapping[str, str] | None, fallback: str) -> str:
    """An id of the browser behind a session: a digest of its :data:`BROWSER_COOKIE` (the token itself is
    never kept or shown), the same for all its tabs and after a reload; ``fallback`` (the session id) when
    the request had no such cookie (AppTest, a client that refuses cookies)."""
    value = (cookies or {}).get(BROWSER_COOKIE)
    if not isinstance(value, str) or not value:
        return fallback
    return "browser-" + hashlib.blake2b(_xsrf_token(value), digest_size=8).hexdigest()


def _xsrf_token(value: str) -> bytes:
    """The token inside an XSRF cookie: the server writes it masked anew on each page load
    (``2|mask|masked token|time``, Tornado's version 2: the token is the masked bytes XOR the 4-byte mask),
    so each tab gets another cookie string for the same token; any other form is taken as it is."""
    parts = value.split("|")
    if len(parts) == 4 and parts[0] == "2":
        try:
            mask, masked = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
        except ValueError:
            mask = masked = b""
        if len(mask) == 4 and masked:
            return bytes(b ^ mask[i % 4] for i, b in enumerate(masked))
    return value.encode("utf-8", "replace")


#: the session state key under which :func:`client_id` keeps the session's browser id (its cookies are those
#: its connection came with, so the id cannot change within a session)
CLIENT_ID_KEY = "_aevb_client_id"


def client_id() -> str:
    """This session's browser (:func:`browser_id` of the cookies its connection came with): the compute
    budget's line gives one place per browser, not per tab (issue 34). Worked out once per session (every
    frame of Play asks for it)."""
    known = st.session_state.get(CLIENT_ID_KEY)
    if isinstance(known, str):
        return known
    try:
        cookies = dict(st.context.cookies)
    except Exception:  # no context (bare mode) or another Streamlit: one place per session
        cookies = {}
    found = browser_id(cookies, session_id())
    st.session_state[CLIENT_ID_KEY] = found
    return found


def operator() -> bool:
    """Whether this session may change things on the server: always outside class mode, in class mode once
    it gave the operator's passphrase on the Training page (``explorer_core.access.may_change``)."""
    return may_change(bool(st.session_state.get(OPERATOR_KEY)))


#: the session state key of the session's :class:`explorer_core.session_work.SessionWork`
WORK_KEY = "session_work"


def _is_active(session: str) -> bool:
    from streamlit import runtime

    return not runtime.exists() or runtime.get_instance().is_active_session(session)


def session_work() -> SessionWork:
    """This session's large objects (Watch it learn's and the FA page's experiments), which the server lets
    go of once the tab has been without a connection for a while (:mod:`explorer_core.session_work`; the
    sweeper starts with the first call in a running server). A tab that comes back after that finds it
    empty, and is told once why its run starts afresh."""
    from streamlit import runtime

    work = st.session_state.get(WORK_KEY)
    if not isinstance(work, SessionWork):
        work = st.session_state[WORK_KEY] = SessionWork()
    registry = process_registry(_is_active if runtime.exists() else None, default_grace_s(class_mode()))
    registry.track(session_id(), work)
    if work.released_at is not None:
        work.released_at = None
        st.toast(
            f"This tab was away for more than {registry.grace_s:.0f} s, so the server let go of its run: "
            "a new one starts here.",
            icon=":material/power_off:",
        )
    return work


Region = tuple[tuple[float, float], tuple[float, float]]


@dataclass
class PadState:
    """A page's latent-pad state besides its widgets' values (:mod:`views.components.pad_fragment`).

    Attributes:
        u, v: z on the pad's plane on a page whose z is not held by slider widgets (GMVAE, Watch).
        zoom: the step along ``pad_fragment.ZOOMS`` on a page without a zoom widget (GMVAE).
        centre: (u, v) the zoomed region is centred on; ``None``: the centre of the ranges.
        box: the zoomed box ((u0, u1), (v0, v1)) of a page that zooms a box, not the pad (Watch).
        ack: the sequence number of the last move of the browser that the server answered.
        points_sent: the point-set versions this session's pad was sent (the newest few).
        rerun_app, rerun_zoom: a pick or a wheel notch that the rest of the page must follow (one rerun).
        decode_s: the server seconds of the last decode under the pointer.
    """

    u: float | None = None
    v: float | None = None
    zoom: int = 1
    centre: tuple[float, float] | None = None
    box: Region | None = None
    ack: int = 0
    points_sent: list[str] = field(default_factory=list)
    rerun_app: bool = False
    rerun_zoom: bool = False
    decode_s: float = 0.0


@dataclass
class PageState:
    """What a page keeps in the session besides its widgets' values, as one object under the key
    ``{prefix}_page`` (:func:`page_state`): its latent pad's state and the values queued for widgets already
    drawn (:func:`apply_pending`). A page with more to keep subclasses it here (:class:`WatchState`), not in
    its script."""

    pad: PadState = field(default_factory=PadState)
    pending: dict[str, Any] = field(default_factory=dict)


@dataclass
class WatchState(PageState):
    """The Watch page's state besides its widgets and its experiment (defined here, not in the page's
    script, which Streamlit runs afresh on every rerun: a class defined there would be a new class each time).

    Attributes:
        region: the map's region ((u0, u1), (v0, v1)) of the last frame (the next one keeps it when it can).
        shown_step: the step of the frame shown last; server_ms: that frame's server milliseconds.

    The pad's state (z, the zoomed box of the manifold, the acknowledged move) is :attr:`pad`. The paused
    pad's browser decoder (its weights, about 1 MB) is in the session's work, beside the experiment, and goes
    with it (``work["watch_decoder"]``).
    """

    region: Region | None = None
    shown_step: int = 0
    server_ms: float = 0.0


S = TypeVar("S", bound=PageState)


def page_state(prefix: str, kind: type[S] = PageState) -> S:
    """This session's state object of the page ``prefix`` (a fresh ``kind()`` the first time, or when the
    key holds something else)."""
    key = f"{prefix}_page"
    held = st.session_state.get(key)
    if not isinstance(held, kind):
        held = st.session_state[key] = kind()
    return held


def forget_page_state(prefix: str) -> None:
    """Drop the page's state object (a new model: the pad, its zoom and the queued values start again)."""
    st.session_state.pop(f"{prefix}_page", None)


def init_state(defaults: dict[str, Any]) -> None:
    """Give widget keys their first values (widgets are then created without ``value=``)."""
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


def apply_pending(prefix: str) -> None:
    """Values queued for widgets that were already drawn (:attr:`PageState.pending`: a map click's, a new
    drawing's), applied before any is drawn."""
    page = page_state(prefix)
    pending, page.pending = page.pending, {}
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


#: the icon of every button that draws new noise (a die)
RESEED_ICON = ":material/casino:"


def reseed_button(label: str, key: str, seed_key: str, where: Any = st) -> None:
    """A button (with :data:`RESEED_ICON`) that moves the integer seed in ``st.session_state[seed_key]`` on
    (:func:`next_seed`: new noise, same view), drawn in ``where`` (a column; default: the page)."""
    where.button(
        label,
        icon=RESEED_ICON,
        key=key,
        on_click=lambda: st.session_state.update({seed_key: next_seed(st.session_state.get(seed_key, 0))}),
    )


# ----------------------------------------------------------------------------------- state in the URL


def url_in(prefix: str, spec: dict[str, tuple[str | Callable[[Any], None], Callable[[str], Any]]]) -> None:
    """Once per session and page: take the page's state from the URL's query parameters
    (:func:`explorer_core.url_state.read_query`, the one codec of a link's text).

    ``spec`` maps a parameter name to (target, parse): the target is a state key or a function that takes
    the value; ``parse`` turns the text into a value or raises ``ValueError`` (the parameter is then
    ignored). Call before the widgets are drawn.
    """
    flag = f"{prefix}_url_read"
    if st.session_state.get(flag):
        return
    st.session_state[flag] = True
    values = read_query(st.query_params, {name: parse for name, (_, parse) in spec.items()})
    for name, value in values.items():
        target = spec[name][0]
        if callable(target):
            target(value)
        else:
            st.session_state[target] = value


def url_out(values: dict[str, Any]) -> None:
    """Write the page's state to the URL (only the parameters whose text changed)."""
    for name, value in values.items():
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        if st.query_params.get(name) != text:
            st.query_params[name] = text


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
