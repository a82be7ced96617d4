"""Figures of the factor analysis page, as live-chart specs (``views/components/live_chart``): the learning
curves (ELBO against the exact log evidence, E/M phases shaded) and the posterior ellipses (approximate q(z|x)
against the exact p(z|x)); and the fixed axis ranges of its 3-D scatter (``views/components/scatter3d``).
Plain numpy in, JSON-ready dicts out; no Streamlit, no plotly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from explorer_core.figures.common import (
    ELBO_COLOUR,
    EVIDENCE_COLOUR,
    EXACT_COLOUR,
    LIVE_MAX_POINTS,
    Q_COLOUR,
    ellipse_points,
    finite_list,
    latent_plane_chart,
    phase_bands,
    stacked_chart,
    thin_indices,
)


def _axis_range(values: np.ndarray, margin: float = 0.15) -> list[float]:
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = margin * max(hi - lo, 1e-6)
    return [lo - pad, hi + pad]


def fa_axis_ranges(x_data: np.ndarray) -> list[list[float]]:
    """Fixed 3-D axis ranges for data [N, 3]: each coordinate's extent plus 15 % (a frame never rescales)."""
    x_data = np.asarray(x_data, dtype=float)
    return [_axis_range(x_data[:, i]) for i in range(3)]


#: the title of the ELBO panel
CURVES_TITLE = "Test ELBO and exact evidence (nats per point)"


def default_range_start(segments: Sequence[tuple[str, int, int]]) -> int:
    """The first step whose values set the default y range of :func:`fa_curves_chart`: the step the second
    phase started from (the end of the first phase), so that the random start (an ELBO tens of nats below
    the rest) does not squash the gap; 0 while there is one phase or none (its climb is then what there is
    to see). ``segments`` are ``(phase, first_step, last_step)`` runs, steps 1-based."""
    return int(segments[1][1]) - 1 if len(segments) > 1 else 0


def fa_curves_chart(
    elbo: Sequence[float],
    evidence: Sequence[float],
    gap: Sequence[float],
    segments: Sequence[tuple[str, int, int]],
    true_evidence: float,
    mle_evidence: float,
    max_points: int = LIVE_MAX_POINTS,
    height: int = 440,
    zoom_last_phase: bool = False,
) -> dict:
    """A live-chart spec (``views/components/live_chart``): ELBO and evidence per step over the
    reference lines, E-phases shaded grey and M-phases amber, the exact gap (log scale) below.

    The y range of the upper panel holds the reference lines and every ELBO and evidence value from the end
    of the first phase on (:func:`default_range_start`; the whole run while there is one phase), so the gap
    between the two curves keeps a visible share of the panel after the random start. Values before that
    which fall outside the range (the first steps' ELBO, about -43 nats for the tutorial's data) are clipped
    at the panel's edge, and the panel's title says so: ``"· step 0: ELBO -43.04 ↓"`` (the most extreme
    clipped value of each curve; ↑ when above). With ``zoom_last_phase`` the x range is the last phase
    alone (from ``segments``; the whole run when there is none) and the y range that phase's values, so a
    gap of a few hundredths of a nat is visible. At most ``max_points`` points per line (the first and the
    last always kept), so a frame stays small.

    Args:
        elbo, evidence, gap: per step, index 0 the initial model, nats per point [n] (n >= 1).
        segments: ``(phase, first_step, last_step)`` runs of one phase, steps 1-based.
        true_evidence, mle_evidence: the reference lines, nats per point.
    """
    n = len(elbo)
    first = 0
    if zoom_last_phase and segments:
        first = max(int(segments[-1][1]) - 1, 0)  # the step before the phase: where it starts from
    idx = first + thin_indices(n - first, max_points)
    elbo_all, evidence_all, gap_all = (np.asarray(v, dtype=float) for v in (elbo, evidence, gap))
    elbo_a, evidence_a, gap_a = elbo_all[idx], evidence_all[idx], gap_all[idx]
    total = max(n - 1, 1)
    x_range = [float(first), float(max(total, first + 10))]
    title = CURVES_TITLE
    if zoom_last_phase:
        low = float(np.nanmin([np.nanmin(elbo_a), np.nanmin(evidence_a)]))
        high = float(np.nanmax([np.nanmax(elbo_a), np.nanmax(evidence_a)]))
        pad = 0.05 * max(high - low, 1e-4)
    else:
        # every value from the range's start on (all of them, not only the thinned ones drawn)
        start = min(default_range_start(segments), n - 1)
        shown = [elbo_all[start:], evidence_all[start:], [true_evidence, mle_evidence]]
        low = float(np.nanmin([np.nanmin(v) for v in shown]))
        high = float(np.nanmax([np.nanmax(v) for v in shown]))
        pad = 0.05 * max(high - low, 0.1)
        title += _clipped_start(elbo_all[:start], evidence_all[:start], low - pad, high + pad)
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
        "title": title,
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


def _clipped_start(elbo: np.ndarray, evidence: np.ndarray, lo: float, hi: float) -> str:
    """The note on the values before the y range's start that fall outside ``[lo, hi]``: for each curve
    with such values, its most extreme one, the step it was measured at and an arrow to where it lies,
    e.g. ``" · step 0: ELBO -43.04 ↓"`` (``""`` when nothing is clipped)."""
    notes = []
    for name, values in (("ELBO", elbo), ("evidence", evidence)):
        values = np.where(np.isfinite(values), values, np.nan)
        if np.isnan(values).all():
            continue
        i_lo, i_hi = int(np.nanargmin(values)), int(np.nanargmax(values))
        if values[i_lo] < lo:
            notes.append(f"step {i_lo}: {name} {values[i_lo]:.2f} ↓")
        if values[i_hi] > hi:
            notes.append(f"step {i_hi}: {name} {values[i_hi]:.2f} ↑")
    return "".join(f" · {note}" for note in notes)


def fa_ellipses_chart(
    q_mean: np.ndarray,
    q_cov: np.ndarray,
    p_mean: np.ndarray,
    p_cov: np.ndarray,
    title: str = "",
    height: int = 400,
) -> dict:
    """A live-chart spec (``views/components/live_chart``): q(z|x) (red, dashed) against the exact
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
    legend = [
        {"name": "exact posterior p(z|x)", "color": EXACT_COLOUR, "width": 2.5},
        {"name": "amortized posterior q(z|x)", "color": Q_COLOUR, "dash": [7, 4], "width": 2.5},
    ]
    return latent_plane_chart(lines, markers, extent, title, height, legend)
