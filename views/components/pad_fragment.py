"""One latent pad on a page: the glue between a page and its pad (:mod:`views.components.latent_pad`), written
once for the VAE, CVAE, GMVAE and Watch pages.

A page describes its pad in a :class:`PadSpec` (what it decodes, where z may go, the region shown, what a
pick does, how the wheel zooms, what goes to the URL) and calls :func:`pad_fragment` (the pad in a fragment
of its own: a drag reruns only the pad) or :func:`show_pad` (inside a fragment of the page's, as the Watch
page's frame). The pad's state besides its widgets is the page's
:class:`views.components.page_state.PadState` (``page_state(prefix).pad``): z where no slider holds it, the
zoom, the acknowledged move, the point sets sent.

Zoom: ``"steps"`` zooms the pad itself along :data:`ZOOMS` (a wheel notch in centres on the pointer, and the
page reruns so its zoom control and manifold follow); ``"box"`` keeps the pad's region and zooms a box drawn
on it (:func:`box_zoom`; the Watch page's manifold shows the box).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import streamlit as st

from explorer_core.figures.common import DIGIT_COLOURS
from views.components import latent_pad as lp
from views.components import page_state as ps
from views.components.compute_slot import gesture_fragment
from views.components.lecture import fit, lecture_mode
from views.components.page_state import PadState, Region

ZOOMS = (1, 2, 4, 8)
PAD_HEIGHT = 430
PAD_PICK_PX = 8
PAD_HINT = (
    "Drag: z follows the pointer · click a dot: pick that test image · arrow keys (Shift ×5): move z · "
    "wheel: zoom"
)
#: a wheel notch in a ``"box"`` zoom shrinks the box by this factor (out: grows it by its inverse)
BOX_ZOOM_STEP = 0.7
#: point sets a session remembers having sent (the browser keeps as many, ``main.js`` ``keptPoints``)
POINT_SETS_KEPT = 3


# ------------------------------------------------------------------------------- arithmetic (pure)


def clamp(value: float, bounds: Sequence[float]) -> float:
    """``value`` inside ``bounds`` (lo, hi), as a plain float."""
    return float(min(max(float(value), bounds[0]), bounds[1]))


def clamp_uv(uv: Sequence[float], bounds: Region) -> tuple[float, float]:
    """(u, v) clamped into ``bounds`` ((u0, u1), (v0, v1))."""
    return clamp(uv[0], bounds[0]), clamp(uv[1], bounds[1])


def step_zoom(current: Any, direction: int) -> int:
    """The zoom one wheel notch from ``current`` along :data:`ZOOMS` (``direction`` +1 in, -1 out); a
    ``current`` not in :data:`ZOOMS` counts as 1."""
    i = ZOOMS.index(current) if current in ZOOMS else 0
    return ZOOMS[int(np.clip(i + direction, 0, len(ZOOMS) - 1))]


def box_zoom(box: Region | None, full: Region, direction: int, u: float, v: float) -> Region | None:
    """The square box one wheel notch from ``box`` (``None``: all of ``full``) around the pointer (u, v):
    its half-width times :data:`BOX_ZOOM_STEP` in (``direction`` +1) or divided by it out, kept inside
    ``full``; ``None`` once it covers ``full`` again. Widths are those of ``full``'s u range."""
    whole = (full[0][1] - full[0][0]) / 2
    half = (box[0][1] - box[0][0]) / 2 if box else whole
    half = half * (BOX_ZOOM_STEP if direction > 0 else 1 / BOX_ZOOM_STEP)
    if half >= whole * 0.999:
        return None
    inner = ((full[0][0] + half, full[0][1] - half), (full[1][0] + half, full[1][1] - half))
    u, v = clamp_uv((u, v), inner)
    return (u - half, u + half), (v - half, v + half)


def box_lines(box: Region | None) -> list[dict[str, Any]]:
    """The pad's dashed outline of a zoomed ``box`` (none without one)."""
    if not box:
        return []
    (a, b), (c, d) = box
    return [lp.line(np.array([[a, c], [b, c], [b, d], [a, d]]), "#333333", 1.5, (4, 3), closed=True)]


# ------------------------------------------------------------------------------------------ the spec


@dataclass(frozen=True)
class PadPoints:
    """The points a pad draws: ``version`` (a key of the set: the browser is sent it once), ``payload()``
    (:func:`views.components.latent_pad.points_payload`, built only when the browser lacks the set), ``n``
    points, and ``index`` [n]: the test image each point stands for (or ``None``)."""

    version: str
    payload: Callable[[], dict[str, list]]
    n: int
    index: np.ndarray | None = None


