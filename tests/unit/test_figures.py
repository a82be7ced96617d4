"""Figure builders: plain data in, live-chart specs out."""

import numpy as np
import pytest

from explorer_core.figures.common import MAX_CURVE_POINTS, ellipse_points
from explorer_core.figures.fa import fa_axis_ranges, fa_curves_chart, fa_ellipses_chart


def test_ellipse_points_lie_on_the_mahalanobis_contour():
    mean, cov = np.array([1.0, -2.0]), np.array([[2.0, 0.6], [0.6, 0.5]])
    for n_sigma in (1, 2):
        d = ellipse_points(mean, cov, n_sigma) - mean
        mahalanobis = np.sqrt(np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d))
        np.testing.assert_allclose(mahalanobis, n_sigma, rtol=1e-9)
    with pytest.raises(ValueError):
        ellipse_points(np.zeros(3), np.eye(3), 1)


def test_learning_curves_shade_e_and_m_phases_only():
    n = 31
    segments = [("e_step", 1, 10), ("m_step", 11, 20), ("joint", 21, 30)]
    values = list(np.linspace(-10, -4, n))
    chart = fa_curves_chart(values, values, [1.0] * n, segments, -3.97, -3.972)
    upper, lower = chart["panels"]
    assert [(b["x0"], b["x1"]) for b in upper["bands"]] == [(0.5, 10.5), (10.5, 20.5)]
    assert [(b["x0"], b["x1"]) for b in lower["bands"]] == [(0.5, 10.5), (10.5, 20.5)]
    names = [entry["name"] for entry in chart["legend"]]
    assert "ELBO (estimate)" in names and "evidence log p(x)" in names
    assert lower["y"]["log"] is True  # the gap on a log axis


def test_long_histories_are_thinned_but_keep_the_last_step():
    n = 3 * MAX_CURVE_POINTS
    values = list(np.arange(n, dtype=float))
    chart = fa_curves_chart(values, values, values, [], -3.97, -3.97, max_points=MAX_CURVE_POINTS)
    line = chart["panels"][0]["lines"][0]
    assert len(line["x"]) <= MAX_CURVE_POINTS + 1
    assert line["x"][-1] == n - 1


def test_scatter_axes_follow_the_data_not_the_model():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(100, 3))
    ranges = fa_axis_ranges(data)
    assert len(ranges) == 3
    for (lo, hi), column in zip(ranges, data.T, strict=True):
        assert lo < column.min() and hi > column.max() and hi - lo < 3 * (column.max() - column.min())


def test_posterior_panel_draws_both_posteriors():
    chart = fa_ellipses_chart(np.zeros(2), np.eye(2), np.ones(2), 0.5 * np.eye(2))
    legend = [entry["name"] for entry in chart["legend"]]
    assert legend == ["exact posterior p(z|x)", "amortized posterior q(z|x)"]


def test_the_elbo_range_follows_the_data_and_zooms_on_the_last_phase():
    elbo = [-43.0, -5.0, -4.2, -4.05, -4.02, -4.01]
    evidence = [-6.6, -6.6, -4.1, -4.0, -3.99, -3.985]
    gap = [34.8, 1.6, 0.1, 0.05, 0.03, 0.025]
    segments = [("e_step", 1, 1), ("m_step", 2, 3), ("e_step", 4, 5)]
    whole = fa_curves_chart(elbo, evidence, gap, segments, -3.9705, -3.9721)["panels"][0]
    lo, hi = whole["y"]["range"]
    # every value from the end of the first phase on, and the reference lines; the random start is clipped
    assert lo < -6.6 and hi > -3.97 and lo > -7.0
    assert whole["title"].endswith(" · step 0: ELBO -43.00 ↓")
    zoomed = fa_curves_chart(elbo, evidence, gap, segments, -3.9705, -3.9721, zoom_last_phase=True)
    panel = zoomed["panels"][0]
    assert panel["x"]["range"][0] == 3.0  # from the step before the last phase
    z_lo, z_hi = panel["y"]["range"]
    assert z_lo > -4.1 and z_hi < -3.98 and z_lo < -4.05  # only that phase's values, all of them


def test_one_phase_shows_all_of_it_and_nothing_is_marked():
    elbo, evidence = [-43.0, -20.0, -9.0], [-6.6, -6.6, -6.6]
    panel = fa_curves_chart(elbo, evidence, [36.4, 13.4, 2.4], [("e_step", 1, 2)], -3.97, -3.972)["panels"][0]
    lo, hi = panel["y"]["range"]
    assert lo < -43.0 and hi > -3.97  # the climb of the only phase is what there is to see
    assert panel["title"] == "Test ELBO and exact evidence (nats per point)"
    first = fa_curves_chart([-43.0], [-6.6], [36.4], [], -3.97, -3.972)["panels"][0]  # the initial model
    assert first["y"]["range"][0] < -43.0 and "step" not in first["title"]


def test_the_default_range_shows_the_gap_of_the_latest_steps():
    """E x 100 then M x 100 (the tutorial's data, issue 33): the ELBO starts at -43, the evidence rises
    from -6.61 to -5.77 in the M-phase and the gap falls from 2.18 to 0.26. The default range keeps the
    latest ELBO and evidence, and their gap spans a visible share of it (it was 0.6 %, a pixel or two)."""
    e_phase = np.linspace(-43.04, -8.78, 101)
    m_elbo, m_evidence = np.linspace(-8.78, -6.03, 100), np.linspace(-6.58, -5.77, 100)
    elbo = np.r_[e_phase, m_elbo]
    evidence = np.r_[np.full(101, -6.61), m_evidence]
    gap = evidence - elbo
    segments = [("e_step", 1, 100), ("m_step", 101, 200)]
    chart = fa_curves_chart(elbo, evidence, gap, segments, -3.9705, -3.9721)
    upper = chart["panels"][0]
    lo, hi = upper["y"]["range"]
    for value in (elbo[-1], evidence[-1], -3.9705, -3.9721, *elbo[100:], *evidence):
        assert lo <= value <= hi
    assert gap[-1] / (hi - lo) > 0.04
    assert upper["title"].endswith("step 0: ELBO -43.04 ↓")
    # the legend and the x axis are still drawn: the legend's entries, the x title on the last panel
    assert len(chart["legend"]) == 4 and chart["panels"][-1]["x"]["title"] == "gradient step"
    # the whole run is still on the x axis, and the thinned lines keep the first and the last step
    assert chart["panels"][0]["x"]["range"] == [0.0, 200.0]
    assert upper["lines"][1]["x"][0] == 0.0 and upper["lines"][1]["y"][-1] == pytest.approx(-6.03)
