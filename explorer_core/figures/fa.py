"""Figures of the factor analysis page: the 3-D scatter of data and model samples, the learning curves
(ELBO against the exact log evidence, E/M phases shaded), the posterior ellipses (approximate q(z|x) against
the exact p(z|x)). Plain numpy in, ``go.Figure`` or live-chart specs out; no Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer_core.figures.common import (
    DATA_COLOUR,
    ELBO_COLOUR,
    EVIDENCE_COLOUR,
    EXACT_COLOUR,
    LIVE_MAX_POINTS,
    MAX_CURVE_POINTS,
    MODEL_COLOUR,
    Q_COLOUR,
    ellipse_points,
    finite_list,
    phase_bands,
    stacked_chart,
    thin_indices,
)

#: A fixed 3-D camera, so the view does not jump when the figure is redrawn.
FA_CAMERA = {"eye": {"x": 1.55, "y": -1.55, "z": 0.85}, "up": {"x": 0, "y": 0, "z": 1}}


def _axis_range(values: np.ndarray, margin: float = 0.15) -> list[float]:
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = margin * max(hi - lo, 1e-6)
    return [lo - pad, hi + pad]


def fa_axis_ranges(x_data: np.ndarray) -> list[list[float]]:
    """Fixed 3-D axis ranges for data [N, 3]: each coordinate's extent plus 15 % (a frame never rescales)."""
    x_data = np.asarray(x_data, dtype=float)
    return [_axis_range(x_data[:, i]) for i in range(3)]


def fa_scatter_3d(
    x_data: np.ndarray,
    x_model: np.ndarray,
    highlight: np.ndarray | None = None,
    ranges: Sequence[Sequence[float]] | None = None,
) -> go.Figure:
    """Test data against samples of the current model, in 3-D (the tutorial's predictive check, fig. 6).

    Args:
        x_data: test points [N, 3]; x_model: model samples [M, 3].
        highlight: one point [3] to mark (the test point of the latent panel), or ``None``.
        ranges: fixed axis ranges ``[[lo, hi]] * 3``; default: the data's extent plus 15 %.

    Returns:
        A figure with a fixed camera and ``uirevision`` set, so redraws keep the user's view.
    """
    ranges = ranges or fa_axis_ranges(x_data)
    fig = go.Figure(
        [
            go.Scatter3d(
                x=points[:, 0],
                y=points[:, 1],
                z=points[:, 2],
                mode="markers",
                name=name,
                marker={"size": 2, "opacity": 0.6, "color": colour},
            )
            for points, name, colour in (
                (x_data, "test data", DATA_COLOUR),
                (x_model, "model samples", MODEL_COLOUR),
            )
        ]
    )
    if highlight is not None:
        fig.add_trace(
            go.Scatter3d(
                x=[highlight[0]],
                y=[highlight[1]],
                z=[highlight[2]],
                mode="markers",
                name="chosen test point",
                marker={"size": 7, "color": "black", "symbol": "diamond"},
            )
        )
    axis = {"backgroundcolor": "rgba(0,0,0,0)", "autorange": False}
    fig.update_layout(
        scene={
            "xaxis": {**axis, "title": "x1", "range": list(ranges[0])},
            "yaxis": {**axis, "title": "x2", "range": list(ranges[1])},
            "zaxis": {**axis, "title": "x3", "range": list(ranges[2])},
            "aspectmode": "cube",
            "camera": FA_CAMERA,
        },
        uirevision="fa-scatter",
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        height=430,
        legend={"orientation": "h", "y": 1.02, "x": 0},
        title={"text": "Test data vs. samples from the current model", "font": {"size": 14}},
    )
    return fig


