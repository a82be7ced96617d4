"""The variational RNN (tutorial section 5.6; Chung et al. 2015): digits generated row by row, the prior's
latent path, completions of a digit's top rows, and the ELBO's two terms per row.

Per model (cached for the process): the VRNN and the binarized MNIST test set. Per browser session: the
generation (``st.session_state["vrnn_gen"]``) and the shared player (``views/components/player.py``). The
generation's controls, grid and chart are the player's frame fragment: a row reruns only that part, and
while playing the fragment reruns itself on a timer and streams rows in.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

from explorer_core.artifacts import LoadedModel, describe
from explorer_core.data import MNISTUnavailable
from explorer_core.device import DeviceError, pick_device
from explorer_core.explore.sequences import (
    Generation,
    TestSet,
    advance,
    completions,
    grid_shape,
    load_test_set,
    load_vrnn,
    png_bytes_rgb,
    row_terms_of,
    sequence_grid,
    start_generation,
    state_rows,
)
from explorer_core.export import EXPORTS, export_name, vrnn_generation_gif
from explorer_core.figures.vrnn import prior_trajectory_chart, row_terms_figure
from views._models import model_picker
from views.components import lecture, model_panel
from views.components.charts import plotly_chart
from views.components.compute_slot import SlotGate, one_off_runner
from views.components.images import drawing_panel, show_image, source_radio
from views.components.live_chart import live_chart
from views.components.model_metrics import metrics_row
from views.components.page_state import apply_pending, init_state, int_in, reseed_button, url_in, url_out
from views.components.player import Player
from views.components.publish_button import publish_button

P = "vrnn"
# ▶ Play: the fragment reruns every FRAME_SECONDS; one row is a few ms of model time, the grid a small PNG and
# the prior's path a canvas redrawn in place, so several rows a second reach the screen
FRAME_SECONDS = 0.15
DIGIT_CHOICES = (1, 4, 9, 16, 25, 36, 49, 64)
ROWS_PER_FRAME = (1, 2, 4, 7)
GRID_WIDTH_PX = 520
GUTTER = 2
state = st.session_state

player = Player(P, FRAME_SECONDS)
gate = SlotGate(P, player)  # the server's compute budget (explorer_core.compute_budget)


# ------------------------------------------------------------------------------------------------ models


def _forget_generation(prefix: str = P) -> None:
    """A new model (or N, or seed) means a new generation (and Play stops)."""
    state.pop(f"{prefix}_gen", None)
    player.stop()


@st.cache_resource(show_spinner="Loading the VRNN…", max_entries=6)
def _cached_model(json_path: str, stamp: str, device: str) -> LoadedModel:
    return load_vrnn(json_path, device)


@st.cache_resource(show_spinner="Loading the MNIST test set…", max_entries=2)
def _cached_test_set(preprocessing: str, device: str) -> TestSet:
    return load_test_set(preprocessing, device)


def memo(name: str, key: Any, compute: Callable[[], Any]) -> Any:
    """``compute()``, remembered in this session under ``name`` until ``key`` changes."""
    slot = f"{P}_memo_{name}"
    held = state.get(slot)
    if held is not None and held[0] == key:
        return held[1]
    value = compute()
    state[slot] = (key, value)
    return value


def grid_factor(n_cols: int) -> int:
    """Screen pixels per image pixel so the grid is about ``GRID_WIDTH_PX`` wide (2 to 5)."""
    return int(np.clip(round(GRID_WIDTH_PX / (n_cols * (28 + GUTTER) + GUTTER)), 2, 5))


# ------------------------------------------------------------------------------------------------- page

st.title(":material/history_edu: Variational RNN: digits row by row")
lecture.intro(
    "The VRNN (Chung et al. 2015; tutorial section 5.6) reads an image as a **sequence of 28 rows** "
    "x_t ∈ {0,1}^28. An LSTM carries h_t; each row has its own latent z_t ∈ R^2 with a prior p(z_t|h_t) that "
    "depends on the rows so far, and a decoder p(x_t|h_t, z_t) of 28 Bernoulli pixels. To **generate**, draw "
    "z_t from the prior, then the row, and feed the sampled row back: h_{t+1} = LSTM([x_t, z_t], h_t). "
    "The ELBO is a sum over rows of reconstruction minus KL(q(z_t|h_t, x_t) ‖ p(z_t|h_t))."
)

meta = model_picker("vrnn", P, on_change=_forget_generation)
if meta is None:
    st.stop()
opened = model_panel.load_or_explain(meta, _cached_model)
if opened is None:
    st.stop()
loaded, model_key = opened
model = loaded.model
T = model.config.n_rows
description = describe(meta)
metrics_row(description)


def _digits(text: str) -> int:
    """N from URL text: one of the grid sizes offered; ``ValueError`` otherwise."""
    if int(text) not in DIGIT_CHOICES:
        raise ValueError(text)
    return int(text)


# a prepared link (?model=vrnn&seed=3&n=25) opens that generation; values out of range are ignored
url_in(P, {"seed": (f"{P}_seed", int_in(0, 2**31 - 1)), "n": (f"{P}_n", _digits)})
init_state(
    {
        f"{P}_n": 16,
        f"{P}_seed": 0,
        f"{P}_per_frame": 1,
        f"{P}_show_samples": False,
        f"{P}_traj_mode": "time",
        f"{P}_source": "test",
        f"{P}_index": 0,
        f"{P}_keep": 14,
        f"{P}_m": 8,
        f"{P}_comp_seed": 0,
        f"{P}_comp_samples": False,
        f"{P}_terms_n": 16,
    }
)
apply_pending(P)


def current_generation() -> Generation:
    """This session's generation, started afresh when the model, N or the seed changed."""
    gen = state.get(f"{P}_gen")
    n, seed = int(state[f"{P}_n"]), int(state[f"{P}_seed"])
    if not isinstance(gen, Generation) or (gen.model_key, gen.n, gen.seed) != (model_key, n, seed):
        gen = start_generation(model, n, seed, model_key)
        state[f"{P}_gen"] = gen
    return gen


