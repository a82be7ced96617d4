"""The operator passphrase's rate limit (issue 23): per session and per process, a growing delay, failures
logged without the text that was tried."""

from __future__ import annotations

import logging

import pytest

from explorer_core.access import PassphraseGate


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def gate():
    clock = Clock()
    g = PassphraseGate(
        base_delay_s=1.0, max_delay_s=60.0, window_s=60.0, session_free_failures=2, process_free_failures=10,
        check=lambda given: given == "right horse", clock=clock,
    )  # fmt: skip
    return g, clock


def test_a_session_waits_longer_after_each_failure(gate):
    g, clock = gate
    assert g.attempt("s1", "wrong").wait_s == 0.0  # two typos cost nothing
    assert g.attempt("s1", "wrong").wait_s == 0.0
    assert g.attempt("s1", "wrong").wait_s == 1.0
    refused = g.attempt("s1", "right horse")  # too soon: not even compared
    assert not refused.ok and not refused.checked and "Too many attempts" in refused.message()
    clock.t += 1.0
    assert g.attempt("s1", "wrong").wait_s == 2.0
    clock.t += 2.0
    assert g.attempt("s1", "wrong").wait_s == 4.0
    clock.t += 4.0
    assert g.attempt("s1", "right horse").ok
    assert g.wait_s("s1") == 0.0  # a success clears the session's count


def test_the_delay_is_capped(gate):
    g, clock = gate
    for _ in range(11):
        clock.t += 61.0  # outside the process window each time
        last = g.attempt("s1", "wrong")
    assert last.wait_s == 60.0


def test_ten_scripted_attempts_a_second_are_mostly_refused(gate):
    g, clock = gate
    checked = 0
    for i in range(100):  # 10 per second for 10 s
        clock.t += 0.1
        checked += g.attempt("script", f"guess {i}").checked
    assert checked <= 6  # two typos, then 1, 2 and 4 s delays: 6 compared in 10 s instead of 100


def test_many_sessions_together_are_slowed_by_the_process_limit(gate):
    g, clock = gate
    for i in range(10):  # ten sessions, one failure each: within the free allowance
        assert g.attempt(f"s{i}", "wrong").checked
    assert g.wait_s("fresh") == 0.0
    g.attempt("s10", "wrong")  # the 11th failure within the window
    assert g.wait_s("fresh") == pytest.approx(1.0)
    assert not g.attempt("fresh", "right horse").checked
    clock.t += 61.0  # the window passes
    assert g.attempt("fresh", "right horse").ok


def test_a_failure_is_logged_without_the_attempt(gate, caplog):
    g, _ = gate
    with caplog.at_level(logging.WARNING, logger="explorer_core.access"):
        g.attempt("session-abcdef123", "hunter2-secret-guess")
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "failed attempt" in text and "session-" in text
    assert "hunter2" not in text


def test_the_default_gate_compares_with_the_configured_passphrase(monkeypatch):
    monkeypatch.setenv("AEVB_OPERATOR_PASSPHRASE", "correct horse")
    g = PassphraseGate()
    for _ in range(3):
        assert not g.attempt("s", "nope").ok
    assert not g.attempt("s", "correct horse").checked  # too soon after the third failure
    assert PassphraseGate().attempt("t", "correct horse").ok
