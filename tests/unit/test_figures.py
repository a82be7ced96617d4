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
    assert lo < -43.0 and hi > -3.97  # the first ELBO is on the chart
    zoomed = fa_curves_chart(elbo, evidence, gap, segments, -3.9705, -3.9721, zoom_last_phase=True)
    panel = zoomed["panels"][0]
    assert panel["x"]["range"][0] == 3.0  # from the step before the last phase
    z_lo, z_hi = panel["y"]["range"]
    assert z_lo > -4.1 and z_hi < -3.98 and z_lo < -4.05  # only that phase's values, all of them
