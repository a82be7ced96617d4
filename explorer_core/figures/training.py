"""Figures of the Training page: plain data (lists, numpy arrays, the rows of ``metrics.jsonl``) in,
``go.Figure`` out (the preview's sample grid is :func:`explorer_core.imaging.tile`). No Streamlit, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer_core.figures.common import thin_indices, with_chart_font

TRAIN_COLOUR = "#1f77b4"
VAL_COLOUR = "#d62728"
METRIC_COLOURS = ("#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
#: keys of an epoch row that are not the family's own metrics
STANDARD_KEYS = frozenset(
    {"kind", "epoch", "step", "total_steps", "train_elbo", "val_elbo", "seconds", "time"}
    | {"best_epoch", "best_val_elbo"}
)
METRIC_NAMES = {
    "cluster_accuracy": "cluster accuracy",
    "conditional_entropy": "H(y|x) (nats)",
    "temperature": "Gumbel temperature",
    "total_kl": "total KL (nats)",
    "kl": "KL (nats)",
}
MAX_POINTS = 3000


@dataclass
class Curves:
    """The learning curves of one run as plain lists (x in epochs, fractional for steps; nats per image).

    ``metrics`` maps each family metric's key to its per-epoch values (None where an epoch lacks it).
    """

    step_x: list[float] = field(default_factory=list)
    step_train_elbo: list[float] = field(default_factory=list)
    epoch_x: list[int] = field(default_factory=list)
    epoch_train_elbo: list[float] = field(default_factory=list)
    epoch_val_elbo: list[float | None] = field(default_factory=list)
    metrics: dict[str, list[float | None]] = field(default_factory=dict)
    best_epoch: int | None = None


def curves_from_metrics(rows: Sequence[dict[str, Any]], epochs: int) -> Curves:
    """Split the rows of a run's ``metrics.jsonl`` into :class:`Curves`.

    Args:
        rows: the metrics lines (dicts with ``kind`` ``"step"`` or ``"epoch"``).
        epochs: the run's planned epochs: a step row at step s of T total steps sits at x = s * epochs / T.

    The family metrics are every numeric key of the epoch rows beyond :data:`STANDARD_KEYS`.
    """
    curves = Curves()
    epoch_rows = [r for r in rows if r.get("kind") == "epoch"]
    for r in rows:
        if r.get("kind") == "step":
            total = max(int(r.get("total_steps", 1)), 1)
            curves.step_x.append(int(r["step"]) * max(int(epochs), 1) / total)
            curves.step_train_elbo.append(float(r["train_elbo"]))
    keys: list[str] = []
    for r in epoch_rows:
        for k, v in r.items():
            numeric = isinstance(v, int | float) and not isinstance(v, bool)
            if numeric and k not in STANDARD_KEYS and k not in keys:
                keys.append(k)
    for r in epoch_rows:
        curves.epoch_x.append(int(r["epoch"]))
        curves.epoch_train_elbo.append(float(r["train_elbo"]))
        val = r.get("val_elbo")
        curves.epoch_val_elbo.append(None if val is None else float(val))
        for k in keys:
            v = r.get(k)
            curves.metrics.setdefault(k, []).append(float(v) if isinstance(v, int | float) else None)
        if r.get("best_epoch") is not None:
            curves.best_epoch = int(r["best_epoch"])
    return curves


def _finite(values: Sequence[float | None]) -> list[float | None]:
    return [v if v is not None and math.isfinite(v) else None for v in values]


def learning_curves(curves: Curves, epochs: int | None = None, height: int = 320) -> go.Figure:
    """Train ELBO (running mean over each epoch, per logged step) and the per-epoch train and validation
    ELBO against epochs; the best validation epoch is marked.

    Args:
        curves: see :func:`curves_from_metrics`; nats per image.
        epochs: the run's planned epochs (fixes the x range so the curve grows into it); None: autorange.
    """
    fig = go.Figure()
    idx = thin_indices(len(curves.step_x), MAX_POINTS)
    step_x = np.asarray(curves.step_x, dtype=float)[idx] if len(idx) else []
    step_y = np.asarray(curves.step_train_elbo, dtype=float)[idx] if len(idx) else []
    fig.add_trace(
        go.Scatter(
            x=step_x,
            y=_finite(list(step_y)),
            mode="lines",
            name="train ELBO (running, per step)",
            line={"color": TRAIN_COLOUR, "width": 1},
            opacity=0.6,
        )
    )
    per_epoch = (
        (curves.epoch_train_elbo, "train ELBO (epoch)", TRAIN_COLOUR),
        (curves.epoch_val_elbo, "validation ELBO", VAL_COLOUR),
    )
    for values, name, colour in per_epoch:
        fig.add_trace(
            go.Scatter(
                x=curves.epoch_x,
                y=_finite(values),
                mode="lines+markers",
                name=name,
                line={"color": colour, "width": 2},
            )
        )
    if curves.best_epoch is not None and curves.best_epoch in curves.epoch_x:
        i = curves.epoch_x.index(curves.best_epoch)
        best = curves.epoch_val_elbo[i]
        if best is not None and math.isfinite(best):
            fig.add_trace(
                go.Scatter(
                    x=[curves.best_epoch],
                    y=[best],
                    mode="markers",
                    name=f"best epoch {curves.best_epoch}: {best:.1f}",
                    marker={"symbol": "star", "size": 14, "color": VAL_COLOUR, "line": {"color": "black"}},
                )
            )
    xaxis: dict[str, Any] = {"title": "epoch"}
    if epochs:
        xaxis["range"] = [0, max(epochs, 1) * 1.02]
    # the first steps of a run sit far below the rest: range the y axis on the latest 80 % of the points
    ys = [v for v in _finite(list(step_y)) + _finite(curves.epoch_val_elbo) if v is not None]
    yaxis: dict[str, Any] = {"title": "ELBO (nats per image)"}
    if len(ys) >= 5:
        tail = np.asarray(ys[len(ys) // 5 :], dtype=float)
        lo, hi = float(np.min(tail)), float(np.max(ys))
        pad = 0.08 * max(hi - lo, 1e-6)
        yaxis["range"] = [lo - pad, hi + pad]
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": "Learning curves", "font": {"size": 14}},
        xaxis=xaxis,
        yaxis=yaxis,
        legend={"orientation": "h", "y": -0.25},
        uirevision="keep",
    )
    return with_chart_font(fig)


def family_metrics_figure(curves: Curves, height: int = 260) -> go.Figure | None:
    """One small panel per family metric against epochs (e.g. the GMVAE's cluster accuracy and H(y|x), the
    Gumbel temperature); None when the run logs none (the VAE and CVAE)."""
    keys = [k for k, v in curves.metrics.items() if any(x is not None for x in v)]
    if not keys:
        return None
    fig = make_subplots(
        rows=1,
        cols=len(keys),
        subplot_titles=[METRIC_NAMES.get(k, k.replace("_", " ")) for k in keys],
        horizontal_spacing=0.08,
    )
    for i, k in enumerate(keys):
        fig.add_trace(
            go.Scatter(
                x=curves.epoch_x,
                y=_finite(curves.metrics[k]),
                mode="lines+markers",
                name=METRIC_NAMES.get(k, k),
                line={"color": METRIC_COLOURS[i % len(METRIC_COLOURS)]},
                showlegend=False,
            ),
            row=1,
            col=i + 1,
        )
        fig.update_xaxes(title_text="epoch", row=1, col=i + 1)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10}, uirevision="keep")
    return with_chart_font(fig)
