"""Plotly figure builders: plain data (numpy arrays, lists, floats) in, ``go.Figure`` out.

They import no Streamlit and need no browser, so they are unit-tested directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

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


# ------------------------------------------------------------------------------ FA charts for the canvas
# Plain dicts for views/components/live_chart.py (a canvas redrawn in place while Play streams frames).

LIVE_MAX_POINTS = 600


def finite_list(values: np.ndarray, decimals: int = 5) -> list[float | None]:
    """A JSON-ready list: rounded floats, ``None`` where a value is NaN or infinite (a break in a line)."""
    a = np.round(np.asarray(values, dtype=np.float64), decimals)
    return [float(v) if np.isfinite(v) else None for v in a]


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


# ------------------------------------------------------------------------------------------ latent maps

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


def latent_map_figure(
    coords: np.ndarray,
    labels: np.ndarray,
    index: np.ndarray | None = None,
    *,
    region: Sequence[Sequence[float]] | None = None,
    marker: Sequence[float] | None = None,
    grid: np.ndarray | None = None,
    ellipses: Sequence[dict] = (),
    samples: np.ndarray | None = None,
    path: np.ndarray | None = None,
    highlight: Sequence[float] | None = None,
    axis_titles: tuple[str, str] = ("z1", "z2"),
    title: str = "",
    height: int = 480,
) -> go.Figure:
    """The latent map: test-set encodings coloured by digit, with what the page lays over them.

    Traces, in this order (a click on the map reports the ``curve_number`` and ``customdata``): the optional
    invisible ``grid`` (a click target anywhere on the map, no ``customdata``; first, so that a click on a
    point picks the point), 10 digit traces named "0".."9" (``customdata``: the test-image index of each
    point; hover shows it), then the overlays, which ignore the mouse and have no legend entry (the page
    explains them): ``ellipses`` (see :func:`map_ellipse`), reparameterised ``samples`` [n, 2] (red
    crosses), an interpolation ``path`` [2, 2] (dotted), the chosen image (``highlight``, a red ring) and
    the current z (``marker``, a black cross). Selection never dims points.

    The traces are plain dicts, not validated property by property: the page rebuilds this figure whenever
    z moves, and validation was most of its cost (the tests validate it instead).

    Args:
        coords: map coordinates [N, 2]; labels: digits [N]; index: the test-image index of each point
            (default 0..N-1).
        region: axis ranges ((u_lo, u_hi), (v_lo, v_hi)); default: plotly's autorange.
    """
    coords = np.asarray(coords, dtype=np.float32)
    labels = np.asarray(labels)
    index = np.arange(len(coords)) if index is None else np.asarray(index)
    traces: list[dict] = []
    if grid is not None:
        # First, so that a test image's point wins: plotly's "closest" hover counts every point within 3 px
        # of the cursor as distance 0 and gives ties to the trace drawn last.
        traces.append(
            {
                "type": "scatter",
                "x": grid[:, 0],
                "y": grid[:, 1],
                "mode": "markers",
                "name": "click grid",
                "showlegend": False,
                "marker": {"size": 1, "opacity": 0, "color": "black"},
                "selected": {"marker": {"opacity": 0}},
                "unselected": {"marker": {"opacity": 0}},
                "hovertemplate": f"{axis_titles[0]} = %{{x:.2f}}<br>{axis_titles[1]} = %{{y:.2f}}"
                "<extra>click: move z here</extra>",
            }
        )
    traces += digit_scatter_traces(coords, labels, index)
    overlay = {"type": "scatter", "hoverinfo": "skip", "showlegend": False}

    def overlay_trace(xy: np.ndarray, mode: str, name: str, **style: dict) -> dict:
        """Points xy [n, 2] laid over the map: no hover, no legend entry."""
        return {**overlay, "x": xy[:, 0], "y": xy[:, 1], "mode": mode, "name": name, **style}

    for item in ellipses:
        for i, n_sigma in enumerate(item["sigmas"]):
            line = {
                "color": item["colour"],
                "dash": item["dash"],
                "width": item["width"] if i == 0 else item["width"] * 0.6,
            }
            xy = ellipse_points(item["mean"], item["cov"], n_sigma, n_points=80)
            traces.append(overlay_trace(xy, "lines", f"{item['name']} ({n_sigma:g}σ)", line=line))
    if samples is not None and len(samples):
        crosses = {"symbol": "x", "size": 8, "color": Q_COLOUR, "line": {"width": 1}}
        traces.append(overlay_trace(np.asarray(samples), "markers", "z = μ + σ·ε", marker=crosses))
    if path is not None:
        traces.append(
            overlay_trace(
                np.asarray(path),
                "lines+markers",
                "interpolation",
                line={"color": "#555555", "dash": "dot", "width": 2},
                marker={"size": 7, "symbol": "square"},
            )
        )
    if highlight is not None:
        traces.append(ring_trace(highlight, "chosen image", Q_COLOUR))
    if marker is not None:
        traces.append(
            {
                **overlay,
                "x": [float(marker[0])],
                "y": [float(marker[1])],
                "mode": "markers",
                "name": "z (decoded)",
                "marker": {
                    "size": 16,
                    "symbol": "cross-thin-open",
                    "color": Z_MARKER_COLOUR,
                    "line": {"width": 3, "color": Z_MARKER_COLOUR},
                },
            }
        )
    xaxis = {"title": {"text": axis_titles[0]}, "zeroline": False}
    yaxis = {"title": {"text": axis_titles[1]}, "zeroline": False}
    if region is not None:
        xaxis["range"], yaxis["range"] = list(region[0]), list(region[1])
    layout = {
        "title": {"text": title, "font": {"size": 14}},
        "xaxis": xaxis,
        "yaxis": yaxis,
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 60 if title else 30, "b": 10},
        "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "itemsizing": "constant"},
        "hovermode": "closest",
        "hoverdistance": 12,
        "plot_bgcolor": "#fbfbfb",
    }
    # Built without plotly's per-property validation (a private flag of plotly's BaseFigure, pinned plotly
    # 7.1): it cost 10 of the 12 ms of this figure, rebuilt on every move of z. The unit tests check that
    # validating the same traces gives the identical figure.
    return go.Figure(data=traces, layout=layout, _validate=False)


def reparameterisation_figure(
    mu: np.ndarray,
    sigma: np.ndarray,
    z: np.ndarray,
    prior_mean: np.ndarray | None = None,
    prior_std: np.ndarray | None = None,
    height: int = 300,
) -> go.Figure:
    """q(z|x) per latent dimension: mu ± sigma, the samples z_k = mu + sigma * eps_k, the prior ± 1 sd.

    Args:
        mu, sigma: [L]; z: samples [n, L]; prior_mean, prior_std: [L] (default: the standard normal).
    """
    mu, sigma, z = np.asarray(mu), np.asarray(sigma), np.atleast_2d(np.asarray(z))
    dims = np.arange(1, len(mu) + 1)
    prior_mean = np.zeros_like(mu) if prior_mean is None else np.asarray(prior_mean)
    prior_std = np.ones_like(mu) if prior_std is None else np.asarray(prior_std)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=dims - 0.2,
            y=prior_mean,
            mode="markers",
            name="prior ± 1 sd",
            marker={"color": "#9a9a9a", "size": 6, "symbol": "line-ew-open"},
            error_y={"type": "data", "array": prior_std, "color": "#b5b5b5", "thickness": 4, "width": 0},
            hovertemplate="z%{x:.0f}: prior %{y:.3f} ± %{error_y.array:.3f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=dims,
            y=mu,
            mode="markers",
            name="q(z|x): μ ± σ",
            marker={"color": Q_COLOUR, "size": 8},
            error_y={"type": "data", "array": sigma, "color": Q_COLOUR, "thickness": 2, "width": 6},
            hovertemplate="z%{x:.0f}: μ = %{y:.3f}, σ = %{error_y.array:.3f}<extra></extra>",
        )
    )
    n = len(z)
    offsets = np.linspace(-0.12, 0.12, n) + 0.2 if n > 1 else np.array([0.2])
    fig.add_trace(
        go.Scatter(
            x=(dims[None, :] + offsets[:, None]).ravel(),
            y=z.ravel(),
            mode="markers",
            name="z = μ + σ·ε (samples)",
            marker={"color": "black", "size": 4, "symbol": "x"},
            hovertemplate="%{y:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={
            "title": "latent dimension",
            "tickmode": "array",
            "tickvals": dims,
            "range": [0.4, len(mu) + 0.6],
        },
        yaxis={"title": "value", "zeroline": True},
        legend={"orientation": "h", "y": 1.12, "x": 0},
        hovermode="closest",
    )
    return fig
