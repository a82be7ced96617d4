"""The conditional VAE (tutorial section 5.4): the label y chooses the class, z the style. Decode one z under
every label, encode an image with its own label and decode it with the others, see the learned priors
p(z|y) on the latent map, and draw the paper's 10 x 15 grid of class-conditional samples.

Per model (cached for the process): the test set's encodings q(z|x, y) and the map plane. The map, the label
pills, the sliders and the decodings share one fragment, so a change there reruns only that part.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import streamlit as st

from explorer_core.explore.latent import (
    N_CLASSES,
    class_conditional_samples,
    decode_under_labels,
    prior_projections,
    reparameterise,
)
from explorer_core.figures.common import DIGIT_COLOURS, Q_COLOUR, map_ellipse
from explorer_core.imaging import png_bytes, tile
from views import _latent_common as lc
from views.components import images as im
from views.components import lecture
from views.components import pad_fragment as pf
from views.components import page_state as ps
from views.components import posterior_panel as pp
from views.components.compute_slot import gesture_fragment
from views.components.publish_button import publish_button

P = "cvae"
GRID_PER_CLASS = 15
#: lecture mode: the pad's canvas at most this tall (CSS px), so that the row of ten labels under it is on a
#: projector's first screen (1280x720) with the pad
LECTURE_PAD_PX = 350
#: where the row's style holds: in its title, and in lecture mode (a title of one line) in the caption
ROW_NOTE = (
    "near the priors' mass; far from it (outside the ellipses) the decoder saw no data and the style "
    "need not hold"
)
state = st.session_state

st.title(":material/label: Conditional VAE: class and style")
lecture.intro(
    "The CVAE (Sohn et al. 2015) conditions everything on the label y: a learned prior p(z|y) = "
    "N(μ(y), diag σ(y)²), a decoder p(x|y, z) and an encoder q(z|x, y). The label fixes the class, so z is "
    "free to hold the **style**: slant, stroke width, size. Pick a label and drag through the latent map; "
    "the row below it decodes the same z under all ten labels while you drag."
)

bundle, model_key, description = lc.open_model("cvae", P)
lm = bundle.latent_map
model = bundle.model
n_test = len(lm.coords)

ps.url_in(
    P,
    lc.url_spec(
        P,
        n_test,
        label=(f"{P}_label", ps.int_in(0, N_CLASSES - 1)),
        seed=(f"{P}_grid_seed", ps.int_in(0, 2**31 - 1)),
    ),
)
ps.init_state(lc.default_state(P, label=0, draw_label=0, show_priors=True, grid_seed=0))
ps.apply_pending(P)


@st.cache_resource(show_spinner=False, max_entries=8)
def priors_on_map(key: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """p(z|y) for y = 0..9 projected on the map plane, once per model."""
    return prior_projections(model, lm)


@st.cache_resource(show_spinner=False, max_entries=32)
def sample_grid(key: str, seed: int, view: str) -> bytes:
    """The 10 x 15 grid of class-conditional samples as PNG bytes, per model, seed and view."""
    return png_bytes(class_conditional_samples(model, GRID_PER_CLASS, seed, view), factor=2)


# --------------------------------------------------------------------------- the image to encode
drawing = state.get(f"{P}_drawing")
chosen = im.chosen_input(P, n_test, lambda i: bundle.x[i], bundle.image)
index = int(np.clip(state[f"{P}_index"], 0, n_test - 1))
x_chosen, chosen_image = chosen.x, chosen.image
if chosen.drawn:
    chosen_label = int(state[f"{P}_draw_label"])
    chosen_name = f"your drawing (as y = {chosen_label})"
else:
    chosen_label = int(lm.labels[index])
    chosen_name = f"test image {index} (y = {chosen_label})"
rep = reparameterise(model, x_chosen, chosen_label, n=1)

q_mean, q_cov = lm.project_gaussian(rep.mu, rep.sigma)
ellipses = [map_ellipse(q_mean, q_cov, f"q(z|x, y) of {chosen_name}", Q_COLOUR, dash="dash")]
if state[f"{P}_show_priors"]:
    ellipses = [
        map_ellipse(mean, cov, f"p(z|y={y}) 1σ", DIGIT_COLOURS[y], sigmas=(1,), width=2.5)
        for y, (mean, cov) in enumerate(priors_on_map(model_key))
    ] + ellipses
overlays = {"ellipses": ellipses, "highlight": lm.z_to_plane(rep.mu)}
picture = None
if pp.shown(P, lm.latent_dim):
    picture = pp.picture_for(P, model, model_key, x_chosen, chosen_label)
    if picture is not None:
        overlays["lines"] = pp.contour_lines(picture, lm.z_to_plane)


@gesture_fragment
def latent_panel(overlays: dict) -> None:
    """The label, what the decoder shows, the zoom, the pad and the manifold: a change of label, view or zoom
    reruns this; a move of z reruns only the pad and its sliders
    (:func:`views.components.pad_fragment.pad_fragment`)."""
    panel_start = time.perf_counter()
    pf.rerun_app_if_asked(P)
    ranges = lc.cached_slider_ranges(model_key, lm)
    label_col, view_col, zoom_col = st.columns([2.4, 1, 1.1], gap="medium")  # ten pills in a line at 1280
    with label_col:
        label = st.pills("Label y", list(range(N_CLASSES)), key=f"{P}_label", required=True)
        label = 0 if label is None else int(label)
    view, region = lc.view_and_zoom(P, ranges, view_col, zoom_col)
    lecture_on = lecture.lecture_mode()
    row_title = (
        f"The same z under all ten labels ({lc.VIEW_LABELS[view]}): the style stays and the class changes"
    )
    if not lecture_on:
        row_title += f", {ROW_NOTE}"

    spec = lc.pad_spec(
        P,
        bundle,
        model_key,
        ranges,
        region,
        view,
        f"Decoded with y = {label}",
        overlays,
        label=label,
        on_image=lambda i: {f"{P}_label": int(lm.labels[i])},
        row_of=lambda z: tile(
            decode_under_labels(model, z, view, int(state[f"{P}_sample_seed"])),
            N_CLASSES,
            pad=2,
            pad_value=0.5,
        ),
        row_title=row_title,
    )
    # the map at the same scale on both axes (the priors' ellipses keep their shape); in lecture mode no
    # taller than leaves the row of ten labels on the first screen
    spec = replace(spec, equal_scale=True, height_px=LECTURE_PAD_PX if lecture_on else pf.PAD_HEIGHT)
    manifold_s = lc.pad_and_manifold(
        spec, bundle, model_key, f"**Manifold for y = {label}** over the region the pad shows", label
    )
    st.caption(
        "On the pad: **+** the z being decoded; the coloured ellipses are the learned priors p(z|y) (1σ, "
        "in the colour of their digit); red dashed: q(z|x, y) of the chosen image, its mean ringed; green: "
        "the true posterior p(z|x, y) when it is shown (below). Drag to "
        "move z (the image and the row follow), click a dot to pick that test image and its label. "
        + (f"The row's style holds {ROW_NOTE}. " if lecture_on else "")
        + ":material/timer: Server time of this panel: "
        f"{(time.perf_counter() - panel_start) * 1e3:.0f} ms in all; decode "
        f"{ps.page_state(P).pad.decode_s * 1e3:.1f} ms (11 images), manifold {manifold_s * 1e3:.1f} ms "
        "(cached per region and label). A move of z reruns only the pad and its sliders."
    )


latent_panel(overlays)
lc.tsne_section(P, bundle, model_key)

# ------------------------------------------------------------- encode with a label, decode with others
st.subheader("Encode with its own label, decode with every other")
pick_col, draw_col, out_col = st.columns([1, 1, 1.6], gap="medium")
with pick_col:
    lc.image_picker(P, n_test, drawing, chosen_image, chosen_name)
    st.checkbox("Show the priors p(z|y) on the map", key=f"{P}_show_priors")

with draw_col:
    st.markdown("**Draw a digit** (white on black) and say which it is")
    st.selectbox("Your drawing is a", list(range(N_CLASSES)), key=f"{P}_draw_label")
    if im.drawing_canvas(P, bundle.preprocessing) is None:
        st.caption(":material/edit: Draw a digit above: it is then encoded with the label you chose.")

with out_col:
    view = state[f"{P}_view"]
    swapped = decode_under_labels(model, rep.mu, view, int(state[f"{P}_sample_seed"]))
    st.markdown(
        f"**{chosen_name[0].upper() + chosen_name[1:]}**, encoded with y = {chosen_label} (z = μ(x, y)), "
        f"then decoded with y = 0 … 9 ({lc.VIEW_LABELS[view]}):"
    )
    im.show_image(tile(swapped, 5, pad=3, pad_value=0.5), None, factor=3)
    st.caption(
        f"Image {chosen_label} (row {chosen_label // 5 + 1}, column {chosen_label % 5 + 1}) is the "
        "reconstruction; the others keep its style and change its class."
    )

pp.posterior_section(P, model, model_key, x_chosen, chosen_label, chosen_name, lm.latent_dim, picture)

# ------------------------------------------------------------------------ class-conditional samples
st.subheader("Class-conditional samples (the paper's 10 × 15 grid)")
seed_col, button_col, _ = st.columns([1, 1, 3], vertical_alignment="bottom")
seed_col.number_input("Seed", 0, 2**31 - 1, key=f"{P}_grid_seed")
ps.reseed_button("Regenerate", f"{P}_regenerate", f"{P}_grid_seed", where=button_col)
view = state[f"{P}_view"]
im.show_image(sample_grid(model_key, int(state[f"{P}_grid_seed"]), view), None, factor=2)
ps.url_out({"model": description.name, "img": index, "seed": int(state[f"{P}_grid_seed"])})
st.caption(
    f"Row y: {GRID_PER_CLASS} decodings ({lc.VIEW_LABELS[view]}) of z ~ p(z|y), the learned prior of "
    "class y. The seed fixes the noise ε; a column uses the same ε in every row."
)

publish_button(description)
