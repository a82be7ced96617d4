"""Watch it learn: a small VAE trained live in this browser session, by approximate E-steps (phi only),
M-steps (theta only) or joint AEVB steps, with the latent map forming and the ELBO / IWAE-bound gap made
visible (tutorial sections 3-5).

State per browser session: one ``WatchExperiment`` in ``st.session_state`` and the shared player
(``views/components/player.py``). The controls are one fragment without a timer (a frame never re-sends
them); the live part is the player's frame fragment. While playing, the experiment's own background thread
takes the steps (the queued ones, or with nothing queued steps of the phase chosen for ▶ Play) and each frame
collects the parameters once the thread has taken the chosen number of steps more (or a phase ended),
evaluates them and redraws: training and drawing overlap on two cores. The charts are canvases updated in
place (``views/components/live_chart``); the map is the latent pad (``views/components/latent_pad``) in
both states, one square shape and size: a picture redrawn by every frame while playing, and while paused the
pad a drag decodes on. All computation is in ``explorer_core.explore.watch``; the chart specs are in
``explorer_core.figures.watch``.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from functools import partial

import numpy as np
import streamlit as st

from explorer_core.access import class_mode
from explorer_core.compute_budget import ComputeBusyError, session_memory_limit
from explorer_core.data import MNISTUnavailable
from explorer_core.evaluation.metrics import ACTIVE_UNIT_VARIANCE
from explorer_core.explore.watch import (
    EM_SCHEDULE,
    IWAE_KS,
    MAP_GIF_FRAMES,
    WatchConfig,
    WatchError,
    WatchExperiment,
    config_from_query,
    config_query,
    load_watch_data,
)
from explorer_core.explore.watch_budget import (
    PacedWatchExperiment,
    memory_refusal,
    watch_memory,
    with_iwae_k,
)
from explorer_core.export import cached_latent_map_gif, export_name, history_snapshot, watch_curves_csv
from explorer_core.figures.common import DIGIT_COLOURS
from explorer_core.figures.watch import bound_chart, kl_dims_chart, terms_chart
from explorer_core.imaging import png_bytes
from explorer_core.jobs import runs_root
from explorer_core.memory_budget import ServerFullError, server_memory
from views._models import RUN_MARK
from views.components import latent_pad as lp
from views.components import lecture
from views.components import pad_fragment as pf
from views.components import page_state as ps
from views.components import posterior_panel as pp
from views.components.compute_slot import SlotGate, heavy_work, one_off_runner
from views.components.images import png_download
from views.components.live_chart import live_chart
from views.components.page_state import Region, WatchState, operator
from views.components.phase_controls import autoplay_radio, step_buttons
from views.components.player import Player

LEARNING_RATES = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
#: the β (KL weight) choices of the training objective reconstruction - β KL (1: the ELBO)
KL_WEIGHTS = [0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
HIDDEN_CHOICES = {"128": (128,), "256-256": (256, 256), "500-500": (500, 500), "128-128": (128, 128)}
TRAIN_SIZES = [1_000, 2_000, 5_000, 10_000, 20_000, 50_000]
FRAME_SECONDS = 0.18  # the timer between frames (5.5 a second at most): the CPU left goes to the steps
COLLECT_TIMEOUT_S = 1.0  # a frame waits at most this long for the training thread's parameters
STEPS_PER_FRAME = [1, 5, 10, 20, 50, 100]
MANIFOLD_N = 12
#: the map's column beside the curves' (1): its square canvas is about 300 px at 1280x720 in lecture mode
MAP_COLUMN = 1.25
player = Player("watch", FRAME_SECONDS)
gate = SlotGate("watch", player)  # the server's compute budget (explorer_core.compute_budget)
state = st.session_state
work = ps.session_work()  # holds the experiment; let go of when the tab is gone (explorer_core.session_work)


def watch_state() -> WatchState:
    """This session's :class:`views.components.page_state.WatchState`."""
    return ps.page_state("watch", WatchState)


@st.cache_resource(show_spinner="Loading MNIST…", max_entries=4)
def cached_data(n_train: int, likelihood: str, n_eval: int, n_map: int):
    """The preprocessed images of a configuration, shared (read-only) by every session."""
    return load_watch_data(WatchConfig(n_train=n_train, likelihood=likelihood, n_eval=n_eval, n_map=n_map))


