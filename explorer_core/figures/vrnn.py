"""Plotly figure builders for the variational RNN page: plain numpy in, ``go.Figure`` out (no Streamlit).

Rows are numbered t = 1..T as in the tutorial (row 1 is the top row of the image).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer_core.figures.common import finite_list, with_chart_font

#: One colour per generated digit (cycled), matching the order of the grid (left to right, top to bottom).
SEQUENCE_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
MEAN_COLOUR = "black"
RECONSTRUCTION_COLOUR = "#1f77b4"
KL_COLOUR = "#d62728"
TEST_MEAN_COLOUR = "black"
CURRENT_ROW_COLOUR = "#ff7f0e"


def _colour(i: int) -> str:
    return SEQUENCE_COLOURS[i % len(SEQUENCE_COLOURS)]


def _joined(paths: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Several paths [n, r] as one line trace: x, y and the digit number (1-based), NaN between paths."""
    n, r = paths.shape
    x = np.full((n, r + 1), np.nan)
    y = np.full((n, r + 1), np.nan)
    x[:, :r], y[:, :r] = t, paths
    digit = np.repeat(np.arange(1, n + 1), r + 1)
    return x.ravel(), y.ravel(), digit


def _digit_paths(
    x: np.ndarray, y: np.ndarray, digit: np.ndarray, line: dict, name: str, hovertemplate: str, **extra: Any
) -> dict:
    """The line trace of every digit's path (x, y and digit from :func:`_joined`), in ``line`` (plotly's line
    dict), named ``name``, with the hover text ``hovertemplate`` and the trace's ``extra`` keys."""
    return {
        "type": "scatter",
        "x": x,
        "y": y,
        "customdata": digit,
        "mode": "lines",
        "line": line,
        "name": name,
        "hovertemplate": hovertemplate,
        **extra,
    }


