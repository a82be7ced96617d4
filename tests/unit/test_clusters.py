"""The GMVAE page's computation (explorer_core.explore.clusters) and figures (explorer_core.figures.gmvae),
without Streamlit. Tiny random models; the bundle test reads the first MNIST test images; the shipped-model
tests read ``pretrained/gmvae-marginal`` and the README."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from explorer_core.artifacts import ArtifactError, save_model
from explorer_core.evaluation.metrics import cluster_accuracy
from explorer_core.explore.browser_decoder import TABLE_VIEWS
from explorer_core.explore.clusters import (
    AT_MEAN_TOLERANCE,
    CAPTION_FORMAT_MAX,
    PRIOR_MEAN_VIEW,
    at_prior_mean,
    cluster_name,
    cluster_sample_png,
    cluster_samples,
    decode_latent,
    decode_plane,
    gallery,
    gallery_order,
    image_posterior,
    lift,
    load_cluster_bundle,
    pad_target,
    row_purities,
    stored_clusters,
)
from explorer_core.explore.latent import fit_pca
from explorer_core.figures.gmvae import (
    UNMATCHED_COLOUR,
    clicked_target,
    cluster_map_figure,
    cluster_posterior_figure,
    confusion_figure,
    image_rows_figure,
)
from explorer_core.imaging import png_bytes
from explorer_core.models.gmvae import GMVAE, GMVAEConfig
from explorer_core.models.vae import VAE, VAEConfig


@pytest.fixture(scope="module")
def model() -> GMVAE:
    torch.manual_seed(0)
    return GMVAE(GMVAEConfig(hidden=(32,), latent_dim=4)).eval()


# ------------------------------------------------------------------------------------ gallery order


def test_gallery_order_follows_the_matched_digits():
    matched = [3, 9, 5, 2, 7, 1, 8, 6, 4, 0]
    order = gallery_order(matched)
    assert order == [9, 5, 3, 0, 8, 2, 7, 4, 6, 1]
    assert [matched[c] for c in order] == list(range(10))


def test_gallery_order_puts_unmatched_clusters_last_by_usage():
    matched = [1, -1, 0, -1, 2, -1]
    usage = [0.3, 0.05, 0.3, 0.2, 0.1, 0.05]
    assert gallery_order(matched, usage) == [2, 0, 4, 3, 1, 5]
    with pytest.raises(ValueError):
        gallery_order(matched, usage[:3])


def test_gallery_order_from_hungarian_matching_of_a_permuted_table():
    """Clusters that are a permutation of the labels are ordered back to 0..9, whatever the permutation."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000)
    perm = rng.permutation(10)  # cluster perm[d] holds digit d
    assignments = perm[labels]
    noisy = rng.random(2000) < 0.1
    assignments[noisy] = rng.integers(0, 10, noisy.sum())
    result = cluster_accuracy(assignments, labels, 10)
    order = gallery_order(result["matched_label"], result["usage"])
    assert order == [int(perm[d]) for d in range(10)]
    assert cluster_name(order[4], result["matched_label"]) == f"y={perm[4]} → 4"
    assert cluster_name(0, [-1] * 10) == "y=0 → –"


def test_stored_clusters_reads_the_json_and_rematches_without_matched_labels():
    table = np.diag([50, 40, 30, 20, 10, 10, 10, 10, 10, 10])[[2, 0, 1, 3, 4, 5, 6, 7, 8, 9]]
    meta = {"test_metrics": {"contingency": table.tolist(), "cluster_accuracy": 1.0}}
    clusters = stored_clusters(meta)
    assert clusters["matched_label"][:3] == [2, 0, 1]
    assert clusters["accuracy"] == 1.0
    assert sum(clusters["usage"]) == pytest.approx(1.0)
    assert stored_clusters({"test_metrics": {}}) is None
    assert stored_clusters({"test_metrics": {"contingency": [[1, 2]]}}) is None


# --------------------------------------------------------------------------------------------- PCA