def new_experiment(config: WatchConfig, in_callback: bool = False) -> str | None:
    """Start a fresh run in this session (stopping the old one's thread); an error message instead when it
    cannot start, also when its memory estimate is above what a session may use (checked first), when the
    server's memory budget cannot hold it, or when no compute slot came for its build (a visitor's build,
    a few seconds of CPU for a large configuration, waits in the compute budget's line: heavy one-off work,
    :func:`views.components.compute_slot.heavy_work`; ``in_callback``: called from a widget's callback,
    which shows no place in line)."""
    refusal = memory_refusal(config, session_memory_limit())
    if refusal:
        return f"Cannot start this run: {refusal}"
    old = work.get("watch")
    if isinstance(old, WatchExperiment):
        old.stop()
    player.stop()
    gate.release()
    # the new run reserves its estimate from the server's budget before anything is built (issue 34), the
    # old run's share counted as free (it goes when the new one is stored); a full server builds nothing

    def build() -> PacedWatchExperiment:  # a few seconds of CPU for a large configuration: in the line
        with heavy_work("this run", show_place=not in_callback):
            data = cached_data(config.n_train, config.likelihood, config.n_eval, config.n_map)
            return PacedWatchExperiment(config, data)

    try:
        bytes_needed = watch_memory(config).total_bytes
        work.build("watch", bytes_needed, "this Watch run", build, server_memory(), operator())
    except ServerFullError as err:
        return f"Cannot start this run: {err}"
    except ComputeBusyError as err:
        return f"Cannot start this run now. {err}"
    except MNISTUnavailable as err:
        return f"MNIST is needed for this page. {err}"
    except (WatchError, ValueError) as err:
        return f"Cannot start this run: {err}"
    except RuntimeError as err:  # e.g. out of memory for an absurd model size
        return f"Cannot start this run ({type(err).__name__}): {err}"
    ps.forget_page_state("watch")  # z at the origin, no zoom, no frame shown yet
    return None


st.title(":material/visibility: Watch it learn: a VAE trained live")
INTRO = (
    "AEVB is approximate EM (tutorial sections 3-4). An **E-step** updates only the inference parameters φ "
    "(the encoder q(z|x)): log p(x) cannot move, so whatever the ELBO gains, the gap KL(q(z|x) ‖ p(z|x)) "
    "loses. An **M-step** updates only the generative parameters θ (the decoder p(x|z)): the ELBO rises, "
    "usually lifting log p(x) with it, and the true posterior moves, so the gap can narrow or widen. "
    "log p(x) of a deep model is not tractable, so the curves show, in its place, the tightest lower bound "
    "on it we have, the **IWAE bound** with k importance samples (Burda et al. 2016: ELBO ≤ IWAE ≤ log p(x) "
    "in expectation), and the difference IWAE − ELBO as the gap estimate. Everything is measured on fixed "
    "validation images with **fixed noise**, so a curve moves only when the parameters do."
)
IWAE_NOTE = (
    "The IWAE bound is itself a lower bound on log p(x), so the plotted gap is a **lower estimate** of the "
    "true gap. Its proposal is q(z|x): in an E-phase it can rise a little although log p(x) cannot move, "
    "because the proposal improves."
)
if lecture.lecture_mode():  # folded away with the page's prose
    lecture.intro(f"{INTRO}\n\n{IWAE_NOTE}")
else:
    lecture.intro(INTRO)
    st.info(IWAE_NOTE, icon=":material/info:")

# while playing, every frame reruns the fragment: keep its elements fully drawn instead of Streamlit's
# greyed-out "stale" look between frames (the charts update in place)
st.markdown(
    "<style>.st-key-watch_live [data-stale='true'] {opacity: 1 !important; transition: none !important;}"
    "</style>",
    unsafe_allow_html=True,
)

#: what the page's widgets offer: a link's value outside these is ignored
LINK_CHOICES = {
    "hidden": tuple(HIDDEN_CHOICES.values()),
    "n_train": TRAIN_SIZES,
    "lr_inference": LEARNING_RATES,
    "lr_generative": LEARNING_RATES,
    "iwae_k": IWAE_KS,
}