def test_points(model_key: str, plane_key: str, coords: np.ndarray, labels: np.ndarray) -> PadPoints:
    """The fixed subset of a model's test encodings a pad draws (:func:`latent_pad.shown_points`, once per
    model): their plane coordinates ``coords`` [N, 2] and digit ``labels`` [N] of all N test images, on the
    plane ``plane_key``."""
    idx = lp.shown_points(model_key, labels)
    return PadPoints(
        lp.point_version(model_key, plane_key, len(idx)),
        lambda: lp.points_payload(coords[idx], labels[idx]),
        len(idx),
        idx,
    )


@dataclass(frozen=True)
class PadSpec:
    """What a page's latent pad shows, decodes and does.

    Attributes:
        prefix: the page's prefix: the pad's key is ``{prefix}_pad``, its state ``page_state(prefix).pad``.
        points: the points drawn (:class:`PadPoints`, :func:`test_points`).
        ranges: where z may go ((u0, u1), (v0, v1)); region: the part of the plane shown.
        decode: the server's decoding of z on the plane (u, v) (float32 [2]): (the image's PNG, the row's PNG
            or ``None``); not called when the browser decodes ``view`` itself with ``decoder``.
        z_keys: the session keys of the slider widgets that hold z (``None``: ``PadState.u`` / ``.v``);
            sliders: their titles, when the pad draws them above itself (VAE, CVAE); z_default: z when
            nothing holds one yet.
        zoom: ``"steps"`` or ``"box"`` (the module docstring); zoom_key: the zoom widget's key in steps
            (``None``: ``PadState.zoom``).
        on_point: what a click on the pad's point i (its position in ``points``) does besides z; on_mark:
            on the pickable mark i (of ``n_marks``); picks_rerun_app: whether the page reruns after a pick.
        point_moves_z: a click on a point moves z to ``point_uv(i)``.
        title, caption_format (``{u}`` and ``{v}`` take z with two decimals), axes, hint, overlays (``lines``
            and ``marks``), row_title, label_k, row_k, view: as :func:`views.components.latent_pad.pad_data`.
        url: which of ``u``, ``v``, ``zoom`` go to the URL, and url_extra more (name, value) pairs.
        height_px, equal_scale: the canvas's height, or with ``equal_scale`` its most (the canvas then
            as tall as the region at the same scale on both axes), and hint_lines, as in
            ``latent_pad.pad_data``.
    """

    prefix: str
    points: PadPoints
    ranges: Region
    region: Region
    decode: Callable[[np.ndarray], tuple[bytes, bytes | None]]
    decoder: lp.BrowserDecoder | None = None
    view: str = "lambda"
    z_keys: tuple[str, str] | None = None
    sliders: tuple[str, str] | None = None
    z_default: tuple[float, float] = (0.0, 0.0)
    zoom: str = "steps"
    zoom_key: str | None = None
    on_point: Callable[[int], None] | None = None
    point_uv: Callable[[int], Sequence[float]] | None = None
    on_mark: Callable[[int], None] | None = None
    n_marks: int = 0
    picks_rerun_app: bool = True
    title: str = ""
    caption_format: str = "z = ({u}, {v})"
    axes: tuple[str, str] = ("", "")
    hint: str = PAD_HINT
    overlays: dict[str, list] | None = None
    row_title: str = ""
    label_k: int = 0
    row_k: tuple[int, ...] = ()
    url: tuple[str, ...] = ()
    url_extra: tuple[tuple[str, Any], ...] = ()
    height_px: int = PAD_HEIGHT
    equal_scale: bool = False
    hint_lines: int = 0

    @property
    def key(self) -> str:
        """The pad's element (and session-state) key."""
        return pad_key(self.prefix)

    def state(self) -> PadState:
        """The pad's state in this session."""
        return ps.page_state(self.prefix).pad

    def z(self) -> tuple[float, float]:
        """z now (u, v), inside the ranges."""
        if self.z_keys is not None:
            held = tuple(st.session_state.get(k) for k in self.z_keys)
        else:
            pad = self.state()
            held = (pad.u, pad.v)
        uv = [h if isinstance(h, int | float) else d for h, d in zip(held, self.z_default, strict=True)]
        return clamp_uv(uv, self.ranges)

    def move_z(self, uv: Sequence[float], decimals: int | None = None) -> None:
        """Set z to ``uv`` clamped into the ranges (rounded to ``decimals`` when given)."""
        u, v = clamp_uv(uv, self.ranges)
        if decimals is not None:
            u, v = round(u, decimals), round(v, decimals)
        if self.z_keys is not None:
            st.session_state[self.z_keys[0]], st.session_state[self.z_keys[1]] = u, v
        else:
            pad = self.state()
            pad.u, pad.v = u, v

    def zoom_now(self) -> int:
        """The steps zoom now (1 in a ``"box"`` zoom)."""
        if self.zoom != "steps":
            return 1
        current = st.session_state.get(self.zoom_key) if self.zoom_key else self.state().zoom
        return current if current in ZOOMS else 1


