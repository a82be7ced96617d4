"""The server's one memory budget (issue 34): reservations before anything is built, refusals that say what
fits, the operator never refused, and every reservation given back with its session's work."""

from __future__ import annotations

import gc

import pytest

from explorer_core import memory_budget
from explorer_core.memory_budget import MemoryBudget, ServerFullError, default_budget_bytes
from explorer_core.session_work import SessionWork

MB = 2**20


def test_a_reservation_above_what_is_free_is_refused_and_says_what_fits():
    budget = MemoryBudget(100 * MB)
    first = budget.reserve(60 * MB, "a Watch run")
    assert budget.reserved_bytes == 60 * MB and budget.free_bytes == 40 * MB
    with pytest.raises(ServerFullError, match=r"needs about 50 MB, and 40 MB of the 100 MB .* are free"):
        budget.reserve(50 * MB, "this Watch run")
    assert budget.reserved_bytes == 60 * MB  # a refusal holds nothing
    second = budget.reserve(40 * MB, "another")
    first.release()
    first.release()  # once only
    assert budget.reserved_bytes == 40 * MB and first.released and not second.released
    assert budget.peak_bytes == 100 * MB
    with pytest.raises(ValueError):
        budget.reserve(-1, "nothing")
    with pytest.raises(ValueError):
        MemoryBudget(0)


def test_the_operator_is_never_refused_but_counts():
    budget = MemoryBudget(10 * MB)
    budget.reserve(30 * MB, "the lecturer's run", operator=True)
    assert budget.reserved_bytes == 30 * MB and budget.free_bytes == 0
    with pytest.raises(ServerFullError):
        budget.reserve(1, "a visitor's run")


def test_a_replacement_counts_the_old_share_as_free_until_it_is_stored():
    budget = MemoryBudget(100 * MB)
    work = SessionWork()
    work.put("watch", "old run", budget.reserve(80 * MB, "old"))
    new = budget.reserve(90 * MB, "new", replacing=work.reservation("watch"))  # 20 free + the old 80
    assert budget.reserved_bytes == 170 * MB  # both held while the old object is still there
    work.put("watch", "new run", new)  # storing the new one gives the old share back
    assert budget.reserved_bytes == 90 * MB and work.reservation("watch") is new
    with pytest.raises(ServerFullError):
        budget.reserve(20 * MB, "newer", replacing=budget.reserve(0, "someone else's"))


def test_released_or_dropped_session_work_gives_its_reservations_back():
    budget = MemoryBudget(100 * MB)
    work = SessionWork()
    work.put("watch", object(), budget.reserve(70 * MB, "a run"))
    work["fa"] = object()  # no reservation
    assert work.release() == 2 and budget.reserved_bytes == 0 and work.reservation("watch") is None
    dropped = SessionWork()
    dropped.put("watch", object(), budget.reserve(50 * MB, "a run"))
    del dropped
    gc.collect()
    assert budget.reserved_bytes == 0  # Streamlit removed the session: its work's share came back


def test_the_default_budget_is_half_the_machine_or_the_setting(monkeypatch):
    monkeypatch.delenv(memory_budget.ENV_SERVER_MEMORY, raising=False)
    total = memory_budget.total_memory_bytes()
    assert total and default_budget_bytes() == int(0.5 * total)
    monkeypatch.setenv(memory_budget.ENV_SERVER_MEMORY, "2048")
    assert default_budget_bytes() == 2048 * MB
    for bad in ("12", "lots", "-5"):  # below the minimum or not a number: the default
        monkeypatch.setenv(memory_budget.ENV_SERVER_MEMORY, bad)
        assert default_budget_bytes() == int(0.5 * total)
