"""Lecture mode: one switch in the sidebar, kept in the URL (``?lecture=1``, ``&scale=125``), for a page shown
on a projector.

What it changes (normal mode stays as it is):

* **Prose folds away**: a page writes its introduction with :func:`intro`; in lecture mode it sits in a closed
  expander ("About this page") instead of above the live picture, so the picture and its controls start on
  the first screen.
* **Less chrome**: the top padding of the page, the space under its title and between elements, the
  expanders' headers and the metrics' values shrink, so the picture fits a projector's 720 px.
* **Projector scale** (100 / 125 / 150 %): the page's main block is drawn at that CSS ``zoom``; Streamlit's
  text, the canvases (latent pad, live charts, 3-D scatter: fonts, point sizes, line widths, decoded images)
  and the images grow together. The canvases size their backing store by ``devicePixelRatio × zoom``
  (``canvas.js``), so they stay sharp on a high-DPI projector, and the latent pad divides pointer positions by
  the zoom, so dragging still lands where the pointer is.
"""

from __future__ import annotations

import contextlib

import streamlit as st

#: the projector scales offered, in percent
SCALES = (100, 125, 150)
LECTURE_KEY = "lecture"
SCALE_KEY = "lecture_scale"


def _from_url() -> None:
    """First values from the URL (``lecture=1``, ``scale=125``); a value out of range is ignored."""
    state = st.session_state
    if LECTURE_KEY not in state:
        state[LECTURE_KEY] = st.query_params.get("lecture") == "1"
    if SCALE_KEY not in state:
        try:
            scale = int(st.query_params.get("scale", "100"))
        except ValueError:
            scale = 100
        state[SCALE_KEY] = scale if scale in SCALES else 100


def lecture_mode() -> bool:
    """Whether this session shows pages in lecture mode."""
    return bool(st.session_state.get(LECTURE_KEY))


def sidebar_switch() -> None:
    """The switch and, in lecture mode, the scale (call in the sidebar on every run of the app); writes both
    to the URL so a prepared link opens in lecture mode, and styles the page."""
    _from_url()
    st.toggle(
        ":material/school: Lecture mode",
        key=LECTURE_KEY,
        help="For a projector: the live picture and its controls on the first screen (the prose folds into "
        "'About this page'), and a projector scale. Kept in the link (?lecture=1).",
    )
    if lecture_mode():
        st.segmented_control(
            "Projector scale",
            SCALES,
            key=SCALE_KEY,
            format_func=lambda s: f"{s} %",
            required=True,
        )
        st.query_params["lecture"] = "1"
        scale = int(st.session_state.get(SCALE_KEY) or 100)
        if scale != 100:
            st.query_params["scale"] = str(scale)
        elif "scale" in st.query_params:
            del st.query_params["scale"]
        _style(scale)
    else:
        for name in ("lecture", "scale"):
            if name in st.query_params:
                del st.query_params[name]


def _style(scale: int) -> None:
    """The lecture-mode CSS: less padding above the page and under its title, the main block zoomed."""
    zoom = max(SCALES[0], min(int(scale), SCALES[-1])) / 100
    st.html(
        "<style>"
        f'[data-testid="stMainBlockContainer"] {{padding-top: {1.2 if zoom == 1 else 2.4}rem !important;'
        f" padding-bottom: 2rem !important; zoom: {zoom};}}"
        '[data-testid="stMainBlockContainer"] h1 {padding-top: 0 !important;'
        " padding-bottom: 0.2rem !important; font-size: 1.9rem !important;}"
        '[data-testid="stHeader"] {height: 2rem !important;}'
        # a projector's 720 px: half the space between elements, slimmer expander headers, smaller metric
        # values (the live charts carry the same numbers)
        '[data-testid="stMainBlockContainer"] [data-testid="stVerticalBlock"] {gap: 0.45rem !important;}'
        '[data-testid="stMainBlockContainer"] [data-testid="stExpander"] summary {padding-top: 0.3rem'
        " !important; padding-bottom: 0.3rem !important;}"
        '[data-testid="stMainBlockContainer"] [data-testid="stMetricValue"] {font-size: 1.45rem !important;}'
        '[data-testid="stMainBlockContainer"] [data-testid="stMetric"] label {min-height: 0 !important;}'
        "</style>"
    )


def compact() -> bool:
    """Lecture mode at a projector scale above 100 %: a row of buttons has less room there."""
    return lecture_mode() and int(st.session_state.get(SCALE_KEY) or 100) > 100


def label(full: str, short: str) -> str:
    """A button's label: ``short`` when :func:`compact` (a long label would be cut), else ``full``."""
    return short if compact() else full


def icon_button(full: str, icon: str) -> dict[str, str | None]:
    """A button's ``label`` and ``icon`` (keyword arguments of ``st.button``): ``full`` with the Material
    ``icon`` beside it, or, when :func:`compact`, the icon alone as the label (its name is then what a
    screen reader says)."""
    return {"label": icon, "icon": None} if compact() else {"label": full, "icon": icon}


def folded(title: str):
    """Where a page's settings row goes: in lecture mode a closed expander titled ``title`` (the live
    picture then starts on a projector's first screen), else the page itself. Enter it with ``with``; it
    may be entered again (a later widget of the same settings)."""
    return st.expander(title) if lecture_mode() else contextlib.nullcontext()


def intro(markdown: str) -> None:
    """A page's introduction: shown as it is normally, folded into a closed expander in lecture mode."""
    if lecture_mode():
        with st.expander("About this page", expanded=False):
            st.markdown(markdown)
    else:
        st.markdown(markdown)
