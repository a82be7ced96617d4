"""Watch it learn: a small VAE trained live in this browser session, by approximate E-steps (phi only),
M-steps (theta only) or joint AEVB steps, with the latent map forming and the ELBO / IWAE-bound gap made
visible (tutorial sections 3-5).

State per browser session: one ``WatchExperiment`` in ``st.session_state``. The controls and the charts share
one fragment; while playing, the fragment reruns itself on a short timer, runs one frame of steps and
redraws the charts in place (same keys, so only changed data is re-sent). All computation is in
``explorer_core.watch_learn``; the figures are in ``explorer_core.figures_watch``.
"""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from explorer_core.data import MNISTUnavailable
from explorer_core.device import limit_cpu_threads
from explorer_core.figures import latent_map_figure
from explorer_core.figures_watch import bound_curves, kl_per_dimension, terms_curves
from explorer_core.jobs import runs_root
from explorer_core.latent_views import click_grid, png_bytes
from explorer_core.watch_learn import (
    EM_SCHEDULE,
    IWAE_KS,
    WatchConfig,
    WatchError,
    WatchExperiment,
    load_watch_data,
)

PHASE_LABELS = {"joint": "joint (θ and φ)", "e_step": "E-step (φ only)", "m_step": "M-step (θ only)"}
LEARNING_RATES = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
HIDDEN_CHOICES = {"128": (128,), "256-256": (256, 256), "500-500": (500, 500), "128-128": (128, 128)}
TRAIN_SIZES = [1_000, 2_000, 5_000, 10_000, 20_000, 50_000]
STEPS_PER_FRAME = [1, 5, 10, 20, 50, 100, 200]
FRAME_SECONDS = 0.05  # the timer between frames while playing; a frame itself takes longer
FRAME_BUDGET_S = 1.5  # a frame stops taking steps after this long (big models stay responsive)
MANIFOLD_N = 12
STALE_PLAY_S = 6.0  # after the run stopped itself, a Play toggle turned on sooner is a stale timer rerun
GRID_CLICK_N = 30
WATCH_THREADS = 1  # on this busy 2-core CPU two torch threads were up to 10 times slower per step

limit_cpu_threads(WATCH_THREADS)


@st.cache_resource(show_spinner="Loading MNIST…", max_entries=4)
def cached_data(n_train: int, likelihood: str, n_eval: int, n_map: int):
    """The preprocessed images of a configuration, shared (read-only) by every session."""
    return load_watch_data(WatchConfig(n_train=n_train, likelihood=likelihood, n_eval=n_eval, n_map=n_map))


def new_experiment(config: WatchConfig) -> str | None:
    """Start a fresh run in this session; an error message instead when it cannot start."""
    state = st.session_state
    try:
        data = cached_data(config.n_train, config.likelihood, config.n_eval, config.n_map)
        state.watch = WatchExperiment(config, data)
    except MNISTUnavailable as err:
        return f"MNIST is needed for this page. {err}"
    except (WatchError, ValueError) as err:
        return f"Cannot start this run: {err}"
    except RuntimeError as err:  # e.g. out of memory for an absurd model size
        return f"Cannot start this run ({type(err).__name__}): {err}"
    state.watch_playing = False
    state.watch_play_toggle = False
    state.watch_autoplay = False
    state.watch_region = None
    state.watch_z = None
    state.watch_zoom = None
    state.watch_fps = []
    return None


st.title("👀 Watch it learn: a VAE trained live")
st.markdown(
    "AEVB is approximate EM (tutorial sections 3-4). An **E-step** updates only the inference parameters φ "
    "(the encoder q(z|x)): the ELBO closes on log p(x), which cannot move, so the gap KL(q(z|x) ‖ p(z|x)) "
    "shrinks. An **M-step** updates only the generative parameters θ (the decoder p(x|z)): log p(x) rises "
    "and the bound loosens. log p(x) of a deep model is not tractable, so the curves show the tightest "
    "estimate we have, the **IWAE bound** with k importance samples (Burda et al. 2016), and the difference "
    "IWAE − ELBO as the gap estimate. Everything is measured on fixed validation images with **fixed "
    "noise**, so a curve moves only when the parameters do."
)
st.info(
    "The IWAE bound is itself a lower bound on log p(x), so the plotted gap is a **lower estimate** of the "
    "true gap. Its proposal is q(z|x): in an E-phase it can rise a little although log p(x) cannot move, "
    "because the proposal improves.",
    icon="ℹ️",
)

