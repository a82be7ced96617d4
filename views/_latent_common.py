"""Streamlit pieces of the VAE and CVAE pages only: the cached latent bundle and its metrics, the z sliders,
what a decoding shows, the zoom, the manifold, the pad panel with the test encodings, the t-SNE map and the
encoder's image picker. What other pages share too lives in ``views/components/`` (the pad, page state and
URL, images and the drawing canvas, model loading and the metrics row).

Computation lives in ``explorer_core.explore.latent``; this module only caches it per model
(``st.cache_resource``), reads widgets and draws.

Where models come from: ``explorer_core.artifacts.PRETRAINED_DIR`` plus the directories in the environment
variable ``AEVB_MODEL_DIRS`` (separated by ``os.pathsep``), for example a folder of your own trained runs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from explorer_core.artifacts import ModelDescription, describe
from explorer_core.explore.latent import (
    N_CLASSES,
    LatentBundle,
    decode_images,
    load_bundle,
    manifold,
    slider_ranges,
    view_region,
)
from explorer_core.export import export_name
from explorer_core.figures.common import Q_COLOUR, ellipse_points
from explorer_core.figures.latent import latent_map_figure
from explorer_core.imaging import png_bytes
from views._models import model_picker as _model_picker
from views.components import latent_pad as lp
from views.components import lecture, model_panel
from views.components import pad_fragment as pf
from views.components import page_state as ps
from views.components.charts import plotly_chart
from views.components.images import png_download, show_image, source_radio
from views.components.model_metrics import metrics_row
from views.components.page_state import model_from_url

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
MANIFOLD_N = 15


# ------------------------------------------------------------------------------------------------ models


def _forget_latents(prefix: str) -> None:
    """A new model has a new map: the sliders, the zoom and the pad's state start again."""
    for name in ("u", "v", "zoom"):
        st.session_state.pop(f"{prefix}_{name}", None)
    ps.forget_page_state(prefix)


@st.cache_resource(show_spinner="Loading the model and encoding the 10,000 test images…", max_entries=6)
def _cached_bundle(json_path: str, stamp: str, device: str) -> LatentBundle:
    return load_bundle(json_path, device)


# ------------------------------------------------------------------------------------- session state


def url_spec(prefix: str, n_test: int, **extra: tuple[str, Callable[[str], Any]]) -> dict[str, tuple]:
    """The VAE and CVAE pages' URL parameters (:func:`views.components.page_state.url_in`): ``u``, ``v``,
    ``img`` and ``zoom``, plus the page's ``extra`` ones."""
    return {
        "u": (f"{prefix}_u", ps.finite_float),
        "v": (f"{prefix}_v", ps.finite_float),
        "img": (f"{prefix}_index", ps.int_in(0, n_test - 1)),
        "zoom": (f"{prefix}_zoom", lambda t: pf.ZOOMS[pf.ZOOMS.index(int(t))]),
        **extra,
    }


def default_state(prefix: str, **extra: Any) -> dict[str, Any]:
    """The VAE and CVAE pages' first state (:func:`views.components.page_state.init_state`): z at the origin,
    λ shown, no zoom, test image 0 in the encoder view; plus the page's ``extra`` values (keys without the
    prefix)."""
    base = {"u": 0.0, "v": 0.0, "view": "lambda", "zoom": 1, "sample_seed": 0, "index": 0, "source": "test"}
    return {f"{prefix}_{name}": value for name, value in {**base, **extra}.items()}


def axis_titles(bundle: LatentBundle) -> tuple[str, str]:
    """``z1``, ``z2`` for a 2-D latent; the principal components of the encodings otherwise."""
    lm = bundle.latent_map
    if lm.latent_dim == 2:
        return "z1", "z2"
    return (f"u (PC 1, {lm.explained[0]:.0%} of var.)", f"v (PC 2, {lm.explained[1]:.0%} of var.)")


def slider_titles(bundle: LatentBundle) -> tuple[str, str]:
    """The z sliders' titles: ``z1``, ``z2`` for a 2-D latent; u and v along the principal components
    otherwise."""
    return ("z1", "z2") if bundle.latent_map.latent_dim == 2 else ("u (along PC 1)", "v (along PC 2)")


