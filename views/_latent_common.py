"""Streamlit pieces shared by the VAE and CVAE pages: the model picker, cached loading, the latent map with
its sliders, zoom and click handling, and image display.

Computation lives in ``explorer_core.latent`` and ``explorer_core.latent_views``; this module only caches
it per model (``st.cache_resource``), reads widgets and draws.

Where models come from: ``explorer_core.artifacts.PRETRAINED_DIR`` plus the directories in the environment
variable ``AEVB_MODEL_DIRS`` (separated by ``os.pathsep``), for example a folder of your own trained runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from explorer_core.artifacts import ArtifactError
from explorer_core.data import MNISTUnavailable
from explorer_core.device import DeviceError, limit_cpu_threads, pick_device
from explorer_core.figures import latent_map_figure
from explorer_core.latent import decode_images, manifold
from explorer_core.latent_views import (
    Drawing,
    LatentBundle,
    click_grid,
    display_subset,
    drawing_input,
    load_bundle,
    png_bytes,
    upscale,
    view_region,
)
from views._models import model_picker as _model_picker
from views._models import model_stamp

VIEW_LABELS = {
    "lambda": "λ (parameter)",
    "mean": "mean E[x|z]",
    "sample": "sample x ~ p(x|z)",
}
VIEW_HELP = (
    "λ: the decoder's output, the parameter of the pixel distributions (what the tutorial's figures "
    "show). mean: E[x|z]; for the Continuous Bernoulli it differs from λ (it is pulled towards 0.5), for "
    "the Bernoulli it is λ. sample: one draw x ~ p(x|z), noisy by nature."
)
ZOOMS = (1, 2, 4, 8)
MAX_MAP_POINTS = 3000
GRID_CLICK_N = 40
MANIFOLD_N = 15
IMAGE_FACTOR = 8

# Per-interaction decodes are a few small matrix products: one thread beats two (on a busy 2-core CPU, two
# threads made ten decodes 30 times slower), as on the factor-analysis page.
limit_cpu_threads(1)


# ------------------------------------------------------------------------------------------------ models


def _forget_latents(prefix: str) -> None:
    """A new model has a new map: the sliders and the zoom start again."""
    for name in ("u", "v", "centre", "zoom", "pending"):
        st.session_state.pop(f"{prefix}_{name}", None)


@st.cache_resource(show_spinner="Loading the model and encoding the 10,000 test images…", max_entries=6)
def _cached_bundle(json_path: str, stamp: str, device: str) -> LatentBundle:
    return load_bundle(json_path, device)


def load_or_explain(meta: dict[str, Any]) -> tuple[LatentBundle, str] | None:
    """The cached bundle of the chosen model and its cache key; ``st.error`` and ``None`` when it fails."""
    name = meta.get("name", Path(meta["path"]).stem)
    try:
        stamp = model_stamp(meta["path"])
        device = str(pick_device())
        return _cached_bundle(meta["path"], stamp, device), f"{meta['path']}:{stamp}"
    except ArtifactError as err:
        st.error(
            f"**Model {name} cannot be used.** {err}\n\nPick another model in the sidebar; the rest of the "
            "app is not affected.",
            icon="🚫",
        )
    except MNISTUnavailable as err:
        st.error(f"**The MNIST test set is needed to draw the latent map.** {err}", icon="🚫")
    except (DeviceError, OSError, ValueError) as err:
        st.error(f"**Model {name} cannot be used.** {err}", icon="🚫")
    return None


def metrics_row(meta: dict[str, Any]) -> None:
    """The model's stored test-set metrics, one row."""
    m = meta.get("test_metrics") or {}
    config = meta.get("config") or {}
    cols = st.columns(5)
    for col, (label, value, fmt, help_) in zip(
        cols,
        [
            ("Test ELBO", m.get("elbo"), "{:.1f}", "nats per image, mean over the 10,000 MNIST test images"),
            ("Reconstruction", m.get("reconstruction"), "{:.1f}", "E_q[log p(x|z)], nats per image"),
            ("KL(q(z|x) ‖ p(z))", m.get("kl"), "{:.2f}", "nats per image"),
            ("Active units", m.get("active_units"), "{}", "latent dimensions the encoder uses"),
            ("Latent dim L", config.get("latent_dim"), "{}", None),
        ],
        strict=True,
    ):
        col.metric(label, "–" if value is None else fmt.format(value), help=help_)