def on_play() -> bool:
    """▶ Play (a callback): a generation played to its end starts again; Play runs until row 28."""
    gen = state.get(f"{P}_gen")
    if isinstance(gen, Generation) and gen.rows >= T:
        _forget_generation()
    return False


def generation_panel(playing: bool) -> bool:
    """Controls, the grid of digits and the prior's latent path: the player's frame fragment. While
    ``playing`` a frame first adds the rows of one frame; returns whether Play goes on (not at row 28)."""
    start = time.perf_counter()
    c = st.columns([1.3, 1, 1.1, 0.9, 0.9, 0.8], vertical_alignment="bottom")
    c[0].select_slider("Digits N", DIGIT_CHOICES, key=f"{P}_n", on_change=_forget_generation)
    c[1].number_input("Seed", 0, 2**31 - 1, key=f"{P}_seed", on_change=_forget_generation)
    per_frame = c[2].select_slider(
        "Rows per frame (▶ Play)", ROWS_PER_FRAME, key=f"{P}_per_frame", help="rows added per timer tick"
    )
    next_row = c[3].button(
        **lecture.icon_button("Next row", ":material/skip_next:"),
        key=f"{P}_next",
        help="generate one more row of every digit",
    )
    player.button(c[4], on_play=on_play, on_pause=gate.release)
    reset = c[5].button(
        lecture.label("↺ Reset", "↺"), key=f"{P}_reset", help="back to row 0 (same seed, same digits)"
    )

    gen = current_generation()
    url_out({"seed": gen.seed, "n": gen.n})
    if reset:
        _forget_generation()
        gen = current_generation()
    t0 = time.perf_counter()
    if next_row:
        player.stop()
        advance(model, gen, 1)
    go_on = True
    if playing and player.running:  # (Next row or Reset in this run stopped it)
        # rows run only with a compute slot, at most its step rate (a row counts as a step); without one
        # the visitor waits in line (gate.waiting_panel) and Play starts by itself on their turn. "Next
        # row" answers one click and never waits.
        rows = gate.steps_for_frame(max(1, min(int(per_frame), T - gen.rows)))
        if rows is None:
            go_on = False
        else:
            if rows:
                advance(model, gen, rows)
            go_on = gate.keep_playing(gen.rows < T)
    step_s = time.perf_counter() - t0

    show = "samples" if state[f"{P}_show_samples"] else "means"
    t1 = time.perf_counter()
    rows = state_rows(gen.state, show)
    n_cols = grid_shape(gen.n)[1]
    image = sequence_grid(rows, T, n_cols, current=gen.rows - 1 if gen.rows else None, factor=1, pad=GUTTER)
    png = png_bytes_rgb(image)
    grid_s = time.perf_counter() - t1

    grid_col, chart_col = st.columns([1, 1.05], gap="medium")
    with grid_col:
        done = (
            "all rows generated" if gen.rows >= T else ("playing…" if player.running and go_on else "paused")
        )
        st.markdown(f"**Row {gen.rows} of {T}** · {done}")
        # sent at image resolution (a small PNG, quick to encode on every row) and enlarged by the browser
        # with crisp pixels (the CSS rule under the "Generation" heading)
        st.container(key=f"{P}_grid").image(
            png, width=image.shape[1] * grid_factor(n_cols), output_format="PNG"
        )
        st.toggle(
            "Show the sampled rows (what is fed back) instead of the Bernoulli means",
            key=f"{P}_show_samples",
        )
        n, seed, run = gen.n, gen.seed, one_off_runner()
        st.download_button(
            "This generation, row by row (GIF)",
            # built once per model, N and seed for the whole server, then served again; a build waits for
            # the compute budget's line (issue 34)
            data=lambda: EXPORTS.get_or_build(
                ("vrnn-gif", model_key, n, seed), lambda: run(lambda: vrnn_generation_gif(model, n, seed))
            ),
            file_name=export_name("vrnn", f"generation-n{n}-seed{seed}", "gif", model=description.name),
            mime="image/gif",
            icon=":material/download:",
            on_click="ignore",
            key=f"{P}_gif",
            help="The same digits (same seed) growing one row per frame, the row just generated marked: "
            "for a slide.",
        )
    with chart_col:
        modes = ("time", "plane") if model.config.latent_dim >= 2 else ("time",)
        if state[f"{P}_traj_mode"] not in modes:
            state[f"{P}_traj_mode"] = "time"
        mode = st.radio(
            "Latent path",
            modes,
            format_func={"time": "each dimension over t", "plane": "in the latent plane"}.get,
            horizontal=True,
            key=f"{P}_traj_mode",
            label_visibility="collapsed",
        )
        t2 = time.perf_counter()
        spec = prior_trajectory_chart(gen.state.prior_means.float().cpu().numpy(), T, mode)
        figure_s = time.perf_counter() - t2
        state[f"{P}_frame_no"] = state.get(f"{P}_frame_no", 0) + 1
        live_chart(f"{P}_trajectory", spec, state[f"{P}_frame_no"])
    st.caption(
        f"{'Bernoulli means' if show == 'means' else 'Sampled binary rows'} of each row, in the order they "
        "were generated; grey rows are not generated yet and the orange ticks mark the row generated last. "
        "Whichever is shown, the *sampled* row is what the LSTM reads next. Right: the mean of p(z_t|h_t) "
        "for each digit (same order, colours cycle) and their average. "
        ":material/timer: Server time of this update: "
        f"{(time.perf_counter() - start) * 1e3:.0f} ms; generation "
        f"{step_s * 1e3:.1f} ms, grid image {grid_s * 1e3:.1f} ms, chart {figure_s * 1e3:.1f} ms."
    )
    return go_on


