"""Factor analysis (tutorial section 5.2): step through approximate E- and M-phases and watch the ELBO
close on the exact evidence.

State per browser session: one ``FAExperiment`` in ``st.session_state`` and the shared player
(``views/components/player.py``). The controls are a fragment without a timer; the metrics and charts are
the player's frame fragment, which reruns itself on a timer while playing and streams steps in (the 3-D
camera keeps still: the canvases are updated in place).
"""

import time
from functools import partial

import streamlit as st

from explorer_core.data import FA_PAPER_SEED, make_fa_dataset
from explorer_core.explore.fa import (
    MAX_SAMPLE_POINTS,
    PAPER_EM_SCHEDULE,
    FAExperiment,
    FATrainingConfig,
    clamp_int,
    describe_phase_change,
    elbo_samples_limit,
    last_phase_change,
    relation_words,
)
from explorer_core.export import export_name, fa_curves_csv, history_snapshot
from explorer_core.figures.common import DATA_COLOUR, MODEL_COLOUR
from explorer_core.figures.fa import fa_axis_ranges, fa_curves_chart, fa_ellipses_chart
from explorer_core.models.factor_analysis import POSTERIOR_FAMILIES
from explorer_core.url_state import int_in, one_of, read_query
from views.components import lecture
from views.components import page_state as ps
from views.components.compute_slot import SlotGate
from views.components.live_chart import live_chart
from views.components.phase_controls import autoplay_radio, step_buttons
from views.components.player import Player
from views.components.scatter3d import needs_static, point_set, scatter3d, scatter_data

POSTERIOR_LABELS = {
    "full": "full covariance",
    "diagonal": "diagonal",
    "fixed": "fixed σ = 0.1",
}
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0]
# Play: the fragment reruns every FRAME_SECONDS and runs queued steps for at most FRAME_BUDGET_S, so frames
# reach the screen several times a second (a step's cost with its exact test metrics: BENCHMARKS.md, FA)
FRAME_SECONDS = 0.15
FRAME_BUDGET_S = 0.1
CLICK_BUDGET_S = 0.4  # the frame of a step button: a short run is done at once
SCATTER_KEY = "fa_scatter"
#: lecture mode: the learning curves this tall (CSS px; 440 elsewhere), so that their x-axis and legend lie
#: on a projector's first screen (1280x720) at 100 %: at 440 the chart's bottom was at 779 px (issue 33)
LECTURE_CURVES_PX = 360
STEPS_PER_FRAME = [1, 5, 10, 25, 50, 100, 200, 500]
MAX_N_STEPS = 100_000  # the "N steps" field

player = Player("fa", FRAME_SECONDS)
gate = SlotGate("fa", player)  # the server's compute budget (explorer_core.compute_budget)
work = ps.session_work()  # holds the experiment; let go of when the tab is gone (explorer_core.session_work)


def new_experiment(dataset=None, **config) -> None:
    """Start a fresh run in this session (keeping the data set unless a new one is given)."""
    state = st.session_state
    dataset = dataset if dataset is not None else work["fa"].dataset
    config = FATrainingConfig(**{**(vars(work["fa"].config) if "fa" in work else {}), **config})
    limit = elbo_samples_limit(len(dataset.x_test))
    if config.n_elbo_samples > limit:  # a larger test set: K comes down to the bound on a step's cost
        config = FATrainingConfig(**{**vars(config), "n_elbo_samples": limit})
        state.fa_k = limit
    work["fa"] = FAExperiment(dataset, config)
    player.stop()
    gate.release()


def experiment_from_url() -> None:
    """A new session's first run, from the URL when it names one (``posterior``, ``lr``, ``batch``, ``seed``
    and ``points`` of the data set, the test ``point``): a lecturer's prepared link. A value out of range, or
    not one of the choices, is ignored."""
    q = read_query(
        st.query_params,
        {
            "seed": int_in(0, 2**31 - 1),
            "points": int_in(10, 20_000),
            "posterior": one_of(POSTERIOR_FAMILIES),
            "lr": one_of(LEARNING_RATES),
            "batch": int_in(1, 1000),
            "point": int_in(0, 20_000),
        },
    )
    seed, points = q.get("seed"), q.get("points")
    if seed is not None or points is not None:
        n = points if points is not None else 1000
        dataset = make_fa_dataset(seed if seed is not None else FA_PAPER_SEED, n, n)
    else:
        dataset = make_fa_dataset()
    config = {"posterior": q.get("posterior"), "lr": q.get("lr"), "batch_size": q.get("batch")}
    new_experiment(dataset, **{k: v for k, v in config.items() if v is not None})
    point = q.get("point")
    if point is not None and point < len(dataset.x_test):
        st.session_state.fa_point = point