def _checked_trajectories(prior_means: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """The prior means [n, r, L] as float64 and the rows t = 1..r [r] of both trajectory views.

    Raises:
        ValueError: unknown mode, ``prior_means`` not 3-D, or ``"plane"`` with L < 2.
    """
    prior_means = np.asarray(prior_means, dtype=np.float64)
    if prior_means.ndim != 3:
        raise ValueError(f"prior_means must be [n, rows, L], got {list(prior_means.shape)}.")
    if mode not in ("time", "plane"):
        raise ValueError(f"mode must be 'time' or 'plane', got {mode!r}.")
    if mode == "plane" and prior_means.shape[2] < 2:
        raise ValueError("the plane view needs a latent of at least 2 dimensions.")
    return prior_means, np.arange(1, prior_means.shape[1] + 1, dtype=np.float64)


def prior_trajectory_figure(
    prior_means: np.ndarray, n_rows: int = 28, mode: str = "time", height: int = 420
) -> go.Figure:
    """The means of the prior p(z_t|h_t) of each generated digit, as paths over the rows.

    Redrawn for every generated row, so it is built from a handful of traces (all digits' paths share one
    trace, separated by NaN) and a plain layout: a few milliseconds instead of a hundred.

    Args:
        prior_means: [n, r, L] (r rows done so far, L >= 1 latent dimensions; the first two are drawn).
        n_rows: T; in ``"time"`` mode the row axis always spans 1..T, so a streamed chart does not rescale.
        mode: ``"time"``: one panel per latent dimension (up to 2), the mean of z_t against t, one line per
            digit plus their average; ``"plane"``: the path of (z_t1, z_t2) in the latent plane per digit,
            its first row ringed and its latest row a dot coloured by digit (needs L >= 2).
        height: pixels.

    Raises:
        ValueError: unknown mode, ``prior_means`` not 3-D, or ``"plane"`` with L < 2.
    """
    prior_means, t = _checked_trajectories(prior_means, mode)
    n, done, latent_dim = prior_means.shape
    traces: list[dict] = []
    shapes: list[dict] = []
    if mode == "time":
        dims = min(latent_dim, 2)
        bottom = "y" if dims == 1 else f"y{dims}"
        layout: dict = {"xaxis": {"range": [0.5, n_rows + 0.5], "title": {"text": "row t"}, "anchor": bottom}}
        gap = 0.1
        for d in range(dims):
            axis = "y" if d == 0 else f"y{d + 1}"
            lo = 0.0 if d == dims - 1 else (1 + gap) / 2
            hi = 1.0 if d == 0 else (1 - gap) / 2
            layout["yaxis" if d == 0 else f"yaxis{d + 1}"] = {
                "domain": [lo, hi] if dims > 1 else [0, 1],
                "title": {"text": f"mean of z{d + 1}"},
                "zeroline": True,
                "anchor": "x",
            }
            x, y, digit = _joined(prior_means[:, :, d], t)
            traces.append(
                _digit_paths(
                    x,
                    y,
                    digit,
                    {"color": SEQUENCE_COLOURS[0], "width": 1},
                    "each digit",
                    f"digit %{{customdata}}<br>row %{{x}}<br>E[z{d + 1}] = %{{y:.3f}}<extra></extra>",
                    opacity=0.45,
                    legendgroup="digits",
                    showlegend=d == 0,
                    xaxis="x",
                    yaxis=axis,
                )
            )
            traces.append(
                {
                    "type": "scatter",
                    "x": t,
                    "y": prior_means[:, :, d].mean(0) if n else t[:0],
                    "mode": "lines+markers",
                    "line": {"color": MEAN_COLOUR, "width": 2.5},
                    "marker": {"size": 4},
                    "name": f"average over the {n} digits",
                    "legendgroup": "mean",
                    "showlegend": d == 0,
                    "xaxis": "x",
                    "yaxis": axis,
                    "hovertemplate": f"average<br>row %{{x}}<br>E[z{d + 1}] = %{{y:.3f}}<extra></extra>",
                }
            )
        if done:
            shapes.append(
                {
                    "type": "line",
                    "xref": "x",
                    "yref": "paper",
                    "x0": done,
                    "x1": done,
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": CURRENT_ROW_COLOUR, "width": 1.5, "dash": "dot"},
                }
            )
        title = "Prior means E[z_t | h_t], row by row"
    else:
        x, _, digit = _joined(prior_means[:, :, 0], t)
        y = _joined(prior_means[:, :, 1], t)[1]
        traces.append(
            _digit_paths(
                x,
                y,
                digit,
                {"color": "rgba(120, 120, 120, 0.6)", "width": 1},
                "each digit's path",
                "digit %{customdata}<br>E[z] = (%{x:.3f}, %{y:.3f})<extra></extra>",
            )
        )
        colours = [_colour(i) for i in range(n)]
        if done:
            for k, name, symbol, size in (
                (0, "row 1", "circle-open", 9),
                (done - 1, f"row {done}", "circle", 9),
            ):
                traces.append(
                    {
                        "type": "scatter",
                        "x": prior_means[:, k, 0],
                        "y": prior_means[:, k, 1],
                        "customdata": np.arange(1, n + 1),
                        "mode": "markers",
                        "marker": {"symbol": symbol, "size": size, "color": colours, "line": {"width": 1.5}},
                        "name": name,
                        "hovertemplate": f"digit %{{customdata}}, {name}<br>E[z] = (%{{x:.3f}}, %{{y:.3f}})"
                        "<extra></extra>",
                    }
                )
        layout = {
            "xaxis": {"title": {"text": "mean of z1"}, "zeroline": True},
            "yaxis": {"title": {"text": "mean of z2"}, "zeroline": True, "scaleanchor": "x", "scaleratio": 1},
        }
        title = "Prior means of z_t in the latent plane (ring: row 1; dot: the latest row)"
    annotations = []
    if not done:
        annotations.append(
            {
                "text": "no row yet: press Next row or Play",
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.8 if mode == "time" else 0.5,
                "showarrow": False,
                "font": {"size": 14, "color": "grey"},
            }
        )
    layout.update(
        title={"text": title, "font": {"size": 14}},
        height=height,
        margin={"l": 55, "r": 10, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.18, "x": 0},
        shapes=shapes,
        annotations=annotations,
        uirevision=mode,
    )
    return with_chart_font(go.Figure(data=traces, layout=layout))


def row_terms_figure(
    reconstruction: np.ndarray,
    kl: np.ndarray,
    test_reconstruction: np.ndarray | None = None,
    test_kl: np.ndarray | None = None,
    kept: int | None = None,
    height: int = 460,
) -> go.Figure:
    """The ELBO's two terms per row of one image, as horizontal bars beside the image (row 1 at the top).

    Args:
        reconstruction: E_q[log p(x_t|h_t, z_t)] per row, [T], nats (<= 0; the bars point left).
        kl: KL(q(z_t|h_t, x_t) || p(z_t|h_t)) per row, [T], nats (>= 0).
        test_reconstruction, test_kl: the test set's averages per row, [T] each, drawn as black ticks.
        kept: draw a line under row ``kept`` (the rows a completion keeps), or ``None``.
        height: pixels.
    """
    reconstruction = np.asarray(reconstruction, dtype=np.float64)
    kl = np.asarray(kl, dtype=np.float64)
    if reconstruction.shape != kl.shape or reconstruction.ndim != 1:
        raise ValueError(
            f"reconstruction and kl must be [T] each, got {list(reconstruction.shape)}, {list(kl.shape)}."
        )
    rows = np.arange(1, len(kl) + 1)
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=(
            f"reconstruction log p(x_t|h_t, z_t): Σ = {reconstruction.sum():.1f}",
            f"KL(q(z_t|h_t, x_t) ‖ p(z_t|h_t)): Σ = {kl.sum():.2f}",
        ),
    )
    for col, values, colour, name in (
        (1, reconstruction, RECONSTRUCTION_COLOUR, "reconstruction"),
        (2, kl, KL_COLOUR, "KL"),
    ):
        fig.add_trace(
            go.Bar(
                x=values,
                y=rows,
                orientation="h",
                marker={"color": colour},
                name=f"{name} (this image)",
                hovertemplate=f"row %{{y}}<br>{name} = %{{x:.3f}} nats<extra></extra>",
            ),
            row=1,
            col=col,
        )
    for col, values, name in ((1, test_reconstruction, "reconstruction"), (2, test_kl, "KL")):
        if values is not None and len(values) == len(rows):
            fig.add_trace(
                go.Scatter(
                    x=np.asarray(values, dtype=np.float64),
                    y=rows,
                    mode="markers",
                    marker={
                        "symbol": "line-ns-open",
                        "size": 10,
                        "color": TEST_MEAN_COLOUR,
                        "line": {"width": 2},
                    },
                    name="test-set average per row",
                    legendgroup="test",
                    showlegend=col == 1,
                    hovertemplate=f"row %{{y}}<br>test-set average {name} = %{{x:.3f}} nats<extra></extra>",
                ),
                row=1,
                col=col,
            )
    if kept:
        for col in (1, 2):
            fig.add_hline(
                y=kept + 0.5, line={"color": "#1f77b4", "width": 1.5, "dash": "dash"}, row=1, col=col
            )
    fig.update_yaxes(autorange="reversed", title_text="row t", dtick=4, row=1, col=1)
    fig.update_xaxes(title_text="nats", row=1, col=1)
    fig.update_xaxes(title_text="nats", row=1, col=2, rangemode="tozero")
    fig.update_layout(
        height=height,
        bargap=0.15,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.12, "x": 0},
    )
    fig.update_annotations(font={"size": 12})
    return with_chart_font(fig)