def pad_key(prefix: str) -> str:
    """The session-state key of a page's latent pad."""
    return f"{prefix}_pad"


# ------------------------------------------------------------------------------- values from the pad


def on_wheel(spec: PadSpec, direction: int, u: float, v: float) -> None:
    """A wheel notch at (u, v): a step along :data:`ZOOMS` (in: centred on the pointer; the page reruns), or
    the box zoomed around the pointer (:func:`box_zoom`)."""
    pad = spec.state()
    if spec.zoom == "box":
        pad.box = box_zoom(pad.box, spec.ranges, direction, u, v)
        return
    zoom = step_zoom(spec.zoom_now(), direction)
    if spec.zoom_key:
        st.session_state[spec.zoom_key] = zoom
    else:
        pad.zoom = zoom
    if direction > 0:
        pad.centre = (u, v)
    pad.rerun_zoom = True


def pad_callbacks(spec: PadSpec) -> dict[str, Callable[[], None]]:
    """The pad's callbacks (they run before the fragment reruns, so sliders can follow):

    - move: z becomes the pad's z, clamped to the ranges and rounded to 4 decimals; the move's sequence
      number is kept to be acknowledged;
    - pick: z moves to the point (when ``point_moves_z``), then ``on_point(position in the points)`` or
      ``on_mark(pick id)``, then the page reruns (``picks_rerun_app``);
    - zoom: :func:`on_wheel`.

    The callbacks stay in the session's widget state after the run (until the next one, or until Streamlit
    drops the session): they keep the spec without its browser decoder, whose weights (about 1 MB) Watch
    makes afresh per frame and its session's work lets go of when the tab is gone.
    """
    spec = replace(spec, decoder=None)

    def on_move() -> None:
        move = lp.read_move(lp.pad_value(spec.key, "move"))
        if move is not None:
            spec.move_z(move[:2], decimals=4)
            spec.state().ack = move[2]

    def on_pick() -> None:
        pick = lp.read_pick(lp.pad_value(spec.key, "pick"), spec.points.n, spec.n_marks)
        if pick is None:
            return
        kind, i = pick
        if kind == "point":
            if spec.point_uv is not None:
                spec.move_z(spec.point_uv(i))
            if spec.on_point is not None:
                spec.on_point(i)
        elif spec.on_mark is not None:
            spec.on_mark(i)
        if spec.picks_rerun_app:
            spec.state().rerun_app = True

    def on_zoom() -> None:
        zoom = lp.read_zoom(lp.pad_value(spec.key, "zoom"))
        if zoom is not None:
            on_wheel(spec, *zoom)

    return {"on_move": on_move, "on_pick": on_pick, "on_zoom": on_zoom}


def rerun_app_if_asked(prefix: str) -> None:
    """A pick or a wheel notch on the pad (handled in the pad's own fragment) changes what the rest of the
    page shows: rerun the whole page (once)."""
    pad = ps.page_state(prefix).pad
    if pad.rerun_app or pad.rerun_zoom:
        pad.rerun_app = pad.rerun_zoom = False
        st.rerun(scope="app")


# ---------------------------------------------------------------------------------------- the pad


def needs_points(spec: PadSpec) -> bool:
    """True unless the browser reported (state ``have``) that it holds the point set of ``spec``, or the pad
    is mounting again (no state yet) and this session was sent that set before: the browser keeps the point
    sets it loaded (``main.js``, ``keptPoints``) and asks (``need:...``) when it has none."""
    have, version = lp.pad_value(spec.key, "have"), spec.points.version
    if have is None and version in spec.state().points_sent:
        return False
    return have != version


def _slider(key: str, title: str, bounds: tuple[float, float], column) -> float:
    """One of the z sliders, its state kept inside ``bounds``."""
    state = st.session_state
    current = state.get(key)
    if not isinstance(current, int | float) or clamp(current, bounds) != current:
        state[key] = clamp(current if isinstance(current, int | float) else 0.0, bounds)
    step = float(10 ** np.floor(np.log10((bounds[1] - bounds[0]) / 200)))
    # value= (the state's own value) spares Streamlit a walk over every session-state entry to guess the
    # slider's kind; the state still decides (.streamlit/config.toml silences the duplicate-value log line)
    return column.slider(title, bounds[0], bounds[1], value=state[key], step=step, key=key, format="%.2f")


