"""The latent-space figure builders (explorer_core.figures) and the helpers of explorer_core.explore.latent,
without Streamlit and without trained models (tiny random ones; the bundle test uses MNIST when present)."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io
import pytest
import torch

from explorer_core.explore.latent import (
    IMAGE_SIDE,
    N_CLASSES,
    class_conditional_samples,
    click_grid,
    decode_under_labels,
    display_subset,
    drawing_input,
    prior_projections,
    slider_ranges,
    view_region,
)
from explorer_core.figures.common import DIGIT_COLOURS, map_ellipse
from explorer_core.figures.latent import latent_map_figure, reparameterisation_chart
from explorer_core.imaging import upscale
from explorer_core.models.vae import CVAE, VAE, VAEConfig


def _points(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)).astype(np.float32), rng.integers(0, 10, n)


# ------------------------------------------------------------------------------------------- figures


def test_latent_map_has_one_trace_per_digit_with_test_indices():
    coords, labels = _points()
    index = np.arange(1000, 1000 + len(coords))
    fig = latent_map_figure(coords, labels, index)
    assert [t.name for t in fig.data] == [str(d) for d in range(10)]
    for digit, trace in enumerate(fig.data):
        mask = labels == digit
        np.testing.assert_allclose(trace.x, coords[mask, 0])
        np.testing.assert_allclose(trace.y, coords[mask, 1])
        np.testing.assert_array_equal(trace.customdata, index[mask])
        assert trace.marker.color == DIGIT_COLOURS[digit]
        # a click selects a point: nothing may be dimmed by it
        assert trace.unselected.marker.opacity == trace.marker.opacity
    assert sum(len(t.x) for t in fig.data) == len(coords)


def test_latent_map_puts_the_click_grid_first_and_overlays_ignore_the_mouse():
    coords, labels = _points()
    region = ((-3.0, 3.0), (-2.0, 2.0))
    grid = click_grid(region, 7)
    fig = latent_map_figure(
        coords,
        labels,
        region=region,
        marker=(0.5, -0.5),
        grid=grid,
        ellipses=[map_ellipse(np.zeros(2), np.eye(2), "q", "#d62728")],
        samples=np.ones((4, 2)),
        path=np.array([[0, 0], [1, 1]]),
        highlight=(0.1, 0.2),
    )
    names = [t.name for t in fig.data]
    assert names[:11] == ["click grid"] + [str(d) for d in range(10)]  # the grid first: points win clicks
    grid_trace = fig.data[0]
    assert len(grid_trace.x) == 49 and grid_trace.customdata is None
    assert grid_trace.marker.opacity == 0 and grid_trace.hoverinfo != "skip"  # clickable, invisible
    overlays = fig.data[11:]
    assert [t.name for t in overlays] == [
        "q (1σ)",
        "q (2σ)",
        "z = μ + σ·ε",
        "interpolation",
        "chosen image",
        "z (decoded)",
    ]
    assert all(t.hoverinfo == "skip" and t.showlegend is False for t in overlays)
    assert (overlays[-1].x[0], overlays[-1].y[0]) == (0.5, -0.5)
    assert list(fig.layout.xaxis.range) == [-3.0, 3.0] and list(fig.layout.yaxis.range) == [-2.0, 2.0]
    # the 2-sigma ellipse is twice as wide as the 1-sigma one
    assert np.ptp(overlays[1].x) == pytest.approx(2 * np.ptp(overlays[0].x), rel=1e-3)
    json.loads(plotly.io.to_json(fig, validate=False))  # serialisable as Streamlit sends it
    _assert_valid(fig)


def _assert_valid(fig) -> None:
    """The figure is built unvalidated (for speed): validating it must neither fail nor change it."""
    validated = json.loads(plotly.io.to_json(go.Figure(fig.to_dict()), validate=False))
    built = json.loads(plotly.io.to_json(fig, validate=False))
    for spec in (validated, built):
        spec["layout"].pop("template", None)  # plotly's default template (Streamlit's theme replaces it)
    assert validated == built


def test_latent_map_without_region_autoranges():
    coords, labels = _points(30)
    fig = latent_map_figure(coords, labels, axis_titles=("u", "v"), title="t")
    assert fig.layout.xaxis.range is None
    assert fig.layout.xaxis.title.text == "u" and fig.layout.title.text == "t"
    _assert_valid(fig)


def test_reparameterisation_chart_shows_mu_sigma_samples_and_prior():
    mu, sigma = np.array([0.5, -1.0, 0.0]), np.array([0.1, 0.2, 0.3])
    eps = np.random.default_rng(0).normal(size=(4, 3))
    z = mu + sigma * eps
    spec = reparameterisation_chart(mu, sigma, z)
    json.dumps(spec, allow_nan=False)  # JSON-ready, no NaN
    (panel,) = spec["panels"]
    prior_bars, q_bars = panel["lines"]
    prior, q, samples = panel["markers"]

    def segments(line):  # (x, lo, hi) of each bar of a line broken by None
        x, y = line["x"], line["y"]
        return [(x[i], y[i], y[i + 1]) for i in range(0, len(x), 3)]

    np.testing.assert_allclose(prior["y"], 0.0)
    np.testing.assert_allclose([hi - lo for _, lo, hi in segments(prior_bars)], 2.0)
    np.testing.assert_allclose(q["y"], mu, atol=1e-5)
    np.testing.assert_allclose([(lo + hi) / 2 for _, lo, hi in segments(q_bars)], mu, atol=1e-5)
    np.testing.assert_allclose([(hi - lo) / 2 for _, lo, hi in segments(q_bars)], sigma, atol=1e-5)
    assert len(samples["y"]) == z.size
    np.testing.assert_allclose(np.sort(samples["y"]), np.sort(z.ravel()), atol=1e-5)  # 5 decimals sent
    assert panel["x"]["tickvals"] == [1.0, 2.0, 3.0]
    lo, hi = panel["y"]["range"]
    assert lo < z.min() and hi > z.max() and lo < -1.0 and hi > 1.0  # every bar and sample is inside
    spec = reparameterisation_chart(mu, sigma, z[0], prior_mean=mu, prior_std=2 * sigma)
    prior_bars = spec["panels"][0]["lines"][0]
    np.testing.assert_allclose([(hi - lo) / 2 for _, lo, hi in segments(prior_bars)], 2 * sigma, atol=1e-5)


# ------------------------------------------------------------------------ the pages around the map


def test_view_region_zooms_inside_the_ranges():
    ranges = ((-4.0, 4.0), (-2.0, 2.0))
    assert view_region(ranges, (1.0, 1.0), 1) == ranges
    (u0, u1), (v0, v1) = view_region(ranges, (1.0, 0.0), 4)
    assert (u1 - u0, v1 - v0) == pytest.approx((2.0, 1.0))
    assert (u0 + u1) / 2 == pytest.approx(1.0)
    (u0, u1), _ = view_region(ranges, (3.9, 0.0), 2)  # pushed back inside
    assert u1 == pytest.approx(4.0) and u0 == pytest.approx(0.0)
    with pytest.raises(ValueError):
        view_region(ranges, None, 0.5)


def test_click_grid_and_upscale_and_subset():
    grid = click_grid(((0.0, 1.0), (2.0, 3.0)), 5)
    assert grid.shape == (25, 2)
    assert grid[:, 0].min() == 0.0 and grid[:, 1].max() == 3.0
    image = np.arange(6, dtype=float).reshape(2, 3)
    big = upscale(image, 3)
    assert big.shape == (6, 9) and big[5, 8] == 5.0 and big[0, 2] == 0.0
    labels = np.repeat(np.arange(10), 100)
    idx = display_subset(labels, 300)
    assert len(idx) == 300 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, display_subset(labels, 300))  # fixed
    np.testing.assert_array_equal(display_subset(labels, 5000), np.arange(1000))


def test_drawing_input_empty_and_drawn():
    assert drawing_input(None, "dequantized") is None
    assert drawing_input(np.zeros((100, 100, 4), np.uint8), "dequantized") is None
    canvas = np.zeros((200, 200, 4), np.uint8)
    canvas[30:170, 90:110] = 255
    drawing = drawing_input(canvas, "dequantized")
    assert drawing.pixels.shape == (IMAGE_SIDE * IMAGE_SIDE,) and drawing.pixels.dtype == np.uint8
    assert drawing.x.shape == (784,) and float(drawing.x.min()) > 0 and float(drawing.x.max()) < 1
    np.testing.assert_array_equal(np.floor(drawing.x.numpy() * 256).astype(np.uint8), drawing.pixels)
    assert drawing.image.shape == (28, 28) and drawing.image.max() == pytest.approx(
        drawing.pixels.max() / 255
    )
    binary = drawing_input(canvas, "binarized")
    assert set(np.unique(binary.x.numpy())) <= {0.0, 1.0}


@pytest.fixture
def tiny_cvae() -> CVAE:
    torch.manual_seed(0)
    return CVAE(VAEConfig(latent_dim=3, hidden=(16,), dropout=0.0)).eval()


def test_cvae_label_views(tiny_cvae):
    z = np.zeros(3, np.float32)
    row = decode_under_labels(tiny_cvae, z, "lambda")
    assert row.shape == (N_CLASSES, 28, 28)
    assert not np.allclose(row[0], row[1])  # the label changes the decoding
    grid = class_conditional_samples(tiny_cvae, n_per_class=4, seed=1)
    assert grid.shape == (10 * 28 + 9, 4 * 28 + 3)
    np.testing.assert_array_equal(grid, class_conditional_samples(tiny_cvae, n_per_class=4, seed=1))
    assert not np.array_equal(grid, class_conditional_samples(tiny_cvae, n_per_class=4, seed=2))
    with pytest.raises(ValueError):
        class_conditional_samples(tiny_cvae, n_per_class=0)


def test_prior_projections_match_the_prior(tiny_cvae):
    from explorer_core.explore.latent import build_latent_map

    x = torch.rand(50, 784)
    y = torch.arange(50) % 10
    lm = build_latent_map(tiny_cvae, x, y)
    priors = prior_projections(tiny_cvae, lm)
    assert len(priors) == N_CLASSES
    with torch.no_grad():
        p = tiny_cvae.prior(torch.tensor([4]))
    mean, cov = priors[4]
    np.testing.assert_allclose(mean, lm.z_to_plane(p.mean[0].numpy()), rtol=1e-5, atol=1e-6)
    expected = lm.basis @ np.diag(p.stddev[0].numpy().astype(np.float64) ** 2) @ lm.basis.T
    np.testing.assert_allclose(cov, expected, rtol=1e-5)
    (u0, u1), (v0, v1) = slider_ranges(lm)
    assert u0 < lm.coords[:, 0].min() and u1 > lm.coords[:, 0].max() and v0 < v1


def test_load_bundle_encodes_the_test_set(tmp_path):
    """With MNIST on disk: a saved model comes back with its preprocessed test set and latent map."""
    from explorer_core.artifacts import ArtifactError, save_model
    from explorer_core.data import MNISTUnavailable
    from explorer_core.explore.latent import load_bundle

    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=2, hidden=(8,), dropout=0.0))
    tsne = {"tsne": torch.randn(20, 2), "tsne_index": torch.arange(20)}
    path = save_model(model, "vae", tmp_path, "m", {"preprocessing": "dequantized"}, views=tsne)
    try:
        bundle = load_bundle(path, n_test=300)
    except MNISTUnavailable as err:
        pytest.skip(f"MNIST is not on disk: {err}")
    assert bundle.x.shape == (300, 784) and bundle.images.dtype == torch.uint8
    assert bundle.latent_map.coords.shape == (300, 2) and bundle.latent_map.tsne.shape == (20, 2)
    assert bundle.preprocessing == "dequantized" and not bundle.conditional
    assert bundle.image(0).shape == (28, 28) and bundle.image(0).max() <= 1.0
    path.with_suffix(".safetensors").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match=r"corrupt|does not (fit|belong)"):
        load_bundle(path, n_test=10)
