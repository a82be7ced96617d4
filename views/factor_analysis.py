"""Factor analysis (tutorial section 5.2): step through approximate E- and M-phases and watch the ELBO
close on the exact evidence.

State per browser session: one ``FAExperiment`` in ``st.session_state``. The controls and the charts share
one fragment, so stepping reruns only the fragment and the 3-D camera keeps still; while playing, the
fragment reruns itself on a timer and streams steps in.
"""

import streamlit as st

from explorer_core.data import FA_PAPER_SEED, make_fa_dataset
from explorer_core.device import limit_cpu_threads
from explorer_core.fa_experiment import PAPER_EM_SCHEDULE, FAExperiment, FATrainingConfig
from explorer_core.figures import fa_learning_curves, fa_scatter_3d, posterior_ellipses
from explorer_core.models.factor_analysis import POSTERIOR_FAMILIES

POSTERIOR_LABELS = {
    "full": "full covariance (contains the exact posterior)",
    "diagonal": "diagonal covariance",
    "fixed": "fixed small diagonal (σ = 0.1)",
}
PHASE_LABELS = {"joint": "joint (θ and φ)", "e_step": "E-step (φ only)", "m_step": "M-step (θ only)"}
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0]
FRAME_SECONDS = 0.5
FRAME_BUDGET_S = 0.4

limit_cpu_threads(1)  # the FA model is tiny: one thread per step beats two


def new_experiment(dataset=None, **config) -> None:
    """Start a fresh run in this session (keeping the data set unless a new one is given)."""
    state = st.session_state
    dataset = dataset if dataset is not None else state.fa.dataset
    config = FATrainingConfig(**{**vars(state.fa.config), **config}) if "fa" in state else FATrainingConfig()
    state.fa = FAExperiment(dataset, config)
    state.fa_playing = False
    state.fa_autoplay = False


if "fa" not in st.session_state:
    new_experiment(make_fa_dataset())

st.title("📐 Factor analysis: E- and M-steps")
st.markdown(
    "A 2-factor model of 3-D data, fitted with AEVB (tutorial section 5.2). An **E-step** updates only "
    "the inference parameters φ = (V, Σ) of q(z|x) = N(Vx, Σ): the ELBO closes on the evidence, which "
    "cannot move. An **M-step** updates only the generative parameters θ = (W, σ): the evidence rises and "
    "the bound loosens. Everything is measured on the test points after every step; for this model the "
    "evidence and the gap KL(q(z|x) ‖ p(z|x)) are exact."
)

with st.expander("Data set", expanded=False):
    fa = st.session_state.fa
    st.caption(
        ("The tutorial's data set" if fa.dataset.is_paper_data else "A custom data set")
        + f": seed {fa.dataset.seed}, {len(fa.dataset.x_train)} train and {len(fa.dataset.x_test)} "
        f"test points, noise × {fa.dataset.noise_scale:g}, drawn from W = [[-0.5, -1], [-1, -1], [2, 0.5]], "
        "σ = (0.4, 0.2, 0.3)."
    )
    with st.form("fa_data"):
        c1, c2, c3 = st.columns(3)
        seed = c1.number_input("Seed", 0, 2**31 - 1, FA_PAPER_SEED, key="fa_data_seed")
        n = c2.number_input("Points per split", 10, 20_000, 1000, step=100, key="fa_data_n")
        noise = c3.number_input("Noise scale", 0.05, 10.0, 1.0, step=0.25, key="fa_data_noise")
        if st.form_submit_button("Draw new data set"):
            new_experiment(make_fa_dataset(int(seed), int(n), int(n), float(noise)))
            st.toast("New data set drawn; the run starts again.")


def reading(fa: FAExperiment) -> str:
    """A few live sentences that say what the charts show now."""
    latest, last = fa.latest, fa.history.phase[-1]
    doing = {
        "init": "No step yet: θ and φ are random.",
        "e_step": "Last phase: **E-step**. θ is frozen, so the evidence is flat; φ moves q(z|x) towards "
        "p(z|x) and the gap shrinks.",
        "m_step": "Last phase: **M-step**. φ is frozen; θ raises the ELBO, and the evidence with it, while "
        "the exact posterior moves away from q(z|x) and the gap grows.",
        "joint": "Last phase: **joint AEVB**. Both move: the bound is tightened and pushed up at once.",
    }[last]
    return (
        f"{doing}\n\n"
        f"* exact ELBO = evidence − gap = {latest.evidence:.4f} − {latest.gap:.4f} = "
        f"**{latest.evidence - latest.gap:.4f}**; the AEVB estimate with K = {fa.config.n_elbo_samples} "
        f"reparameterised sample(s) per point reads {latest.elbo:.4f}.\n"
        f"* The evidence is {fa.mle_evidence - latest.evidence:.4f} nats per point below the "
        f"maximum-likelihood fit (closed-form EM), and {fa.true_evidence - latest.evidence:.4f} below the "
        "model that generated the data.\n"
        "* Left: q(z|x) (red, dashed) against the exact posterior p(z|x) (green) for the chosen test point; "
        "the two coincide when the gap is zero. Shaded grey: E-phases; amber: M-phases."
    )


