"""The latent pad: a Streamlit components v2 canvas of a latent plane that a person drags through.

The HTML, CSS and JavaScript live beside this file in ``latent_pad/`` (no build step, nothing fetched at run
time). The browser only draws what it is sent: plain numbers (the plane's coordinates) and PNG images the
server made; text is set with ``textContent`` or drawn on the canvas, never parsed as HTML.

Data in (:func:`pad_data` builds it; every coordinate is on the map plane (u, v)):
    ``version``: a key of the point set; ``points`` ({u, v, c}: coordinates [n] and digit colour index [n])
    is sent only while the browser does not hold that version (it reports the version it drew in its state
    ``have``), so the test encodings travel once per model and plane, not on every move.
    ``region`` ((u0, u1), (v0, v1)): the part of the plane shown; ``bounds``: where z may go (the sliders'
    ranges); ``z`` (u, v): the cursor; ``ack``: the sequence number of the last move the server answered;
    ``image`` / ``row``: PNG data URLs of the decoded image (and, for the CVAE, the row of ten labels);
    ``title`` / ``caption`` / ``row_title`` / ``hint`` / ``axes`` (the axis names): plain text;
    ``overlays``: ``lines`` (polylines with colour, width, dash) and ``marks`` (dots, rings, crosses, discs
    with an optional short text and an optional ``pick`` id).
    ``decoder_version`` / ``decoder``: the model's decoder on this plane as float32 arrays
    (:func:`explorer_core.explore.browser_decoder.browser_payload`), sent only when the browser asks for
    that version (state ``have_decoder`` = ``need:...``, which it sets shortly after the pad's first render,
    so a cold page's first picture does not wait for megabytes of weights); ``view`` (``lambda`` / ``mean``
    decode in the browser; ``sample`` is the server's), ``label_k`` (the label row of the main image),
    ``row_k`` (the label rows of the CVAE's row) and ``caption_format`` (``{u}`` and ``{v}`` are replaced by
    z).
    ``height``: the canvas's height in CSS pixels; with ``equal_scale`` its most: the canvas is then as tall
    as the region at the same scale on both axes (a square region: a square map, as wide as the pad's
    column allows). ``static``: a picture only (no pointer, keys or wheel, nothing reported back; the points
    come with every render): the Watch page's map while it trains. ``frame``: a counter, shown to tests as
    the canvas's ``data-frame``. ``hint_lines``: the lines kept for the hint however short it is (two hints
    that take turns then leave what is under the pad in place).

With a decoder the browser decodes the z under the pointer itself, at the screen's rate, and sends ``move``
only when the pointer is released or the arrow keys rest (300 ms): the server then updates its sliders and
the URL, and sends no image (:func:`browser_decodes`). Without one (before it arrived, or for ``sample``)
every move goes to the server, which answers with the PNG.

Values out (read them with :func:`read_move`, :func:`read_pick`, :func:`read_zoom` inside the callbacks,
which run before the fragment reruns, so the page can set its sliders before drawing them):
    trigger ``move`` {u, v, seq}: the pointer drags (or an arrow key moves) z; at most one is in flight, the
    newest position is sent when the answer (``ack`` >= seq) arrives ("latest wins"). A click away from any
    point moves z there too.
    state ``have_decoder``: the decoder version the browser holds (``need:...`` asks for it again).
    trigger ``pick`` {kind: "point" | "mark", i}: a click within ``pick_px`` pixels of a test point (its
    position in ``points``) or of a pickable mark (its ``pick`` id).
    trigger ``zoom`` {dir: +1 | -1, u, v}: a wheel notch (in or out) at the plane position (u, v).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from explorer_core.explore.browser_decoder import TABLE_VIEWS, browser_payload, plane_decoder
from explorer_core.explore.latent import display_subset
from explorer_core.models.base import MLPDecoder
from views.components.canvas_assets import component_files, default_png_name

ASSETS = Path(__file__).with_name("latent_pad")
NAME = "aevb_latent_pad"
PNG_PREFIX = "data:image/png;base64,"
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_SHAPES = ("dot", "ring", "x", "plus", "disc")
_TEXT_MAX = 24


_component = st.components.v2.component(NAME, **component_files(ASSETS.name), isolate_styles=True)


# ------------------------------------------------------------------------------------ data in (pure)


def data_url(png: bytes | None) -> str | None:
    """PNG bytes as a ``data:image/png;base64,...`` URL (``None`` stays ``None``).

    Raises:
        ValueError: the bytes are not a PNG.
    """
    if png is None:
        return None
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG")
    return PNG_PREFIX + base64.b64encode(png).decode("ascii")


def points_payload(coords: np.ndarray, labels: np.ndarray, decimals: int = 3) -> dict[str, list]:
    """Test encodings for the pad: coords [n, 2] on the plane and digit labels [n] (0..9) as
    ``{"u": [n], "v": [n], "c": [n]}`` of plain floats (rounded) and ints."""
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels).reshape(-1)
    if len(coords) != len(labels):
        raise ValueError(f"{len(coords)} points but {len(labels)} labels")
    return {
        "u": np.round(coords[:, 0], decimals).tolist(),
        "v": np.round(coords[:, 1], decimals).tolist(),
        "c": np.clip(labels.astype(np.int64), 0, 255).tolist(),
    }


def _colour(value: str) -> str:
    if not isinstance(value, str) or not _COLOUR.match(value):
        raise ValueError(f"colours are #rrggbb strings, got {value!r}")
    return value


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:_TEXT_MAX]


def line(
    points: np.ndarray, colour: str, width: float = 2.0, dash: Sequence[float] = (), closed: bool = False
) -> dict[str, Any]:
    """A polyline overlay through plane points [n, 2]."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return {
        "pts": np.round(pts, 4).tolist(),
        "color": _colour(colour),
        "width": float(width),
        "dash": [float(d) for d in dash],
        "closed": bool(closed),
    }


