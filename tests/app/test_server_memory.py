"""The server's memory budget on the Watch page (issue 34): a full server refuses a visitor's run before
anything is built and says what fits; when a share comes back, the page starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer_core import memory_budget
from explorer_core.data import MNISTUnavailable, load_mnist_splits
from explorer_core.memory_budget import MemoryBudget

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_server(monkeypatch, tmp_path):
    try:
        load_mnist_splits()
    except MNISTUnavailable as err:
        pytest.skip(f"MNIST is not available: {err}")
    monkeypatch.setenv("AEVB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("AEVB_OPERATOR_PASSPHRASE", raising=False)
    monkeypatch.setenv("AEVB_CLASS_MODE", "1")  # a visitor (outside class mode every session is the operator)
    budget = MemoryBudget(2048 * 2**20)
    monkeypatch.setattr(memory_budget, "_PROCESS", budget)
    return budget


def test_a_full_server_refuses_a_watch_run_and_builds_nothing(small_server):
    others = small_server.reserve(small_server.limit_bytes - 2**20, "other visitors' runs")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page(str(ROOT / "views" / "watch.py")).run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert "the server is full" in errors and "1 MB of the 2,048 MB" in errors, errors
    assert not [m for m in at.metric if m.label == "Step"]  # no run was built
    assert small_server.reserved_bytes == others.nbytes  # the refusal holds nothing

    others.release()  # the other visitors left: the page starts and holds its estimate
    at.run()
    assert not at.exception, at.exception
    assert [m for m in at.metric if m.label == "Step"]
    assert 0 < small_server.reserved_bytes < small_server.limit_bytes