def state_to_url() -> None:
    """The run's settings and the test point into the URL, so the view can be handed out as a link."""
    fa = work["fa"]
    ps.url_out(
        {
            "posterior": fa.config.posterior,
            "lr": f"{fa.config.lr:g}",
            "batch": fa.config.batch_size,
            "seed": fa.dataset.seed,
            "points": len(fa.dataset.x_test),
            "point": int(st.session_state.get("fa_point", 0)),
        }
    )


if "fa" not in work:
    experiment_from_url()

st.title(":material/square_foot: Factor analysis: E- and M-steps")
lecture.intro(
    "A 2-factor model of 3-D data, fitted with AEVB (tutorial section 5.2). An **E-step** updates only "
    "the inference parameters φ = (V, Σ) of q(z|x) = N(Vx, Σ): the ELBO closes on the evidence, which "
    "cannot move. An **M-step** updates only the generative parameters θ = (W, σ): the ELBO rises, "
    "usually lifting the evidence with it, and the exact posterior moves, so the gap can narrow or widen. "
    "Everything is measured on the test points after every step; for this model the "
    "evidence and the gap KL(q(z|x) ‖ p(z|x)) are exact."
)


def data_set_caption() -> str:
    """What the data set is (a function, so that no name of the page's script holds the experiment: the
    server must be able to let go of it, explorer_core.session_work)."""
    data = work["fa"].dataset
    return (
        ("The tutorial's data set" if data.is_paper_data else "A custom data set")
        + f": seed {data.seed}, {len(data.x_train)} train and {len(data.x_test)} "
        f"test points, noise × {data.noise_scale:g}, drawn from W = [[-0.5, -1], [-1, -1], [2, 0.5]], "
        "σ = (0.4, 0.2, 0.3)."
    )


with st.expander("Data set", expanded=False):
    st.caption(data_set_caption())
    with st.form("fa_data"):
        c1, c2, c3 = st.columns(3)
        seed = c1.number_input("Seed", 0, 2**31 - 1, FA_PAPER_SEED, key="fa_data_seed")
        n = c2.number_input("Points per split", 10, 20_000, 1000, step=100, key="fa_data_n")
        noise = c3.number_input("Noise scale", 0.05, 10.0, 1.0, step=0.25, key="fa_data_noise")
        if st.form_submit_button("Draw new data set"):
            # as typed in the browser: each value brought into its field's range
            seed = clamp_int(seed, 0, 2**31 - 1, FA_PAPER_SEED)
            n = clamp_int(n, 10, 20_000, 1000)
            noise = float(noise) if 0.05 <= float(noise) <= 10.0 else 1.0
            new_experiment(make_fa_dataset(seed, n, n, noise))
            st.toast("New data set drawn; the run starts again.")


def reading(fa: FAExperiment) -> str:
    """A few live sentences that say what the charts show now: what the latest phase did is computed from its
    measured changes (:func:`explorer_core.explore.fa.describe_phase_change`), not from what a phase
    usually does."""
    latest = fa.latest
    doing = describe_phase_change(last_phase_change(fa.history))
    return (
        f"{doing}\n\n"
        f"* exact ELBO = evidence − gap = {latest.evidence:.4f} − {latest.gap:.4f} = "
        f"**{latest.evidence - latest.gap:.4f}**; the AEVB estimate with K = {fa.config.n_elbo_samples} "
        f"reparameterised sample(s) per point reads {latest.elbo:.4f}.\n"
        f"* The evidence is {relation_words(latest.evidence, fa.mle_evidence)} the maximum-likelihood fit "
        f"(closed-form EM), and {relation_words(latest.evidence, fa.true_evidence)} the model that generated "
        "the data.\n"
        "* Left: q(z|x) (red, dashed) against the exact posterior p(z|x) (green) for the chosen test point; "
        "the two coincide when the gap is zero. Shaded grey: E-phases; amber: M-phases."
    )


