"""What the figure modules share: the colours (data, model, ELBO, evidence, phases, digits), thinning of long
curves, phase bands, stacked panels and the latent-map traces (points by digit, q(z|x) ellipses, rings).

Plain data in, plotly dicts or traces out; no Streamlit, so they are unit-tested directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DATA_COLOUR = "#1f77b4"


MODEL_COLOUR = "#ff7f0e"


ELBO_COLOUR = "#d62728"


EVIDENCE_COLOUR = "#2ca02c"


Q_COLOUR = "#d62728"


EXACT_COLOUR = "#2ca02c"


PHASE_SHADES = {"e_step": "rgba(128, 128, 128, 0.22)", "m_step": "rgba(255, 200, 80, 0.18)"}


PHASE_NAMES = {"e_step": "E", "m_step": "M", "joint": "joint"}


MAX_CURVE_POINTS = 4000


MAX_SHADED_SEGMENTS = 200


def thin_indices(n: int, limit: int) -> np.ndarray:
    """Sorted indices [<= limit] that keep at most ``limit`` of ``n`` evenly spread points of a curve, always
    the first and the last (all ``n`` when ``n <= limit``): what a chart draws of a long history."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.r_[np.linspace(0, n - 1, limit).round().astype(int), n - 1])


def phase_bands(
    segments: Sequence[Sequence], total: int, max_segments: int = MAX_SHADED_SEGMENTS
) -> list[dict]:
    """The shaded phases of a learning curve: E-phases grey (as in the tutorial's figure 7), M-phases amber;
    joint steps are not shaded.

    Args:
        segments: ``(phase, first_step, last_step)`` runs of one phase; only the last ``max_segments``.
        total: the curve's length in gradient steps; a phase longer than 4 % of it is labelled.

    Returns:
        ``{"x0", "x1", "color", "label"}`` per shaded phase, from half a step before its first step to half a
        step after its last; ``label`` is ``"E"`` or ``"M"``, or ``""`` for a short phase.
    """
    bands = []
    for phase, first, last in list(segments)[-max_segments:]:
        if phase not in PHASE_SHADES:
            continue
        label = PHASE_NAMES[phase] if (last - first + 1) / max(total, 1) > 0.04 else ""
        bands.append({"x0": first - 0.5, "x1": last + 0.5, "color": PHASE_SHADES[phase], "label": label})
    return bands


def stacked_chart(height: int, legend: list[dict], x_range: list[float], panels: Sequence[dict]) -> dict:
    """A live-chart spec (``views/components/live_chart``) of panels stacked over one gradient-step axis.

    Args:
        height: the chart's height in pixels; legend: its entries (``{"name", "color", "width"}``...).
        x_range: the shared x range [2], gradient steps.
        panels: each panel's ``top``/``bottom`` (fractions of the plot area), ``title``, ``y``, ``bands``,
            ``lines``...; this adds the x axis: without ticks, but on the last panel, titled "gradient step".
    """
    last = len(panels) - 1
    return {
        "title": "",
        "height": int(height),
        "legend": legend,
        "panels": [
            {
                **p,
                "x": {"range": x_range, "title": "gradient step"}
                if i == last
                else {"range": x_range, "ticks": False},
            }
            for i, p in enumerate(panels)
        ],
    }


def ellipse_points(mean: np.ndarray, cov: np.ndarray, n_sigma: float, n_points: int = 120) -> np.ndarray:
    """Points [n_points, 2] on the n_sigma contour of a 2-D Gaussian N(mean, cov).

    Raises:
        ValueError: mean is not [2] or cov not [2, 2].
    """
    mean, cov = np.asarray(mean, dtype=float), np.asarray(cov, dtype=float)
    if mean.shape != (2,) or cov.shape != (2, 2):
        raise ValueError(f"need mean [2] and cov [2, 2], got {mean.shape} and {cov.shape}.")
    eigenvalues, eigenvectors = np.linalg.eigh((cov + cov.T) / 2)
    angles = np.linspace(0.0, 2.0 * np.pi, n_points)
    circle = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return mean + n_sigma * (circle * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


LIVE_MAX_POINTS = 600


def finite_list(values: np.ndarray, decimals: int = 5) -> list[float | None]:
    """A JSON-ready list: rounded floats, ``None`` where a value is NaN or infinite (a break in a line).
    Rounded by numpy in one call: live charts draw several hundred of these per frame, in Python that holds
    the server's GIL."""
    a = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(a)
    out = np.round(np.where(finite, a, 0.0), decimals).tolist()
    if not finite.all():
        out = [v if ok else None for v, ok in zip(out, finite.tolist(), strict=True)]
    return out


#: One colour per digit 0..9 (Tableau 10), shared by every latent-space figure.
DIGIT_COLOURS = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#7f7f7f",
)


