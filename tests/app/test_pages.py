"""Pages under streamlit.testing.v1.AppTest: they render without exceptions and react to the controls."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

TIMEOUT = 60
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.fixture
def fa_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page(str(ROOT / "views" / "factor_analysis.py")).run()
    assert not at.exception
    return at


def test_home_lists_the_pages_and_the_device():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.title[0].value == "AEVB Explorer"
    assert any("torch" in c.value for c in at.sidebar.caption)
    assert "E-step" in at.markdown[0].value and "M-step" in at.markdown[0].value


def test_e_step_changes_the_elbo_and_not_the_evidence(fa_page):
    at = fa_page
    assert metric(at, "Step") == "0"
    elbo, evidence = metric(at, "Test ELBO (estimate)"), metric(at, "Exact evidence")
    at.number_input(key="fa_n").set_value(50)
    at.button(key="fa_e").click().run()
    assert not at.exception
    assert metric(at, "Step") == "50"
    assert metric(at, "Test ELBO (estimate)") != elbo
    assert metric(at, "Exact evidence") == evidence
    fa = at.session_state["fa"]
    assert set(fa.history.phase[1:]) == {"e_step"}
    assert not at.session_state["fa_playing"]  # all 50 steps ran in the first frame: nothing left to stream


def test_m_step_moves_the_evidence_and_reset_starts_again(fa_page):
    at = fa_page
    evidence = metric(at, "Exact evidence")
    at.number_input(key="fa_n").set_value(20)
    at.button(key="fa_m").click().run()
    assert metric(at, "Exact evidence") != evidence
    at.button(key="fa_reset").click().run()
    assert metric(at, "Step") == "0" and metric(at, "Exact evidence") == evidence


def test_paper_schedule_queues_4000_steps_and_streams_them(fa_page):
    at = fa_page
    at.select_slider(key="fa_frame").set_value(50)
    at.button(key="fa_paper").click().run()
    fa = at.session_state["fa"]
    assert 0 < fa.steps <= 100  # at most two frames of 50 (fewer when a frame's time budget runs out)
    assert fa.steps + fa.queued_steps == 4000
    queued = fa.queued_steps
    assert at.session_state["fa_playing"]  # the fragment timer takes over (run_every never fires in AppTest)
    at.button(key="fa_play").click().run()  # pause
    assert not at.session_state["fa_playing"] and fa.queued_steps == queued


def test_changing_the_posterior_family_starts_a_new_run(fa_page):
    at = fa_page
    at.button(key="fa_joint").click().run()
    at.selectbox(key="fa_posterior").set_value("diagonal").run()
    fa = at.session_state["fa"]
    assert fa.config.posterior == "diagonal" and fa.steps == 0
    assert not at.exception


def test_new_data_set_from_the_form(fa_page):
    at = fa_page
    at.number_input(key="fa_data_seed").set_value(7)
    at.number_input(key="fa_data_n").set_value(200)
    submit = next(b for b in at.button if b.label == "Draw new data set")
    submit.click().run()
    fa = at.session_state["fa"]
    assert fa.dataset.seed == 7 and len(fa.dataset.x_test) == 200
    assert not at.exception