if "watch" not in work:
    # the first run of a session starts the configuration of its link (?L=2&hidden=256-256&k=16&beta=2 ...)
    linked = config_from_query(st.query_params, choices=LINK_CHOICES)
    message = new_experiment(linked)
    if message and linked != WatchConfig():
        st.warning(
            f"The link's configuration did not start ({message}); the default one did.",
            icon=":material/warning:",
        )
        message = new_experiment(WatchConfig())
    if message:
        st.error(message, icon=":material/block:")
        st.stop()
    try:
        linked_beta = float(st.query_params.get("beta", "1"))
    except ValueError:
        linked_beta = 1.0
    if linked_beta in KL_WEIGHTS:
        state.watch_beta = linked_beta

with st.expander("Model and data (a new configuration starts a new run)", expanded=False):
    cfg = work["watch"].config
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
        "e_step": "Last phase: **E-step**. θ is frozen, so log p(x) cannot move and whatever the ELBO gains "
        "the true gap loses; φ moves q(z|x). The IWAE bound, a lower bound on log p(x), can move too: its "
        "proposal is q(z|x).",
        "m_step": "Last phase: **M-step**. φ is frozen and θ is trained on the ELBO, so log p(x) moves, and "
        "with it the IWAE bound (a lower bound on log p(x), not log p(x) itself); the true posterior moves "
        "against the fixed q(z|x), so the gap can narrow or widen: the gap estimate's curve shows which.",
        "joint": "Last phase: **joint AEVB**. φ and θ are trained on the ELBO at once: q(z|x), p(z|x) and "
        "log p(x) all move.",
    }[last]
    return (
        f"{doing}\n\n"
        f"* ELBO = reconstruction − KL = {m.reconstruction:.1f} − {m.kl:.2f} = **{m.elbo:.1f}** nats per "
        f"image; IWAE bound (k = {m.k}) **{m.iwae:.1f}**; gap estimate **{m.gap:.2f}** nats.\n"
        f"* {m.active_units} of {len(m.kl_per_dim)} latent dimensions are active: their posterior mean "
        f"varies across the validation images (variance above {ACTIVE_UNIT_VARIANCE:g}).\n"
        "* Shaded grey: E-phases; amber: M-phases; joint steps are not shaded."
    )


# ------------------------------------------------------------------------------------------ callbacks
# Every control that starts, stops or queues acts in an on_click callback (run before the next run draws
# anything), so a click is never lost to an interrupted frame, and only a click starts the player.


def _queue_and_play(enqueue: Callable[[WatchExperiment], None]) -> None:
    """``enqueue(experiment)`` and play the queue (the thread leaves ▶ Play's own phase: a queue runs
    unmixed); a refusal is shown as a note instead."""
    ex: WatchExperiment = work["watch"]
    try:
        enqueue(ex)
    except WatchError as err:
        state.watch_note = f"Not queued: {err}"
        return
    if ex.running:
        ex.start(autoplay=None)
    player.start(free=False)


def queue_steps(phase: str) -> None:
    """E-step × N, M-step × N, Joint × N: queue N steps and play them."""
    _queue_and_play(lambda ex: ex.enqueue(phase, int(state.get("watch_n", 250))))


def queue_schedule() -> None:
    """The schedule E, M, E, M × 250: queue it and play it."""
    _queue_and_play(lambda ex: ex.enqueue_schedule(EM_SCHEDULE))


def on_play() -> bool:
    """▶ Play: run the queue, or with nothing queued steps of the chosen phase until paused."""
    return work["watch"].queued_steps == 0


def on_pause() -> None:
    """Pause: stop the training thread (its last steps are shown by the next frame) and give the compute
    slot back."""
    work["watch"].stop()
    gate.release()


def on_k_change() -> None:
    """The k slider (a callback): a k whose evaluation would need more memory than a session may use is
    refused, with a note, and the slider goes back."""
    ex: WatchExperiment = work["watch"]
    k = state.get("watch_k", ex.config.iwae_k)
    refusal = memory_refusal(with_iwae_k(ex.config, k), session_memory_limit())
    if refusal:
        state.watch_k = ex.config.iwae_k
        state.watch_note = f"k not changed: {refusal}"


def export_run() -> None:
    """Export (a callback): save the run where the VAE page's picker finds it. In class mode it writes
    to the server's disk, so it needs the operator's passphrase (given on the Training page); a visitor gets
    a note instead. The server's folder is not shown in class mode."""
    if not operator():
        state.watch_note = (
            "Exporting writes to the server's disk: in class mode it needs the operator's passphrase "
            "(Training page)."
        )
        return
    try:
        path = work["watch"].export(runs_root())
    except (WatchError, OSError) as err:
        state.watch_note = f"Not exported: {err}"
        return
    where = "" if class_mode() else f" Files in `{path.parent}`."
    state.watch_exported = (
        f"Exported as run `{path.parent.name}`: pick it in the **VAE latent space** page's model picker "
        f"(marked {RUN_MARK}).{where}"
    )


