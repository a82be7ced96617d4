"""Figures of the VAE and CVAE pages: the latent map (test encodings by digit, q(z|x) ellipses, the
current z) and the reparameterisation view. Plain numpy in, ``go.Figure`` out; no Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from explorer_core.figures.common import (
    Q_COLOUR,
    Z_MARKER_COLOUR,
    digit_scatter_traces,
    ellipse_points,
    ring_trace,
)


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