def view_radio(prefix: str) -> str:
    """What a decoding shows: λ (default), the mean, or a sample (a one-line select box in lecture mode,
    where the radio's three lines would push the pad below a projector's first screen)."""
    widget = st.selectbox if lecture.lecture_mode() else st.radio
    return widget(
        "Decoded images show",
        ("lambda", "mean", "sample"),
        format_func=VIEW_LABELS.get,
        key=f"{prefix}_view",
        help=VIEW_HELP,
        **({} if widget is st.selectbox else {"horizontal": True}),
    )


def zoom_region(prefix: str, ranges) -> tuple[tuple[float, float], tuple[float, float]]:
    """The zoom control and the region of the plane the map and the manifold show."""
    state = st.session_state

    def recentre() -> None:
        ps.page_state(prefix).pad.centre = (state.get(f"{prefix}_u", 0.0), state.get(f"{prefix}_v", 0.0))

    c1, c2 = st.columns([1.5, 1], vertical_alignment="bottom")
    zoom = c1.select_slider(
        "Zoom",
        pf.ZOOMS,
        format_func=lambda k: f"×{k}",
        key=f"{prefix}_zoom",
        on_change=recentre,
        help="The region of the plane the map and the manifold show. ×1: all of it; a zoom centres the view "
        "on z (the cross) when it is set, or when you press centre.",
    )
    c2.button(
        "centre",
        icon=":material/my_location:",
        key=f"{prefix}_recentre",
        on_click=recentre,
        disabled=zoom == 1,
    )
    return view_region(ranges, ps.page_state(prefix).pad.centre, float(zoom))


@st.cache_resource(show_spinner=False, max_entries=64)
def cached_manifold(
    model_key: str, _bundle: LatentBundle, region: tuple, n: int, view: str, y: int | None
) -> bytes:
    """The manifold grid of ``region`` as PNG bytes, cached per model, region, view and label."""
    return png_bytes(manifold(_bundle.model, _bundle.latent_map, region[0], region[1], n, y, view))


def manifold_panel(
    prefix: str, bundle: LatentBundle, model_key: str, region, view: str, label: int | None, title: str
) -> float:
    """The manifold of the region the pad shows under ``title`` (markdown), and, when the pad shows samples,
    the button that draws another; the manifold's server seconds (it is cached per model, region, view and
    label)."""
    start = time.perf_counter()
    grid = cached_manifold(model_key, bundle, region, MANIFOLD_N, view, label)
    seconds = time.perf_counter() - start
    st.markdown(title)
    show_image(grid, None, width="stretch")
    name = export_name(prefix, f"manifold-{view}", "png", model=Path(model_key).stem)
    png_download(grid, name, f"{prefix}_manifold_png")
    return seconds


def view_and_zoom(prefix: str, ranges, view_col, zoom_col) -> tuple[str, tuple]:
    """The view radio in ``view_col`` and the zoom control in ``zoom_col`` (columns of the page's panel):
    (what a decoding shows, the region of the plane shown; see :func:`view_radio`, :func:`zoom_region`)."""
    with view_col:
        view = view_radio(prefix)
    with zoom_col:
        region = zoom_region(prefix, ranges)
    return view, region


def sample_button(prefix: str, view: str) -> None:
    """Under the pad in the "sample" view: a button that draws another sample x ~ p(x|z)."""
    if view == "sample":
        ps.reseed_button("another sample", f"{prefix}_resample", f"{prefix}_sample_seed")


def pad_and_manifold(
    spec: pf.PadSpec, bundle: LatentBundle, model_key: str, manifold_title: str, label: int | None = None
) -> float:
    """The pad of ``spec`` (:func:`views.components.pad_fragment.pad_fragment`; see :func:`pad_spec`) and the
    sample button under it, beside the manifold of the region it shows under ``manifold_title``
    (:func:`manifold_panel`, decoded under ``label``); returns the manifold's server seconds."""
    pad_col, manifold_col = st.columns([1.9, 1.0], gap="medium")
    with pad_col:
        pf.pad_fragment(spec)
        sample_button(spec.prefix, spec.view)
    with manifold_col:
        return manifold_panel(spec.prefix, bundle, model_key, spec.region, spec.view, label, manifold_title)