@pytest.mark.parametrize("latent_dim", [1, 2, 5, 64])
def test_pca_shapes_and_orthonormal_basis(latent_dim):
    rng = np.random.default_rng(1)
    points = rng.normal(size=(300, latent_dim)) * np.linspace(3, 1, latent_dim)
    pca = fit_pca(points)
    assert pca.centre.shape == (latent_dim,)
    assert pca.basis.shape == (2, latent_dim)
    coords = pca(points)
    assert coords.shape == (300, 2) and coords.dtype == np.float32
    assert pca(points[0]).shape == (2,)
    k = min(2, latent_dim)
    np.testing.assert_allclose(pca.basis[:k] @ pca.basis[:k].T, np.eye(k), atol=1e-5)
    assert 0 <= pca.explained[1] <= pca.explained[0] <= 1
    np.testing.assert_allclose(coords.mean(0), 0, atol=1e-4)
    if latent_dim > 2:  # the first component carries the most variance
        assert coords[:, 0].var() >= coords[:, 1].var()
    with pytest.raises(ValueError):
        fit_pca(np.zeros((0, 3)))


# ---------------------------------------------------------------------------------------- sampling


def test_cluster_samples_shapes_seeds_and_spread(model):
    a = cluster_samples(model, 2, 7, seed=0)
    assert a.shape == (7, 28, 28) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, cluster_samples(model, 2, 7, seed=0))
    assert not np.array_equal(a, cluster_samples(model, 2, 7, seed=1))
    assert not np.array_equal(a, cluster_samples(model, 3, 7, seed=0))
    cold = cluster_samples(model, 2, 5, seed=0, spread=0.0)  # spread 0: the decoded prior mean, n times
    np.testing.assert_allclose(cold, np.broadcast_to(cold[0], cold.shape), atol=1e-6)
    for bad in ({"n": 0}, {"spread": -1.0}, {"cluster": 10}):
        with pytest.raises(ValueError):
            cluster_samples(model, **{"cluster": 0, "n": 3, **bad})


def test_cluster_sample_png_is_a_tiled_png(model):
    from io import BytesIO

    from PIL import Image

    data = cluster_sample_png(model, 1, 100, seed=3, n_cols=10, factor=2)
    image = Image.open(BytesIO(data))
    assert image.size == ((10 * 29 - 1) * 2, (10 * 29 - 1) * 2)
    assert data != cluster_sample_png(model, 1, 100, seed=4, n_cols=10, factor=2)


def test_gallery_rows_follow_the_order(model):
    order = [3, 0, 1, 2, 4, 5, 6, 7, 8, 9]
    grid = gallery(model, order, n_per_cluster=4, seed=0, spread=0.0)
    assert grid.shape == (10 * 29 - 1, 4 * 29 - 1)
    first_row = grid[:28, :28]
    expected = cluster_samples(model, 3, 1, spread=0.0)[0]  # spread 0: the decoded mean of cluster 3
    np.testing.assert_allclose(first_row, expected, atol=1e-5)
    with pytest.raises(ValueError):
        gallery(model, [], 3)