st.subheader("Generation")
st.html(f"<style>.st-key-{P}_grid img {{ image-rendering: pixelated; }}</style>")
gate.waiting_panel()
player.frames(gate.behind_gestures(generation_panel))

# ------------------------------------------------------------------------------------------- the test set
try:
    test_set = _cached_test_set(description.preprocessing, str(pick_device()))
except (MNISTUnavailable, OSError, ValueError, DeviceError) as err:
    st.error(
        f"**The MNIST test set is needed for completions and per-row terms.** {err}", icon=":material/block:"
    )
    st.stop()

n_test = len(test_set)
drawing = state.get(f"{P}_drawing")
use_drawing = state[f"{P}_source"] == "drawing" and drawing is not None
index = int(np.clip(state[f"{P}_index"], 0, n_test - 1))
if use_drawing:
    x_chosen = drawing.x.reshape(-1)
    chosen_name = "your drawing"
    chosen_id = hashlib.sha1(drawing.pixels.tobytes()).hexdigest()
else:
    x_chosen = test_set.x[index]
    chosen_name = f"test image {index} (digit {int(test_set.labels[index])})"
    chosen_id = f"test:{index}"
chosen_image = x_chosen.reshape(T, -1).float().cpu().numpy()

# ------------------------------------------------------------------------------------------- completion
st.subheader("Completion: keep the top rows, generate the rest")
pick_col, draw_col, out_col = st.columns([1, 0.9, 2.1], gap="medium")
with pick_col:
    source_radio(P, "Digit")
    st.number_input(f"Test image (0–{n_test - 1})", 0, n_test - 1, key=f"{P}_index", step=1)
    if state[f"{P}_source"] == "drawing" and drawing is None:
        st.info("Nothing drawn yet: draw a digit in the box. Meanwhile the test image is used.")
    keep = st.slider("Rows kept k", 0, T, key=f"{P}_keep", help="the top k rows are given, exactly")
    m = st.slider("Completions M", 1, 16, key=f"{P}_m")
    reseed_button("new completions", f"{P}_new_completions", f"{P}_comp_seed")