# while playing, every frame reruns the fragment: keep its elements fully drawn instead of Streamlit's
# greyed-out "stale" look between frames (the charts update in place)
st.markdown(
    "<style>.st-key-watch_live [data-stale='true'] {opacity: 1 !important; transition: none !important;}"
    "</style>",
    unsafe_allow_html=True,
)

if "watch" not in st.session_state:
    message = new_experiment(WatchConfig())
    if message:
        st.error(message, icon="🚫")
        st.stop()

with st.expander("Model and data (a new configuration starts a new run)", expanded=False):
    cfg = st.session_state.watch.config
    with st.form("watch_config"):
        c = st.columns(4)
        latent_dim = c[0].number_input("Latent dimension L", 1, 64, cfg.latent_dim, key="watch_cfg_l")
        hidden_names = list(HIDDEN_CHOICES)
        current = next((k for k, v in HIDDEN_CHOICES.items() if v == cfg.hidden), "256-256")
        hidden = c[1].selectbox("Hidden layers", hidden_names, hidden_names.index(current), key="watch_cfg_h")
        likelihood = c[2].radio(
            "Likelihood",
            ["bernoulli", "continuous_bernoulli"],
            index=["bernoulli", "continuous_bernoulli"].index(cfg.likelihood),
            format_func={
                "bernoulli": "Bernoulli (binarized)",
                "continuous_bernoulli": "Continuous Bernoulli (dequantized)",
            }.get,
            key="watch_cfg_lik",
        )
        n_train = c[3].select_slider("Training images", TRAIN_SIZES, cfg.n_train, key="watch_cfg_n")
        c = st.columns(4)
        batch = c[0].number_input("Batch size", 1, 10_000, cfg.batch_size, key="watch_cfg_b")
        seed = c[1].number_input("Seed", 0, 2**31 - 1, cfg.seed, key="watch_cfg_seed")
        n_eval = c[2].number_input("Validation images (curves)", 10, 2000, cfg.n_eval, key="watch_cfg_eval")
        n_map = c[3].number_input("Map points", 10, 5000, cfg.n_map, key="watch_cfg_map")
        if st.form_submit_button("Start a new run"):
            try:
                config = WatchConfig(
                    latent_dim=int(latent_dim),
                    hidden=HIDDEN_CHOICES[hidden],
                    likelihood=likelihood,
                    n_train=int(n_train),
                    batch_size=int(batch),
                    lr_inference=cfg.lr_inference,
                    lr_generative=cfg.lr_generative,
                    iwae_k=cfg.iwae_k,
                    n_eval=int(n_eval),
                    n_map=int(n_map),
                    seed=int(seed),
                )
            except WatchError as err:
                st.error(f"Not started: {err}")
            else:
                message = new_experiment(config)
                if message:
                    st.error(message)
                else:
                    st.toast("New run started.")


