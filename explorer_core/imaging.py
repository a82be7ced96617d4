"""Pictures made of digits: tiling images into a grid, nearest-neighbour enlargement, PNG encoding.

Every page and card that shows several digits at once, or sends a picture as PNG bytes, uses these (no
Streamlit here). Conventions: a greyscale image is float [h, w] with values in [0, 1] (ink 1, paper 0, as
MNIST); a colour image is uint8 [h, w, 3].
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from PIL import Image


def tile(
    images: np.ndarray,
    n_cols: int,
    pad: int = 1,
    pad_value: float | tuple[int, ...] = 1.0,
    border: bool = False,
    dtype: Any = np.float32,
) -> np.ndarray:
    """Arrange images in a grid, row by row, ``n_cols`` per row, ``pad`` pixels of ``pad_value`` between.

    Args:
        images: [n, h, w] (greyscale) or [n, h, w, channels] (colour), n >= 1.
        n_cols: images per grid row; the last row's empty cells are ``pad_value``.
        pad: pixels between neighbouring images.
        pad_value: the gaps' value (a colour tuple for colour images).
        border: also put ``pad`` pixels of ``pad_value`` around the whole grid.
        dtype: the grid's dtype (images are cast to it).

    Returns:
        [H, W] (or [H, W, channels]) with H = rows * (h + pad) - pad (+ 2 pad with a border), likewise W,
        where rows = ceil(n / n_cols).

    Raises:
        ValueError: no images, or images that are not [n, h, w(, channels)].
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4) or not len(images):
        raise ValueError(f"tile needs images [n >= 1, h, w(, channels)], got {list(images.shape)}.")
    n, h, w = images.shape[:3]
    channels = images.shape[3:]
    n_cols = max(1, int(n_cols))
    n_rows = -(-n // n_cols)
    # every image followed by its gaps, as cells [rows * cols, h + pad, w + pad]; then the cells side by side
    cells = np.full((n_rows * n_cols, h + pad, w + pad, *channels), pad_value, dtype=dtype)
    cells[:n, :h, :w] = images
    body = cells.reshape(n_rows, n_cols, h + pad, w + pad, *channels).swapaxes(1, 2)
    body = body.reshape(n_rows * (h + pad), n_cols * (w + pad), *channels)
    height, width = n_rows * (h + pad) - pad, n_cols * (w + pad) - pad
    if not border:
        return np.ascontiguousarray(body[:height, :width])
    grid = np.full((height + 2 * pad, width + 2 * pad, *channels), pad_value, dtype=dtype)
    grid[pad : pad + height, pad : pad + width] = body[:height, :width]
    return grid


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of an image [h, w] (or [h, w, channels]) by an integer factor (crisp
    pixels on screen): [factor h, factor w(, channels)], same dtype. A factor below 1 counts as 1."""
    factor = max(1, int(factor))
    return np.repeat(np.repeat(np.asarray(image), factor, axis=0), factor, axis=1)


def encode_png(picture: Image.Image, optimize: bool = False) -> bytes:
    """A PIL image as PNG bytes: fast compression (zlib level 1, for pictures redrawn per interaction) or,
    with ``optimize``, the smallest file (for pictures written once, such as the home page's cards)."""
    buffer = io.BytesIO()
    if optimize:
        picture.save(buffer, format="PNG", optimize=True)
    else:
        picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def png_bytes(image: np.ndarray, factor: int = 1) -> bytes:
    """An image as PNG bytes, enlarged ``factor`` times (nearest, see :func:`upscale`).

    For images shown on every rerun but rarely changed (a manifold, a sample grid): encoded once and cached,
    the page sends the bytes instead of encoding the array again.

    Args:
        image: greyscale [h, w] in [0, 1] (clipped, rounded to 8 bits), or colour uint8 [h, w, 3].

    Raises:
        ValueError: any other shape or dtype.
    """
    array = np.asarray(image)
    if array.ndim == 2:
        pixels = np.round(np.clip(upscale(array.astype(np.float32), factor), 0, 1) * 255).astype(np.uint8)
        return encode_png(Image.fromarray(pixels, mode="L"))
    if array.ndim == 3 and array.shape[2] == 3 and array.dtype == np.uint8:
        return encode_png(Image.fromarray(np.ascontiguousarray(upscale(array, factor)), mode="RGB"))
    raise ValueError(f"png_bytes takes [h, w] in [0, 1] or uint8 [h, w, 3], got {array.dtype} {array.shape}.")


#: a picture saved for a slide is enlarged (nearest: crisp pixels) to at least this many pixels on its long
#: side: a 420 px manifold, drawn 4 inches wide on a 1920 px slide, would be blurred by the slide's scaling
SLIDE_PIXELS = 1200
#: ... by at most this factor (a picture that is already large stays as it is)
MAX_SLIDE_FACTOR = 4


def slide_factor(width: int, height: int, pixels: int = SLIDE_PIXELS, limit: int = MAX_SLIDE_FACTOR) -> int:
    """The integer enlargement that brings a ``width`` x ``height`` picture to at least ``pixels`` on its long
    side, between 1 and ``limit``."""
    return max(1, min(int(limit), math.ceil(pixels / max(int(width), int(height), 1))))


def slide_png(png: bytes, pixels: int = SLIDE_PIXELS, limit: int = MAX_SLIDE_FACTOR) -> bytes:
    """PNG bytes (a picture the app drew) enlarged by :func:`slide_factor` with crisp pixels (nearest), for a
    slide; returned as they are when the factor is 1."""
    with Image.open(io.BytesIO(png), formats=["PNG"]) as picture:
        factor = slide_factor(*picture.size, pixels=pixels, limit=limit)
        if factor == 1:
            return png
        picture.load()
        big = picture.resize((picture.width * factor, picture.height * factor), Image.Resampling.NEAREST)
    return encode_png(big)