with draw_col:
    drawing_panel(
        P,
        "binarized",
        "**Draw a digit** (white on black)",
        ":material/edit: Draw above to complete your own digit (the trash icon clears it).",
    )

with out_col:
    comp = memo(
        "completion",
        (model_key, chosen_id, keep, m, state[f"{P}_comp_seed"]),
        lambda: completions(model, x_chosen, keep, m, seed=state[f"{P}_comp_seed"]),
    )
    show_comp = "samples" if state[f"{P}_comp_samples"] else "means"
    tiles = np.concatenate([chosen_image[None], state_rows(comp, show_comp)], 0)
    n_cols = min(len(tiles), 5)
    st.markdown(f"**{chosen_name}**, then {m} completion(s) of its rows {keep + 1}–{T}")
    grid = sequence_grid(tiles, T, n_cols, kept=keep, factor=3 if n_cols > 4 else 4)
    st.image(png_bytes_rgb(grid), output_format="PNG")  # PNG: "auto" would re-encode it as a JPEG
    st.toggle("Show the sampled rows instead of the Bernoulli means", key=f"{P}_comp_samples")
    st.caption(
        f"First: the digit itself. Blue rows: the {keep} row(s) kept; along them z_t is drawn from the "
        "posterior q(z_t|h_t, x_t), so h_t has read them. Below the blue line every row is generated: "
        "z_t ~ p(z_t|h_t), x_t ~ p(x_t|h_t, z_t), the sampled row fed back."
    )

# ---------------------------------------------------------------------------------------- per-row terms
st.subheader(f"The ELBO row by row: {chosen_name}")
image_col, bars_col = st.columns([0.6, 2.4], gap="medium")
n_paths = int(state[f"{P}_terms_n"])
terms = memo(
    "terms", (model_key, chosen_id, n_paths), lambda: row_terms_of(model, x_chosen, n_samples=n_paths)
)
with image_col:
    show_image(chosen_image, chosen_name, factor=6, output_format="PNG")
    st.metric("ELBO", f"{terms.elbo:.2f}", help="Σ_t reconstruction − KL, nats (averaged over the paths)")
    st.slider("Posterior paths averaged", 1, 64, key=f"{P}_terms_n")
with bars_col:
    test_rec, test_kl = description.test.per_row_reconstruction, description.test.per_row_kl
    plotly_chart(
        row_terms_figure(
            terms.reconstruction,
            terms.kl,
            np.asarray(test_rec) if test_rec else None,
            np.asarray(test_kl) if test_kl else None,
        ),
        "vrnn",
        f"row-terms-{chosen_name}",
        model=description.name,
        key=f"{P}_row_terms",
        width="stretch",
    )
st.caption(
    "Teacher forcing: the LSTM reads the true rows; each z_t is a reparameterised sample of "
    f"q(z_t|h_t, x_t), and the bars average {n_paths} such paths. Rows that the past predicts well cost "
    "little; the KL shows where the latents carry information the LSTM could not guess (usually where the "
    "stroke starts). Black ticks: the test set's average per row, stored with the model."
)

publish_button(description)
