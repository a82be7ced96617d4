"""Charts of the "Watch it learn" page as live-chart specs: plain data in, a JSON-ready dict out (no
Streamlit, no plotly).

They are rebuilt on every frame while a run plays and drawn by the page's canvas component
(``views/components/live_chart``), which redraws in place in a few milliseconds; a plotly chart would be
re-mounted with its whole layout on every frame. A spec is ``{title, height, legend, panels}``; a panel has
``top``/``bottom`` (fractions of the plot area), ``x``/``y`` axes with fixed ranges, ``bands`` (the shaded
phases), ``lines`` and ``markers``; see ``views/components/live_chart/main.js``. Curves are thinned to
:data:`MAX_POINTS` points and at most :data:`MAX_SEGMENTS` phases are shaded; numbers are plain floats, and
a value that is not finite becomes ``None`` (a break in the line). The latent map is not here: the page draws
it with the latent pad in both states (``views/components/latent_pad``), one square shape while it plays and
while it is paused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from explorer_core.figures.common import finite_list, phase_bands, stacked_chart, thin_indices

MAX_POINTS = 600
MAX_SEGMENTS = 60
ELBO_COLOUR = "#d62728"
IWAE_COLOUR = "#2ca02c"
GAP_COLOUR = "#7f7f7f"
RECON_COLOUR = "#1f77b4"
KL_COLOUR = "#9467bd"
INACTIVE_COLOUR = "#c7c7c7"


def _history(steps: Sequence[int], segments: Sequence[Sequence], *curves: Sequence[float]):
    """What both history charts draw: the thinned steps x [m] (at most :data:`MAX_POINTS`), each curve at
    them [m], the shared x range (at least 10 steps) and the shaded phases (the last :data:`MAX_SEGMENTS`)."""
    idx = thin_indices(len(steps), MAX_POINTS)
    x = np.asarray(steps, dtype=float)[idx]
    values = [np.asarray(curve, dtype=float)[idx] for curve in curves]
    total = int(steps[-1]) if len(steps) else 0
    return x, values, [0.0, float(max(total, 10))], phase_bands(segments, total, MAX_SEGMENTS)


def _top(values: np.ndarray, scale: float = 1.1) -> float:
    """The upper end of a y range from 0: ``scale`` x the largest finite value, or 1 when none is above 0."""
    finite = values[np.isfinite(values)]
    return float(np.max(finite)) * scale if len(finite) and np.max(finite) > 0 else 1.0


def _range(values: np.ndarray, steps: np.ndarray, pad: float = 0.06) -> list[float]:
    """A y range around the finite values [n] at gradient steps [n]; the lower end ignores the first 10 %
    of the steps when two or more values lie after them (a fresh model's first evaluations are hundreds of
    nats lower and would squash the rest)."""
    ok = np.isfinite(values)
    if not ok.any():
        return [0.0, 1.0]
    later = ok & (steps >= 0.1 * float(np.max(steps)))
    low_from = values[later] if later.sum() >= 2 else values[ok]
    low, high = float(np.min(low_from)), float(np.max(values[ok]))
    margin = pad * max(high - low, 1.0)
    return [low - margin, high + margin]


def _panel(
    top: float, bottom: float, title: str, y_range: list[float], bands: list, xs: list, *curves: tuple
) -> dict:
    """One panel of a :func:`explorer_core.figures.common.stacked_chart`: ``curves`` are (values [n], colour)
    lines over ``xs`` [n], 2 px wide, the E/M ``bands`` shaded."""
    lines = [{"x": xs, "y": finite_list(values, 4), "color": colour, "width": 2} for values, colour in curves]
    return {
        "top": top,
        "bottom": bottom,
        "title": title,
        "y": {"range": y_range},
        "bands": bands,
        "lines": lines,
    }


def bound_chart(
    steps: Sequence[int],
    elbo: Sequence[float],
    iwae: Sequence[float],
    segments: Sequence[Sequence],
    k: int,
    height: int = 420,
) -> dict:
    """The validation ELBO and the IWAE-k bound per evaluation, E- and M-phases shaded (top); their
    difference, the estimate of the gap KL(q(z|x) || p(z|x)) (bottom). Tutorial section 4; the IWAE bound
    as in Burda et al. 2016, eq. 8.

    Args:
        steps: the gradient step of each evaluation [n]; elbo, iwae: nats per image [n].
        segments: ``(phase, first_step, last_step)`` runs of one phase.
        k: importance samples of the latest IWAE bound (for the legend).
    """
    x, (e, i), x_range, bands = _history(steps, segments, elbo, iwae)
    gap = i - e
    xs = finite_list(x, 1)
    legend = [
        {"name": f"IWAE bound, k = {k} (≤ log p(x))", "color": IWAE_COLOUR, "width": 2},
        {"name": "ELBO", "color": ELBO_COLOUR, "width": 2},
        {"name": "gap estimate = IWAE − ELBO", "color": GAP_COLOUR, "width": 2},
    ]
    bounds = _panel(
        0.0,
        0.64,
        "validation bounds, nats per image",
        _range(np.r_[e, i], np.r_[x, x]),
        bands,
        xs,
        (i, IWAE_COLOUR),
        (e, ELBO_COLOUR),
    )
    gaps = _panel(0.74, 1.0, "gap estimate", [0.0, _top(gap)], bands, xs, (gap, GAP_COLOUR))
    return stacked_chart(height, legend, x_range, [bounds, gaps])


def terms_chart(
    steps: Sequence[int],
    reconstruction: Sequence[float],
    kl: Sequence[float],
    segments: Sequence[Sequence],
    height: int = 300,
) -> dict:
    """The ELBO's two terms per evaluation (Kingma & Welling 2014, eq. 10): E_q[log p(x|z)] (top) and
    KL(q(z|x) || p(z)) (bottom), nats per image, phases shaded."""
    x, (r, kl_a), x_range, bands = _history(steps, segments, reconstruction, kl)
    xs = finite_list(x, 1)
    legend = [
        {"name": "reconstruction E_q[log p(x|z)]", "color": RECON_COLOUR, "width": 2},
        {"name": "KL(q(z|x) ‖ p(z))", "color": KL_COLOUR, "width": 2},
    ]
    reconstruction_panel = _panel(
        0.0, 0.5, "reconstruction, nats per image", _range(r, x), bands, xs, (r, RECON_COLOUR)
    )
    kl_panel = _panel(0.62, 1.0, "KL, nats per image", [0.0, _top(kl_a)], bands, xs, (kl_a, KL_COLOUR))
    return stacked_chart(height, legend, x_range, [reconstruction_panel, kl_panel])


def kl_dims_chart(kl_per_dim: Sequence[float], active: Sequence[bool], height: int = 230) -> dict:
    """KL(q(z_d|x) || p(z_d)) per latent dimension d = 1..L as bars (nats per image); the inactive dimensions
    (``active`` [L] False: :func:`explorer_core.evaluation.metrics.active_dimensions`, the encoder's mean
    ignores the image) are grey."""
    values = np.asarray(kl_per_dim, dtype=float)
    n = len(values)
    width = float(np.clip(240 / max(n, 1), 2, 40))
    lines = [
        {
            "x": [float(d + 1), float(d + 1)],
            "y": [0.0, round(float(v), 4) if math.isfinite(float(v)) else None],
            "color": KL_COLOUR if on else INACTIVE_COLOUR,
            "width": width,
        }
        for d, (v, on) in enumerate(zip(values, active, strict=True))
    ]
    top = _top(values, 1.15)
    return {
        "title": "KL per latent dimension (grey: inactive)",
        "height": int(height),
        "legend": [],
        "panels": [
            {
                "top": 0.0,
                "bottom": 1.0,
                "x": {"range": [0.5, n + 0.5], "title": "latent dimension d"},
                "y": {"range": [0.0, top], "title": "nats"},
                "lines": lines,
            }
        ],
    }