def reset() -> None:
    """↺ Reset: a fresh run with the same configuration."""
    message = new_experiment(work["watch"].config, in_callback=True)
    if message:
        state.watch_note = message


def controls() -> None:
    """The controls: a fragment without a timer (a frame of Play never re-sends them)."""
    ex: WatchExperiment = work["watch"]
    settings = lecture.folded("Settings: learning rates, k, steps per frame, N, β")
    with settings:
        c = st.columns([1, 1, 1, 1, 1, 1])
    beta = c[5].select_slider(
        "β (KL weight)",
        KL_WEIGHTS,
        1.0,
        key="watch_beta",
        help="Training ascends reconstruction − β·KL: β = 1 is the ELBO; β > 1 pushes latent dimensions to "
        "the prior (posterior collapse: watch 'Active units'); β < 1, then back to 1, is a KL warm-up. The "
        "curves always show the true ELBO (β = 1).",
    )
    if beta != ex.kl_weight:
        ex.set_kl_weight(beta)
    lr_phi = c[0].select_slider(
        "Learning rate φ (E)", LEARNING_RATES, ex.config.lr_inference, key="watch_lr_phi"
    )
    lr_theta = c[1].select_slider(
        "Learning rate θ (M)", LEARNING_RATES, ex.config.lr_generative, key="watch_lr_theta"
    )
    k = c[2].select_slider(
        "k (IWAE samples)",
        IWAE_KS,
        ex.config.iwae_k if ex.config.iwae_k in IWAE_KS else 16,
        key="watch_k",
        on_change=on_k_change,
        help="importance samples per validation image in the IWAE bound; more: tighter, slower frames",
    )
    c[3].select_slider(
        "Steps per frame (at least)",
        STEPS_PER_FRAME,
        20,
        key="watch_frame",
        help="a frame shows the model once the training thread has taken this many more steps (or a phase "
        f"ended, or {COLLECT_TIMEOUT_S:g} s passed): more steps per frame leave more of the CPU to training, "
        "fewer give smoother frames",
    )
    c[4].number_input("N steps", 1, 100_000, 250, key="watch_n")
    if (lr_phi, lr_theta) != (ex.config.lr_inference, ex.config.lr_generative):
        ex.set_learning_rates(lr_phi, lr_theta)
    if k != ex.config.iwae_k and memory_refusal(with_iwae_k(ex.config, k), session_memory_limit()) is None:
        ex.set_iwae_k(k)

    b = st.columns([1, 1, 1.25, 1.5, 1, 1, 1])
    step_buttons(b[:3], "watch", queue_steps)
    b[3].button(
        lecture.label("E/M schedule", "E/M ×250"),
        key="watch_schedule",
        on_click=queue_schedule,
        help="The tutorial's pattern: an E-phase, an M-phase, then E, M alternating for 250 steps each.",
    )
    player.button(
        b[4],
        on_play=on_play,
        on_pause=on_pause,
        help="run the queue; with nothing queued, steps of the phase chosen below until paused",
    )
    b[5].button(lecture.label("↺ Reset", "↺"), key="watch_reset", on_click=reset, help="a new run")
    may_export = operator()
    b[6].button(
        **lecture.icon_button("Export", ":material/save:"),
        key="watch_export",
        on_click=export_run,
        disabled=not may_export,
        help="save as a run: it appears in the VAE page's picker"
        + ("" if may_export else " (in class mode: needs the operator's passphrase, Training page)"),
    )
    with settings:  # lecture mode: with the settings
        autoplay_radio("watch")
    ps.url_out({**config_query(ex.config), "beta": f"{ex.kl_weight:g}"})  # the run as a link
    note = state.pop("watch_note", None)
    if note:
        st.error(note)
    exported = state.pop("watch_exported", None)
    if exported:
        st.success(exported)
    player.sync()


# ------------------------------------------------------------------------------------------ the map


