"""Widget values that arrive from a browser are untrusted input (issue 23, the hostile-class probe).

A value typed past a field's bounds, kept from a larger data set, or set from the browser's console gets the
nearest valid value or a one-line message, never an uncaught exception. AppTest sets the raw values (as a
websocket client could) and presses the buttons.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

TIMEOUT = 120
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page(str(ROOT / "views" / page)).run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def fa_page() -> AppTest:
    return open_page("factor_analysis.py")


# ------------------------------------------------------------------------------------------ factor analysis


def test_fa_n_steps_beyond_the_room_left_is_queued_up_to_the_room(fa_page):
    at = fa_page
    fa = at.session_state["fa"]
    fa.enqueue("m_step", fa.pending.max_steps - 450)  # the probe: the queue had 450 steps of room left
    at.session_state["fa_n"] = 100_000
    at.button(key="fa_e").click().run()
    assert not at.exception, at.exception
    fa = at.session_state["fa"]
    assert fa.queued_steps <= fa.pending.max_steps
    assert any("room left" in c.value for c in at.caption), [c.value for c in at.caption]
    # a full queue: a note again, no exception
    room = fa.pending.max_steps - fa.queued_steps
    if room:
        fa.enqueue("m_step", room)
    at.button(key="fa_joint").click().run()
    assert not at.exception, at.exception
    assert any("queue is full" in c.value for c in at.caption)


def test_fa_test_point_beyond_a_smaller_data_set_is_the_last_point(fa_page):
    at = fa_page
    at.number_input(key="fa_point").set_value(999).run()
    assert not at.exception, at.exception
    at.number_input(key="fa_data_n").set_value(10)
    next(b for b in at.button if b.label == "Draw new data set").click().run()
    assert not at.exception, at.exception
    assert at.session_state["fa_point"] == 9
    assert at.number_input(key="fa_point").value == 9


def test_fa_raw_values_past_the_fields_bounds_are_brought_in(fa_page):
    at = fa_page
    at.number_input(key="fa_data_n").set_value(10**9)
    at.number_input(key="fa_data_seed").set_value(-5)
    next(b for b in at.button if b.label == "Draw new data set").click().run()
    assert not at.exception, at.exception
    fa = at.session_state["fa"]
    assert 10 <= len(fa.dataset.x_test) <= 20_000 and 0 <= fa.dataset.seed < 2**31


def test_fa_at_its_largest_settings_k_is_bounded(fa_page):
    """20,000 points and K = 1000 took 6 s a step and 1.5 GB: K comes down to the bound on a step's cost."""
    from explorer_core.explore.fa import MAX_SAMPLE_POINTS

    at = fa_page
    at.number_input(key="fa_k").set_value(200).run()
    assert at.session_state["fa"].config.n_elbo_samples == 200  # 200 x 1000 test points
    at.number_input(key="fa_data_n").set_value(20_000)
    next(b for b in at.button if b.label == "Draw new data set").click().run()
    assert not at.exception, at.exception
    fa = at.session_state["fa"]
    assert fa.config.n_elbo_samples * len(fa.dataset.x_test) <= MAX_SAMPLE_POINTS
    at.session_state["fa_k"] = 1000  # from the browser, past the bound
    at.run()
    assert not at.exception, at.exception
    fa = at.session_state["fa"]
    assert fa.config.n_elbo_samples * len(fa.dataset.x_test) <= MAX_SAMPLE_POINTS
    at.button(key="fa_joint").click().run()
    assert not at.exception, at.exception
    assert len(at.session_state["fa"].model_samples(20_000)) <= 5_000