def mark(
    uv: Sequence[float],
    colour: str,
    shape: str = "dot",
    radius_px: float = 5.0,
    text: str | None = None,
    pick: int | None = None,
    width: float = 2.0,
) -> dict[str, Any]:
    """A marker overlay at the plane point ``uv`` [2]: ``dot``, ``ring``, ``x``, ``plus`` or ``disc`` (a
    filled circle with ``text`` in white); ``pick`` makes a click on it a ``pick`` of kind ``mark``."""
    if shape not in _SHAPES:
        raise ValueError(f"shape must be one of {_SHAPES}, got {shape!r}")
    u, v = (float(x) for x in np.asarray(uv, dtype=np.float64).reshape(2))
    return {
        "u": round(u, 4),
        "v": round(v, 4),
        "shape": shape,
        "r": float(radius_px),
        "color": _colour(colour),
        "text": _text(text),
        "pick": None if pick is None else int(pick),
        "width": float(width),
    }


def pad_data(
    *,
    version: str,
    points: dict[str, list] | None,
    region: Sequence[Sequence[float]],
    bounds: Sequence[Sequence[float]],
    z: Sequence[float],
    ack: int,
    image_png: bytes | None,
    caption: str = "",
    title: str = "",
    row_png: bytes | None = None,
    row_title: str = "",
    overlays: dict[str, list] | None = None,
    colours: Sequence[str] = (),
    height_px: int = 420,
    pick_px: float = 8.0,
    pick_points: bool = True,
    hint: str = "",
    axes: Sequence[str] = ("", ""),
    decoder: dict[str, Any] | None = None,
    decoder_version: str = "",
    view: str = "",
    label_k: int = 0,
    row_k: Sequence[int] = (),
    caption_format: str = "",
    equal_scale: bool = False,
    static: bool = False,
    frame: int | None = None,
    hint_lines: int = 0,
) -> dict[str, Any]:
    """The pad's data, JSON-ready: see the module docstring. ``points`` is ``None`` when the browser holds
    ``version`` already (see :func:`views.components.pad_fragment.needs_points`), ``decoder`` likewise for
    ``decoder_version``."""

    def pair(p: Sequence[Sequence[float]]) -> list[list[float]]:
        out = [[float(p[0][0]), float(p[0][1])], [float(p[1][0]), float(p[1][1])]]
        if not all(math.isfinite(x) for row in out for x in row) or out[0][0] >= out[0][1]:
            raise ValueError(f"bad region {p!r}")
        if out[1][0] >= out[1][1]:
            raise ValueError(f"bad region {p!r}")
        return out

    return {
        "version": str(version),
        "points": points,
        "region": pair(region),
        "bounds": pair(bounds),
        "z": [float(z[0]), float(z[1])],
        "ack": int(ack),
        "image": data_url(image_png),
        "caption": str(caption),
        "title": str(title),
        "row": data_url(row_png),
        "row_title": str(row_title),
        "overlays": overlays or {"lines": [], "marks": []},
        "colors": [_colour(c) for c in colours],
        "height": int(height_px),
        "pick_px": float(pick_px),
        "pick_points": bool(pick_points),
        "hint": str(hint),
        "axes": [str(a)[:40] for a in axes][:2],
        "decoder": decoder,
        "decoder_version": str(decoder_version),
        "view": str(view),
        "label_k": int(label_k),
        "row_k": [int(k) for k in row_k],
        "caption_format": str(caption_format)[:_TEXT_MAX],
        "equal_scale": bool(equal_scale),
        "static": bool(static),
        "frame": None if frame is None else int(frame),
        "hint_lines": int(hint_lines),
    }


# ------------------------------------------------------------------------------------ values out


def _field(value: Any, name: str) -> Any:
    if value is None:
        return None
    try:
        return value.get(name) if hasattr(value, "get") else getattr(value, name, None)
    except (KeyError, AttributeError, TypeError):
        return None