def decode_at(ex_ref: weakref.ref, f, uv: np.ndarray) -> tuple[bytes, None]:
    """The pad's server decoding of (u, v) on frame ``f``'s plane by the experiment ``ex_ref`` refers to (a
    blank image once it is gone)."""
    ex = ex_ref()
    image = ex.decode_means(f.plane_to_z(uv))[0] if ex is not None else np.zeros((28, 28), np.float32)
    return png_bytes(image), None


#: the map's canvas: as tall as wide (the map region is square), at most this tall (CSS px)
MAP_MAX_PX = 560


def latent_map(
    ex: WatchExperiment, region: Region, axes: tuple[str, str], playing: bool, n_frame: int
) -> None:
    """The map (inside the frame's fragment): in both states the latent pad's element, a square canvas (the
    region is square, drawn at the same scale on both axes), so that Play and Pause show one shape and
    size: the points of this evaluation, z (the cross) and its decoding beside it, the manifold's box.

    Paused (:func:`views.components.pad_fragment.show_pad`, key ``watch_pad``): a drag moves z (decoded in the
    browser), a click on a point moves z to its encoding, a wheel notch zooms the manifold's box around the
    pointer. Playing (:func:`views.components.pad_fragment.show_static_pad`, key ``watch_map``): a picture
    only, redrawn by every frame, z decoded by the server with the parameters of the frame."""
    f = ex.latest
    page = watch_state()
    decoder = None
    if not playing:
        # paused, the parameters are those of the last frame: the browser decodes a drag itself (VAE page).
        # Its weights stay in the session's work, let go of with the experiment when the tab is gone
        made = work.get("watch_decoder")
        if made is None or made[0] is not f:
            made = work["watch_decoder"] = (f, lp.browser_decoder(ex.view_model, f.centre, f.basis))
        decoder = made[1]
    coords, data = f.coords, ex.data
    # the pad's fragment keeps these callables: they hold the experiment weakly, so that the server can let
    # go of it when the tab is gone (explorer_core.session_work)
    spec = pf.PadSpec(
        prefix="watch",
        points=pf.PadPoints(
            f"watch:{id(ex)}:{len(ex.history)}",
            lambda: lp.points_payload(coords, data.y_map.numpy()),
            len(coords),
        ),
        ranges=region,
        region=region,
        decode=partial(decode_at, weakref.ref(ex), f),
        decoder=decoder,
        view="mean",
        zoom="box",
        point_uv=lambda i: coords[i],
        picks_rerun_app=False,
        title="E[x|z]",
        caption_format="decoded at ({u}, {v})",
        axes=axes,
        hint="playing: pause to drag z, pick a point or zoom the manifold"
        if playing
        else "drag: decode z · click a point: its encoding · wheel: zoom the manifold",
        overlays={"lines": pf.box_lines(page.pad.box), "marks": []},
        height_px=MAP_MAX_PX,
        equal_scale=True,
        hint_lines=2,  # the two hints take turns: what is under the map stays in place
    )
    if playing:
        pf.show_static_pad(spec, "watch_map", n_frame)
    else:
        pf.show_pad(spec)


# ------------------------------------------------------------------------------------------ a frame


