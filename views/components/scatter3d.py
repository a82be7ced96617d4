"""A 3-D scatter that updates in place: a Streamlit components v2 canvas (``scatter3d/``, no build step,
nothing fetched at run time).

Why not ``st.plotly_chart``: in Streamlit 1.67 a plotly chart's element id includes its figure, so every
new frame mounts a new chart (a fresh WebGL context for a 3-D scene, the camera back to the figure's, a drag
in progress lost), which ``uirevision`` cannot prevent. This canvas keeps its own view (drag turns it, the
wheel zooms, a double-click resets it) across frames and remounts, and receives per frame only the points
that change; the static point set travels once per version.

Data in (:func:`scatter_data` builds it): ``version`` (a key of the static sets), ``static`` (the sets that
do not change, only while the browser does not hold ``version``: it reports the version it drew in its state
``have``), ``sets`` (the sets that change), ``ranges`` (fixed axis ranges, so a frame never rescales),
``axes`` (three names), ``title``, ``height`` (px), ``frame`` (a counter the page increments per frame; the
canvas exposes it, and how many frames it drew, as ``data-frame`` / ``data-frames`` for tests), ``view``
(the initial view: azimuth and elevation in radians, zoom) and ``view_key`` (the browser keeps the user's
view per key). A set: name, ``#rrggbb`` colour, marker size in px, opacity, symbol (circle or diamond), and
its x, y, z. Value out: the state ``have``. The browser only draws numbers and plain text (``fillText``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from views.components.canvas_assets import component_files, default_png_name

ASSETS = Path(__file__).with_name("scatter3d")
NAME = "aevb_scatter3d"
SYMBOLS = ("circle", "diamond")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
#: plotly's default-like view of the FA page: eye (1.55, -1.55, 0.85)
DEFAULT_VIEW = {
    "az": round(math.atan2(-1.55, 1.55), 4),
    "el": round(math.atan2(0.85, math.hypot(1.55, 1.55)), 4),
}


_component = st.components.v2.component(NAME, **component_files(ASSETS.name), isolate_styles=True)


def point_set(
    points: np.ndarray,
    name: str,
    colour: str,
    size: float = 2.0,
    opacity: float = 0.6,
    symbol: str = "circle",
    decimals: int = 3,
) -> dict[str, Any]:
    """One set of points [n, 3] for :func:`scatter_data`, rounded to ``decimals`` (a smaller payload).

    Raises:
        ValueError: points not [n, 3], a colour that is not ``#rrggbb``, or an unknown symbol.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must be [n, 3], got {list(pts.shape)}")
    if not _COLOUR.match(colour):
        raise ValueError(f"colours are #rrggbb strings, got {colour!r}")
    if symbol not in SYMBOLS:
        raise ValueError(f"symbol must be one of {SYMBOLS}, got {symbol!r}")
    pts = np.round(np.where(np.isfinite(pts), pts, 0.0), decimals)
    return {
        "name": str(name),
        "color": colour,
        "size": float(size),
        "opacity": float(opacity),
        "symbol": symbol,
        "x": pts[:, 0].tolist(),
        "y": pts[:, 1].tolist(),
        "z": pts[:, 2].tolist(),
    }


def scatter_data(
    *,
    version: str,
    static: Sequence[dict[str, Any]] | None,
    sets: Sequence[dict[str, Any]],
    ranges: Sequence[Sequence[float]],
    axes: Sequence[str] = ("x1", "x2", "x3"),
    title: str = "",
    height_px: int = 420,
    frame: int = 0,
    view: dict[str, float] | None = None,
    view_key: str = "",
) -> dict[str, Any]:
    """The component's data, JSON-ready (see the module docstring); ``static`` is ``None`` when the browser
    holds ``version`` already (:func:`needs_static`).

    Raises:
        ValueError: ranges that are not three finite [lo, hi] with lo < hi.
    """
    rng = [[float(r[0]), float(r[1])] for r in ranges]
    if len(rng) != 3 or not all(math.isfinite(a) and math.isfinite(b) and a < b for a, b in rng):
        raise ValueError(f"ranges must be three finite [lo, hi] with lo < hi, got {ranges!r}")
    return {
        "version": str(version),
        "static": None if static is None else {"sets": list(static)},
        "sets": list(sets),
        "ranges": rng,
        "axes": [str(a) for a in axes][:3],
        "title": str(title),
        "height": int(height_px),
        "frame": int(frame),
        "view": {**DEFAULT_VIEW, "zoom": 1.0, **(view or {})},
        "view_key": str(view_key),
    }


def needs_static(key: str, version: str) -> bool:
    """True unless the browser reported (state ``have``) that it holds the static sets ``version``."""
    try:
        value = st.session_state[key]
        have = value.get("have") if hasattr(value, "get") else getattr(value, "have", None)
    except (KeyError, AttributeError, TypeError):
        return True
    return have != version


def scatter3d(key: str, data: dict[str, Any]) -> Any:
    """Mount the canvas (``data`` from :func:`scatter_data`) with ``key``; returns Streamlit's result object
    (attribute ``have``). A ``have`` report reruns the fragment that mounts it once, so the static sets stop
    travelling."""
    return _component(
        key=key,
        data={"export_name": default_png_name(key), **data},
        default={"have": None},
        width="stretch",
        height="content",
        on_have_change=lambda: None,
    )