def decode_one(
    bundle: LatentBundle, z: np.ndarray, view: str, y: int | None = None, seed: int = 0
) -> np.ndarray:
    """One decoding [28, 28]."""
    return decode_images(bundle.model, z, y, view, seed)[0]


def image_picker(prefix: str, n_test: int, drawing, chosen_image: np.ndarray, chosen_name: str) -> None:
    """Choose the encoder's input: a test image (by index or a click on the map) or the drawing."""
    state = st.session_state
    source_radio(prefix)
    st.number_input(
        "Test image (index 0–9999, or click a point on the map)", 0, n_test - 1, key=f"{prefix}_index", step=1
    )
    if state[f"{prefix}_source"] == "drawing" and drawing is None:
        st.info("Nothing drawn yet: draw a digit in the box on the right. Meanwhile the test image is used.")
    show_image(chosen_image, chosen_name, factor=5)


def open_model(family: str, prefix: str) -> tuple[LatentBundle, str, ModelDescription]:
    """The sidebar picker, the cached load and the metrics row; stops the page (after saying why) when no
    model can be shown. Returns the bundle, its cache key and the model's description."""
    model_from_url(family, prefix)
    meta = _model_picker(family, prefix, on_change=_forget_latents)
    if meta is None:
        st.stop()
    loaded = model_panel.load_or_explain(meta, _cached_bundle, "to draw the latent map")
    if loaded is None:
        st.stop()
    description = describe(meta)
    metrics_row(description)
    return *loaded, description


# ------------------------------------------------------------------------------------- the latent pad


def pad_overlays(overlays: dict[str, Any]) -> dict[str, list]:
    """The latent pages' overlays (``ellipses`` as :func:`explorer_core.figures.common.map_ellipse` dicts,
    ``highlight`` [2], ``path`` [2, 2], ``samples`` [n, 2], and ``lines``: the pad's own line dicts, e.g. the
    true posterior's contours) as the pad's lines and marks."""
    lines, marks = list(overlays.get("lines") or []), []
    for e in overlays.get("ellipses") or []:
        dash = (6, 4) if e.get("dash", "solid") != "solid" else ()
        for k in e.get("sigmas", (1, 2)):
            pts = ellipse_points(e["mean"], e["cov"], float(k), n_points=49)
            lines.append(lp.line(pts, e["colour"], float(e.get("width", 2.0)), dash, closed=True))
    path = overlays.get("path")
    if path is not None:
        lines.append(lp.line(np.asarray(path), "#333333", 2.0, (2, 4)))
    for z in np.asarray(overlays.get("samples", np.zeros((0, 2)))).reshape(-1, 2):
        marks.append(lp.mark(z, Q_COLOUR, "x", 4.0, width=1.5))
    highlight = overlays.get("highlight")
    if highlight is not None:
        marks.append(lp.mark(highlight, Q_COLOUR, "ring", 7.0, width=2.5))
    return {"lines": lines, "marks": marks}


def decode_png(bundle: LatentBundle, z: np.ndarray, view: str, label: int | None, seed: int) -> bytes:
    """One decoding of z [L] as a 28 x 28 greyscale PNG (the pad enlarges it with crisp pixels)."""
    return png_bytes(decode_one(bundle, z, view, y=label, seed=seed))