def frame(playing: bool) -> bool:
    """One frame: while playing, collect the training thread's parameters and evaluate them; then draw the
    metrics, the map, the curves, the manifold, the reconstructions and the reading. Returns whether Play
    goes on (not after an error, nor when the queue is done and nothing runs)."""
    start = time.perf_counter()
    ex: WatchExperiment = work["watch"]
    # the evaluation and the drawing are Python that holds the GIL a gesture's run needs: while playing, they
    # give way to the pages answering gestures between their parts
    give_way = gate.give_way(playing)
    go_on = True
    if playing:
        slot_ok = True
        if ex.error is None and (ex.queued_steps or player.free or ex.running):
            # the trainer runs only with a compute slot (its memory counted); without one, the visitor
            # waits in line (gate.waiting_panel) and Play starts by itself on their turn
            ticket = gate.acquire(memory_bytes=watch_memory(ex.config).total_bytes)
            if ticket.granted:
                holder, budget = gate.holder, gate.budget
                ex.pacer = None if ticket.bypass else (lambda: budget.pace(holder))
                ex.start(autoplay=state.get("watch_autoplay_phase", "joint") if player.free else None)
            else:
                slot_ok = False
                ex.stop()
                gate.wait(ticket)
        # the wait for the trainer's parameters is most of a frame: gestures that began meanwhile go first,
        # before the evaluation, between its parts and before the drawing
        new = ex.collect(
            COLLECT_TIMEOUT_S if slot_ok else 0.0,
            min_steps=int(state.get("watch_frame", 20)),
            give_way=give_way,
        )
        go_on = slot_ok and ex.error is None and (ex.running or new is not None)
        if slot_ok:
            gate.keep_playing(go_on)
        give_way()
    else:
        ex.collect(0.0)  # what the thread handed over when it stopped
    collect_ms = (time.perf_counter() - start) * 1e3

    f = ex.latest
    m = f.metrics
    page = watch_state()
    steps_this_frame = f.step - page.shown_step
    page.shown_step = f.step
    errors = st.container()  # fixed slot: a message does not shift the charts below
    if ex.error:
        errors.error(ex.error)

    def metrics() -> None:
        fps = player.fps()
        # two rows of four, the bounds above their terms: eight in a row (89 px each at 1280x720 in lecture
        # mode, 104 px at 1400) cut "IWAE bound (k=16)", "Gap estimate" and "Reconstruction"
        cols = [*st.columns(4), *st.columns(4)]
        cols[0].metric("Step", f"{f.step:,}", help=f"{ex.queued_steps:,} steps queued")
        cols[1].metric("ELBO", f"{m.elbo:.1f}", help="validation images, nats per image")
        cols[2].metric(
            f"IWAE bound (k={m.k})",
            f"{m.iwae:.1f}",
            help="a lower bound on log p(x), not log p(x) itself; at least the ELBO in expectation",
        )
        cols[3].metric(
            "Gap estimate", f"{m.gap:.2f}", help="IWAE − ELBO: a lower estimate of KL(q(z|x) ‖ p(z|x))"
        )
        cols[4].metric("Reconstruction", f"{m.reconstruction:.1f}", help="E_q[log p(x|z)], nats per image")
        cols[5].metric("KL(q ‖ p(z))", f"{m.kl:.2f}", help="nats per image")
        cols[6].metric(
            "Active units",
            f"{m.active_units} / {len(m.kl_per_dim)}",
            help="latent dimensions whose posterior mean varies across the validation images "
            f"(Var_x E_q[z_d] > {ACTIVE_UNIT_VARIANCE:g}, Burda et al. 2016)"
            + (f"; training with β = {ex.kl_weight:g}" if ex.kl_weight != 1 else ""),
        )
        cols[7].metric(
            "Frames / s",
            "–" if fps is None or not playing else f"{fps:.1f}",
            help=f"while playing; this frame: {steps_this_frame} steps since the last one, evaluated in "
            f"{f.seconds * 1e3:.0f} ms (collecting {collect_ms:.0f} ms)",
        )
        idle_note = "Playing until paused." if playing else "Nothing queued."
        queue_note = f"{ex.queued_steps:,} steps queued" if ex.queued_steps else idle_note
        if ex.queued_steps and not playing:
            queue_note += " (paused: ▶ Play goes on)"
        st.caption(queue_note)

    lecture_on = lecture.lecture_mode()
    if not lecture_on:  # in lecture mode the map and the curves come first, the numbers under them
        metrics()
        give_way()

    region = page.region = ex.map_region(page.region)
    zoom = page.pad.box
    n_frame = len(ex.history)
    L = ex.config.latent_dim
    axes = ("z1", "z2") if L == 2 else ("PC 1", "PC 2") if L > 2 else ("z1", "–")
    left, right = st.columns([MAP_COLUMN, 1])
    with left:
        latent_map(ex, region, axes, playing, n_frame)
        where = (
            "the latent space itself"
            if L == 2
            else f"the plane of the first two principal components ({f.explained[0]:.0%} + "
            f"{f.explained[1]:.0%} of the variance), turned to match the previous frame so it does not flip"
            if L > 2
            else "the single latent dimension"
        )
        st.download_button(
            "The map forming (GIF)" if not playing else "The map forming (GIF): pause first",
            icon=":material/download:",
            # built when clicked: the last frames' maps as the experiment kept them
            # (kept by its frames' content for the whole server: a second request is not encoded again)
            data=b""
            if playing
            else partial(
                cached_latent_map_gif, ex.recent_maps(), ex.map_labels, DIGIT_COLOURS, run=one_off_runner()
            ),
            file_name=export_name("watch", "map-forming", "gif", step=f.step),
            mime="image/gif",
            on_click="ignore",
            key="watch_map_gif",
            disabled=playing,
            help=f"The latent map over the last {MAP_GIF_FRAMES} frames, one GIF frame each (for a slide).",
        )
        st.caption(
            f"Posterior means of {len(f.coords)} validation images, coloured by digit, on {where}. "
            + (
                "Pause, then drag on the map to decode z."
                if playing
                else "Drag on the map: the image beside it decodes z (as on the VAE page); a wheel notch "
                "zooms the manifold below."
            )
        )
    give_way()
    with right:
        live_chart(
            "watch_curves",
            bound_chart(ex.history.step, ex.history.elbo, ex.history.iwae, ex.segments_shown(), m.k),
            n_frame,
        )
    if lecture_on:
        metrics()
    give_way()
    h = ex.history
    left, mid, right = st.columns([1, 0.8, 1.25])
    with left:
        manifold_png = png_bytes(ex.manifold(zoom or region, MANIFOLD_N))
        st.image(
            manifold_png,
            caption=("the zoomed box" if zoom else "the map region")
            + f": decodings E[x|z] on a {MANIFOLD_N} × {MANIFOLD_N} grid",
            width="stretch",
        )
        if not playing:
            name = export_name("watch", "manifold", "png", step=f.step)
            png_download(manifold_png, name, "watch_manifold_png")
    give_way()
    with mid:
        st.image(
            png_bytes(ex.reconstructions(8), 2),
            caption="validation images (top) and reconstructions E[x|z = μ(x)] (bottom)",
            width="stretch",
        )
    with right:
        give_way()
        live_chart("watch_terms", terms_chart(h.step, h.reconstruction, h.kl, ex.segments_shown()), n_frame)
        live_chart("watch_kl", kl_dims_chart(m.kl_per_dim, m.active_dims), n_frame)
        # the history grows in the trainer's thread while playing: exported only while paused (a snapshot)
        st.download_button(
            "The curves (CSV)" if not playing else "The curves (CSV): pause first",
            icon=":material/download:",
            # built when clicked, not on every rerun; nothing to copy while playing (the button is disabled)
            data=partial(watch_curves_csv, history_snapshot(h)) if not playing else b"",
            file_name=export_name("watch", "bounds-terms", "csv", step=h.step[-1] if h.step else 0),
            mime="text/csv",
            on_click="ignore",
            key="watch_csv",
            disabled=playing,
            help="Every evaluation: step, phase, ELBO, IWAE bound, gap, reconstruction, KL (nats per image).",
        )
    st.markdown(reading(ex))
    page.server_ms = (time.perf_counter() - start) * 1e3
    return go_on