MAP_POINT_OPACITY = 0.55


Z_MARKER_COLOUR = "black"


def map_ellipse(
    mean: np.ndarray,
    cov: np.ndarray,
    name: str,
    colour: str,
    sigmas: Sequence[float] = (1, 2),
    dash: str = "solid",
    width: float = 2.0,
) -> dict:
    """An ellipse overlay for :func:`latent_map_figure`: the ``sigmas`` contours of N(mean, cov)."""
    return {
        "mean": mean,
        "cov": cov,
        "name": name,
        "colour": colour,
        "sigmas": tuple(sigmas),
        "dash": dash,
        "width": width,
    }


def digit_scatter_traces(
    coords: np.ndarray, labels: np.ndarray, index: np.ndarray, click_hint: str = ""
) -> list[dict]:
    """One clickable scatter trace per digit 0..9 for test-image points coords [n, 2] with labels [n] and
    test-set indices [n] (as ``customdata``, so a selection names the image); ``click_hint`` is shown on
    hover."""
    traces = []
    for digit in range(10):
        mask = labels == digit
        traces.append(
            {
                "type": "scatter",
                "x": coords[mask, 0],
                "y": coords[mask, 1],
                "mode": "markers",
                "name": str(digit),
                "customdata": index[mask],
                "marker": {"color": DIGIT_COLOURS[digit], "size": 4, "opacity": MAP_POINT_OPACITY},
                "selected": {"marker": {"opacity": MAP_POINT_OPACITY}},
                "unselected": {"marker": {"opacity": MAP_POINT_OPACITY}},
                "hovertemplate": f"digit {digit} · test image %{{customdata}}<extra>{click_hint}</extra>",
            }
        )
    return traces


def ring_trace(point: Sequence[float], name: str, colour: str, size: float = 14, width: float = 2.5) -> dict:
    """A plotly trace of one open ring at ``point`` (u, v) on a map, ``size`` px across and ``width`` px
    thick, that ignores the mouse and has no legend entry: the chosen image, the picked cluster."""
    return {
        "type": "scatter",
        "mode": "markers",
        "hoverinfo": "skip",
        "showlegend": False,
        "x": [float(point[0])],
        "y": [float(point[1])],
        "name": name,
        "marker": {"size": size, "color": "rgba(0,0,0,0)", "line": {"color": colour, "width": width}},
    }


def latent_plane_chart(
    lines: list[dict],
    markers: list[dict],
    points: Sequence[np.ndarray],
    title: str,
    height: int,
    legend: list,
) -> dict:
    """A one-panel live-chart spec of a 2-D latent plane (z1, z2) on equal axes that hold ``points`` (arrays
    [n, 2] of everything drawn) with an 8 % margin: the FA and VAE posterior charts."""
    pts = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in points])
    lo, hi = np.nanmin(pts, 0), np.nanmax(pts, 0)
    pad = 0.08 * max(float(np.max(hi - lo)), 1e-3)
    return {
        "title": title,
        "height": int(height),
        "legend": legend,
        "panels": [
            {
                "top": 0.0,
                "bottom": 1.0,
                "equal": True,
                "x": {"range": [float(lo[0] - pad), float(hi[0] + pad)], "title": "z1"},
                "y": {"range": [float(lo[1] - pad), float(hi[1] + pad)], "title": "z2"},
                "lines": lines,
                "markers": markers,
            }
        ],
    }


#: the charts' font: system fonts only, so that a PNG the modebar saves (plotly paints the chart's SVG as an
#: image, which cannot use the page's web fonts) shows what the page shows (views/components/charts.py)
CHART_FONT = 'Arial, Helvetica, "Liberation Sans", "DejaVu Sans", sans-serif'


def with_chart_font(figure: Any) -> Any:
    """``figure`` (a new plotly figure, before anyone shares it) with its text in :data:`CHART_FONT`;
    returns it. Every figure builder ends with it, so a cached figure is never changed afterwards."""
    figure.update_layout(font_family=CHART_FONT, title_font_family=CHART_FONT)
    return figure