def on_posterior_change() -> None:
    new_experiment(posterior=st.session_state.fa_posterior)
    st.session_state.fa_refresh = True
    st.toast("A new posterior family means a new run: started again.")


def scatter_panel(fa: FAExperiment, x_test, index: int) -> None:
    """Test data (sent once per data set) against the current model's samples (sent per frame), in 3-D.

    A canvas that updates in place: the view the user turned stays as it is while frames stream in."""
    ds = fa.dataset
    version = f"fa:{ds.seed}:{len(ds.x_train)}:{len(x_test)}:{ds.noise_scale:g}"
    state = st.session_state
    state["fa_frame_no"] = state.get("fa_frame_no", 0) + 1
    static = None
    if needs_static(SCATTER_KEY, version):
        static = [point_set(x_test, "test data", DATA_COLOUR, size=2, opacity=0.55, decimals=2)]
    samples = fa.model_samples(len(x_test))
    data = scatter_data(
        version=version,
        static=static,
        sets=[
            point_set(samples, "model samples", MODEL_COLOUR, size=2, opacity=0.55, decimals=2),
            point_set(x_test[index : index + 1], "chosen test point", "#000000", size=7, symbol="diamond"),
        ],
        ranges=fa_axis_ranges(x_test),
        title="Test data vs. samples from the current model",
        height_px=330 if lecture.lecture_mode() else 400,  # a projector's first screen
        frame=state["fa_frame_no"],
        view_key="fa",
    )
    scatter3d(SCATTER_KEY, data)


def queue_steps(phase: str) -> None:
    """E-step × N, M-step × N, Joint × N (a callback): queue N steps (N as typed, brought into 1..the room
    left in the queue) and play them; the first frame runs at once with a longer time budget. A full queue
    is a note, not an error."""
    state = st.session_state
    fa: FAExperiment = work["fa"]
    room = fa.queue_room
    if room < 1:
        state.fa_note = f"The queue is full ({fa.queued_steps:,} steps): let it play, or ↺ Reset."
        return
    n = clamp_int(state.get("fa_n", 100), 1, MAX_N_STEPS, 100)
    if n > room:
        state.fa_note = f"Queued {room:,} steps, the room left in the queue (not {n:,})."
        n = room
    fa.enqueue(phase, n)
    player.start(free=False)
    state.fa_click_frame = True


def queue_paper_schedule() -> None:
    """The tutorial's schedule E, M, E, M × 1000 (a callback): queue it and play it (a note when the queue
    has no room for it)."""
    try:
        work["fa"].enqueue_schedule(PAPER_EM_SCHEDULE)
    except ValueError:
        st.session_state.fa_note = "The queue has no room for the paper schedule: let it play, or ↺ Reset."
        return
    player.start(free=False)
    st.session_state.fa_click_frame = True


