"""The tutorial's FA experiments: the paper's E/M schedule and joint AEVB against the MLE."""

import json

import pytest
import torch

from explorer_core.cli import main
from explorer_core.data import make_fa_dataset
from explorer_core.explore.fa import PAPER_EM_SCHEDULE, FAExperiment, FATrainingConfig


@pytest.fixture(scope="module")
def data():
    return make_fa_dataset()


@pytest.fixture(scope="module")
def paper_run(data):
    """The tutorial's experiment 2 with the defaults (Adam 1e-2, batch 32, full covariance)."""
    experiment = FAExperiment(data)
    theta = []
    for phase, n in PAPER_EM_SCHEDULE:
        before = [p.detach().clone() for p in experiment.model.generative_parameters()]
        assert experiment.run(phase, n) == n
        after = [p.detach().clone() for p in experiment.model.generative_parameters()]
        theta.append((phase, before, after))
    return experiment, theta


@pytest.mark.slow
def test_paper_schedule_e_phases_freeze_theta_and_close_the_gap(paper_run):
    experiment, theta = paper_run
    h = experiment.history
    assert experiment.steps == 4000 and experiment.error is None
    start = 1
    for (phase, before, after), (_, n) in zip(theta, PAPER_EM_SCHEDULE, strict=True):
        end = start + n - 1
        assert set(h.phase[start : end + 1]) == {phase}
        if phase == "e_step":
            assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
            # theta bit-identical at every step: the evidence never changes, not even in the last digit
            assert set(h.evidence[start - 1 : end + 1]) == {h.evidence[start - 1]}
            assert h.gap[end] < 0.02, f"gap {h.gap[end]:.4f} after the E-phase ending at step {end}"
            assert h.gap[end] < h.gap[start - 1]
        else:
            assert h.evidence[end] > h.evidence[start - 1] + 0.05
        start = end + 1


@pytest.mark.slow
def test_paper_schedule_matches_the_tutorial_shape(paper_run):
    experiment, _ = paper_run
    h = experiment.history
    assert h.evidence[4000] > h.evidence[2000] > h.evidence[0]
    assert h.gap[2000] > h.gap[1000]  # an M-phase loosens the bound again
    assert [s[0] for s in h.phase_segments()] == ["e_step", "m_step", "e_step", "m_step"]


@pytest.mark.slow
def test_3000_joint_steps_reach_the_mle_evidence(data):
    experiment = FAExperiment(data, FATrainingConfig())
    experiment.run("joint", 3000)
    assert abs(experiment.latest.evidence - experiment.mle_evidence) < 0.01
    assert experiment.latest.evidence < experiment.true_evidence + 0.05
    assert experiment.latest.elbo < experiment.latest.evidence + 0.05  # a bound, up to estimator noise


def test_queue_and_time_budget(data):
    experiment = FAExperiment(data)
    experiment.enqueue("e_step", 30)
    experiment.enqueue("e_step", 20)
    experiment.enqueue("m_step", 10)
    assert experiment.queued_steps == 60 and len(experiment.pending) == 2
    assert experiment.run_pending(45) == 45
    assert experiment.queued_steps == 15
    assert experiment.run_pending(100) == 15
    assert experiment.history.phase_segments() == [("e_step", 1, 50), ("m_step", 51, 60)]
    with pytest.raises(ValueError):
        experiment.enqueue("e_step", 0)
    with pytest.raises(ValueError):
        experiment.enqueue("sideways", 5)


def test_settings_change_between_steps(data):
    experiment = FAExperiment(data)
    experiment.update_config(lr=0.1, batch_size=64, n_elbo_samples=5)
    assert experiment.optimizers.inference.param_groups[0]["lr"] == 0.1
    assert experiment.stepper.next_batch().shape == (64, 3)
    with pytest.raises(ValueError, match="new one"):
        experiment.update_config(posterior="diagonal")
    with pytest.raises(ValueError, match="batch size"):
        experiment.update_config(batch_size=0)


def test_nan_stops_the_run_and_keeps_the_last_good_state():
    data = make_fa_dataset(n_train=64, n_test=64)
    experiment = FAExperiment(data, FATrainingConfig(batch_size=64))
    experiment.run("joint", 5)
    good = [p.detach().clone() for p in experiment.model.parameters()]
    data.x_train[3, 1] = float("nan")  # a corrupt point enters the next minibatch
    assert experiment.run("joint", 10) == 0
    assert "step 6" in experiment.error and "after step 5" in experiment.error
    assert experiment.steps == 5 and experiment.queued_steps == 0
    assert all(torch.equal(a, b) for a, b in zip(good, experiment.model.parameters(), strict=True))


@pytest.mark.parametrize("family", ["diagonal", "fixed"])
def test_less_expressive_families_also_fit(data, family):
    experiment = FAExperiment(data, FATrainingConfig(posterior=family))
    experiment.run("joint", 600)
    assert experiment.latest.evidence > experiment.history.evidence[0] + 1.0


def test_cli_prints_one_json_object(capsys):
    assert main(["fa", "--schedule", "joint", "--steps", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 20
    assert result["true_evidence"] == pytest.approx(-3.9705, abs=5e-5)
    for key in ("test_elbo", "test_evidence", "test_gap", "mle_evidence", "seconds"):
        assert isinstance(result[key], float)
    assert result["test_evidence"] - result["test_gap"] == pytest.approx(result["test_elbo"], abs=0.5)


def test_cli_rejects_absurd_hyperparameters(capsys):
    assert main(["fa", "--lr", "50", "--json"]) == 2
    assert "learning rate" in capsys.readouterr().err
