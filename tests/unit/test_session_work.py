"""explorer_core.session_work: a session's large objects, released once its tab has been gone a while."""

from __future__ import annotations

import gc

import pytest

from explorer_core.session_work import (
    CLASS_GRACE_S,
    DEFAULT_GRACE_S,
    SessionWork,
    SessionWorkRegistry,
    default_grace_s,
)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Trainer:
    """Stands for an experiment with a training thread."""

    def __init__(self) -> None:
        self.stopped = 0

    def stop(self) -> None:
        self.stopped += 1


@pytest.fixture
def setup():
    clock = Clock()
    active: set[str] = {"a", "b"}
    registry = SessionWorkRegistry(lambda sid: sid in active, grace_s=30, clock=clock)
    return clock, active, registry


def test_work_of_a_connected_session_is_never_released(setup):
    clock, _active, registry = setup
    work = SessionWork()
    work["watch"] = trainer = Trainer()
    registry.track("a", work)
    clock.t = 1000
    assert registry.sweep() == []
    assert "watch" in work and trainer.stopped == 0


def test_work_is_released_after_the_grace_without_a_connection(setup):
    clock, active, registry = setup
    work = SessionWork()
    work["watch"] = trainer = Trainer()
    work["fa"] = object()  # no stop(): just dropped
    registry.track("b", work)
    active.discard("b")
    assert registry.sweep() == []  # the grace starts when the sweep first sees it gone
    clock.t = 29.9
    assert registry.sweep() == []
    clock.t = 30.0
    assert registry.sweep() == ["b"]
    assert len(work) == 0 and trainer.stopped == 1
    assert work.released_at == 30.0
    clock.t = 100
    assert registry.sweep() == []  # nothing left to release


def test_a_session_that_reconnects_within_the_grace_keeps_its_work(setup):
    clock, active, registry = setup
    work = SessionWork()
    work["fa"] = "experiment"
    registry.track("b", work)
    active.discard("b")
    registry.sweep()
    clock.t = 20
    active.add("b")  # a network blip
    registry.sweep()
    active.discard("b")
    clock.t = 45  # 25 s gone since it was seen gone again
    registry.sweep()
    clock.t = 49.9
    assert registry.sweep() == []
    assert work["fa"] == "experiment"


def test_the_registry_holds_works_weakly(setup):
    _clock, _active, registry = setup
    work = SessionWork()
    registry.track("a", work)
    assert registry.tracked() == 1
    del work  # Streamlit removed the session, and its state with it
    gc.collect()
    assert registry.tracked() == 0


def test_an_empty_work_is_not_marked_released():
    work = SessionWork()
    assert work.release(5.0) == 0
    assert work.released_at is None


def test_release_survives_a_stop_that_fails():
    class Broken:
        def stop(self) -> None:
            raise RuntimeError("already stopped")

    work = SessionWork()
    work["watch"] = Broken()
    assert work.release(1.0) == 1 and len(work) == 0


def test_default_grace(monkeypatch):
    monkeypatch.delenv("AEVB_SESSION_GRACE_S", raising=False)
    assert default_grace_s(class_mode=True) == CLASS_GRACE_S
    assert default_grace_s(class_mode=False) == DEFAULT_GRACE_S
    monkeypatch.setenv("AEVB_SESSION_GRACE_S", "12")
    assert default_grace_s(class_mode=True) == 12
    for bad in ("0", "-5", "inf", "nan", "soon"):
        monkeypatch.setenv("AEVB_SESSION_GRACE_S", bad)
        assert default_grace_s(class_mode=True) == CLASS_GRACE_S


def test_build_reserves_before_it_builds_and_gives_back_on_failure():
    """SessionWork.build: a refused reservation builds nothing; a failed build holds nothing; a replaced
    object's share counts as free and goes back when the new one is held."""
    from explorer_core.memory_budget import MemoryBudget, ServerFullError

    budget = MemoryBudget(100)
    work = SessionWork()
    built: list[int] = []
    assert work.build("watch", 60, "a run", lambda: built.append(1) or "first", budget) == "first"
    assert budget.reserved_bytes == 60
    with pytest.raises(ServerFullError):
        SessionWork().build("watch", 60, "a run", lambda: built.append(2), budget)  # another visitor
    assert built == [1]
    assert work.build("watch", 90, "a run", lambda: "second", budget) == "second"  # its own 60 count as free
    assert budget.reserved_bytes == 90 and work["watch"] == "second"
    with pytest.raises(ZeroDivisionError):
        work.build("watch", 50, "a run", lambda: 1 / 0, budget)
    assert budget.reserved_bytes == 90 and work["watch"] == "second"
    assert work.build("other", 500, "the lecturer's", lambda: "big", budget, operator=True) == "big"