# ------------------------------------------------------------------------------------- session state


def init_state(defaults: dict[str, Any]) -> None:
    """Give widget keys their first values (widgets are then created without ``value=``)."""
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


def apply_pending(prefix: str) -> None:
    """Values queued by a map click for widgets that were already drawn; applied before any is drawn."""
    pending = st.session_state.pop(f"{prefix}_pending", None)
    if pending:
        for key, value in pending.items():
            st.session_state[key] = value


def take_map_click(key: str) -> dict[str, Any] | None:
    """The newly clicked point of the plotly chart ``key``, or ``None``.

    Read dict-style from session state before the chart is drawn (so AppTest can simulate it). A click that
    was handled already is not handed out again; it is forgotten once the selection is empty, so a second
    click on the same spot later counts again.
    """
    event = st.session_state.get(key)
    try:
        points = list(event["selection"]["points"])
    except (KeyError, TypeError):
        points = []
    seen = f"{key}__seen"
    if not points:
        st.session_state.pop(seen, None)
        return None
    signature = json.dumps(points[0], sort_keys=True, default=str)
    if st.session_state.get(seen) == signature:
        return None
    st.session_state[seen] = signature
    return points[0]


def clicked_test_image(point: dict[str, Any], n_images: int) -> int | None:
    """The test-image index of a clicked map point (its ``customdata``), ``None`` for the click grid."""
    data = point.get("customdata")
    if isinstance(data, list | tuple):
        data = data[0] if data else None
    if isinstance(data, int | float) and not isinstance(data, bool) and 0 <= int(data) < n_images:
        return int(data)
    return None


def clamp(value: float, bounds: tuple[float, float]) -> float:
    """``value`` inside ``bounds``, as a plain float."""
    return float(min(max(float(value), bounds[0]), bounds[1]))


def handle_map_click(
    prefix: str, bundle: LatentBundle, ranges, on_image: Callable[[int], dict[str, Any]] | None = None
) -> None:
    """Apply a click on the map: a test image's point moves z to its encoding and picks the image (the page
    reruns so the encoder view follows; ``on_image(index)`` may add widget values to set); a click
    anywhere else moves z there."""
    point = take_map_click(f"{prefix}_map")
    if point is None:
        return
    state = st.session_state
    index = clicked_test_image(point, len(bundle.latent_map.coords))
    if index is not None:
        u, v = bundle.latent_map.coords[index]
        state[f"{prefix}_pending"] = {
            f"{prefix}_u": clamp(u, ranges[0]),
            f"{prefix}_v": clamp(v, ranges[1]),
            f"{prefix}_index": index,
            f"{prefix}_source": "test",
            **(on_image(index) if on_image else {}),
        }
        st.rerun(scope="app")
    elif state.get(f"{prefix}_mapmode", "plane") == "plane":
        x, y = point.get("x"), point.get("y")
        if isinstance(x, int | float) and isinstance(y, int | float):
            state[f"{prefix}_u"], state[f"{prefix}_v"] = clamp(x, ranges[0]), clamp(y, ranges[1])


def axis_titles(bundle: LatentBundle) -> tuple[str, str]:
    """``z1``, ``z2`` for a 2-D latent; the principal components of the encodings otherwise."""
    lm = bundle.latent_map
    if lm.latent_dim == 2:
        return "z1", "z2"
    return (f"u (PC 1, {lm.explained[0]:.0%} of var.)", f"v (PC 2, {lm.explained[1]:.0%} of var.)")


def z_sliders(prefix: str, bundle: LatentBundle, ranges, columns) -> tuple[float, float]:
    """The u/v sliders (z1/z2 for a 2-D latent) in two columns, their state kept inside the ranges."""
    state = st.session_state
    titles = ("z1", "z2") if bundle.latent_map.latent_dim == 2 else ("u (along PC 1)", "v (along PC 2)")
    values = []
    for name, bounds, title, column in zip(("u", "v"), ranges, titles, columns, strict=True):
        key = f"{prefix}_{name}"
        current = state.get(key)
        if not isinstance(current, int | float) or clamp(current, bounds) != current:
            state[key] = clamp(current if isinstance(current, int | float) else 0.0, bounds)
        step = float(10 ** np.floor(np.log10((bounds[1] - bounds[0]) / 200)))
        values.append(column.slider(title, bounds[0], bounds[1], step=step, key=key, format="%.2f"))
    return values[0], values[1]