def controls() -> None:
    """The controls: a fragment without a timer (a frame of Play never re-sends them). Step buttons, ▶ Play
    and ↺ Reset act in callbacks; the player then reruns the page once, which starts or stops the timer of
    :func:`frames`."""
    state = st.session_state
    fa: FAExperiment = work["fa"]

    settings = lecture.folded("Settings: posterior family, learning rate, batch size, K, steps per frame")
    with settings:
        c1, c2, c3, c4, c5 = st.columns(5)
        c1.selectbox(
            "Posterior family",
            POSTERIOR_FAMILIES,
            index=POSTERIOR_FAMILIES.index(fa.config.posterior),
            format_func=POSTERIOR_LABELS.get,
            key="fa_posterior",
            on_change=on_posterior_change,
            help="The family of q(z|x) = N(Vx, Σ): a full covariance Σ holds the exact posterior (the gap "
            "can close to 0); a diagonal one cannot tilt; a fixed small diagonal (σ = 0.1) cannot widen "
            "either.",
        )
        lr = c2.select_slider("Learning rate (Adam)", LEARNING_RATES, value=fa.config.lr, key="fa_lr")
        batch = c3.number_input("Batch size", 1, 1000, fa.config.batch_size, key="fa_batch")
        k_max = elbo_samples_limit(len(fa.dataset.x_test))
        # K as the browser sent it (or the run's), brought into this data set's bound: the nearest valid one
        k_now = fa.config.n_elbo_samples
        state.fa_k = clamp_int(state.get("fa_k", k_now), 1, k_max, k_now)
        k = c4.number_input(
            "K (samples in the test ELBO)",
            1,
            k_max,
            key="fa_k",
            help=f"at most {k_max:,} for {len(fa.dataset.x_test):,} test points (K × points ≤ "
            f"{MAX_SAMPLE_POINTS:,}), so that a step stays quick",
        )
        c5.select_slider(
            "Steps per frame",
            STEPS_PER_FRAME,
            value=100,
            key="fa_frame",
            help="at most this many steps per frame of Play; a frame also stops after "
            f"{FRAME_BUDGET_S * 1e3:.0f} ms of stepping, so that frames keep coming several times a second",
        )
    if (lr, batch, k) != (fa.config.lr, fa.config.batch_size, fa.config.n_elbo_samples):
        fa.update_config(lr=lr, batch_size=int(batch), n_elbo_samples=int(k))

    b = st.columns([1.6 if lecture.compact() else 1.1, 1, 1, 1.25, 1.6, 1, 1])  # N readable when zoomed
    b[0].number_input("N steps", 1, 100_000, 100, key="fa_n", label_visibility="collapsed")
    step_buttons(b[1:4], "fa", queue_steps)
    b[4].button(
        "Paper schedule",
        key="fa_paper",
        on_click=queue_paper_schedule,
        help="The tutorial's experiment: E, M, E, M × 1000 steps each.",
    )
    player.button(b[5], on_play=lambda: work["fa"].queued_steps == 0, on_pause=gate.release)
    b[6].button(lecture.label("↺ Reset", "↺"), key="fa_reset", on_click=new_experiment, help="a new run")
    with settings:  # lecture mode: with the settings
        autoplay_radio("fa")
    note = state.pop("fa_note", None)
    if note:
        st.caption(f":material/warning: {note}")
    if state.pop("fa_refresh", False):  # a new posterior family: its callback started a new run
        st.rerun()
    state_to_url()
    player.sync()