def pad_spec(
    prefix: str,
    bundle: LatentBundle,
    model_key: str,
    ranges,
    region,
    view: str,
    title: str,
    overlays: dict[str, Any],
    label: int | None = None,
    on_image: Callable[[int], dict[str, Any]] | None = None,
    row_of: Callable[[np.ndarray], np.ndarray] | None = None,
    row_title: str = "",
) -> pf.PadSpec:
    """The VAE / CVAE pad: the test encodings (a fixed subset,
    :func:`views.components.latent_pad.shown_points`), z held by the page's sliders (drawn above the pad),
    the decoding of z under ``label`` and, when ``row_of`` is given, ``row_of(z [L])`` (an image [h, w], the
    CVAE's ten labels). A click on a point moves z to that
    encoding and picks the image for the encoder view (``on_image(index)`` may add state values; the whole
    page then reruns); a wheel notch steps the zoom. z, the zoom and the label go to the URL."""
    state = st.session_state
    lm = bundle.latent_map
    points = pf.test_points(model_key, "plane", lm.coords, lm.labels)

    def on_point(i: int) -> None:
        index = int(points.index[i])
        state[f"{prefix}_index"] = index
        state[f"{prefix}_source"] = "test"
        for k, value in (on_image(index) if on_image else {}).items():
            state[k] = value

    def decode(uv: np.ndarray) -> tuple[bytes, bytes | None]:
        z = lm.plane_to_z(uv)
        image = decode_png(bundle, z, view, label, int(state.get(f"{prefix}_sample_seed", 0)))
        return image, None if row_of is None else png_bytes(row_of(z))

    labels = (None,) if label is None else tuple(range(N_CLASSES))
    return pf.PadSpec(
        prefix=prefix,
        points=points,
        ranges=ranges,
        region=region,
        decode=decode,
        decoder=lp.cached_browser_decoder(model_key, "plane", bundle.model, lm.centre, lm.basis, labels),
        view=view,
        z_keys=(f"{prefix}_u", f"{prefix}_v"),
        sliders=slider_titles(bundle),
        zoom_key=f"{prefix}_zoom",
        on_point=on_point,
        point_uv=lambda i: lm.coords[int(points.index[i])],
        title=title,
        caption_format="z = ({u}, {v})" if lm.latent_dim == 2 else "u = {u}, v = {v}",
        axes=axis_titles(bundle),
        overlays=pad_overlays(overlays),
        row_title=row_title,
        label_k=0 if label is None else label,
        row_k=tuple(range(N_CLASSES)) if row_of is not None else (),
        url=("u", "v", "zoom"),
        url_extra=() if label is None else (("label", label),),
    )


@st.cache_resource(show_spinner=False, max_entries=16)
def cached_slider_ranges(model_key: str, _lm) -> tuple[tuple[float, float], tuple[float, float]]:
    """:func:`explorer_core.explore.latent.slider_ranges` of the model's map, once per model (it takes
    quantiles of every test encoding)."""
    return slider_ranges(_lm)


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


@st.cache_resource(show_spinner=False, max_entries=8)
def _tsne_figure(model_key: str, _bundle: LatentBundle):
    lm = _bundle.latent_map
    idx = np.arange(len(lm.tsne))
    return latent_map_figure(lm.tsne, lm.labels[idx], idx, axis_titles=("t-SNE 1", "t-SNE 2"))


def tsne_section(prefix: str, bundle: LatentBundle, model_key: str) -> None:
    """The stored t-SNE of the test encodings (display only; plotly, for its hover and zoom), behind a toggle
    (it is heavy, and off the per-move path); a click on a point picks that test image and moves z to its
    encoding."""
    lm = bundle.latent_map
    if lm.tsne is None:
        return
    shown = st.toggle(
        f"Show the t-SNE of the first {len(lm.tsne):,} test encodings (display only)",
        key=f"{prefix}_show_tsne",
        help="Computed at training time; drawn with plotly (hover, zoom), so only when asked for.",
    )
    if not shown:
        return
    with st.container(border=True):
        key = f"{prefix}_map"
        point = take_map_click(key)
        index = clicked_test_image(point, len(lm.tsne)) if point is not None else None
        if index is not None:
            u, v = pf.clamp_uv(lm.coords[index], slider_ranges(lm))
            ps.page_state(prefix).pending = {
                f"{prefix}_u": u,
                f"{prefix}_v": v,
                f"{prefix}_index": index,
                f"{prefix}_source": "test",
            }
            st.rerun()
        plotly_chart(
            _tsne_figure(model_key, bundle),
            prefix,
            "tsne",
            model=Path(model_key).stem,
            config={"modeBarButtonsToRemove": ["select2d", "lasso2d"]},
            key=key,
            on_select="rerun",
            selection_mode="points",
            width="stretch",
        )
        st.caption(
            "Computed at training time: neighbours here are neighbours in latent space, but the coordinates "
            "do not decode. A click on a point picks that test image and moves z to its encoding."
        )