def test_image_posterior(model):
    x = (torch.rand(784, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    post = image_posterior(model, x)
    c = model.config.n_clusters
    assert post.probs.shape == (c,) and post.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert post.reconstructions.shape == (c, 28, 28)
    assert post.z_mean.shape == (model.config.latent_dim,)
    assert 0 <= post.entropy <= np.log(c) + 1e-6
    assert post.best == int(np.argmax(post.probs))
    expected = model.reconstructions_per_cluster(x[None])[:, 0].reshape(c, 28, 28).detach().numpy()
    np.testing.assert_allclose(post.reconstructions, expected, atol=1e-6)
    assert image_posterior(model, x.numpy()).probs == pytest.approx(post.probs, rel=1e-5, abs=1e-6)


# ------------------------------------------------------------------------------------------ bundle


def test_load_cluster_bundle(model, tmp_path):
    path = save_model(model, "gmvae", tmp_path, "tiny", {"preprocessing": "binarized"})
    bundle = load_cluster_bundle(path, n_test=300)
    c, latent = model.config.n_clusters, model.config.latent_dim
    assert bundle.probs.shape == (300, c)
    np.testing.assert_allclose(bundle.probs.sum(1), 1, atol=1e-5)
    assert bundle.mu.shape == (300, latent) and bundle.coords.shape == (300, 2)
    assert bundle.prior_means.shape == (c, latent) and bundle.prior_coords.shape == (c, 2)
    assert bundle.labels.shape == (300,) and bundle.x.shape == (300, 784)
    assert set(np.unique(bundle.x.numpy())) <= {0.0, 1.0}  # binarized
    assert np.array_equal(bundle.assignments, bundle.probs.argmax(1))
    assert np.asarray(bundle.clusters["contingency"]).sum() == 300
    assert sorted(bundle.order) == list(range(c))
    assert bundle.order == gallery_order(bundle.matched_label, bundle.usage)
    assert bundle.image(0).shape == (28, 28)

    vae = save_model(VAE(VAEConfig(latent_dim=2, hidden=(8,))), "vae", tmp_path, "not-a-gmvae", {})
    with pytest.raises(ArtifactError, match="not a GMVAE"):
        load_cluster_bundle(vae, n_test=10)


# ----------------------------------------------------------------------------------------- figures

MATCHED = [3, 9, 5, 2, 7, 1, 8, 6, 4, -1]
NAMES = [cluster_name(c, MATCHED) for c in range(10)]


def _validated(fig: go.Figure) -> go.Figure:
    """The same figure built with plotly's validation (the builders skip it for speed)."""
    return go.Figure(fig.to_dict())


def test_cluster_map_figure_traces_and_click_targets():
    rng = np.random.default_rng(0)
    coords, labels = rng.normal(size=(200, 2)), rng.integers(0, 10, 200)
    index = np.arange(1000, 1200)
    fig = cluster_map_figure(
        coords,
        labels,
        index,
        rng.normal(size=(10, 2)),
        NAMES,
        MATCHED,
        [0.1] * 10,
        picked=4,
        highlight=(0, 0),
    )
    _validated(fig)
    names = [t.name for t in fig.data]
    assert names[:10] == [str(d) for d in range(10)]
    assert names[10:] == ["chosen image", "picked cluster", "clusters"]
    assert sum(len(t.x) for t in fig.data[:10]) == 200
    clusters = fig.data[-1]
    assert list(clusters.customdata) == [f"y={c}" for c in range(10)]
    assert clusters.marker.color[9] == UNMATCHED_COLOUR
    assert list(clusters.text)[:2] == ["3", "9"] and clusters.text[9] == "–"
    digit3 = fig.data[3]
    assert set(np.asarray(digit3.customdata)) == set(index[labels == 3])
    # what a click reports, as the page reads it
    assert clicked_target({"customdata": "y=4"}) == ("cluster", 4)
    assert clicked_target({"customdata": ["y=7"]}) == ("cluster", 7)
    assert clicked_target({"customdata": 1042}) == ("image", 1042)
    assert clicked_target({"customdata": [17]}) == ("image", 17)
    assert clicked_target({"x": 0.5}) is None
    assert clicked_target({"customdata": "grid"}) is None
    plain = cluster_map_figure(coords, labels, index, rng.normal(size=(10, 2)), NAMES, MATCHED, [0.1] * 10)
    assert [t.name for t in plain.data][10:] == ["clusters"]


def test_cluster_posterior_figure_bars_in_order():
    probs = np.linspace(1, 10, 10)
    probs /= probs.sum()
    order = gallery_order(MATCHED)
    fig = cluster_posterior_figure(probs, order, NAMES, MATCHED, title="q(y|x)")
    _validated(fig)
    (bar,) = fig.data
    assert bar.type == "bar"
    assert list(bar.x) == [NAMES[c] for c in order]
    np.testing.assert_allclose(bar.y, probs[order])


def test_confusion_figure_rows_ordered_and_matches_boxed():
    rng = np.random.default_rng(0)
    table = rng.integers(0, 50, (10, 10))
    order = gallery_order(MATCHED)
    fig = confusion_figure(table, order, NAMES, MATCHED, accuracy=0.8351)
    _validated(fig)
    (heat,) = fig.data
    assert heat.type == "heatmap"
    np.testing.assert_array_equal(np.asarray(heat.z), table[order])
    assert list(heat.y) == [NAMES[c] for c in order]
    assert "83.51%" in fig.layout.title.text
    assert len(fig.layout.shapes) == 9  # one box per matched cluster; cluster 9 is unmatched


def test_image_rows_figure_labels_each_row():
    png = png_bytes(np.zeros((10 * 29 - 1, 15 * 29 - 1)), 2)
    labels = [f"row {i}" for i in range(10)]
    fig = image_rows_figure(png, 15 * 58, 10 * 58, labels)
    _validated(fig)
    (image,) = fig.data
    assert image.type == "image" and image.source.startswith("data:image/png;base64,")
    assert list(fig.layout.yaxis.ticktext) == labels
    assert len(fig.layout.yaxis.tickvals) == 10


def test_the_image_in_every_cluster_keeps_its_offset_and_is_its_reconstruction_in_its_own():
    torch.manual_seed(1)
    model = GMVAE(GMVAEConfig(n_clusters=4, latent_dim=3, hidden=(16,))).eval()
    x = (torch.rand(784, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    post = image_posterior(model, x)
    assert post.restyled.shape == (4, 28, 28)
    # in its own cluster the image is its reconstruction
    np.testing.assert_allclose(post.restyled[post.best], post.reconstructions[post.best], atol=1e-5)
    # elsewhere: z = mu(c) + sigma(c) * eps, with the image's own standardised offset eps
    with torch.no_grad():
        prior = model.prior()
        eps = (torch.as_tensor(post.z_mean) - prior.mean[post.best]) / prior.stddev[post.best]
        other = (post.best + 1) % 4
        z = prior.mean[other] + prior.stddev[other] * eps
        expected = model.decode(z[None]).mean.reshape(28, 28).numpy()
    np.testing.assert_allclose(post.restyled[other], expected, atol=1e-5)
    assert np.abs(post.restyled[other] - post.restyled[post.best]).max() > 1e-3  # not ten copies


# --------------------------------------------------------------------- what the pad decodes (issue 33)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "pretrained" / "gmvae-marginal.json"


def _plane_and_priors(model: GMVAE, seed: int):
    """A PCA plane fitted to encodings spread around the priors (as the page's), mu(y) [C, L] and its
    shadow on the plane [C, 2]."""
    with torch.no_grad():
        prior = model.prior()
        means = prior.mean.float().numpy()
        stds = prior.stddev.float().numpy()
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(means), 500)
    projection = fit_pca(means[y] + stds[y] * rng.normal(size=(500, means.shape[1])))
    return projection, means, projection(means)


@pytest.mark.parametrize(("seed", "latent_dim"), [(0, 4), (1, 8), (2, 16), (3, 64)])
def test_a_pick_decodes_the_decoder_mean_at_mu_y_and_says_so(seed, latent_dim):
    """With z on the picked cluster's disc (exactly, or as a link rounds it to 3 decimals) the pad decodes
    mu(y) itself, all L coordinates (float32 tolerance), and its caption names that; the plane point lifted
    to the latent space would be another z."""
    torch.manual_seed(seed)
    model = GMVAE(GMVAEConfig(hidden=(32,), latent_dim=latent_dim)).eval()
    projection, means, coords = _plane_and_priors(model, seed)
    matched = list(np.random.default_rng(seed).permutation(10))
    with torch.no_grad():
        expected = model.decode(model.prior().mean).mean.reshape(10, 28, 28).numpy()
    for c in range(10):
        name = cluster_name(c, matched)
        for uv in (coords[c], np.round(coords[c], 3)):
            target = pad_target(projection, means, coords, c, uv, matched)
            assert target.cluster == c and target.view == PRIOR_MEAN_VIEW
            np.testing.assert_array_equal(target.z, means[c])
            np.testing.assert_allclose(decode_latent(model, target.z), expected[c], atol=1e-6, rtol=1e-5)
            assert target.caption == f"decoder mean at μ(y) of cluster {name} (all {latent_dim} coordinates)"
            assert "μ(y)" in target.title
        # what the pad decoded before: the disc's point of the plane, lifted, is not mu(y)
        assert np.abs(lift(projection, coords[c]) - means[c]).max() > 1e-3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_off_the_disc_the_pad_decodes_the_lifted_plane_point_and_says_so(seed):
    """Moved off the picked cluster's disc (beyond the tolerance, or onto another cluster's disc) the pad
    decodes the plane point lifted to L-D; the caption says so, names z, and fits the browser's copy of it."""
    torch.manual_seed(seed)
    model = GMVAE(GMVAEConfig(hidden=(32,), latent_dim=6)).eval()
    projection, means, coords = _plane_and_priors(model, seed)
    rng = np.random.default_rng(seed)
    for c in range(10):
        moves = [
            coords[c] + np.array([2 * AT_MEAN_TOLERANCE, 0.0]),
            coords[c] + np.array([0.0, -2 * AT_MEAN_TOLERANCE]),
            coords[(c + 1) % 10],  # another cluster's disc: not the picked one
            coords[c] + rng.normal(size=2),
        ]
        for uv in moves:
            target = pad_target(projection, means, coords, c, uv)
            assert target.cluster is None and target.view == "lambda" and target.view in TABLE_VIEWS
            point = np.asarray(uv, dtype=np.float32)
            np.testing.assert_array_equal(target.z, lift(projection, point))
            np.testing.assert_allclose(
                decode_latent(model, target.z), decode_plane(model, projection, point), atol=1e-6
            )
            assert target.caption == f"plane ({point[0]:.2f}, {point[1]:.2f}) → 6-D"
            assert len(target.caption_format) <= CAPTION_FORMAT_MAX
            assert "lifted to 6-D" in target.title
        assert at_prior_mean(coords[c] + AT_MEAN_TOLERANCE / 2, coords, c)
        assert not at_prior_mean(coords[c] + 2 * AT_MEAN_TOLERANCE, coords, c)
    with pytest.raises(ValueError):
        pad_target(projection, means, coords, 10, coords[0])
    with pytest.raises(ValueError):
        pad_target(projection, means[:3], coords, 0, coords[0])


@pytest.mark.skipif(not SHIPPED.exists(), reason="the shipped gmvae-marginal is not here")
def test_the_shipped_models_prior_means_decode_to_images_of_their_own_clusters():
    """What a pick shows in the shipped model: each lambda(mu(y)), binarized, is classified (argmax q(y|x))
    into y itself, for all ten clusters (the plane point the pad decoded before went to other clusters)."""
    from explorer_core.artifacts import load_model

    model = load_model(SHIPPED, "cpu").model
    with torch.no_grad():
        means = model.prior().mean
        images = model.decode(means).mean
        assigned = model.cluster_posterior((images > 0.5).float()).probs.argmax(-1)
    assert assigned.tolist() == list(range(model.config.n_clusters))


def test_row_purities_of_a_table():
    table = np.zeros((3, 10), np.int64)
    table[0, 4], table[0, 7] = 30, 10  # cluster 0 -> 4: 75 %, then sevens
    table[1, 1] = 50  # cluster 1 -> 1: pure
    table[2, 2], table[2, 5] = 5, 5  # cluster 2: unmatched
    clusters = {"contingency": table.tolist(), "matched_label": [4, 1, -1], "usage": [0.4, 0.5, 0.1]}
    rows = row_purities(clusters)
    assert [r.cluster for r in rows] == [1, 0, 2]  # gallery order
    assert rows[1].purity == pytest.approx(0.75) and rows[1].other_digit == 7
    assert rows[1].other_share == pytest.approx(0.25) and rows[1].n_images == 40
    assert rows[0].purity == 1.0 and rows[0].other_digit is None and rows[0].other_share == 0.0
    assert rows[2].purity == 0.0 and rows[2].other_digit in (2, 5)
    with pytest.raises(ValueError):
        row_purities({**clusters, "matched_label": [4, 1]})


DIGIT_WORDS = ["zeros", "ones", "twos", "threes", "fours", "fives", "sixes", "sevens", "eights", "nines"]


def _percent(share: float) -> str:
    """A share as the README writes it: whole percent, one decimal above 99.5 %."""
    return f"{100 * share:.1f}" if share >= 0.995 else f"{100 * share:.0f}"


@pytest.mark.skipif(not SHIPPED.exists(), reason="the shipped gmvae-marginal is not here")
def test_the_readme_says_what_the_shipped_gallery_rows_hold():
    """The README's sentence on the gallery of gmvae-marginal agrees with its stored test contingency table:
    the rows below 80 % purity listed first (with their main other digit), every row's purity given."""
    meta = json.loads(SHIPPED.read_text())
    rows = row_purities(stored_clusters(meta))
    text = " ".join((ROOT / "README.md").read_text().split())
    found = re.search(r"less than 80 % one digit, by the test contingency table in (.*?)\):", text)
    assert found, "the README's sentence on the gallery rows is missing"
    sentence = found.group(1)
    assert sentence.startswith("`pretrained/gmvae-marginal.json`")
    below, above = sentence.split("above 80 %:")
    for row in rows:
        pattern = rf"\b{row.digit} \((?:purity )?{re.escape(_percent(row.purity))} %"
        assert re.search(pattern, below if row.purity < 0.8 else above), (row, pattern)
        if row.purity < 0.8:
            assert f"then {_percent(row.other_share)} % {DIGIT_WORDS[row.other_digit]}" in below, row
