"""Watch it learn within the compute budget (issue 23): the memory estimate of a configuration, and the
training thread paced by its slot (and stopped when the slot is gone)."""

from __future__ import annotations

import time

from explorer_core.compute_budget import ComputeBudget
from explorer_core.explore.watch import WatchConfig
from explorer_core.explore.watch_budget import PacedWatchExperiment, memory_refusal, watch_memory
from tests.unit.test_watch_learn import SMALL, synthetic_data


def test_the_estimate_grows_with_k_and_the_validation_images():
    small, probe = WatchConfig(), WatchConfig(n_eval=2000, iwae_k=256)
    assert watch_memory(small).total_bytes < 200 * 2**20
    # the probe measured 1.15 -> 5.8 GB for this configuration: the estimate is an upper one
    assert 4.6 * 2**30 < watch_memory(probe).total_bytes < 8 * 2**30
    assert watch_memory(WatchConfig(n_eval=2000, iwae_k=64)).total_bytes < watch_memory(probe).total_bytes
    assert memory_refusal(small, 2**30) is None
    message = memory_refusal(probe, 2**30)
    assert message and "k = 256" in message and "2,000 validation images" in message


def test_the_thread_keeps_to_its_slots_step_rate_and_stops_without_it():
    budget = ComputeBudget(slots=1, timeout_s=60, step_rate=40.0)
    assert budget.acquire("me").granted
    ex = PacedWatchExperiment(SMALL, synthetic_data())
    ex.pacer = lambda: budget.pace("me")
    ex.enqueue("joint", 10_000)
    start = time.monotonic()
    ex.start()
    time.sleep(1.0)
    ex.collect(0.5)
    rate = ex.steps / (time.monotonic() - start)
    assert ex.running and rate < 40 * 1.5 + 20  # the burst (20 steps) plus 40 a second
    budget.release("me")  # the slot is gone (released or reclaimed): the thread stops after one more step
    deadline = time.monotonic() + 5
    while ex.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not ex.running
    ex.stop()
