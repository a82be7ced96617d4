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
    finite_list,
    ring_trace,
    with_chart_font,
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
    # 7.1): validation is most of this figure's cost, and it is rebuilt on every move of z (BENCHMARKS.md,
    # latent section). The unit tests check that validating the same traces gives the identical figure.
    return with_chart_font(go.Figure(data=traces, layout=layout, _validate=False))


def reparameterisation_chart(
    mu: np.ndarray,
    sigma: np.ndarray,
    z: np.ndarray,
    prior_mean: np.ndarray | None = None,
    prior_std: np.ndarray | None = None,
    height: int = 300,
) -> dict:
    """q(z|x) per latent dimension as a live-chart spec (``views/components/live_chart``, a light canvas:
    the VAE page draws it on every load, and plotly's chunk alone delayed a cold page's first picture by a
    second): the prior ± 1 sd (grey bar, its mean a dot) left of each dimension, q(z|x) as mu ± sigma (red
    bar and dot) on it, the reparameterised samples z_k = mu + sigma * eps_k (black dots) right of it
    (Kingma & Welling 2014, section 2.4).

    Args:
        mu, sigma: [L]; z: samples [n, L] (or [L]); prior_mean, prior_std: [L] (default: the standard
            normal). Values are in latent units.

    Returns:
        ``{title, height, legend, panels: [one panel]}``, x = latent dimension 1..L (ticks at each).
    """
    mu, sigma = np.asarray(mu, dtype=float), np.asarray(sigma, dtype=float)
    z = np.atleast_2d(np.asarray(z, dtype=float))
    dims = np.arange(1, len(mu) + 1, dtype=float)
    prior_mean = np.zeros_like(mu) if prior_mean is None else np.asarray(prior_mean, dtype=float)
    prior_std = np.ones_like(mu) if prior_std is None else np.asarray(prior_std, dtype=float)

    def bars(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[list, list]:
        """Vertical segments from lo to hi at each x, as one line broken by ``None``."""
        xs, ys = [], []
        for xi, a, b in zip(x.tolist(), finite_list(lo), finite_list(hi), strict=True):
            xs += [xi, xi, None]
            ys += [a, b, None]
        return xs, ys

    n = len(z)
    offsets = np.linspace(-0.12, 0.12, n) + 0.2 if n > 1 else np.array([0.2])
    sample_x = (dims[None, :] + offsets[:, None]).ravel()
    values = np.concatenate(
        [prior_mean - prior_std, prior_mean + prior_std, mu - sigma, mu + sigma, z.ravel()]
    )
    values = values[np.isfinite(values)]
    lo, hi = (float(values.min()), float(values.max())) if len(values) else (-1.0, 1.0)
    pad = 0.08 * max(hi - lo, 1e-6)
    prior_x, prior_y = bars(dims - 0.2, prior_mean - prior_std, prior_mean + prior_std)
    q_x, q_y = bars(dims, mu - sigma, mu + sigma)
    return {
        "title": "",
        "height": int(height),
        "legend": [
            {"name": "prior ± 1 sd", "color": "#b5b5b5", "width": 4},
            {"name": "q(z|x): μ ± σ", "color": Q_COLOUR, "width": 2},
            {"name": "z = μ + σ·ε (samples)", "color": "#000000", "width": 2},
        ],
        "panels": [
            {
                "top": 0.0,
                "bottom": 1.0,
                "title": "",
                "x": {"range": [0.4, len(mu) + 0.6], "title": "latent dimension", "tickvals": dims.tolist()},
                "y": {"range": [lo - pad, hi + pad], "title": "value"},
                "hlines": [{"y": 0.0, "color": "#9a9a9a", "width": 1}],
                "lines": [
                    {"x": prior_x, "y": prior_y, "color": "#b5b5b5", "width": 4},
                    {"x": q_x, "y": q_y, "color": Q_COLOUR, "width": 2},
                ],
                "markers": [
                    {"x": (dims - 0.2).tolist(), "y": finite_list(prior_mean), "color": "#9a9a9a", "size": 3},
                    {"x": dims.tolist(), "y": finite_list(mu), "color": Q_COLOUR, "size": 4},
                    {"x": sample_x.tolist(), "y": finite_list(z.ravel()), "color": "#000000", "size": 2},
                ],
            }
        ],
    }
