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
* **At a projector scale above 100 %** the pictures come first, as the fold does at 100 %: in each column of
  the page the block holding a live picture (:data:`PICTURES`) moves up under the title, the block holding
  the player's buttons (:data:`PLAYER`) under it, and the metrics, settings and prose follow (CSS ``order``,
  so nothing is re-run or re-sent); choosing such a scale folds the sidebar (the page needs the width), and a
  plotly chart or a data grid is drawn at 100 % (they measure their box in zoomed pixels and would overflow
  sideways).

**On a narrow screen** (a phone, at most 640 px wide, lecture mode or not) the same order holds: the picture
first, under the title, then its buttons, then the metrics and sliders that Streamlit stacks there.
"""

from __future__ import annotations

import contextlib
import time

import streamlit as st

#: the projector scales offered, in percent
SCALES = (100, 125, 150)
LECTURE_KEY = "lecture"
SCALE_KEY = "lecture_scale"
#: the Streamlit keys of the live pictures: the block holding one comes first at a zoom and on a phone
PICTURES = (
    "fa_scatter",
    "fa_curves",
    "vae_pad",
    "cvae_pad",
    "gmvae_pad",
    "gmvae_samples",
    "watch_pad",
    "watch_map",
    "vrnn_grid",
)
#: the keys of the buttons used while a picture plays: their row follows the picture
PLAYER = ("fa_play", "watch_play", "vrnn_play")
#: a phone's width and less (Streamlit stacks columns there too)
NARROW_PX = 640
_FOLD_SIDEBAR = "_lecture_fold_sidebar"


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


def _scale() -> int:
    return int(st.session_state.get(SCALE_KEY) or 100)


def sidebar_state() -> str:
    """``initial_sidebar_state`` for ``st.set_page_config``: ``"collapsed"`` in lecture mode at a scale above
    100 % (a prepared link, or a scale just chosen: the zoomed page needs the width), else ``"auto"``.
    Call before the sidebar is drawn, on every run."""
    _from_url()
    return "collapsed" if lecture_mode() and _scale() > 100 else "auto"


def _on_scale() -> None:
    if _scale() > 100:
        st.session_state[_FOLD_SIDEBAR] = True


def _fold_sidebar_now() -> None:
    """Fold an open sidebar once (a scale above 100 % was just chosen). ``set_page_config`` folds it only
    where the browser has no sidebar state of its own stored (a visitor who opened it keeps it open): this
    clicks Streamlit's own fold button, so the choice is stored as the visitor's would be. The script differs
    on every call (a new element, so it runs again: two choices in a row with no run between would keep the
    first)."""
    st.html(
        f"<script>/* {time.time_ns()} */"
        "(() => { const sb = window.parent.document.querySelector('[data-testid=\"stSidebar\"]');"
        " if (sb && sb.dataset.collapsed === 'false') {"
        " const b = sb.querySelector('[data-testid=\"stSidebarCollapseButton\"] button'); if (b) b.click(); }"
        " })();</script>",
        unsafe_allow_javascript=True,
    )


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
            on_change=_on_scale,
        )
        st.query_params["lecture"] = "1"
        scale = int(st.session_state.get(SCALE_KEY) or 100)
        if scale != 100:
            st.query_params["scale"] = str(scale)
        elif "scale" in st.query_params:
            del st.query_params["scale"]
        _style(scale)
        if st.session_state.pop(_FOLD_SIDEBAR, False):
            _fold_sidebar_now()
    else:
        for name in ("lecture", "scale"):
            if name in st.query_params:
                del st.query_params[name]
    st.html(f"<style>@media (max-width: {NARROW_PX}px) {{{pictures_first_css(stacked=True)}}}</style>")


def pictures_first_css(main: str = '[data-testid="stMainBlockContainer"]', stacked: bool = False) -> str:
    """CSS that puts, in every block of the page (a column's, the page's), the title first, then the block
    that holds a live picture, then the one that holds the player's buttons, then the rest in their order.
    Columns side by side keep their places; ``stacked`` (a phone's, where Streamlit stacks them) reorders
    them too."""
    pictures = ", ".join(f".st-key-{k}" for k in PICTURES)
    player = ", ".join(f".st-key-{k}" for k in PLAYER)
    blocks = (f'{main} [data-testid="stVerticalBlock"]', f'{main} [data-testid="stHorizontalBlock"]')

    def rule(child: str, order: int, horizontal: bool = True) -> str:
        where = blocks if horizontal and stacked else blocks[:1]
        return ", ".join(f"{b} > {child}" for b in where) + f" {{order: {order};}}"

    return (
        rule(":has(h1)", -3, horizontal=False)
        + rule(f":is({player}, :has({player}))", -1)
        + rule(f":is({pictures}, :has({pictures}))", -2)
    )


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
        + (_zoomed_css(zoom) if zoom > 1 else "")
        + "</style>"
    )


def _zoomed_css(zoom: float) -> str:
    """At a scale above 100 %: the pictures first (:func:`pictures_first_css`), nothing wider than the window:
    plotly charts and data grids drawn at 100 % (they size themselves from their zoomed box, and would be
    ``zoom`` times too wide), long lines wrapped."""
    main = '[data-testid="stMainBlockContainer"]'
    return (
        pictures_first_css(main)
        + f'{main} [data-testid="stPlotlyChart"], {main} [data-testid="stDataFrame"]'
        + f" {{zoom: {1 / zoom:.4f};}}"
        + f"{main} {{max-width: 100%; overflow-wrap: anywhere;}}"
        # a little room under the title: at a zoom its descenders touched the picture moved up under it
        + f'{main} [data-testid="stVerticalBlock"] > :has(h1) {{padding-bottom: 0.4rem;}}'
    )


def compact() -> bool:
    """Lecture mode at a projector scale above 100 %: a row of buttons has less room there."""
    return lecture_mode() and int(st.session_state.get(SCALE_KEY) or 100) > 100


def fit(height_px: int) -> int:
    """A live picture's height (CSS pixels before the zoom) that still lies whole on a 720 px projector's
    first screen under the title at the chosen scale: ``height_px`` up to 125 %, 12 % less at 150 %."""
    return round(height_px * 0.88) if lecture_mode() and _scale() >= 150 else int(height_px)


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
