"""The VRNN page's computation (explorer_core.explore.sequences) and figures (explorer_core.figures.vrnn), on
a tiny random VRNN: grid images with blank future rows and marks, stepping a generation, completions that keep
the given rows exactly, per-row ELBO terms, and the plotly builders."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from explorer_core.artifacts import ArtifactError, save_model
from explorer_core.explore.sequences import (
    CURRENT_RGB,
    FUTURE_RGB,
    GUTTER_RGB,
    KEPT_INK_RGB,
    KEPT_LINE_RGB,
    KEPT_PAPER_RGB,
    advance,
    completions,
    grid_shape,
    load_vrnn,
    row_terms_of,
    sequence_grid,
    start_generation,
    state_rows,
)
from explorer_core.figures.vrnn import prior_trajectory_figure, row_terms_figure
from explorer_core.imaging import png_bytes
from explorer_core.models.vae import VAE, VAEConfig
from explorer_core.models.vrnn import VRNN, VRNNConfig

T = 28


@pytest.fixture(scope="module")
def model() -> VRNN:
    torch.manual_seed(0)
    return VRNN(VRNNConfig(hidden=(16,), rnn_hidden=16, rnn_layers=1)).eval()


def binary_image(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(784, generator=g) < 0.3).float()


# ----------------------------------------------------------------------------------------------- the grid


@pytest.mark.parametrize(("n", "shape"), [(1, (1, 1)), (4, (2, 2)), (5, (2, 3)), (16, (4, 4)), (17, (4, 5))])
def test_grid_shape_is_as_square_as_possible(n, shape):
    assert grid_shape(n) == shape


def tile_of(image: np.ndarray, i: int, n_cols: int, factor: int, pad: int) -> np.ndarray:
    """Digit i's [T, 28, 3] block, read back at image resolution."""
    r, c = divmod(i, n_cols)
    top, left = (r * (T + pad) + pad) * factor, (c * (28 + pad) + pad) * factor
    return image[top : top + T * factor : factor, left : left + 28 * factor : factor]


def test_grid_shows_done_rows_and_grey_future_rows():
    rng = np.random.default_rng(0)
    rows = rng.uniform(size=(5, 10, 28)).astype(np.float32)
    factor, pad = 3, 2
    image = sequence_grid(rows, T, n_cols=3, factor=factor, pad=pad)
    assert image.dtype == np.uint8
    assert image.shape == ((2 * (T + pad) + pad) * factor, (3 * (28 + pad) + pad) * factor, 3)
    for i in range(5):
        tile = tile_of(image, i, 3, factor, pad)
        # done rows: white ink on black, every channel the same grey level
        np.testing.assert_allclose(tile[:10, :, 0], np.round(rows[i] * 255), atol=1)
        assert (tile[:10, :, 0] == tile[:10, :, 2]).all()
        # rows not generated yet: the flat "future" grey, all of them (the last one included)
        assert (tile[10:] == FUTURE_RGB).all()
    # the sixth cell of the 2 x 3 grid is empty: page background
    assert (tile_of(image, 5, 3, factor, pad) == GUTTER_RGB).all()


def test_grid_with_all_rows_and_none():
    full = sequence_grid(np.ones((4, T, 28)), T, factor=1, pad=1)
    assert not (full == FUTURE_RGB).all(-1).any()  # nothing left grey: all 28 rows are drawn
    empty = sequence_grid(np.zeros((4, 0, 28)), T, factor=1, pad=1)
    assert (tile_of(empty, 0, 2, 1, 1) == FUTURE_RGB).all()
    assert sequence_grid(np.zeros((0, 0, 28)), T, factor=1).shape == ((T + 4) * 1, (28 + 4) * 1, 3)
    with pytest.raises(ValueError):
        sequence_grid(np.zeros((2, T + 1, 28)), T)