def show_pad(spec: PadSpec) -> None:
    """The pad (and its z sliders when ``spec.sliders`` names them): z, its decoding (by the server, unless
    the browser holds the decoder and decodes ``spec.view`` itself), the points, the overlays; z (and the
    zoom) to the URL as ``spec.url`` says. Keeps the decode's server seconds in ``PadState.decode_s``."""
    rerun_app_if_asked(spec.prefix)
    pad = spec.state()
    # lecture mode: the pad first, its sliders under it (the picture on a projector's first screen); the
    # sliders are still read first, as the pad shows their z
    pad_slot = st.container() if lecture_mode() else None
    if spec.sliders is not None and spec.z_keys is not None:
        columns = st.columns(2, gap="medium")
        rows = zip(spec.z_keys, spec.sliders, spec.ranges, columns, strict=True)
        u, v = (_slider(key, title, bounds, column) for key, title, bounds, column in rows)
    else:
        u, v = spec.z()
    start = time.perf_counter()
    image = row = None
    decoder = spec.decoder
    if decoder is None or not lp.browser_decodes(spec.key, decoder.version, spec.view):
        image, row = spec.decode(np.array((u, v), dtype=np.float32))
    pad.decode_s = time.perf_counter() - start

    have_decoder = lp.pad_value(spec.key, "have_decoder")
    # not on the pad's first render (state still None): the page and the server's image show first, then the
    # browser asks (``need:...``) and the next run of the pad sends the decoder (megabytes for a 500-500
    # decoder, whose parsing had held back the first picture of a cold page by seconds)
    send_decoder = decoder is not None and have_decoder is not None and have_decoder != decoder.version
    points = spec.points
    send_points = needs_points(spec)
    if send_points:
        others = [sent for sent in pad.points_sent if sent != points.version]
        pad.points_sent = [*others[1 - POINT_SETS_KEPT :], points.version]
    data = lp.pad_data(
        version=points.version,
        points=points.payload() if send_points else None,
        ack=pad.ack,
        pick_px=PAD_PICK_PX,
        **_drawn(spec, u, v, image, row),
        decoder=decoder.payload if send_decoder else None,
        decoder_version=decoder.version if decoder is not None else "",
        view=spec.view,
        label_k=spec.label_k,
        row_k=spec.row_k,
        caption_format=spec.caption_format,
    )
    with pad_slot if pad_slot is not None else contextlib.nullcontext():
        lp.latent_pad(spec.key, data, **pad_callbacks(spec))
    if spec.url:
        now = {"u": float(u), "v": float(v), "zoom": spec.zoom_now()}
        ps.url_out({name: now[name] for name in spec.url} | dict(spec.url_extra))


def _drawn(spec: PadSpec, u: float, v: float, image: Any, row: Any) -> dict[str, Any]:
    """What a pad draws of ``spec`` at z = (u, v), live or static: its region, axes, overlays, hint, size and
    the decoded ``image`` (and ``row``) with their captions (:func:`views.components.latent_pad.pad_data`'s
    keyword arguments)."""
    return {
        "region": spec.region,
        "bounds": spec.ranges,
        "z": (u, v),
        "image_png": image,
        "caption": spec.caption_format.format(u=f"{u:.2f}", v=f"{v:.2f}"),
        "title": spec.title,
        "row_png": row,
        "row_title": spec.row_title,
        "overlays": spec.overlays,
        "colours": DIGIT_COLOURS,
        "height_px": fit(spec.height_px),  # whole on a projector's first screen
        "equal_scale": spec.equal_scale,
        "hint_lines": spec.hint_lines,
        "hint": spec.hint,
        "axes": spec.axes,
    }


#: :func:`show_pad` in a fragment of its own: a drag, an arrow key or a slider reruns only the pad
pad_fragment = gesture_fragment(show_pad)


def _ignore() -> None:
    """A static pad's callbacks: it sends nothing."""


def show_static_pad(spec: PadSpec, key: str, frame: int) -> None:
    """``spec``'s pad as a picture only, mounted with ``key``: the same element as :func:`show_pad` draws (so
    the same size and layout), its points sent with every call and z decoded by the server, but no pointer,
    keys or wheel, and nothing reported back (no rerun of its own). The Watch page draws its map with it while
    the model trains, ``frame`` counting the frames (the canvas's ``data-frame``)."""
    u, v = spec.z()
    image, row = spec.decode(np.array((u, v), dtype=np.float32))
    data = lp.pad_data(
        version=spec.points.version,
        points=spec.points.payload(),
        ack=0,
        pick_points=False,
        **_drawn(spec, u, v, image, row),
        static=True,
        frame=frame,
    )
    lp.latent_pad(key, data, on_move=_ignore, on_pick=_ignore, on_zoom=_ignore)
