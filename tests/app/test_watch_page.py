"""The "Watch it learn" page under AppTest: it renders, steps phase by phase, decodes a click or a box on the
map while paused, rejects absurd settings with a message, and exports a run the VAE page's picker lists.

MNIST must be on disk (``make test`` fetches it). ``run_every`` never fires in AppTest, so "playing" here is
one frame per rerun.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer_core.data import MNISTUnavailable, load_mnist_splits
from explorer_core.jobs import done_models

TIMEOUT = 120
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGE = str(ROOT / "views" / "watch.py")


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def captions(at: AppTest) -> list[str]:
    return [c for i in at.image for c in i.captions]


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
    assert len(at.get("plotly_chart")) == 4  # map, bounds, terms, KL per dimension
    assert len(at.image) >= 2  # manifold and reconstructions


def test_e_steps_move_phi_only_and_the_curves(page):
    at = page
    ex = at.session_state["watch"]
    theta = [p.detach().clone() for p in ex.model.generative_parameters()]
    elbo = metric(at, "ELBO")
    at.number_input(key="watch_n").set_value(20)
    at.button(key="watch_e").click().run()
    assert not at.exception
    assert metric(at, "Step") == "20"
    assert metric(at, "ELBO") != elbo
    assert all(torch.equal(a, b) for a, b in zip(theta, ex.model.generative_parameters(), strict=True))
    assert not at.session_state["watch_playing"]  # the 20 steps fit in one frame: nothing left to stream
    assert at.session_state["watch"].history.segments == [["e_step", 1, 20]]


def test_play_runs_a_frame_and_pause_stops(page):
    at = page
    at.toggle(key="watch_play_toggle").set_value(True).run()
    assert not at.exception
    assert at.session_state["watch_playing"]
    # a frame of up to 20 joint steps (fewer on a busy machine: a frame has a time budget), and one more in
    # the rerun that starts the frame timer
    assert 0 < int(metric(at, "Step")) <= 40
    assert at.session_state["watch"].last_phase == "joint"
    at.toggle(key="watch_play_toggle").set_value(False).run()
    assert not at.session_state["watch_playing"]


def test_queued_steps_switch_play_off_when_done(page):
    at = page
    at.number_input(key="watch_n").set_value(10)
    at.button(key="watch_m").click().run()
    assert metric(at, "Step") == "10"
    assert not at.session_state["watch_playing"]
    assert at.toggle(key="watch_play_toggle").value is False


def test_click_and_box_on_the_map_decode_while_paused(page):
    at = page
    empty = {"points": [], "point_indices": [], "box": [], "lasso": []}
    at.session_state["watch_map"] = {"selection": {**empty, "points": [{"x": 0.5, "y": -0.25}]}}
    at.run()
    assert not at.exception
    assert at.session_state["watch_z"] == (0.5, -0.25)
    assert any("decoded at (0.50, -0.25)" in c for c in captions(at))
    box = {"x": [-1.0, 0.0], "y": [0.2, 1.0], "xref": "x", "yref": "y"}
    at.session_state["watch_map"] = {"selection": {**empty, "box": [box]}}
    at.run()
    assert at.session_state["watch_z"] == (-0.5, 0.6)
    assert at.session_state["watch_zoom"] == ((-1.0, 0.0), (0.2, 1.0))
    assert any("dragged box" in c for c in captions(at))


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
    at.button(key="watch_export").click().run()
    assert not at.exception
    assert any("Exported as run" in s.value for s in at.success)
    run_ids = [m.get("run_id") for m in done_models("vae")]
    assert any(str(r).startswith("watch-") for r in run_ids)