def view_radio(prefix: str) -> str:
    """What a decoding shows: λ (default), the mean, or a sample."""
    return st.radio(
        "Decoded images show",
        ("lambda", "mean", "sample"),
        format_func=VIEW_LABELS.get,
        horizontal=True,
        key=f"{prefix}_view",
        help=VIEW_HELP,
    )


def zoom_region(prefix: str, ranges) -> tuple[tuple[float, float], tuple[float, float]]:
    """The zoom control and the region of the plane the map and the manifold show."""
    state = st.session_state

    def recentre() -> None:
        state[f"{prefix}_centre"] = (state.get(f"{prefix}_u", 0.0), state.get(f"{prefix}_v", 0.0))

    c1, c2 = st.columns([1.5, 1], vertical_alignment="bottom")
    zoom = c1.select_slider(
        "Zoom",
        ZOOMS,
        format_func=lambda k: f"×{k}",
        key=f"{prefix}_zoom",
        on_change=recentre,
        help="The region of the plane the map and the manifold show. ×1: all of it; a zoom centres the view "
        "on z (the cross) when it is set, or when you press 🎯.",
    )
    c2.button("🎯 centre", key=f"{prefix}_recentre", on_click=recentre, disabled=zoom == 1)
    return view_region(ranges, state.get(f"{prefix}_centre"), float(zoom))


def map_mode(prefix: str, bundle: LatentBundle) -> str:
    """``plane`` (decodable map) or ``tsne`` (the stored t-SNE, display only) when the model has one."""
    if bundle.latent_map.tsne is None:
        st.session_state[f"{prefix}_mapmode"] = "plane"
        return "plane"
    return st.radio(
        "Map",
        ("plane", "tsne"),
        label_visibility="collapsed",
        format_func={"plane": "latent plane (decodes)", "tsne": "t-SNE (display only)"}.get,
        horizontal=True,
        key=f"{prefix}_mapmode",
        help="t-SNE was computed at training time on the first test images; its coordinates do not decode. "
        "A click on a point still picks that test image and moves z to its encoding.",
    )


def draw_map(
    prefix: str,
    bundle: LatentBundle,
    mode: str,
    region,
    marker: tuple[float, float],
    overlays: dict[str, Any],
) -> float:
    """The latent map (or t-SNE), clickable; returns the seconds spent building the figure."""
    start = time.perf_counter()
    lm = bundle.latent_map
    if mode == "tsne":
        idx = np.arange(len(lm.tsne))
        chosen = st.session_state.get(f"{prefix}_index")
        showing_test_image = st.session_state.get(f"{prefix}_source", "test") == "test"
        fig = latent_map_figure(
            lm.tsne,
            lm.labels[idx],
            idx,
            highlight=lm.tsne[chosen] if showing_test_image and chosen in range(len(idx)) else None,
            axis_titles=("t-SNE 1", "t-SNE 2"),
        )
        st.caption(
            f"t-SNE of the first {len(idx):,} test encodings, computed at training time: neighbours here are "
            "neighbours in latent space, but the coordinates do not decode. The ring marks the chosen image."
        )
    else:
        idx = display_subset(lm.labels, MAX_MAP_POINTS)
        fig = latent_map_figure(
            lm.coords[idx],
            lm.labels[idx],
            idx,
            region=region,
            marker=marker,
            grid=click_grid(region, GRID_CLICK_N),
            axis_titles=axis_titles(bundle),
            **overlays,
        )
    seconds = time.perf_counter() - start
    st.plotly_chart(
        fig,
        key=f"{prefix}_map",
        on_select="rerun",
        selection_mode="points",
        width="stretch",
        config={"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]},
    )
    return seconds


@st.cache_resource(show_spinner=False, max_entries=64)
def cached_manifold(
    model_key: str, _bundle: LatentBundle, region: tuple, n: int, view: str, y: int | None
) -> bytes:
    """The manifold grid of ``region`` as PNG bytes, cached per model, region, view and label."""
    return png_bytes(manifold(_bundle.model, _bundle.latent_map, region[0], region[1], n, y, view))


def decode_one(
    bundle: LatentBundle, z: np.ndarray, view: str, y: int | None = None, seed: int = 0
) -> np.ndarray:
    """One decoding [28, 28]."""
    return decode_images(bundle.model, z, y, view, seed)[0]


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
        height=224,
        width=224,
        drawing_mode="freedraw",
        key=f"{prefix}_canvas",
        return_image_data=True,
    )
    new = drawing_input(canvas.image_data, preprocessing)
    signature = None if new is None else hashlib.sha1(new.pixels.tobytes()).hexdigest()
    if signature != state.get(f"{prefix}_canvas_sig"):
        previous, state[f"{prefix}_canvas_sig"] = state.get(f"{prefix}_canvas_sig"), signature
        if new is not None:
            state[f"{prefix}_drawing"] = new
            state[f"{prefix}_pending"] = {f"{prefix}_source": "drawing"}
            st.rerun()
        elif previous is not None:  # the canvas was cleared
            state[f"{prefix}_drawing"] = None
            st.rerun()
    return new