def fa_learning_curves(
    elbo: Sequence[float],
    evidence: Sequence[float],
    gap: Sequence[float],
    segments: Sequence[tuple[str, int, int]],
    true_evidence: float,
    mle_evidence: float,
) -> go.Figure:
    """Test ELBO and exact evidence per step, phases shaded, reference lines; the exact gap below.

    Args:
        elbo, evidence, gap: per-step values (nats per point); index 0 is the initial model.
        segments: ``(phase, first_step, last_step)`` runs of one phase; E-phases are shaded grey
            (as in the tutorial's figure 7) and M-phases amber; joint steps are not shaded.
        true_evidence: test evidence of the generating model; mle_evidence: of the maximum-likelihood fit.
    """
    idx = thin_indices(len(elbo), MAX_CURVE_POINTS)
    steps = idx
    elbo_a, evidence_a, gap_a = (np.asarray(v, dtype=float)[idx] for v in (elbo, evidence, gap))
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.7, 0.3],
        vertical_spacing=0.06,
        subplot_titles=("Test ELBO and exact evidence (nats per point)", "Exact gap KL(q(z|x) || p(z|x))"),
    )
    fig.add_trace(
        go.Scatter(x=steps, y=evidence_a, name="evidence log p(x)", line={"color": EVIDENCE_COLOUR})
    )
    fig.add_trace(
        go.Scatter(x=steps, y=elbo_a, name="ELBO (estimate)", line={"color": ELBO_COLOUR, "width": 1})
    )
    references = (("true model", true_evidence, "black", "dot"), ("MLE (EM)", mle_evidence, "purple", "dash"))
    for _, value, colour, dash in references:
        fig.add_hline(y=value, line={"color": colour, "dash": dash, "width": 1}, row=1, col=1)
    # legend entries for the two reference lines
    for name, value, colour, dash in references:
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                name=f"{name} {value:.4f}",
                line={"color": colour, "dash": dash, "width": 1},
            )
        )
    fig.add_trace(
        go.Scatter(
            x=steps, y=np.maximum(gap_a, 1e-6), name="gap", line={"color": "#7f7f7f"}, showlegend=False
        ),
        row=2,
        col=1,
    )
    total = max(len(elbo) - 1, 1)
    for band in phase_bands(segments, total):
        fig.add_vrect(
            x0=band["x0"],
            x1=band["x1"],
            fillcolor=band["color"],
            line_width=0,
            layer="below",
            row="all",
            col=1,
            annotation_text=band["label"] or None,
            annotation_position="top left",
        )
    low = min(np.nanmin(elbo_a), np.nanmin(evidence_a), true_evidence)
    high = max(np.nanmax(elbo_a), np.nanmax(evidence_a), true_evidence)
    low = max(low, true_evidence - 12.0)  # the first steps' very low ELBO would squash the rest
    pad = 0.05 * max(high - low, 0.1)
    fig.update_yaxes(range=[low - pad, high + pad], row=1, col=1)
    fig.update_yaxes(type="log", dtick=1, exponentformat="power", row=2, col=1, title_text="nats")
    fig.update_xaxes(title_text="gradient step", row=2, col=1, range=[0, max(total, 10)])
    fig.update_layout(
        height=480,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        uirevision="fa-curves",
        legend={"orientation": "h", "y": -0.18, "x": 0},
        hovermode="x unified",
    )
    return fig


def posterior_ellipses(
    q_mean: np.ndarray, q_cov: np.ndarray, p_mean: np.ndarray, p_cov: np.ndarray, title: str = ""
) -> go.Figure:
    """The approximate posterior q(z|x) against the exact posterior p(z|x): 1- and 2-sigma ellipses.

    Args:
        q_mean, p_mean: means [2]; q_cov, p_cov: covariances [2, 2].
    """
    fig = go.Figure()
    for name, mean, cov, colour, dash in (
        ("exact posterior p(z|x)", p_mean, p_cov, EXACT_COLOUR, "solid"),
        ("amortized posterior q(z|x)", q_mean, q_cov, Q_COLOUR, "dash"),
    ):
        for n_sigma in (1, 2):
            xy = ellipse_points(mean, cov, n_sigma)
            fig.add_trace(
                go.Scatter(
                    x=xy[:, 0],
                    y=xy[:, 1],
                    mode="lines",
                    name=name,
                    legendgroup=name,
                    showlegend=n_sigma == 1,
                    line={"color": colour, "dash": dash, "width": 2.5 if n_sigma == 1 else 1.2},
                    hoverinfo="skip",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=[mean[0]],
                y=[mean[1]],
                mode="markers",
                marker={"color": colour, "size": 8},
                legendgroup=name,
                showlegend=False,
                hovertemplate=f"{name} mean<br>(%{{x:.3f}}, %{{y:.3f}})",
            ),
        )
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        xaxis={"title": "z1"},
        yaxis={"title": "z2", "scaleanchor": "x", "scaleratio": 1},
        height=430,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.15, "x": 0},
        uirevision="fa-latent",
    )
    return fig