def pad_value(key: str, name: str) -> Any:
    """The value ``name`` (a state or a trigger) of the pad mounted with ``key``; ``None`` when unset."""
    try:
        return _field(st.session_state[key], name)
    except (KeyError, AttributeError):
        return None


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def read_move(value: Any) -> tuple[float, float, int] | None:
    """A ``move`` trigger as (u, v, seq); ``None`` when absent or malformed."""
    if not isinstance(value, dict):
        return None
    u, v, seq = value.get("u"), value.get("v"), value.get("seq")
    if not (_finite(u) and _finite(v) and _finite(seq)):
        return None
    return float(u), float(v), int(seq)


def read_pick(value: Any, n_points: int, n_marks: int = 0) -> tuple[str, int] | None:
    """A ``pick`` trigger as (``"point"``, position in the points) or (``"mark"``, pick id); ``None`` when
    absent, malformed or out of range."""
    if not isinstance(value, dict):
        return None
    kind, i = value.get("kind"), value.get("i")
    if not _finite(i) or int(i) != i or i < 0:
        return None
    if kind == "point" and i < n_points:
        return "point", int(i)
    if kind == "mark" and i < n_marks:
        return "mark", int(i)
    return None


def read_zoom(value: Any) -> tuple[int, float, float] | None:
    """A ``zoom`` trigger as (direction +1 in / -1 out, u, v); ``None`` when absent or malformed."""
    if not isinstance(value, dict):
        return None
    d, u, v = value.get("dir"), value.get("u"), value.get("v")
    if d not in (1, -1) or not (_finite(u) and _finite(v)):
        return None
    return int(d), float(u), float(v)


def browser_decodes(key: str, decoder_version: str, view: str) -> bool:
    """True when the browser holds the decoder ``decoder_version`` (state ``have_decoder``) and ``view`` is
    one it decodes itself: the server then sends no image."""
    return bool(decoder_version) and view in TABLE_VIEWS and pad_value(key, "have_decoder") == decoder_version


def latent_pad(
    key: str,
    data: dict[str, Any],
    on_move: Callable[[], None],
    on_pick: Callable[[], None],
    on_zoom: Callable[[], None],
) -> Any:
    """Mount the pad (``data`` from :func:`pad_data`) with ``key``.

    ``on_move`` / ``on_pick`` / ``on_zoom`` run (as Streamlit callbacks, before the rerun) when the browser
    sends that trigger; inside them ``pad_value(key, "move")`` etc. holds it. Returns Streamlit's result
    object (attributes ``have``, ``have_decoder``, ``move``, ``pick``, ``zoom``).
    """
    return _component(
        key=key,
        data={"export_name": default_png_name(key), **data},
        default={"have": None, "have_decoder": None},
        width="stretch",
        height="content",
        on_have_change=lambda: None,
        on_have_decoder_change=lambda: None,
        on_move_change=on_move,
        on_pick_change=on_pick,
        on_zoom_change=on_zoom,
    )


# ------------------------------------------------------------------------------------ per model
# A page mounts its pad through :mod:`views.components.pad_fragment` (its spec, state and callbacks).

#: test encodings a pad draws at most
MAX_POINTS = 3000


@st.cache_resource(show_spinner=False, max_entries=16)
def shown_points(model_key: str, _labels: np.ndarray) -> np.ndarray:
    """The fixed subset of the test encodings a pad draws (:func:`explorer_core.explore.latent.display_subset`
    of ``MAX_POINTS``), computed once per model, not on every move: sorted indices [<= MAX_POINTS]."""
    return display_subset(_labels, MAX_POINTS)


@dataclass(frozen=True)
class BrowserDecoder:
    """A model's decoder on a pad's plane, ready to send: ``version`` (a key of the arrays) and ``payload``
    (:func:`explorer_core.explore.browser_decoder.browser_payload`, about 3.5 MB of JSON for the VAE)."""

    version: str
    payload: dict[str, Any]


@st.cache_resource(show_spinner=False, max_entries=8)
def cached_browser_decoder(
    model_key: str, plane_key: str, _model, _centre: np.ndarray, _basis: np.ndarray, labels: tuple
) -> BrowserDecoder | None:
    """The decoder of ``_model`` on the plane z = centre [L] + u e1 + v e2 (``basis`` [2, L]) for
    ``labels``, exported once per model and plane (``plane_key`` names it in the cache key;
    :func:`explorer_core.explore.browser_decoder.plane_decoder`); ``None`` for a model without an MLP
    decoder."""
    return browser_decoder(_model, _centre, _basis, labels)


def browser_decoder(
    model, centre: np.ndarray, basis: np.ndarray, labels: tuple = (None,)
) -> BrowserDecoder | None:
    """:func:`cached_browser_decoder` without the cache (for a model whose parameters change, such as the
    Watch page's); ``None`` for a model without an MLP decoder."""
    if not isinstance(model, MLPDecoder):
        return None
    decoder = plane_decoder(model, centre, basis, labels)
    return BrowserDecoder(decoder.version(), browser_payload(decoder))


def point_version(*parts: Any) -> str:
    """A short key of a point set (model, plane, subset): the pad redraws its points only when it changes."""
    return hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()[:16]
