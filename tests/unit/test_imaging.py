"""The one tiler, enlargement and PNG encoder of the pages and cards."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from explorer_core.imaging import SLIDE_PIXELS, encode_png, png_bytes, slide_factor, slide_png, tile, upscale


def test_tile_places_images_row_by_row_with_gaps():
    images = np.stack([np.full((2, 3), i + 1.0) for i in range(5)])
    grid = tile(images, 3, pad=1, pad_value=0.5)
    assert grid.shape == (2 * 3 - 1, 3 * 4 - 1) and grid.dtype == np.float32
    assert (grid[0:2, 0:3] == 1).all() and (grid[0:2, 8:11] == 3).all()
    assert (grid[3:5, 4:7] == 5).all()  # the fifth image: second row, second column
    assert (grid[2] == 0.5).all() and (grid[:, 3] == 0.5).all()  # the gaps
    assert (grid[3:5, 8:11] == 0.5).all()  # the empty last cell


def test_tile_with_a_border_and_colours():
    digits = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    digits[1] = (9, 8, 7)
    grid = tile(digits, 2, pad=2, pad_value=(255, 0, 0), border=True, dtype=np.uint8)
    assert grid.shape == (2 + 4 + 2, 2 + 4 + 2 + 4 + 2, 3) and grid.dtype == np.uint8
    assert (grid[:2] == (255, 0, 0)).all() and (grid[:, -2:] == (255, 0, 0)).all()
    assert (grid[2:6, 2:6] == 0).all() and (grid[2:6, 8:12] == (9, 8, 7)).all()


def test_tile_refuses_no_images():
    with pytest.raises(ValueError, match="n >= 1"):
        tile(np.zeros((0, 28, 28)), 4)


def test_upscale_repeats_pixels():
    image = np.array([[0.0, 1.0]])
    big = upscale(image, 3)
    assert big.shape == (3, 6) and (big[:, :3] == 0).all() and (big[:, 3:] == 1).all()
    assert upscale(image, 0).shape == (1, 2)
    assert upscale(np.zeros((2, 2, 3), np.uint8), 2).shape == (4, 4, 3)


def test_png_round_trips_grey_and_colour():
    grey = np.array([[0.0, 0.5, 1.0, 2.0]])
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(grey, 2))))
    assert decoded.shape == (2, 8) and list(decoded[0, ::2]) == [0, 128, 255, 255]
    colour = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(colour))).convert("RGB"))
    np.testing.assert_array_equal(decoded, colour)
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(colour.astype(np.float32))


def test_optimized_png_is_the_same_picture_and_no_larger():
    picture = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8), (64, 1)), "L")
    fast, small = encode_png(picture), encode_png(picture, optimize=True)
    assert len(small) <= len(fast)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(small))), np.asarray(picture))


def test_slide_factor_brings_the_long_side_to_a_slide_size():
    assert slide_factor(420, 420) == 3  # the VAE manifold (15 x 28 px): saved at 1260 px
    assert slide_factor(289, 289) == 4  # a 10 x 10 sample grid: 4x at most (1156 px)
    assert slide_factor(868, 578) == 2  # the GMVAE gallery, already drawn 2x
    assert slide_factor(1500, 20) == 1 and slide_factor(0, 0) == 4
    assert all(
        slide_factor(w, h) * max(w, h) >= SLIDE_PIXELS for w, h in [(420, 420), (868, 578), (600, 300)]
    )


def test_slide_png_enlarges_with_crisp_pixels():
    grey = np.zeros((28, 28), dtype=np.float32)
    grey[3, 5] = 1.0
    small = png_bytes(grey)
    big = Image.open(io.BytesIO(slide_png(small)))
    factor = slide_factor(28, 28)
    assert big.size == (28 * factor, 28 * factor) and big.mode == "L"
    pixels = np.asarray(big)
    assert (pixels == upscale(np.round(grey * 255).astype(np.uint8), factor)).all()  # nearest: no blur
    colour = png_bytes(np.zeros((400, 1300, 3), dtype=np.uint8))
    assert slide_png(colour) is colour  # large enough already: sent as it is