def true_posterior(ex: WatchExperiment) -> None:
    """For a 2-D model while paused: the true posterior p(z|x) of one validation image beside q(z|x), the
    evidence by quadrature, the IWAE bounds and the per-image E-step with the gap split, for the model as it
    is at this step (:mod:`views.components.posterior_panel`, as on the VAE page)."""
    n_eval = len(ex.data.x_eval)
    pp.section_heading()
    index = st.columns([1, 3])[0].number_input(
        f"Validation image (0–{n_eval - 1})", 0, n_eval - 1, 0, key="watch_post_index"
    )
    x = ex.data.x_eval[int(index)].to(ex.device)
    step = ex.latest.step
    model_key = f"watch:{id(ex)}:{step}"  # the model changes with every step: one cache entry per step shown
    picture = pp.picture_for("watch", ex.view_model, model_key, x, None) if pp.shown("watch", 2) else None
    name = f"validation image {int(index)} (digit {int(ex.data.y_eval[int(index)])}) after step {step:,}"
    pp.posterior_section(
        "watch", ex.view_model, model_key, x, None, name, 2, picture, on_pad=False, heading=False
    )


st.fragment(controls)()
gate.waiting_panel()
player.frames(gate.behind_gestures(frame))


def posterior_or_hint() -> None:
    """The true posterior for a paused 2-D model, a hint while it plays (a function, so that no name of the
    page's script holds the experiment: the server must be able to let go of it,
    explorer_core.session_work)."""
    ex = work.get("watch")
    if ex is None or ex.config.latent_dim != 2:
        return
    if not player.running and not ex.running:
        true_posterior(ex)
    else:
        st.caption(
            ":material/pause: Pause to see the true posterior p(z|x) of a validation image beside q(z|x)."
        )


posterior_or_hint()