def frames(playing: bool) -> bool:
    """What a frame of Play shows (and, while ``playing``, the steps it runs first): metrics, the 3-D
    scatter, the learning curves, the posteriors. Only the data that changed is sent (the canvases are
    updated in place, the test data travel once). Returns whether Play goes on: not after an error, nor
    when the queue is done (unless Play runs free, with nothing queued)."""
    start = time.perf_counter()
    state = st.session_state
    fa: FAExperiment = work["fa"]
    go_on = True
    if playing:
        # steps run only with a compute slot, at most its step rate; without one the visitor waits in line
        # (gate.waiting_panel) and Play starts by itself on their turn
        per_frame = clamp_int(state.get("fa_frame", 100), 1, max(STEPS_PER_FRAME), 100)
        allowed = gate.steps_for_frame(per_frame)
        if allowed is None:
            go_on = False
        else:
            free = player.free and fa.queued_steps == 0
            if free:  # steps of the chosen phase that never stay in the queue (a schedule runs alone)
                fa.enqueue(state.get("fa_autoplay_phase", "joint"), per_frame)
            budget = CLICK_BUDGET_S if state.pop("fa_click_frame", False) else FRAME_BUDGET_S
            t0 = time.perf_counter()
            ran = fa.run_pending(allowed, time_budget_s=budget)
            if free:
                fa.clear_queue()
            state["fa_step_ms"] = ((time.perf_counter() - t0) * 1e3, ran)
            go_on = gate.keep_playing(not fa.error and (fa.queued_steps > 0 or player.free))
    # the steps and the drawing are Python that holds the GIL a gesture's run needs: while playing, the
    # frame gives way between its parts too
    give_way = gate.give_way(playing)
    give_way()
    # conditional messages live in fixed containers, so the charts below keep their place in the
    # layout and are updated in place instead of being re-created (no flicker while playing)
    if fa.error:
        st.container().error(fa.error)
    else:
        st.container()
    latest = fa.latest
    m = st.columns(6)
    m[0].metric("Step", f"{fa.steps:,}", help=f"{fa.queued_steps:,} steps queued")
    m[1].metric("Test ELBO (estimate)", f"{latest.elbo:.4f}")
    m[2].metric("Exact evidence", f"{latest.evidence:.4f}")
    m[3].metric("Exact gap", f"{latest.gap:.4f}", help="KL(q(z|x) ‖ p(z|x)) = evidence − exact ELBO")
    m[4].metric("True model", f"{fa.true_evidence:.4f}")
    m[5].metric(
        "MLE (EM)", f"{fa.mle_evidence:.4f}", help="closed-form EM on the training set, run to convergence"
    )
    queue_note = ""
    if fa.queued_steps:
        queue_note = f"{fa.queued_steps:,} steps queued" + ("" if playing else " (paused: ▶ Play goes on)")
    queue_note = queue_note or ("Playing until paused." if playing else "Nothing queued.")
    lecture_on = lecture.lecture_mode()
    if not lecture_on:  # in lecture mode it goes under the charts
        st.caption(queue_note)

    x_test = fa.dataset.x_test.numpy()
    # the test point as typed, or kept from a larger data set: the nearest one that exists
    index = clamp_int(state.get("fa_point", 0), 0, len(x_test) - 1, 0)
    if state.get("fa_point") != index:
        state.fa_point = index
    h = fa.history
    top_left, top_right = st.columns([1, 1.25])
    with top_left:
        scatter_panel(fa, x_test, index)
    give_way()
    frame = state["fa_frame_no"]
    with top_right:
        zoom = st.checkbox(
            "Zoom on the last phase",
            key="fa_zoom_last",
            help="Show only the last E-, M- or joint phase, with a y range of its own: the last hundredths "
            "of a nat of the gap become visible.",
        )
        live_chart(
            "fa_curves",
            fa_curves_chart(
                h.elbo,
                h.evidence,
                h.gap,
                h.phase_segments(),
                fa.true_evidence,
                fa.mle_evidence,
                zoom_last_phase=zoom,
                height=LECTURE_CURVES_PX if lecture_on else 440,
            ),
            frame,
            export_name=export_name("fa", "elbo-evidence-gap", "png", step=fa.steps),
        )
    give_way()
    bottom_left, bottom_right = st.columns([1, 1.25])
    with bottom_left:
        st.number_input(
            "Test point (black diamond)", 0, len(x_test) - 1, key="fa_point", on_change=state_to_url
        )
        live_chart(
            "fa_latent",
            fa_ellipses_chart(**fa.posteriors_of(index), title=f"Latent space for test point {index}"),
            frame,
        )
    with bottom_right:
        if lecture_on:
            st.caption(queue_note)
        st.markdown(reading(fa))
        st.download_button(
            "The curves (CSV)",
            data=partial(fa_curves_csv, history_snapshot(h)),  # built when clicked, not on every frame
            file_name=export_name("fa", "elbo-evidence-gap", "csv", step=fa.steps),
            mime="text/csv",
            icon=":material/download:",
            on_click="ignore",
            key="fa_csv",
            help="Every step: its phase, the test ELBO, the exact evidence and the exact gap (nats per "
            "point), for a slide.",
        )
        step_ms, ran = state.get("fa_step_ms", (0.0, 0))
        st.caption(
            ":material/timer: Server time of this frame: "
            f"{(time.perf_counter() - start) * 1e3:.0f} ms, of which {ran} "
            f"step(s) with their test metrics {step_ms:.0f} ms. While playing, a frame comes every "
            f"{FRAME_SECONDS:g} s with the steps that fit in {FRAME_BUDGET_S * 1e3:.0f} ms."
        )
    return go_on


st.fragment(controls)()
gate.waiting_panel()
player.frames(gate.behind_gestures(frames))