def reading(ex: WatchExperiment) -> str:
    """A few live sentences on what the charts show now."""
    m, last = ex.latest.metrics, ex.last_phase
    doing = {
        "init": "No step yet: θ and φ are random, and the map is a blob at the origin.",
        "e_step": "Last phase: **E-step**. θ is frozen, so log p(x) is flat; φ moves q(z|x) towards p(z|x) "
        "and the gap estimate shrinks (the IWAE bound may creep up: its proposal q improved).",
        "m_step": "Last phase: **M-step**. φ is frozen; θ raises the ELBO and log p(x) (the IWAE bound) with "
        "it, while the true posterior moves away from q(z|x) and the gap estimate grows.",
        "joint": "Last phase: **joint AEVB**. Both move: the bound is tightened and pushed up at once.",
    }[last]
    active = sum(v >= 0.01 for v in m.kl_per_dim)
    return (
        f"{doing}\n\n"
        f"* ELBO = reconstruction − KL = {m.reconstruction:.1f} − {m.kl:.2f} = **{m.elbo:.1f}** nats per "
        f"image; IWAE bound (k = {m.k}) **{m.iwae:.1f}**; gap estimate **{m.gap:.2f}** nats.\n"
        f"* {active} of {len(m.kl_per_dim)} latent dimensions carry more than 0.01 nats of KL (active).\n"
        "* Shaded grey: E-phases; amber: M-phases; joint steps are not shaded."
    )


def handle_map_selection(ex: WatchExperiment, region) -> None:
    """A click on the map (paused) decodes there; a box dragged on it decodes its centre and shows the
    manifold of the box."""
    state = st.session_state
    event = state.get("watch_map")
    try:
        selection = event["selection"]
        points, boxes = list(selection.get("points") or []), list(selection.get("box") or [])
    except (KeyError, TypeError, AttributeError):
        return
    # what is new decides: plotly keeps a dragged box in the selection while a later click adds a point
    box_sig, point_sig = repr(boxes[:1]), repr(points[:1])
    new_box = bool(boxes) and state.get("watch_map_seen_box") != box_sig
    new_point = bool(points) and state.get("watch_map_seen_point") != point_sig
    state.watch_map_seen_box, state.watch_map_seen_point = box_sig, point_sig
    if new_box:
        xs, ys = boxes[0].get("x") or [], boxes[0].get("y") or []
        if len(xs) >= 2 and len(ys) >= 2:
            (u0, u1), (v0, v1) = sorted(map(float, xs[:2])), sorted(map(float, ys[:2]))
            if u1 - u0 > 1e-6 and v1 - v0 > 1e-6:
                state.watch_zoom = ((u0, u1), (v0, v1))
            state.watch_z = ((u0 + u1) / 2, (v0 + v1) / 2)
    elif new_point:
        x, y = points[0].get("x"), points[0].get("y")
        if isinstance(x, int | float) and isinstance(y, int | float):
            state.watch_z = (float(x), float(y))


