"""Images on a page: MNIST-sized images enlarged with crisp pixels, and the drawing canvas whose digit the
encoders read (as MNIST was scaled and centred)."""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from explorer_core.explore.latent import Drawing, drawing_input
from explorer_core.imaging import slide_png, upscale
from views.components.page_state import page_state

IMAGE_FACTOR = 8
CANVAS_SIDE = 224  # the drawing canvas, in CSS pixels (the browser's PNG may be a few times larger)
#: the canvas's PNG as the browser sends it: bytes and declared width / height at most (checked before it
#: is decoded: a 12000 x 12000 PNG is a few kB compressed and 576 MB decoded)
MAX_CANVAS_PNG_BYTES = 4 * 2**20
MAX_CANVAS_PNG_SIDE = 4 * CANVAS_SIDE
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class CanvasImageError(ValueError):
    """The canvas's value is not a PNG the page takes (the message says why, in one line)."""


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height (pixels) that a PNG declares in its IHDR chunk, read without decoding it.

    Raises:
        CanvasImageError: not a PNG (no signature, no IHDR as the first chunk).
    """
    if len(data) < 24 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise CanvasImageError("the drawing is not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def png_rgba(data: bytes | None) -> np.ndarray | None:
    """The canvas's PNG (bytes from the browser: untrusted) as RGBA pixels [H, W, 4] uint8; ``None`` for none.

    Checked before anything is decoded: at most :data:`MAX_CANVAS_PNG_BYTES`, a PNG signature, and a declared
    size (the IHDR chunk) of at most :data:`MAX_CANVAS_PNG_SIDE` pixels a side; only then does Pillow decode.

    Raises:
        CanvasImageError: anything else (not a PNG, too large, a PNG Pillow cannot read).
    """
    from PIL import Image

    if data is None:
        return None
    if not isinstance(data, bytes | bytearray):
        raise CanvasImageError("the drawing is not an image")
    if len(data) > MAX_CANVAS_PNG_BYTES:
        raise CanvasImageError(f"the drawing is larger than {MAX_CANVAS_PNG_BYTES // 2**20} MB")
    width, height = png_size(bytes(data[:24]))
    if not (1 <= width <= MAX_CANVAS_PNG_SIDE and 1 <= height <= MAX_CANVAS_PNG_SIDE):
        raise CanvasImageError(
            f"the drawing declares {width} × {height} pixels (at most {MAX_CANVAS_PNG_SIDE} a side)"
        )
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
            if img.size != (width, height):
                raise CanvasImageError("the drawing's PNG is inconsistent")
            return np.asarray(img.convert("RGBA"))
    except CanvasImageError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise CanvasImageError("the drawing's PNG cannot be read") from err


def canvas_png(canvas) -> bytes | None:
    """The PNG bytes of a drawable-canvas result (its ``image_bytes``: the data URL's base64 part, decoded);
    ``None`` when the canvas sent none.

    Raises:
        CanvasImageError: the value is not a base64 data URL (e.g. replaced from the browser's console).
    """
    try:
        return canvas.image_bytes
    except (AttributeError, TypeError, ValueError) as err:  # binascii.Error is a ValueError
        raise CanvasImageError("the drawing is not a PNG data URL") from err


def show_image(
    image: np.ndarray | bytes, caption: str | None = None, factor: int = IMAGE_FACTOR, **kwargs
) -> None:
    """An image in [0, 1] (white ink on black), enlarged with crisp pixels; or PNG bytes, as they are.

    Sent as PNG: Streamlit's default ("auto") re-encodes numpy images as JPEG, which blurs the pixels.
    """
    if isinstance(image, bytes):
        st.image(image, caption=caption, **kwargs)
    else:
        kwargs.setdefault("output_format", "PNG")
        st.image(upscale(np.clip(image, 0, 1), factor), caption=caption, clamp=True, **kwargs)


def png_download(png: bytes | Callable[[], bytes], file_name: str, key: str, label: str = "PNG") -> None:
    """A small button that saves an image shown with ``st.image`` (a manifold, a gallery) for a slide:
    ``png`` (PNG bytes, or a callable giving them), enlarged with crisp pixels to at least
    :data:`explorer_core.imaging.SLIDE_PIXELS` on its long side (:func:`explorer_core.imaging.slide_png`: a
    420 px manifold is saved at 1260 px), is made and sent only when clicked, and the click reruns nothing.
    ``file_name``: from :func:`explorer_core.export.export_name`."""
    st.download_button(
        label,
        data=lambda: slide_png(png() if callable(png) else png),
        file_name=file_name,
        mime="image/png",
        icon=":material/download:",
        on_click="ignore",
        key=key,
        help="Save this picture as a PNG (for a slide).",
    )


def drawing_canvas(prefix: str, preprocessing: str) -> Drawing | None:
    """The drawing canvas (streamlit-drawable-canvas) and what it holds, as a :class:`Drawing`.

    A new drawing is stored in ``state[prefix + "_drawing"]`` and switches the encoder view to it (one rerun);
    a cleared canvas forgets it. Returns the current drawing, or ``None`` when the canvas is empty or the
    package is missing (then an info box says so and the rest of the page works).
    """
    state = st.session_state
    st.space("small")  # room for the canvas's floating toolbar
    try:
        from streamlit_drawable_canvas import st_canvas
    except ImportError:
        st.info("Drawing needs the package streamlit-drawable-canvas (see requirements.txt).")
        return None
    canvas = st_canvas(
        stroke_width=18,
        stroke_color="#FFFFFF",
        background_color="#000000",
        height=CANVAS_SIDE,
        width=CANVAS_SIDE,
        drawing_mode="freedraw",
        key=f"{prefix}_canvas",
        return_image_data=True,
    )
    # the canvas's value comes from the browser: checked here (not by the package's image_data, which
    # decodes whatever it is given)
    try:
        rgba = png_rgba(canvas_png(canvas))
    except CanvasImageError as err:
        st.caption(f":material/warning: Drawing not read: {err}.")
        rgba = None
    new = drawing_input(rgba, preprocessing)
    signature = None if new is None else hashlib.sha1(new.pixels.tobytes()).hexdigest()
    if signature != state.get(f"{prefix}_canvas_sig"):
        previous, state[f"{prefix}_canvas_sig"] = state.get(f"{prefix}_canvas_sig"), signature
        if new is not None:
            state[f"{prefix}_drawing"] = new
            page_state(prefix).pending[f"{prefix}_source"] = "drawing"
            st.rerun()
        elif previous is not None:  # the canvas was cleared
            state[f"{prefix}_drawing"] = None
            st.rerun()
    return new


def drawing_panel(
    prefix: str, preprocessing: str, title: str, hint: str, seen: str | None = None
) -> Drawing | None:
    """``title`` (markdown) over the drawing canvas (:func:`drawing_canvas`), then ``hint`` (a caption) while
    it is empty, or, when ``seen`` is given, ``seen`` (a caption) over the drawing as the model sees it
    [28, 28]. Returns the drawing, or ``None``."""
    st.markdown(title)
    new = drawing_canvas(prefix, preprocessing)
    if new is None:
        st.caption(hint)
    elif seen is not None:
        st.caption(seen)
        show_image(new.image, None, factor=3)
    return new


def source_radio(prefix: str, label: str = "Image") -> str:
    """The radio that chooses the encoder's input, ``state[prefix + "_source"]``: ``"test"`` (a test image)
    or ``"drawing"`` (the drawing); returns the choice."""
    return st.radio(
        label,
        ("test", "drawing"),
        format_func={"test": "a test image", "drawing": "your drawing"}.get,
        horizontal=True,
        key=f"{prefix}_source",
    )


@dataclass(frozen=True)
class ChosenInput:
    """The image an encoder view reads: a test image or the person's drawing.

    Attributes:
        x: the model's input [784] (preprocessed as the model was trained).
        image: [28, 28] in [0, 1], to show.
        index: the test image's index, ``None`` for the drawing.
    """

    x: Any
    image: np.ndarray
    index: int | None

    @property
    def drawn(self) -> bool:
        """Whether it is the drawing."""
        return self.index is None


def chosen_input(prefix: str, n_test: int, x_of: Callable[[int], Any], image_of: Callable[[int], np.ndarray]):
    """The encoder view's input on a page with the state ``{prefix}_source`` ("test" / "drawing"),
    ``{prefix}_index`` and ``{prefix}_drawing`` (a :class:`explorer_core.explore.latent.Drawing`): the drawing
    when it is chosen and exists, else the test image at the index (clipped to 0..n_test-1), whose input and
    picture ``x_of(i)`` and ``image_of(i)`` give."""
    state = st.session_state
    drawing = state.get(f"{prefix}_drawing")
    if state.get(f"{prefix}_source") == "drawing" and drawing is not None:
        return ChosenInput(drawing.x, drawing.image, None)
    index = int(np.clip(state.get(f"{prefix}_index", 0), 0, n_test - 1))
    return ChosenInput(x_of(index), image_of(index), index)