def on_posterior_change() -> None:
    new_experiment(posterior=st.session_state.fa_posterior)
    st.toast("A new posterior family means a new run: started again.")


def stepper() -> None:
    state = st.session_state
    fa: FAExperiment = state.fa

    c1, c2, c3, c4, c5 = st.columns(5)
    c1.selectbox(
        "Posterior family",
        POSTERIOR_FAMILIES,
        index=POSTERIOR_FAMILIES.index(fa.config.posterior),
        format_func=POSTERIOR_LABELS.get,
        key="fa_posterior",
        on_change=on_posterior_change,
    )
    lr = c2.select_slider("Learning rate (Adam)", LEARNING_RATES, value=fa.config.lr, key="fa_lr")
    batch = c3.number_input("Batch size", 1, 1000, fa.config.batch_size, key="fa_batch")
    k = c4.number_input("K (samples in the test ELBO)", 1, 1000, fa.config.n_elbo_samples, key="fa_k")
    per_frame = c5.select_slider(
        "Steps per frame", [1, 5, 10, 25, 50, 100, 200, 500], value=100, key="fa_frame"
    )
    if (lr, batch, k) != (fa.config.lr, fa.config.batch_size, fa.config.n_elbo_samples):
        fa.update_config(lr=lr, batch_size=int(batch), n_elbo_samples=int(k))

    b = st.columns([1.1, 1, 1, 1, 1.6, 1, 1])
    n_steps = b[0].number_input("N steps", 1, 100_000, 100, key="fa_n", label_visibility="collapsed")
    pressed = {
        "e_step": b[1].button("E-step × N", key="fa_e", help="approximate E-step: update φ only"),
        "m_step": b[2].button("M-step × N", key="fa_m", help="approximate M-step: update θ only"),
        "joint": b[3].button("Joint × N", key="fa_joint", help="plain AEVB: update θ and φ together"),
    }
    schedule = b[4].button("Paper schedule (E, M, E, M × 1000)", key="fa_paper")
    play = b[5].button("⏸ Pause" if state.fa_playing else "▶ Play", key="fa_play")
    reset = b[6].button("↺ Reset", key="fa_reset")

    was_playing = state.fa_playing
    if reset:
        new_experiment()
        fa = state.fa
    for phase, hit in pressed.items():
        if hit:
            fa.enqueue(phase, int(n_steps))
    if schedule:
        fa.enqueue_schedule(PAPER_EM_SCHEDULE)
    if play:
        state.fa_playing = not state.fa_playing
        state.fa_autoplay = state.fa_playing and fa.queued_steps == 0
    elif any(pressed.values()) or schedule:
        state.fa_playing, state.fa_autoplay = True, False

    if state.fa_playing:
        if state.fa_autoplay and fa.queued_steps == 0:
            fa.enqueue(state.get("fa_autoplay_phase", "joint"), per_frame)
        fa.run_pending(per_frame, time_budget_s=FRAME_BUDGET_S)
        if fa.error or (fa.queued_steps == 0 and not state.fa_autoplay):
            state.fa_playing = False

    st.radio(
        "▶ Play runs, when nothing is queued:",
        list(PHASE_LABELS),
        format_func=PHASE_LABELS.get,
        horizontal=True,
        key="fa_autoplay_phase",
    )
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
        queue_note = f"{fa.queued_steps:,} steps queued" + (
            "" if state.fa_playing else " (paused: ▶ Play goes on)"
        )
    st.caption(queue_note or "Nothing queued.")

    x_test = fa.dataset.x_test.numpy()
    index = int(state.get("fa_point", 0))
    h = fa.history
    top_left, top_right = st.columns([1, 1.25])
    top_left.plotly_chart(
        fa_scatter_3d(x_test, fa.model_samples(len(x_test)), highlight=x_test[index]),
        key="fa_scatter",
        width="stretch",
    )
    top_right.plotly_chart(
        fa_learning_curves(h.elbo, h.evidence, h.gap, h.phase_segments(), fa.true_evidence, fa.mle_evidence),
        key="fa_curves",
        width="stretch",
    )
    bottom_left, bottom_right = st.columns([1, 1.25])
    with bottom_left:
        st.number_input("Test point (black diamond)", 0, len(x_test) - 1, key="fa_point")
        st.plotly_chart(
            posterior_ellipses(**fa.posteriors_of(index), title=f"Latent space for test point {index}"),
            key="fa_latent",
            width="stretch",
        )
    with bottom_right:
        st.markdown(reading(fa))

    if state.fa_playing != was_playing:
        st.rerun()  # start or stop the timer below


st.fragment(stepper, run_every=FRAME_SECONDS if st.session_state.fa_playing else None)()