def test_grid_marks_the_current_row_in_the_gutters():
    factor, pad = 4, 2
    image = sequence_grid(np.zeros((1, 7, 28)), T, factor=factor, pad=pad, current=6)
    top, left = pad * factor, pad * factor
    marked = (image == CURRENT_RGB).all(-1)
    ys = np.nonzero(marked.any(1))[0]
    assert ys.min() == top + 6 * factor and ys.max() == top + 7 * factor - 1  # exactly row 7's pixels
    assert not marked[:, left : left + 28 * factor].any()  # only in the gutters, the digit stays visible
    assert marked[:, :left].any() and marked[:, left + 28 * factor :].any()  # left and right of it
    assert not (sequence_grid(np.zeros((1, 7, 28)), T, current=None) == CURRENT_RGB).all(-1).any()


def test_grid_tints_kept_rows_and_draws_a_line_where_they_end():
    factor = 4
    rows = np.zeros((2, T, 28), np.float32)
    rows[:, :, 10] = 1.0
    image = sequence_grid(rows, T, n_cols=2, kept=5, factor=factor, pad=2)
    tile = tile_of(image, 0, 2, factor, 2)
    assert (tile[:5, 0] == KEPT_PAPER_RGB).all() and (tile[:4, 10] == KEPT_INK_RGB).all()  # tinted blue
    assert (tile[6:, 0] == 0).all() and (tile[6:, 10] == 255).all()  # generated rows: plain white on black
    line = (image == KEPT_LINE_RGB).all(-1)
    ys = np.nonzero(line.any(1))[0]
    y = (2 + 5) * factor  # the boundary between row 5 and row 6 (gutter of 2 pixels above the digit)
    assert set(ys) == {y - 1, y}  # a line factor // 2 = 2 screen pixels thick, on the boundary


def test_png_bytes_round_trip():
    image = sequence_grid(np.random.default_rng(1).uniform(size=(4, 3, 28)), T, factor=2)
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(image))).convert("RGB"))
    np.testing.assert_array_equal(decoded, image)


# -------------------------------------------------------------------------------------------- generation


def test_generation_advances_one_row_at_a_time_and_stops_at_t(model):
    gen = start_generation(model, 16, seed=3, model_key="m")
    assert (gen.rows, gen.n, gen.seed) == (0, 16, 3)
    advance(model, gen)
    assert gen.rows == 1
    assert state_rows(gen.state).shape == (16, 1, 28)
    assert set(np.unique(state_rows(gen.state, "samples"))) <= {0.0, 1.0}
    advance(model, gen, 100)
    assert gen.rows == T
    assert gen.state.prior_means.shape == (16, T, 2)
    advance(model, gen)  # past the end: nothing happens
    assert gen.rows == T
    with pytest.raises(ValueError):
        state_rows(gen.state, "lambda")


def test_generation_is_reproducible_by_seed(model):
    a = advance(model, start_generation(model, 4, seed=7), T)
    b = start_generation(model, 4, seed=7)
    for _ in range(T):
        advance(model, b)  # one row at a time gives the same digits as all at once
    c = advance(model, start_generation(model, 4, seed=8), T)
    assert torch.equal(a.state.samples, b.state.samples)
    assert not torch.equal(a.state.samples, c.state.samples)


def test_completion_keeps_the_given_rows_exactly(model):
    x = binary_image()
    for keep in (0, 1, 14, T):
        state = completions(model, x, keep, m=5, seed=1)
        assert state.rows == T and state.kept == keep
        assert state.means.shape == (5, T, 28)
        rows = x.reshape(T, 28)
        for tensor in (state.means, state.samples):
            assert torch.equal(tensor[:, :keep], rows[:keep].expand(5, -1, -1))
    # the rest is generated: different completions differ, the same seed repeats them
    state = completions(model, x, 10, m=6, seed=2)
    assert not torch.equal(state.samples[0, 10:], state.samples[1, 10:])
    assert torch.equal(completions(model, x, 10, 6, seed=2).samples, state.samples)
    with pytest.raises(ValueError):
        completions(model, x, T + 1, 2)