def player() -> None:
    state = st.session_state
    if state.pop("watch_stop_pending", False):
        state.watch_play_toggle = False
    ex: WatchExperiment = state.watch

    c = st.columns(5)
    lr_phi = c[0].select_slider(
        "Learning rate φ (E)", LEARNING_RATES, ex.config.lr_inference, key="watch_lr_phi"
    )
    lr_theta = c[1].select_slider(
        "Learning rate θ (M)", LEARNING_RATES, ex.config.lr_generative, key="watch_lr_theta"
    )
    k = c[2].select_slider(
        "k (IWAE samples)", IWAE_KS, ex.config.iwae_k if ex.config.iwae_k in IWAE_KS else 16, key="watch_k"
    )
    per_frame = c[3].select_slider("Steps per frame", STEPS_PER_FRAME, 20, key="watch_frame")
    n_steps = c[4].number_input("N steps", 1, 100_000, 250, key="watch_n")
    if (lr_phi, lr_theta) != (ex.config.lr_inference, ex.config.lr_generative):
        ex.set_learning_rates(lr_phi, lr_theta)
    if k != ex.config.iwae_k:
        ex.set_iwae_k(k)

    b = st.columns([1, 1, 1, 1.5, 1, 1, 1])
    pressed = {
        "e_step": b[0].button("E-step × N", key="watch_e", help="approximate E-step: update φ only"),
        "m_step": b[1].button("M-step × N", key="watch_m", help="approximate M-step: update θ only"),
        "joint": b[2].button("Joint × N", key="watch_joint", help="plain AEVB: update θ and φ together"),
    }
    schedule = b[3].button("Schedule E, M, E, M × 250", key="watch_schedule")
    reset = b[5].button("↺ Reset", key="watch_reset")
    export = b[6].button(
        "💾 Export", key="watch_export", help="save as a run: it appears in the VAE page's picker"
    )

    was_playing = state.watch_playing
    if reset:
        message = new_experiment(ex.config)
        if message:
            st.error(message)
            return
        ex = state.watch
    for phase, hit in pressed.items():
        if hit:
            ex.enqueue(phase, int(n_steps))
    if schedule:
        ex.enqueue_schedule(EM_SCHEDULE)
    queued_now = any(pressed.values()) or schedule
    if queued_now:
        state.watch_play_toggle, state.watch_autoplay = True, False
    # Play is a toggle, not a button: its value is state, so a click survives the frames' reruns (a button's
    # one-shot trigger could be consumed by an interrupted frame and lost)
    playing = b[4].toggle(
        "▶ Play",
        key="watch_play_toggle",
        help="stream frames; when nothing is queued, it runs the phase chosen below",
    )
    if playing and not was_playing and not queued_now:
        if time.monotonic() - state.get("watch_stopped_at", -1e9) < STALE_PLAY_S:
            # a rerun requested by the frame timer just before the run stopped itself still carries the
            # toggle's old value: not a user's click, so it must not start an autoplay
            playing, state.watch_stop_pending = False, True
        else:
            state.watch_autoplay = ex.queued_steps == 0
    state.watch_playing = playing

    frame_start = time.perf_counter()
    if state.watch_playing:
        if state.watch_autoplay and ex.queued_steps == 0:
            ex.enqueue(state.get("watch_autoplay_phase", "joint"), per_frame)
        ex.frame(per_frame, time_budget_s=FRAME_BUDGET_S)
        if ex.error or (ex.queued_steps == 0 and not state.watch_autoplay):
            state.watch_playing = False
            state.watch_stop_pending = True  # the toggle is drawn already: switched off on the next run
            state.watch_stopped_at = time.monotonic()
        stamps = [*state.get("watch_stamps", [])[-9:], time.time()]
        state.watch_stamps = stamps
    else:
        state.watch_stamps = []

    st.radio(
        "▶ Play runs, when nothing is queued:",
        list(PHASE_LABELS),
        format_func=PHASE_LABELS.get,
        horizontal=True,
        key="watch_autoplay_phase",
    )
    notes = st.container()  # fixed slot: conditional messages do not shift the charts below
    if ex.error:
        notes.error(ex.error)
    if export:
        try:
            path = ex.export(runs_root())
        except (WatchError, OSError) as err:
            notes.error(f"Not exported: {err}")
        else:
            notes.success(
                f"Exported as run `{path.parent.name}`: pick it in the **VAE latent space** page's model "
                f"picker (marked 🏋️). Files in `{path.parent}`."
            )

    f = ex.latest
    m = f.metrics
    stamps = state.get("watch_stamps", [])
    fps = (
        (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) >= 3 and stamps[-1] > stamps[0] else None
    )
    cols = st.columns(7)
    cols[0].metric("Step", f"{ex.steps:,}", help=f"{ex.queued_steps:,} steps queued")
    cols[1].metric("ELBO", f"{m.elbo:.1f}", help="validation images, nats per image")
    cols[2].metric(
        f"IWAE bound (k={m.k})", f"{m.iwae:.1f}", help="a lower bound on log p(x), tighter than the ELBO"
    )
    cols[3].metric(
        "Gap estimate", f"{m.gap:.2f}", help="IWAE − ELBO: a lower estimate of KL(q(z|x) ‖ p(z|x))"
    )
    cols[4].metric("Reconstruction", f"{m.reconstruction:.1f}", help="E_q[log p(x|z)], nats per image")
    cols[5].metric("KL(q ‖ p(z))", f"{m.kl:.2f}", help="nats per image")
    cols[6].metric(
        "Frames / s",
        "–" if fps is None else f"{fps:.1f}",
        help=f"while playing; this frame: {f.steps_run} steps in {f.seconds * 1000:.0f} ms of computation",
    )
    queue_note = f"{ex.queued_steps:,} steps queued" if ex.queued_steps else "Nothing queued."
    if ex.queued_steps and not state.watch_playing:
        queue_note += " (paused: ▶ Play goes on)"
    st.caption(queue_note)

    region = ex.map_region(state.get("watch_region"))
    state.watch_region = region
    if not state.watch_playing:
        handle_map_selection(ex, region)
    z_uv = state.get("watch_z")
    left, right = st.columns([1, 1.25])
    with left:
        L = ex.config.latent_dim
        axes = ("z1", "z2") if L == 2 else ("PC 1", "PC 2") if L > 2 else ("z1", "–")
        fig = latent_map_figure(
            f.coords,
            ex.data.y_map.numpy(),
            region=region,
            marker=z_uv,
            grid=None if state.watch_playing else click_grid(region, GRID_CLICK_N),
            axis_titles=axes,
            height=430,
        )
        fig.update_layout(uirevision="watch-map", dragmode="select")
        st.plotly_chart(
            fig,
            key="watch_map",
            on_select="rerun",
            selection_mode=("points", "box"),
            width="stretch",
            config={"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d"]},
        )
        where = (
            "the latent space itself"
            if L == 2
            else f"the plane of the first two principal components ({f.explained[0]:.0%} + "
            f"{f.explained[1]:.0%} of the variance), turned to match the previous frame so it does not flip"
            if L > 2
            else "the single latent dimension"
        )
        st.caption(
            f"Posterior means of {len(f.coords)} validation images, coloured by digit, on {where}. "
            + (
                "Pause, then drag a box on the map to decode its centre and see its manifold."
                if state.watch_playing
                else "Drag a box on the map: its centre is decoded (black cross) and the manifold shows the "
                "box. (This map is plotly in box-select mode; the latent pad's continuous drag is not used "
                "here yet.)"
            )
        )
    with right:
        h = ex.history
        st.plotly_chart(
            bound_curves(h.step, h.elbo, h.iwae, h.segments, m.k), key="watch_curves", width="stretch"
        )

    left, mid, right = st.columns([1, 0.8, 1.25])
    with left:
        zoom = state.get("watch_zoom")
        manifold_region = zoom or region
        st.image(
            png_bytes(ex.manifold(manifold_region, MANIFOLD_N)),
            caption=("the dragged box" if zoom else "the map region")
            + f": decodings E[x|z] on a {MANIFOLD_N} × {MANIFOLD_N} grid",
            width="stretch",
        )
        if zoom and st.button("Manifold of the whole map", key="watch_unzoom"):
            state.watch_zoom = None
            st.rerun(scope="fragment")
    with mid:
        st.image(
            png_bytes(ex.reconstructions(8), 2),
            caption="validation images (top) and reconstructions E[x|z = μ(x)] (bottom)",
            width="stretch",
        )
        if z_uv is not None:
            z = f.plane_to_z(np.asarray(z_uv))
            st.image(
                png_bytes(ex.decode_means(z)[0], 6),
                caption=f"decoded at ({z_uv[0]:.2f}, {z_uv[1]:.2f})",
                width=168,
            )
        else:
            st.caption("Pause and drag a box on the map to decode its centre.")
    with right:
        st.plotly_chart(
            terms_curves(h.step, h.reconstruction, h.kl, h.segments), key="watch_terms", width="stretch"
        )
        st.plotly_chart(kl_per_dimension(m.kl_per_dim), key="watch_kl", width="stretch")
    st.markdown(reading(ex))
    state.watch_server_ms = (time.perf_counter() - frame_start) * 1000

    if state.watch_playing != was_playing or state.get("watch_stop_pending"):
        st.rerun()  # start or stop the timer below


def live() -> None:
    with st.container(key="watch_live"):
        player()


st.fragment(live, run_every=FRAME_SECONDS if st.session_state.watch_playing else None)()
