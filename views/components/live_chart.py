"""A light 2-D chart that is redrawn in place: a Streamlit components v2 canvas (``live_chart/``, no build
step, nothing fetched at run time), for the figures a timer streams (FA learning curves and posteriors, the
VRNN's prior path).

Why not ``st.plotly_chart`` there: in Streamlit 1.67 a plotly chart's element id includes its figure, so
each new frame mounts a new chart (plotly's full layout and draw, a few hundred ms on a 2-core machine),
which caps Play at one or two frames per second. This canvas keeps its element and redraws from a small
JSON spec in a few milliseconds.

Data in: a plain dict built by the pure builders (:func:`explorer_core.figures.fa.fa_curves_chart`,
:func:`explorer_core.figures.fa.fa_ellipses_chart`,
:func:`explorer_core.figures.vrnn.prior_trajectory_chart`):
``title``, ``height``, ``frame``, ``legend`` and ``panels`` (axes with fixed ranges, lines, shaded bands,
reference lines, markers); see ``live_chart/main.js``. Nothing comes back. The browser draws numbers and plain
text only (``fillText``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from views.components.canvas_assets import component_files, default_png_name

ASSETS = Path(__file__).with_name("live_chart")
NAME = "aevb_live_chart"


_component = st.components.v2.component(NAME, **component_files(ASSETS.name), isolate_styles=True)


def live_chart(key: str, data: dict[str, Any], frame: int = 0, export_name: str | None = None) -> Any:
    """Mount (or update in place) the chart ``data`` with ``key``; ``frame`` is exposed to tests as the
    canvas's ``data-frame``; ``export_name`` is the file name of its PNG button (default from the key)."""
    data = {**data, "frame": int(frame), "export_name": export_name or default_png_name(key)}
    return _component(key=key, data=data, width="stretch", height="content")