def test_row_terms_of_one_image(model):
    x = binary_image(4)
    terms = row_terms_of(model, x, n_samples=8, seed=0)
    assert terms.reconstruction.shape == terms.kl.shape == (T,)
    assert (terms.reconstruction <= 0).all() and (terms.kl >= -1e-6).all()
    assert terms.elbo == pytest.approx(terms.reconstruction.sum() - terms.kl.sum(), rel=1e-5, abs=1e-5)
    again = row_terms_of(model, x, n_samples=8, seed=0)
    np.testing.assert_array_equal(again.kl, terms.kl)
    with torch.no_grad():
        elbo = model.elbo_terms(x.reshape(1, -1).expand(2000, -1)).elbo.mean().item()
    assert terms.elbo == pytest.approx(elbo, abs=0.5)  # the same quantity, averaged over fewer paths


def test_load_vrnn_refuses_another_family(tmp_path, model):
    vrnn = save_model(model, "vrnn", tmp_path, "v", {"preprocessing": "binarized"})
    assert isinstance(load_vrnn(vrnn).model, VRNN)
    vae = save_model(VAE(VAEConfig(latent_dim=2, hidden=(8,))), "vae", tmp_path, "a", {})
    with pytest.raises(ArtifactError, match="not a VRNN"):
        load_vrnn(vae)


# ------------------------------------------------------------------------------------------------ figures


def test_prior_trajectory_over_time(model):
    gen = advance(model, start_generation(model, 16, seed=0), 5)
    pm = gen.state.prior_means.numpy()
    fig = prior_trajectory_figure(pm, T, "time")
    assert len(fig.data) == 4  # per dimension: all digits in one trace, and their average
    lines = fig.data[0]
    assert np.isnan(np.asarray(lines.x, dtype=float)).sum() == 16  # one break after each digit's path
    np.testing.assert_allclose(np.asarray(lines.y, dtype=float)[:5], pm[0, :, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fig.data[1].y, pm[:, :, 0].mean(0), rtol=1e-5, atol=1e-6)  # float32 pm
    assert list(fig.layout.xaxis.range) == [0.5, T + 0.5]  # the row axis never rescales while streaming
    assert fig.layout.shapes[0].x0 == 5  # the current row
    assert fig.layout.yaxis.title.text == "mean of z1" and fig.layout.yaxis2.title.text == "mean of z2"


def test_prior_trajectory_in_the_plane_and_empty():
    pm = np.random.default_rng(0).normal(size=(3, 6, 2))
    fig = prior_trajectory_figure(pm, T, "plane")
    names = [t.name for t in fig.data]
    assert names == ["each digit's path", "row 1", "row 6"]
    np.testing.assert_allclose(fig.data[2].x, pm[:, -1, 0])
    empty = prior_trajectory_figure(np.zeros((3, 0, 2)), T, "time")
    assert "no row yet" in empty.layout.annotations[0].text
    prior_trajectory_figure(np.zeros((3, 0, 2)), T, "plane")
    assert len(prior_trajectory_figure(np.zeros((2, 4, 1)), T, "time").data) == 2
    with pytest.raises(ValueError):
        prior_trajectory_figure(np.zeros((2, 4, 1)), T, "plane")
    with pytest.raises(ValueError):
        prior_trajectory_figure(pm, T, "3d")


def test_row_terms_figure():
    rec, kl = -np.arange(T) / 10.0, np.arange(T) / 100.0
    fig = row_terms_figure(rec, kl, rec * 2, kl * 2)
    bars = [t for t in fig.data if t.type == "bar"]
    assert [b.orientation for b in bars] == ["h", "h"]
    np.testing.assert_allclose(bars[0].x, rec)
    np.testing.assert_allclose(bars[1].x, kl)
    assert list(bars[0].y) == list(range(1, T + 1))
    assert fig.layout.yaxis.autorange == "reversed"  # row 1 at the top, like the image
    assert len(fig.data) == 4
    assert f"{rec.sum():.1f}" in fig.layout.annotations[0].text
    assert len(row_terms_figure(rec, kl).data) == 2
    with pytest.raises(ValueError):
        row_terms_figure(rec, kl[:5])
