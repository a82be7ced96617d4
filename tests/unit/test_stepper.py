"""The one phased stepper of the FA and Watch experiments (explorer_core.inference.stepper)."""

import pytest
import torch

from explorer_core.inference.aevb import make_optimizers
from explorer_core.inference.stepper import PhasedStepper, segments_until
from explorer_core.models.factor_analysis import FAConfig, FactorAnalysis


@pytest.fixture
def stepper():
    torch.manual_seed(0)
    model = FactorAnalysis(FAConfig(posterior="full", seed=0))
    x = torch.randn(100, 3)
    return PhasedStepper(model, make_optimizers(model, 1e-2), x, batch_size=32, seed=0)


def test_an_order_visits_every_point_once(stepper):
    rows = torch.cat([stepper.next_batch() for _ in range(3)])  # 3 x 32 of 100: one order
    assert len({tuple(r.tolist()) for r in rows}) == 96


def test_steps_are_recorded_as_phase_runs(stepper):
    for phase in ["e_step"] * 3 + ["m_step"] * 2 + ["e_step"]:
        stepper.step(phase)
    assert stepper.steps == 6
    assert stepper.segments == [["e_step", 1, 3], ["m_step", 4, 5], ["e_step", 6, 6]]


def test_restore_brings_back_parameters_steps_and_the_phase_record(stepper):
    stepper.step("joint")
    saved = stepper.snapshot()
    before = [p.detach().clone() for p in stepper.model.parameters()]
    record = stepper.segments
    stepper.step("joint")
    stepper.step("m_step")
    assert any(not torch.equal(a, b) for a, b in zip(before, stepper.model.parameters(), strict=True))
    stepper.restore(saved)
    assert stepper.steps == 1
    assert stepper.segments == [["joint", 1, 1]] and stepper.segments is record
    assert all(torch.equal(a, b) for a, b in zip(before, stepper.model.parameters(), strict=True))


def test_an_e_step_leaves_theta_as_it_was(stepper):
    theta = [p.detach().clone() for p in stepper.model.generative_parameters()]
    stepper.step("e_step")
    assert all(torch.equal(a, b) for a, b in zip(theta, stepper.model.generative_parameters(), strict=True))


def test_the_queue_and_its_room(stepper):
    stepper.enqueue("e_step", 5)
    stepper.enqueue_schedule([("m_step", 2), ("e_step", 1)])
    assert stepper.queued_steps == 8
    assert stepper.queue_room == stepper.queue.max_steps - 8
    with pytest.raises(ValueError):
        stepper.enqueue("sideways", 1)


def test_segments_until_cuts_the_runs():
    runs = [["e_step", 1, 10], ["m_step", 11, 20]]
    assert segments_until(runs, 15) == [["e_step", 1, 10], ["m_step", 11, 15]]
    assert segments_until(runs, 10) == [["e_step", 1, 10]]
