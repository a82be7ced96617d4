"""Figure builders: plain data in, plotly figures out."""

import numpy as np
import pytest

from explorer_core.figures.common import MAX_CURVE_POINTS, ellipse_points
from explorer_core.figures.fa import FA_CAMERA, fa_learning_curves, fa_scatter_3d, posterior_ellipses


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
    phases = ["init"] + ["e_step"] * 10 + ["m_step"] * 10 + ["joint"] * 10
    segments = [("e_step", 1, 10), ("m_step", 11, 20), ("joint", 21, 30)]
    values = list(np.linspace(-10, -4, n))
    fig = fa_learning_curves(values, values, [1.0] * n, segments, -3.97, -3.972)
    shaded = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(phases) == n
    assert sorted((s.x0, s.x1) for s in shaded) == [(0.5, 10.5), (0.5, 10.5), (10.5, 20.5), (10.5, 20.5)]
    names = [t.name for t in fig.data]
    assert "ELBO (estimate)" in names and "evidence log p(x)" in names


def test_long_histories_are_thinned_but_keep_the_last_step():
    n = 3 * MAX_CURVE_POINTS
    values = list(np.arange(n, dtype=float))
    fig = fa_learning_curves(values, values, values, [], -3.97, -3.97)
    assert len(fig.data[0].x) <= MAX_CURVE_POINTS + 1
    assert fig.data[0].x[-1] == n - 1


def test_scatter_keeps_a_fixed_camera_and_axis_ranges():
    rng = np.random.default_rng(0)
    data, model = rng.normal(size=(100, 3)), 10 * rng.normal(size=(100, 3))
    fig = fa_scatter_3d(data, model, highlight=data[0])
    assert fig.layout.scene.camera.eye.x == FA_CAMERA["eye"]["x"]
    assert fig.layout.uirevision == "fa-scatter"
    lo, hi = fig.layout.scene.xaxis.range
    assert lo < data[:, 0].min() and hi > data[:, 0].max() and hi < model[:, 0].max()  # data sets the axes
    assert len(fig.data) == 3


def test_posterior_panel_draws_both_posteriors():
    fig = posterior_ellipses(np.zeros(2), np.eye(2), np.ones(2), 0.5 * np.eye(2))
    legend = [t.name for t in fig.data if t.showlegend]
    assert legend == ["exact posterior p(z|x)", "amortized posterior q(z|x)"]
