"""Plotly figures of the "Watch it learn" page: plain data in, ``go.Figure`` out (no Streamlit).

They are rebuilt on every frame while a run plays, so they are lean: plain-dict traces built without plotly's
per-property validation (as :func:`explorer_core.figures.latent_map_figure`), curves thinned to
:data:`MAX_POINTS` points, at most :data:`MAX_SEGMENTS` shaded phases, and a fixed ``uirevision`` so that a
zoom the user made survives the next frame. The latent map itself is
:func:`explorer_core.figures.latent_map_figure`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from explorer_core.figures import PHASE_NAMES, PHASE_SHADES

MAX_POINTS = 600
MAX_SEGMENTS = 60
ELBO_COLOUR = "#d62728"
IWAE_COLOUR = "#2ca02c"
GAP_COLOUR = "#7f7f7f"
RECON_COLOUR = "#1f77b4"
KL_COLOUR = "#9467bd"


def _thin(n: int, limit: int = MAX_POINTS) -> np.ndarray:
    """Indices keeping at most ``limit`` of n points, always the first and the last."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.r_[np.linspace(0, n - 1, limit).astype(int), n - 1])


def _phase_shapes(segments: Sequence[Sequence], yrefs: Sequence[str], total: int) -> tuple[list, list]:
    """Rectangles (one per E- or M-phase and subplot) and phase labels for the top subplot.

    E-phases are grey and M-phases amber, as on the factor-analysis page; joint steps are not shaded.
    """
    shapes, notes = [], []
    for phase, first, last in list(segments)[-MAX_SEGMENTS:]:
        if phase not in PHASE_SHADES:
            continue
        for i, yref in enumerate(yrefs):
            shapes.append(
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": f"{yref} domain",
                    "x0": first - 0.5,
                    "x1": last + 0.5,
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": PHASE_SHADES[phase],
                    "line": {"width": 0},
                    "layer": "below",
                }
            )
            if i == 0 and (last - first + 1) / max(total, 1) > 0.05:
                notes.append(
                    {
                        "x": first - 0.5,
                        "xref": "x",
                        "y": 1,
                        "yref": f"{yref} domain",
                        "text": PHASE_NAMES[phase],
                        "showarrow": False,
                        "xanchor": "left",
                        "yanchor": "top",
                        "font": {"size": 11, "color": "#555"},
                    }
                )
    return shapes, notes


def _line(
    x, y, name: str, colour: str, xaxis: str = "x", yaxis: str = "y", width: float = 2, **extra
) -> dict:
    return {
        "type": "scatter",
        "mode": "lines",
        "x": x,
        "y": y,
        "name": name,
        "line": {"color": colour, "width": width},
        "xaxis": xaxis,
        "yaxis": yaxis,
        **extra,
    }


