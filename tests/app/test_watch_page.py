"""The "Watch it learn" page under AppTest: it renders, steps phase by phase, decodes a click or a box on the
map while paused, rejects absurd settings with a message, and exports a run the VAE page's picker lists.

MNIST must be on disk (``make test`` fetches it). ``run_every`` never fires in AppTest, so "playing" here is
one frame per rerun: each rerun collects what the experiment's training thread did meanwhile.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer_core.data import MNISTUnavailable, load_mnist_splits
from explorer_core.jobs import done_models
from views.components.player import PAUSE_LABEL, PLAY_LABEL

TIMEOUT = 120
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGE = str(ROOT / "views" / "watch.py")


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def captions(at: AppTest) -> list[str]:
    return [c for i in at.image for c in i.captions]


def component_data(at: AppTest, key: str) -> dict:
    """The data sent to the components v2 element mounted with ``key``."""
    found = [el for el in at.get("bidi_component") if el.proto.id.endswith(f"-{key}")]
    assert found, [el.proto.id for el in at.get("bidi_component")]
    return json.loads(found[0].proto.json)


def playing(at: AppTest) -> bool:
    return at.session_state["watch_player"].running


def play_out(at: AppTest, max_frames: int = 400) -> None:
    """Rerun (one frame each) until the player stops by itself (the queue is done)."""
    for _ in range(max_frames):
        if not playing(at):
            return
        at.run()
        assert not at.exception, at.exception
    raise AssertionError("the queue did not drain")


@pytest.fixture
def page() -> AppTest:
    try:
        load_mnist_splits()
    except MNISTUnavailable as err:
        pytest.skip(f"MNIST is not available: {err}")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def test_page_renders_and_says_what_the_iwae_bound_is(page):
    at = page
    assert "Watch it learn" in at.title[0].value
    text = " ".join(i.value for i in at.info)
    assert "lower bound" in text and "lower estimate" in text and "E-phase" in text
    assert metric(at, "Step") == "0"
    assert metric(at, "IWAE bound (k=16)") != ""
    assert not at.get("plotly_chart")  # canvases only: nothing is re-mounted per frame
    curves = component_data(at, "watch_curves")
    assert len(curves["panels"][0]["lines"][0]["y"]) == 1  # the initial model
    assert component_data(at, "watch_kl")["panels"][0]["lines"]
    assert component_data(at, "watch_terms")["panels"]
    pad = component_data(at, "watch_pad")  # paused: the map is the latent pad
    assert len(pad["points"]["u"]) == 500 and pad["image"].startswith("data:image/png;base64,")
    assert len(at.image) >= 2  # manifold and reconstructions


def test_e_steps_move_phi_only_and_the_curves(page):
    at = page
    ex = at.session_state["session_work"]["watch"]
    theta = [p.detach().clone() for p in ex.model.generative_parameters()]
    elbo = metric(at, "ELBO")
    at.number_input(key="watch_n").set_value(20)
    at.button(key="watch_e").click().run()
    assert not at.exception
    play_out(at)
    assert metric(at, "Step") == "20"
    assert metric(at, "ELBO") != elbo
    assert all(torch.equal(a, b) for a, b in zip(theta, ex.model.generative_parameters(), strict=True))
    assert at.session_state["session_work"]["watch"].history.segments == [["e_step", 1, 20]]
    assert [b["label"] for b in component_data(at, "watch_curves")["panels"][0]["bands"]] == ["E"]
    assert at.button(key="watch_play").label == PLAY_LABEL


def test_play_streams_pause_stops_and_play_starts_again(page):
    at = page
    at.button(key="watch_play").click().run()
    assert not at.exception
    assert playing(at) and at.button(key="watch_play").label == PAUSE_LABEL
    for _ in range(3):
        at.run()
    ex = at.session_state["session_work"]["watch"]
    assert int(metric(at, "Step").replace(",", "")) > 0 and ex.last_phase == "joint"
    # the live map is the latent pad as a picture only: square (equal scale on a square region), redrawn
    # each frame with its points, nothing sent back
    live = component_data(at, "watch_map")
    assert live["static"] and live["equal_scale"] and live["points"] and live["frame"] == len(ex.history)
    (u0, u1), (v0, v1) = live["region"]
    assert u1 - u0 == pytest.approx(v1 - v0) and live["image"].startswith("data:image/png;base64,")
    at.button(key="watch_play").click().run()  # pause
    assert not playing(at) and not ex.running
    # paused, the pad a drag decodes on: the same element, shape and size as while playing
    paused = component_data(at, "watch_pad")
    assert not paused["static"] and paused["equal_scale"]
    assert (paused["height"], paused["hint_lines"]) == (live["height"], live["hint_lines"])
    paused_at = metric(at, "Step")
    assert paused_at == f"{ex.steps:,}"  # the last steps are shown at the pause
    at.run()
    assert metric(at, "Step") == paused_at
    at.button(key="watch_play").click().run()  # a click right after the stop plays again
    assert playing(at)
    at.button(key="watch_play").click().run()
    assert not playing(at)


def test_schedule_plays_its_phases_without_joint_steps(page):
    at = page
    at.button(key="watch_play").click().run()  # free play (joint) first, then the schedule
    at.run()
    at.button(key="watch_schedule").click().run()
    ex = at.session_state["session_work"]["watch"]
    deadline = time.monotonic() + 120
    # into the first M-phase (how many joint steps free play took first depends on the machine's speed)
    while "m_step" not in [p for p, _, _ in ex.history.segments]:
        assert time.monotonic() < deadline, "the schedule did not reach its M-phase"
        at.run()
    at.button(key="watch_play").click().run()  # pause: the queue keeps the rest
    assert not playing(at) and ex.queued_steps > 0
    phases = [p for p, _, _ in ex.history.segments]
    first = phases.index("e_step")
    assert phases.count("joint") <= 1 and "joint" not in phases[first:]  # no joint step once it began
    # the schedule's phases in order (the pause may land in its first M-phase or in the E-phase after it:
    # how far the thread got between two reruns depends on the machine's speed)
    assert phases[first : first + 2] == ["e_step", "m_step"]
    assert set(phases[first:]) == {"e_step", "m_step"}


def test_queued_steps_switch_play_off_when_done(page):
    at = page
    at.number_input(key="watch_n").set_value(10)
    at.button(key="watch_m").click().run()
    play_out(at)
    assert metric(at, "Step") == "10"
    assert not playing(at)
    assert at.button(key="watch_play").label == PLAY_LABEL
    # issue 33, item 4: the M-step's reading never calls log p(x) the IWAE bound, a lower bound on it
    reading = next(m.value for m in at.markdown if m.value.startswith("Last phase: **M-step**"))
    assert "(the IWAE bound)" not in reading and "a lower bound on log p(x)" in reading
    assert "gap estimate grows" not in reading  # no direction the numbers did not show


def test_the_paused_map_decodes_z(page):
    at = page
    pad_state = at.session_state["watch_page"].pad  # the page's state object (views/watch.py WatchState)
    pad_state.u, pad_state.v = 0.5, -0.25
    at.run()
    assert not at.exception
    pad = component_data(at, "watch_pad")
    assert pad["z"] == [0.5, -0.25] and pad["caption"] == "decoded at (0.50, -0.25)"
    pad_state.u = 99.0  # outside the map: clamped to its edge
    at.run()
    assert component_data(at, "watch_pad")["z"][0] == pad["region"][0][1]


def test_absurd_settings_give_a_message_not_a_traceback(page):
    at = page
    at.select_slider(key="watch_cfg_n").set_value(1_000)
    at.number_input(key="watch_cfg_b").set_value(5_000)
    at.button(key="FormSubmitter:watch_config-Start a new run").click().run()
    assert not at.exception
    assert any("Not started" in e.value and "batch size" in e.value for e in at.error)


def test_export_lists_the_run_in_the_vae_picker(page):
    at = page
    at.button(key="watch_export").click().run()
    assert any("Not exported" in e.value for e in at.error)  # nothing learnt yet
    at.number_input(key="watch_n").set_value(20)
    at.button(key="watch_joint").click().run()
    play_out(at)
    at.button(key="watch_export").click().run()
    assert not at.exception
    assert any("Exported as run" in s.value for s in at.success)
    run_ids = [m.get("run_id") for m in done_models("vae")]
    assert any(str(r).startswith("watch-") for r in run_ids)


def test_beta_is_a_live_control_and_the_active_units_are_shown(page):
    assert page.select_slider(key="watch_beta").value == 1.0
    ex = page.session_state["session_work"]["watch"]
    active, dims = ex.latest.metrics.active_units, ex.config.latent_dim
    assert metric(page, "Active units") == f"{active} / {dims}"
    # the reading counts them by the same rule (evaluation.metrics.active_units), not by KL per dimension
    assert any(f"{active} of {dims} latent dimensions are active" in m.value for m in page.markdown)
    page.select_slider(key="watch_beta").set_value(4.0).run()
    assert not page.exception, page.exception
    assert page.session_state["session_work"]["watch"].kl_weight == 4.0


def test_a_link_opens_its_configuration_and_the_url_follows_the_run():
    try:
        load_mnist_splits()
    except MNISTUnavailable as err:
        pytest.skip(f"MNIST is not available: {err}")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)  # the page itself: switching pages clears the URL
    at.query_params.update(
        {"L": "3", "hidden": "128", "k": "64", "beta": "2", "lr_phi": "0.003", "batch": "50", "seed": "7"}
    )
    # out of range, or not on offer: ignored
    at.query_params.update({"map": "999999", "lik": "gaussian", "lr_theta": "0.0007"})
    at.run()
    assert not at.exception, at.exception
    assert not [w.value for w in at.warning]
    ex = at.session_state["session_work"]["watch"]
    c = ex.config
    linked = (c.latent_dim, c.hidden, c.iwae_k, c.lr_inference, c.batch_size, c.seed)
    assert linked == (3, (128,), 64, 3e-3, 50, 7)
    assert (c.n_map, c.likelihood, c.lr_generative) == (500, "bernoulli", 1e-3)  # the defaults
    assert ex.kl_weight == 2.0
    # the page writes the run back as a link (the ignored values replaced by the run's own)
    q = at.query_params
    assert (q["L"], q["map"], q["beta"]) == ("3", "500", "2")
    at.select_slider(key="watch_k").set_value(256).run()
    assert at.query_params["k"] == "256"


def test_paused_a_2d_model_shows_the_true_posterior_of_a_validation_image(page):
    at = page
    at.button(key="watch_e").click().run()  # queue E-steps: the player runs them
    play_out(at)
    ex = at.session_state["session_work"]["watch"]
    assert ex.config.latent_dim == 2 and ex.steps > 0 and not playing(at)
    at.number_input(key="watch_post_index").set_value(3).run()
    at.checkbox(key="watch_post_show").check().run()
    assert not at.exception, at.exception
    value = {m.label: float(m.value) for m in at.metric if m.label in ("Evidence log p(x)", "ELBO of q_φ")}
    assert value["ELBO of q_φ"] <= value["Evidence log p(x)"]
    header = next(m.value for m in at.markdown if m.value.endswith("nats per image"))
    assert "Validation image 3" in header and f"after step {ex.latest.step:,}" in header
    at.button(key="watch_qstar_play").click().run()
    for _ in range(60):  # the q* fit's frames (AppTest never fires the fragment's timer)
        if not at.session_state["watch_qstar_player"].running:
            break
        at.run()
    assert not at.exception, at.exception
    assert any(m.value.startswith("**The gap split**") for m in at.markdown)


def test_the_server_can_let_go_of_a_gone_tabs_experiment(page):
    """Once the sweeper releases the session's work (its tab gone longer than the grace,
    explorer_core.session_work), nothing of the page (its script's names, its fragments' callables, the
    pad's decoder) may still hold the experiment: a class's runs must leave the server's memory."""
    import gc
    import weakref

    at = page
    at.button(key="watch_play").click().run()
    at.run()
    at.button(key="watch_play").click().run()  # pause: the paused map and its pad are drawn
    assert not at.exception
    work = at.session_state["session_work"]
    ref = weakref.ref(work["watch"])
    decoder_ref = weakref.ref(work["watch_decoder"][1])  # the paused pad's browser decoder (its weights)
    work.release()
    gc.collect()
    assert ref() is None
    assert decoder_ref() is None  # it was work too: nothing in the session's state keeps it