def _padded_range(values: np.ndarray, floor: float = 1.0) -> list[float]:
    """[lo, hi] of the finite values with a 10 % margin, at least ``floor`` wide and around 0 when empty."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (-floor / 2, floor / 2)
    if hi - lo < floor:
        mid = (lo + hi) / 2
        lo, hi = mid - floor / 2, mid + floor / 2
    pad = 0.1 * (hi - lo)
    return [lo - pad, hi + pad]


def prior_trajectory_chart(
    prior_means: np.ndarray, n_rows: int = 28, mode: str = "time", height: int = 420
) -> dict:
    """What :func:`prior_trajectory_figure` shows, as a spec for the page's live canvas
    (``views/components/live_chart.py``), which is redrawn in place for every generated row.

    ``"time"``: one panel per latent dimension (up to 2), each digit's prior mean over the rows (one line per
    digit, NaN-separated) and their average, the row axis fixed to 1..T, a dotted line at the latest row.
    ``"plane"``: each digit's path of (z1, z2), its first row ringed and its latest row a dot in the digit's
    colour. The value axes follow the data with a margin (at least one unit wide).

    Raises:
        ValueError: unknown mode, ``prior_means`` not 3-D, or ``"plane"`` with L < 2.
    """
    prior_means, t = _checked_trajectories(prior_means, mode)
    n, done, latent_dim = prior_means.shape
    panels: list[dict] = []
    if mode == "time":
        dims = min(latent_dim, 2)
        x_axis = {"range": [0.5, n_rows + 0.5]}
        for d in range(dims):
            top, bottom = (0.0, 1.0) if dims == 1 else ((0.0, 0.45) if d == 0 else (0.55, 1.0))
            x, y, _ = _joined(prior_means[:, :, d], t)
            last = d == dims - 1
            panels.append(
                {
                    "top": top,
                    "bottom": bottom,
                    "x": {**x_axis, "title": "row t" if last else "", "ticks": last},
                    "y": {"range": _padded_range(prior_means[:, :, d]), "title": f"mean of z{d + 1}"},
                    "hlines": [{"y": 0.0, "color": "rgba(0,0,0,0.3)", "width": 1}],
                    "vlines": [{"x": float(done), "color": CURRENT_ROW_COLOUR, "dash": [2, 3], "width": 1.5}]
                    if done
                    else [],
                    "lines": [
                        {
                            "x": finite_list(x, 2),
                            "y": finite_list(y, 4),
                            "color": SEQUENCE_COLOURS[0],
                            "width": 1,
                            "opacity": 0.45,
                        },
                        {
                            "x": finite_list(t, 2),
                            "y": finite_list(prior_means[:, :, d].mean(0) if n else t[:0], 4),
                            "color": "#000000",
                            "width": 2.5,
                        },
                    ],
                }
            )
        legend = [
            {"name": "each digit", "color": SEQUENCE_COLOURS[0], "width": 1},
            {"name": f"average over the {n} digits", "color": "#000000", "width": 2.5},
        ]
        title = "Prior means E[z_t | h_t], row by row"
    else:
        x, _, _ = _joined(prior_means[:, :, 0], t)
        y = _joined(prior_means[:, :, 1], t)[1]
        colours = [_colour(i) for i in range(n)]
        markers = []
        if done:
            for k, symbol in ((0, "ring"), (done - 1, "dot")):
                markers.append(
                    {
                        "x": finite_list(prior_means[:, k, 0], 4),
                        "y": finite_list(prior_means[:, k, 1], 4),
                        "color": colours,
                        "size": 4.5,
                        "symbol": symbol,
                    }
                )
        panels.append(
            {
                "top": 0.0,
                "bottom": 1.0,
                "equal": True,
                "x": {"range": _padded_range(prior_means[:, :, 0]), "title": "mean of z1"},
                "y": {"range": _padded_range(prior_means[:, :, 1]), "title": "mean of z2"},
                "lines": [
                    {
                        "x": finite_list(x, 4),
                        "y": finite_list(y, 4),
                        "color": "rgba(120,120,120,0.6)",
                        "width": 1,
                    }
                ],
                "markers": markers,
            }
        )
        legend = [{"name": "each digit's path (ring: row 1; dot: the latest row)", "color": "#787878"}]
        title = "Prior means of z_t in the latent plane"
    if not done:  # (short: the live chart draws its title on one line)
        title = "Prior means E[z_t | h_t]: no row yet (Next row)"
    return {"title": title, "height": int(height), "legend": legend, "panels": panels}