def bound_curves(
    steps: Sequence[int],
    elbo: Sequence[float],
    iwae: Sequence[float],
    segments: Sequence[Sequence],
    k: int,
    height: int = 420,
) -> go.Figure:
    """The validation ELBO and the IWAE-k bound per evaluation, E- and M-phases shaded; below, their
    difference, the estimate of the gap KL(q(z|x) || p(z|x)).

    Args:
        steps: the gradient step of each evaluation [n]; elbo, iwae: nats per image [n].
        segments: ``(phase, first_step, last_step)`` runs of one phase.
        k: importance samples of the latest IWAE bound (for the legend).
    """
    idx = _thin(len(steps))
    x = np.asarray(steps)[idx]
    e = np.asarray(elbo, dtype=float)[idx]
    i = np.asarray(iwae, dtype=float)[idx]
    total = int(steps[-1]) if len(steps) else 0
    traces = [
        _line(x, i, f"IWAE bound, k = {k} (≤ log p(x))", IWAE_COLOUR),
        _line(x, e, "ELBO", ELBO_COLOUR),
        _line(x, i - e, "gap estimate = IWAE − ELBO", GAP_COLOUR, "x", "y2", fill="tozeroy"),
    ]
    shapes, notes = _phase_shapes(segments, ("y", "y2"), total)
    # the first evaluations of a fresh model are hundreds of nats lower: keep the view on the rest
    finite = np.r_[e, i][np.isfinite(np.r_[e, i])]
    yaxis = {"title": {"text": "nats per image"}, "domain": [0.36, 1.0]}
    if len(finite) > 4:
        recent = np.r_[e[len(e) // 10 :], i[len(i) // 10 :]]
        low, high = float(np.nanmin(recent)), float(np.nanmax(finite))
        pad = 0.06 * max(high - low, 1.0)
        yaxis["range"] = [low - pad, high + pad]
    layout = {
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
        "xaxis": {"anchor": "y2", "title": {"text": "gradient step"}, "range": [0, max(total, 10)]},
        "yaxis": yaxis,
        "yaxis2": {"title": {"text": "gap"}, "domain": [0.0, 0.28], "rangemode": "tozero"},
        "shapes": shapes,
        "annotations": notes,
        "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0},
        "hovermode": "x unified",
        "uirevision": "watch-bounds",
    }
    return go.Figure(data=traces, layout=layout, _validate=False)


def terms_curves(
    steps: Sequence[int],
    reconstruction: Sequence[float],
    kl: Sequence[float],
    segments: Sequence[Sequence],
    height: int = 300,
) -> go.Figure:
    """The ELBO's two terms per evaluation: E_q[log p(x|z)] (top) and KL(q(z|x) || p(z)) (bottom), nats per
    image, phases shaded."""
    idx = _thin(len(steps))
    x = np.asarray(steps)[idx]
    r = np.asarray(reconstruction, dtype=float)[idx]
    kl_a = np.asarray(kl, dtype=float)[idx]
    total = int(steps[-1]) if len(steps) else 0
    traces = [
        _line(x, r, "reconstruction E_q[log p(x|z)]", RECON_COLOUR),
        _line(x, kl_a, "KL(q(z|x) ‖ p(z))", KL_COLOUR, "x", "y2"),
    ]
    shapes, notes = _phase_shapes(segments, ("y", "y2"), total)
    yaxis = {"title": {"text": "recon."}, "domain": [0.55, 1.0]}
    if len(r) > 4:
        recent = r[len(r) // 10 :]
        low, high = float(np.nanmin(recent)), float(np.nanmax(r))
        pad = 0.06 * max(high - low, 1.0)
        yaxis["range"] = [low - pad, high + pad]
    layout = {
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
        "xaxis": {"anchor": "y2", "title": {"text": "gradient step"}, "range": [0, max(total, 10)]},
        "yaxis": yaxis,
        "yaxis2": {"title": {"text": "KL"}, "domain": [0.0, 0.45], "rangemode": "tozero"},
        "shapes": shapes,
        "annotations": notes,
        "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0},
        "hovermode": "x unified",
        "uirevision": "watch-terms",
    }
    return go.Figure(data=traces, layout=layout, _validate=False)


def kl_per_dimension(
    kl_per_dim: Sequence[float], active_threshold: float = 0.01, height: int = 260
) -> go.Figure:
    """KL(q(z_d|x) || p(z_d)) per latent dimension d, nats per image; dimensions below
    ``active_threshold`` nats are drawn grey (inactive: the encoder ignores them)."""
    values = np.asarray(kl_per_dim, dtype=float)
    colours = [KL_COLOUR if v >= active_threshold else "#c7c7c7" for v in values]
    trace = {
        "type": "bar",
        "x": [f"z{d + 1}" for d in range(len(values))],
        "y": values,
        "marker": {"color": colours},
        "hovertemplate": "%{x}: %{y:.3f} nats<extra></extra>",
    }
    layout = {
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
        "yaxis": {"title": {"text": "KL, nats"}, "rangemode": "tozero"},
        "title": {"text": "KL per latent dimension (grey: inactive)", "font": {"size": 13}},
        "uirevision": "watch-kl",
        "bargap": 0.25,
    }
    return go.Figure(data=[trace], layout=layout, _validate=False)