def decoded_image(
    prefix: str,
    bundle: LatentBundle,
    z: np.ndarray,
    uv: tuple[float, float],
    view: str,
    title: str,
    label: int | None = None,
) -> float:
    """The decoded image of z (with its caption, a resample button for the sample view and, for L > 2, a
    note on the plane). Returns the decode's server time in seconds."""
    state = st.session_state
    start = time.perf_counter()
    image = decode_one(bundle, z, view, y=label, seed=int(state[f"{prefix}_sample_seed"]))
    decode_s = time.perf_counter() - start
    lm = bundle.latent_map
    u, v = uv
    st.markdown(title)
    show_image(image, f"z = ({u:.2f}, {v:.2f})" if lm.latent_dim == 2 else f"u = {u:.2f}, v = {v:.2f}")
    if view == "sample":
        st.button(
            "🎲 another sample",
            key=f"{prefix}_resample",
            on_click=lambda: state.update({f"{prefix}_sample_seed": state[f"{prefix}_sample_seed"] + 1}),
        )
    if lm.latent_dim > 2:
        st.caption(
            f"z has {lm.latent_dim} dimensions; z = centre + u·e1 + v·e2. The map plane holds "
            f"{sum(lm.explained):.0%} of the encodings' variance."
        )
    return decode_s


def image_picker(prefix: str, n_test: int, drawing, chosen_image: np.ndarray, chosen_name: str) -> None:
    """Choose the encoder's input: a test image (by index or a click on the map) or the drawing."""
    state = st.session_state
    st.radio(
        "Image",
        ("test", "drawing"),
        format_func={"test": "a test image", "drawing": "your drawing"}.get,
        horizontal=True,
        key=f"{prefix}_source",
    )
    st.number_input(
        "Test image (index 0–9999, or click a point on the map)", 0, n_test - 1, key=f"{prefix}_index", step=1
    )
    if state[f"{prefix}_source"] == "drawing" and drawing is None:
        st.info("Nothing drawn yet: draw a digit in the box on the right. Meanwhile the test image is used.")
    show_image(chosen_image, chosen_name, factor=5)


def open_model(family: str, prefix: str) -> tuple[LatentBundle, str]:
    """The sidebar picker, the cached load and the metrics row; stops the page (after saying why) when no
    model can be shown. Returns the bundle and its cache key."""
    meta = _model_picker(family, prefix, on_change=_forget_latents)
    if meta is None:
        st.stop()
    loaded = load_or_explain(meta)
    if loaded is None:
        st.stop()
    metrics_row(meta)
    return loaded


def map_and_manifold(
    map_col,
    manifold_col,
    prefix: str,
    bundle: LatentBundle,
    model_key: str,
    region,
    uv: tuple[float, float],
    overlays: dict[str, Any],
    view: str,
    manifold_title: str,
    label: int | None = None,
) -> tuple[float, float]:
    """The latent map (in ``map_col``) and the manifold of its region (in ``manifold_col``), as both latent
    pages show them. Returns the server seconds of the map figure and of the manifold."""
    with map_col:
        figure_s = draw_map(prefix, bundle, map_mode(prefix, bundle), region, uv, overlays)
    with manifold_col:
        start = time.perf_counter()
        grid = cached_manifold(model_key, bundle, region, MANIFOLD_N, view, label)
        manifold_s = time.perf_counter() - start
        st.markdown(manifold_title)
        show_image(grid, None, width="stretch")
    return figure_s, manifold_s
