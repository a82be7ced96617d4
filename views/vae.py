"""The VAE's latent space (tutorial section 5.3): drag z and see what the decoder makes of it, see what the
encoder does with an image (q(z|x), the reparameterisation, the ELBO's two terms), interpolate, draw.

Per model (cached for the process): the test set's encodings and the map plane. Per interaction: a few decoder
calls. The map, the sliders and the decoded image share one fragment, so moving z reruns only that part.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import streamlit as st

from explorer_core.explore.latent import decode_images, interpolate, reparameterise
from explorer_core.figures.common import Q_COLOUR, map_ellipse
from explorer_core.figures.latent import reparameterisation_chart
from explorer_core.imaging import tile
from views import _latent_common as lc
from views.components import images as im
from views.components import lecture
from views.components import pad_fragment as pf
from views.components import page_state as ps
from views.components import posterior_panel as pp
from views.components.compute_slot import gesture_fragment
from views.components.live_chart import live_chart
from views.components.publish_button import publish_button

P = "vae"
#: latent dimensions whose μ, σ, ε₁, z₁ table is shown open (a longer one sits in an expander)
TABLE_ROWS_SHOWN = 6
state = st.session_state

st.title(":material/cyclone: VAE: the latent space")
lecture.intro(
    "A variational autoencoder (Kingma & Welling 2014) on MNIST: an encoder q(z|x) = N(μ(x), diag σ(x)²) and "
    "a decoder p(x|z) whose pixels are Continuous Bernoulli (or Bernoulli) with parameter λ(z). **Drag "
    "through the latent map** below and the decoder answers while you drag (arrow keys and the sliders move "
    "z too; the wheel zooms); the map shows the test images' posterior means μ(x), coloured by digit. For "
    "L > 2 the map is the plane of their first two principal components, z = centre + u·e1 + v·e2, so every "
    "point of it decodes."
)

bundle, model_key, description = lc.open_model("vae", P)
lm = bundle.latent_map
model = bundle.model
n_test = len(lm.coords)

ps.url_in(P, lc.url_spec(P, n_test, seed=(f"{P}_sample_seed", ps.int_in(0, 2**31 - 1))))
ps.init_state(
    lc.default_state(
        P,
        n=6,
        eps_seed=0,
        interp_a=0,
        interp_b=1,
        interp_steps=10,
        interp_from_encoder=False,
        show_q=True,
    )
)
ps.apply_pending(P)

# ------------------------------------------------------------------- the image in the encoder view
drawing = state.get(f"{P}_drawing")
chosen = im.chosen_input(P, n_test, lambda i: bundle.x[i], bundle.image)
index = int(np.clip(state[f"{P}_index"], 0, n_test - 1))
x_chosen, chosen_image = chosen.x, chosen.image
chosen_name = "your drawing" if chosen.drawn else f"test image {index} (digit {int(lm.labels[index])})"
rep = reparameterise(model, x_chosen, None, n=int(state[f"{P}_n"]), seed=int(state[f"{P}_eps_seed"]))

# ----------------------------------------------------------------------------- interpolation ends
z_a = (
    rep.mu
    if state[f"{P}_interp_from_encoder"]
    else lm.mu[int(np.clip(state[f"{P}_interp_a"], 0, n_test - 1))]
)
z_b = lm.mu[int(np.clip(state[f"{P}_interp_b"], 0, n_test - 1))]

overlays = {"highlight": lm.z_to_plane(rep.mu), "path": lm.z_to_plane(np.stack([z_a, z_b]))}
if state[f"{P}_show_q"]:
    q_mean, q_cov = lm.project_gaussian(rep.mu, rep.sigma)
    overlays["ellipses"] = [map_ellipse(q_mean, q_cov, f"q(z|x) 1σ, 2σ: {chosen_name}", Q_COLOUR)]
    overlays["samples"] = lm.z_to_plane(rep.z)
picture = None
if pp.shown(P, lm.latent_dim):
    picture = pp.picture_for(P, model, model_key, x_chosen, None)
    if picture is not None:
        overlays["lines"] = pp.contour_lines(picture, lm.z_to_plane)


@gesture_fragment
def latent_panel(overlays: dict) -> None:
    """What the decoder shows, the zoom, the pad and the manifold of the region it shows: a change of view
    or zoom reruns this; a move of z reruns only the pad and its sliders
    (:func:`views.components.pad_fragment.pad_fragment`)."""
    panel_start = time.perf_counter()
    pf.rerun_app_if_asked(P)
    ranges = lc.cached_slider_ranges(model_key, lm)
    view, region = lc.view_and_zoom(P, ranges, *st.columns([1.15, 1.25], gap="medium"))

    title = f"Decoded ({lc.VIEW_LABELS[view]})"
    spec = lc.pad_spec(P, bundle, model_key, ranges, region, view, title, overlays)
    manifold_s = lc.pad_and_manifold(
        spec, bundle, model_key, f"**Manifold** of the region the pad shows ({lc.MANIFOLD_N}×{lc.MANIFOLD_N})"
    )
    plane = (
        ""
        if lm.latent_dim == 2
        else f"z has {lm.latent_dim} dimensions; the pad is the plane z = centre + u·e1 + v·e2 of the "
        f"encodings' first two principal components ({sum(lm.explained):.0%} of their variance). "
    )
    st.caption(
        "On the pad: **+** the z being decoded; dots: test images' posterior means μ(x), coloured by digit; "
        "red: q(z|x) of the chosen image (1σ and 2σ ellipses, its mean ringed, the samples z = μ + σ·ε as "
        "✕); green: the true posterior p(z|x), when it is shown (below the encoder view); dotted: the "
        "interpolation line. " + plane + ":material/timer: Server time of this panel: "
        f"{(time.perf_counter() - panel_start) * 1e3:.0f} ms in all; one decode "
        f"{ps.page_state(P).pad.decode_s * 1e3:.1f} ms, manifold {manifold_s * 1e3:.1f} ms (cached per "
        f"region); the model and the test encodings were loaded once, in {bundle.seconds:.1f} s. A move of z "
        "reruns only the pad and its sliders."
    )


latent_panel(overlays)
lc.tsne_section(P, bundle, model_key)

# ----------------------------------------------------------------------------------- encoder view
st.subheader("Encoder: q(z|x), the reparameterisation and the ELBO")
pick_col, draw_col, elbo_col = st.columns([1, 1, 1.1], gap="medium")
with pick_col:
    lc.image_picker(P, n_test, drawing, chosen_image, chosen_name)
    st.checkbox("Show q(z|x) and the samples on the pad", key=f"{P}_show_q")

with draw_col:
    im.drawing_panel(
        P,
        bundle.preprocessing,
        "**Draw a digit** (white on black; it is scaled and centred as MNIST was)",
        ":material/edit: Draw a digit above: the encoder view then uses it (the trash icon clears it).",
        "As the model sees it (28×28):",
    )

with elbo_col:
    st.markdown(f"**ELBO of {chosen_name}**, estimated with the {len(rep.z)} samples below")
    m1, m2, m3 = st.columns(3)
    m1.metric("ELBO", f"{rep.elbo:.1f}", help="reconstruction − KL, nats")
    m2.metric("Reconstr.", f"{rep.reconstruction:.1f}", help="mean over the samples of log p(x|z_k), nats")
    m3.metric("KL", f"{rep.kl:.2f}", help="KL(q(z|x) ‖ p(z)) in closed form (Kingma & Welling, eq. 10), nats")
    st.markdown(
        f"ELBO = reconstruction − KL = {rep.reconstruction:.1f} − {rep.kl:.2f} = **{rep.elbo:.1f}** nats.\n\n"
        "The ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)). The reconstruction term is estimated with "
        "reparameterised samples z_k = μ + σ ⊙ ε_k, ε_k ~ N(0, I): the noise is outside the network, so "
        "the gradient flows through μ and σ to the encoder. The KL term is exact."
    )
    st.slider("Samples n", 1, 12, key=f"{P}_n")
    ps.reseed_button("new ε", f"{P}_new_eps", f"{P}_eps_seed")

rep_col, samples_col = st.columns([1.3, 1], gap="medium")
with rep_col:
    live_chart(f"{P}_reparam", reparameterisation_chart(rep.mu, rep.sigma, rep.z))
with samples_col:
    view = state[f"{P}_view"]
    decodings = decode_images(model, rep.z, None, view, seed=int(state[f"{P}_eps_seed"]))
    st.markdown(f"**The {len(rep.z)} samples z_k decoded** ({lc.VIEW_LABELS[view]}):")
    im.show_image(tile(decodings, min(len(decodings), 6), pad=2), None, factor=3)
    table = pd.DataFrame(
        {"μ": rep.mu, "σ": rep.sigma, "ε₁": rep.eps[0], "z₁ = μ + σ·ε₁": rep.z[0]},
        index=[f"z{j + 1}" for j in range(len(rep.mu))],
    )
    # a plain table (st.dataframe's grid is a second large script for a cold page to load); long ones folded
    shown = table.map("{:.3f}".format)  # three decimals, as text
    if len(table) <= TABLE_ROWS_SHOWN:
        st.table(shown)
    else:
        with st.expander(f"μ, σ, ε₁ and z₁ of all {len(table)} dimensions"):
            st.table(shown)

pp.posterior_section(P, model, model_key, x_chosen, None, chosen_name, lm.latent_dim, picture)

# ---------------------------------------------------------------------------------- interpolation
st.subheader("Interpolation along the latent line")
a_col, b_col, steps_col, from_col = st.columns([1, 1, 1, 1.3], vertical_alignment="bottom")
a_col.number_input(
    "From test image", 0, n_test - 1, key=f"{P}_interp_a", disabled=state[f"{P}_interp_from_encoder"]
)
b_col.number_input("To test image", 0, n_test - 1, key=f"{P}_interp_b")
steps = steps_col.slider("Steps", 3, 20, key=f"{P}_interp_steps")
from_col.checkbox("From the encoder's image", key=f"{P}_interp_from_encoder")
view = state[f"{P}_view"]
strip = interpolate(model, z_a, z_b, steps=steps, view=view)
start_image = chosen_image if state[f"{P}_interp_from_encoder"] else bundle.image(int(state[f"{P}_interp_a"]))
ends = np.stack([start_image, *strip, bundle.image(int(state[f"{P}_interp_b"]))])
im.show_image(tile(ends, len(ends), pad=3, pad_value=0.5), None, factor=2)
ps.url_out({"model": description.name, "img": index, "seed": int(state[f"{P}_sample_seed"])})
st.caption(
    f"First and last: the two images; between them, {steps} decodings ({lc.VIEW_LABELS[view]}) of "
    "z = (1 − t)·μ_a + t·μ_b, t from 0 to 1, between their posterior means (the dotted line on the map)."
)

publish_button(description)
