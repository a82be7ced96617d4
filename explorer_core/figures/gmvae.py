"""Plotly figure builders of the Gaussian mixture VAE page: plain data in, ``go.Figure`` out (no Streamlit).

Clusters are named ``y=c → d`` (cluster c, matched digit d; see
:func:`explorer_core.explore.clusters.cluster_name`) and drawn in the colour of their matched digit
(:data:`explorer_core.figures.common.DIGIT_COLOURS`; grey when unmatched), so a cluster and the test
images of its digit share a colour.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from explorer_core.figures.common import DIGIT_COLOURS, digit_scatter_traces, ring_trace, with_chart_font

UNMATCHED_COLOUR = "#bbbbbb"
PICK_COLOUR = "black"
CHOSEN_COLOUR = "#d62728"


def cluster_colour(matched: int) -> str:
    """The colour of a cluster whose matched digit is ``matched`` (-1: unmatched, grey)."""
    return DIGIT_COLOURS[int(matched) % 10] if int(matched) >= 0 else UNMATCHED_COLOUR


def cluster_map_figure(
    coords: np.ndarray,
    labels: np.ndarray,
    index: np.ndarray,
    prior_coords: np.ndarray,
    names: Sequence[str],
    matched_label: Sequence[int],
    usage: Sequence[float],
    *,
    picked: int | None = None,
    highlight: Sequence[float] | None = None,
    axis_titles: tuple[str, str] = ("PC 1", "PC 2"),
    height: int = 470,
) -> go.Figure:
    """The latent space on a PCA plane: test encodings coloured by their true digit, and the cluster prior
    means mu(y) as large clickable markers labelled with their matched digit.

    Traces, in this order: 10 digit traces named "0".."9" (``customdata``: the test-image index, an int),
    the chosen image (``highlight`` [2], a red ring; ignores the mouse), the picked cluster (a black ring;
    ignores the mouse), and last the cluster means (name "clusters", no legend entry, ``customdata``: the
    string ``"y=c"``), so that a click near a mean picks the cluster (see :func:`clicked_target`).

    Args:
        coords: plane coordinates of the test encodings [N, 2]; labels: their digits [N]; index: their
            test-image indices [N].
        prior_coords: the cluster prior means on the plane [C, 2]; names, matched_label, usage: per
            cluster [C] (usage as fractions of the test images).
        picked: the picked cluster, ringed.
    """
    coords = np.asarray(coords, dtype=np.float32)
    labels = np.asarray(labels)
    index = np.asarray(index)
    prior_coords = np.asarray(prior_coords, dtype=np.float32)
    traces: list[dict] = []
    traces += digit_scatter_traces(coords, labels, index, click_hint="click: classify it")
    if highlight is not None:
        traces.append(ring_trace(highlight, "chosen image", CHOSEN_COLOUR))
    if picked is not None and 0 <= picked < len(prior_coords):
        traces.append(ring_trace(prior_coords[picked], "picked cluster", PICK_COLOUR, size=38, width=3))
    matched = [int(m) for m in matched_label]
    traces.append(
        {
            "type": "scatter",
            "x": prior_coords[:, 0],
            "y": prior_coords[:, 1],
            "mode": "markers+text",
            "name": "clusters",
            "showlegend": False,
            "text": [str(m) if m >= 0 else "–" for m in matched],
            "textfont": {"color": "white", "size": 12},
            "customdata": [f"y={c}" for c in range(len(prior_coords))],
            "hovertext": [
                f"cluster {name} · {u:.1%} of test images" for name, u in zip(names, usage, strict=True)
            ],
            "hovertemplate": "%{hovertext}<extra>click: pick this cluster</extra>",
            "marker": {
                "size": 24,
                "color": [cluster_colour(m) for m in matched],
                "line": {"color": "black", "width": 1.5},
                "symbol": "circle",
            },
            "selected": {"marker": {"opacity": 1}},
            "unselected": {"marker": {"opacity": 1}},
        }
    )
    layout = {
        "xaxis": {"title": {"text": axis_titles[0]}, "zeroline": False},
        "yaxis": {"title": {"text": axis_titles[1]}, "zeroline": False},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
        "legend": {
            "orientation": "h",
            "y": 1.0,
            "yanchor": "bottom",
            "x": 0,
            "itemsizing": "constant",
            "title": {"text": "true digit"},
        },
        "hovermode": "closest",
        "hoverdistance": 14,
        "plot_bgcolor": "#fbfbfb",
        "clickmode": "event+select",
    }
    # Unvalidated like latent_map_figure (plotly's per-property validation dominates the cost of a map that is
    # rebuilt on every rerun); the unit tests validate the same traces.
    return with_chart_font(go.Figure(data=traces, layout=layout, _validate=False))


def clicked_target(point: dict) -> tuple[str, int] | None:
    """What a click on :func:`cluster_map_figure` hit, from the point's ``customdata`` as the frontend reports
    it: ``("cluster", c)``, ``("image", test index)`` or ``None`` (nothing clickable)."""
    data = point.get("customdata")
    if isinstance(data, list | tuple):
        data = data[0] if len(data) == 1 else None
    if isinstance(data, str) and data.startswith("y=") and data[2:].isdigit():
        return "cluster", int(data[2:])
    if (
        isinstance(data, int | float)
        and not isinstance(data, bool)
        and float(data).is_integer()
        and data >= 0
    ):
        return "image", int(data)
    return None


def cluster_posterior_figure(
    probs: np.ndarray,
    order: Sequence[int],
    names: Sequence[str],
    matched_label: Sequence[int],
    title: str = "",
    height: int = 300,
) -> go.Figure:
    """q(y|x) of one image as a bar chart, one bar per cluster in ``order``, coloured by matched digit.

    Args:
        probs: q(y|x) [C], summing to 1; order: the clusters in display order [C]; names, matched_label:
            per cluster [C].
    """
    probs = np.asarray(probs, dtype=np.float64)
    order = [int(c) for c in order]
    fig = go.Figure(
        go.Bar(
            x=[names[c] for c in order],
            y=probs[order],
            marker={"color": [cluster_colour(matched_label[c]) for c in order]},
            text=[f"{p:.2f}" if p >= 0.005 else "" for p in probs[order]],
            textposition="outside",
            hovertemplate="cluster %{x}<br>q(y|x) = %{y:.4f}<extra></extra>",
            name="q(y|x)",
        )
    )
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        yaxis={"title": {"text": "q(y|x)"}, "range": [0, 1.12]},
        xaxis={"title": {"text": "cluster y → matched digit"}, "type": "category"},
        height=height,
        # a title of two lines ("<br>") needs a line more: a long one is cut at the chart's edge
        margin={"l": 10, "r": 10, "t": (40 + 18 * title.count("<br>")) if title else 20, "b": 10},
        showlegend=False,
        plot_bgcolor="#fbfbfb",
    )
    return with_chart_font(fig)


def confusion_figure(
    contingency: Sequence[Sequence[int]],
    order: Sequence[int],
    names: Sequence[str],
    matched_label: Sequence[int],
    accuracy: float | None = None,
    title: str = "",
    height: int = 420,
) -> go.Figure:
    """The clusters x labels contingency table (test images counted by argmax q(y|x) and true digit) as a
    heatmap, rows in ``order`` (so the Hungarian matches run down the diagonal) and the matched cells
    outlined.

    Args:
        contingency: counts [C][10]; order: row order [C]; names, matched_label: per cluster [C];
            accuracy: the cluster accuracy (fraction) for the title.
    """
    table = np.asarray(contingency, dtype=np.int64)
    order = [int(c) for c in order]
    rows = table[order]
    row_names = [names[c] for c in order]
    digits = [str(d) for d in range(table.shape[1])]
    heading = title
    if accuracy is not None:
        heading = (
            f"{title} · cluster accuracy {accuracy:.2%}" if title else f"cluster accuracy {accuracy:.2%}"
        )
    fig = go.Figure(
        go.Heatmap(
            z=rows,
            x=digits,
            y=row_names,
            colorscale="Blues",
            text=rows,
            texttemplate="%{text}",
            textfont={"size": 10},
            hovertemplate="cluster %{y}, digit %{x}: %{z} test images<extra></extra>",
            colorbar={"title": {"text": "images"}, "thickness": 12},
        )
    )
    for r, c in enumerate(order):
        d = int(matched_label[c])
        if d >= 0:
            fig.add_shape(
                type="rect",
                x0=d - 0.5,
                x1=d + 0.5,
                y0=r - 0.5,
                y1=r + 0.5,
                line={"color": "#d62728", "width": 2},
            )
    fig.update_layout(
        title={"text": heading, "font": {"size": 14}},
        xaxis={"title": {"text": "true digit"}, "type": "category", "side": "bottom"},
        yaxis={"title": {"text": "cluster y → matched digit"}, "type": "category", "autorange": "reversed"},
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return with_chart_font(fig)


def image_rows_figure(
    png: bytes,
    width: int,
    height: int,
    row_labels: Sequence[str],
    title: str = "",
) -> go.Figure:
    """A grid of images (PNG bytes of ``width`` x ``height`` pixels, e.g. the cluster gallery) with one
    label per row on the y axis; no hover, no zoom.

    Args:
        png: the PNG file's bytes; width, height: its size in pixels.
        row_labels: one label per row of images, top to bottom (rows are equally tall).
    """
    n = max(len(row_labels), 1)
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    centres = [(i + 0.5) * height / n for i in range(n)]
    label_px = 8 * max((len(label) for label in row_labels), default=0) + 12
    top = 40 if title else 6
    fig = go.Figure(go.Image(source=uri, x0=0, y0=0, dx=1, dy=1, hoverinfo="skip"))
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        xaxis={"visible": False, "range": [0, width], "fixedrange": True},
        yaxis={
            "tickvals": centres,
            "ticktext": list(row_labels),
            "tickfont": {"size": 13, "color": "#31333f"},
            "range": [height, 0],
            "fixedrange": True,
            "showgrid": False,
            "zeroline": False,
        },
        width=width + label_px + 4,
        height=height + top + 6,
        margin={"l": label_px, "r": 4, "t": top, "b": 6, "pad": 2},
        plot_bgcolor="white",
    )
    return with_chart_font(fig)