def fa_curves_chart(
    elbo: Sequence[float],
    evidence: Sequence[float],
    gap: Sequence[float],
    segments: Sequence[tuple[str, int, int]],
    true_evidence: float,
    mle_evidence: float,
    max_points: int = LIVE_MAX_POINTS,
    height: int = 440,
) -> dict:
    """What :func:`fa_learning_curves` shows, as a live-chart spec: ELBO and evidence per step over the
    reference lines, E-phases shaded grey and M-phases amber, the exact gap (log scale) below.

    At most ``max_points`` points per line (the first and the last always kept), so a frame stays small.
    """
    n = len(elbo)
    idx = thin_indices(n, max_points)
    elbo_a, evidence_a, gap_a = (np.asarray(v, dtype=float)[idx] for v in (elbo, evidence, gap))
    total = max(n - 1, 1)
    x_range = [0.0, float(max(total, 10))]
    low = min(np.nanmin(elbo_a), np.nanmin(evidence_a), true_evidence, mle_evidence)
    high = max(np.nanmax(elbo_a), np.nanmax(evidence_a), true_evidence, mle_evidence)
    low = max(low, true_evidence - 12.0)  # the first steps' very low ELBO would squash the rest
    pad = 0.05 * max(high - low, 0.1)
    gap_pos = np.maximum(gap_a, 1e-6)
    g_lo, g_hi = float(np.nanmin(gap_pos)), float(np.nanmax(gap_pos))
    g_range = [10 ** np.floor(np.log10(g_lo)), 10 ** np.ceil(np.log10(max(g_hi, g_lo * 10)))]
    bands = phase_bands(segments, total)
    steps = [float(i) for i in idx]
    dot, dash = [2, 3], [6, 4]
    legend = [
        {"name": "evidence log p(x)", "color": EVIDENCE_COLOUR, "width": 2},
        {"name": "ELBO (estimate)", "color": ELBO_COLOUR, "width": 1.5},
        {"name": f"true model {true_evidence:.4f}", "color": "#000000", "dash": dot, "width": 1},
        {"name": f"MLE (EM) {mle_evidence:.4f}", "color": "#800080", "dash": dash, "width": 1},
    ]
    upper = {
        "top": 0.0,
        "bottom": 0.66,
        "title": "Test ELBO and exact evidence (nats per point)",
        "y": {"range": [float(low - pad), float(high + pad)]},
        "bands": bands,
        "hlines": [
            {"y": float(true_evidence), "color": "#000000", "dash": dot, "width": 1},
            {"y": float(mle_evidence), "color": "#800080", "dash": dash, "width": 1},
        ],
        "lines": [
            {"x": steps, "y": finite_list(evidence_a), "color": EVIDENCE_COLOUR, "width": 2},
            {"x": steps, "y": finite_list(elbo_a), "color": ELBO_COLOUR, "width": 1},
        ],
    }
    lower = {
        "top": 0.76,
        "bottom": 1.0,
        "title": "Exact gap KL(q(z|x) || p(z|x))",
        "y": {"range": [float(g_range[0]), float(g_range[1])], "log": True, "title": "nats"},
        "bands": [{**b, "label": ""} for b in bands],
        "lines": [{"x": steps, "y": finite_list(gap_pos, 8), "color": "#7f7f7f", "width": 1.5}],
    }
    return stacked_chart(height, legend, x_range, [upper, lower])


def fa_ellipses_chart(
    q_mean: np.ndarray,
    q_cov: np.ndarray,
    p_mean: np.ndarray,
    p_cov: np.ndarray,
    title: str = "",
    height: int = 400,
) -> dict:
    """What :func:`posterior_ellipses` shows, as a live-chart spec: q(z|x) (red, dashed) against the exact
    p(z|x) (green), 1- and 2-sigma ellipses and their means, on equal axes around both."""
    lines, markers, extent = [], [], []
    for mean, cov, colour, dash in (
        (p_mean, p_cov, EXACT_COLOUR, []),
        (q_mean, q_cov, Q_COLOUR, [7, 4]),
    ):
        for n_sigma in (1, 2):
            xy = ellipse_points(mean, cov, n_sigma, n_points=72)
            extent.append(xy)
            lines.append(
                {
                    "x": finite_list(xy[:, 0], 4),
                    "y": finite_list(xy[:, 1], 4),
                    "color": colour,
                    "dash": dash,
                    "width": 2.5 if n_sigma == 1 else 1.2,
                }
            )
        markers.append({"x": finite_list([mean[0]]), "y": finite_list([mean[1]]), "color": colour, "size": 4})
    pts = np.concatenate(extent)
    lo, hi = np.nanmin(pts, 0), np.nanmax(pts, 0)
    pad = 0.08 * max(float(np.max(hi - lo)), 1e-3)
    return {
        "title": title,
        "height": int(height),
        "legend": [
            {"name": "exact posterior p(z|x)", "color": EXACT_COLOUR, "width": 2.5},
            {"name": "amortized posterior q(z|x)", "color": Q_COLOUR, "dash": [7, 4], "width": 2.5},
        ],
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
