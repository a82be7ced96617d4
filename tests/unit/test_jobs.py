"""Background training jobs: a tiny run's lifecycle on disk, queueing and cancelling, a failing run, a killed
worker found as interrupted by a new manager, and the checks that reject a configuration before it starts.

Every job is a real process (spawn) training a tiny VAE on the first few hundred MNIST images (MNIST must be
on disk: ``make test`` fetches it).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from explorer_core import jobs
from explorer_core.artifacts import build_model, load_model
from explorer_core.jobs import ConfigRejectedError, JobError, JobManager, done_models, read_preview
from explorer_core.training import TrainConfig

TIMEOUT_S = 180
DATA_LIMIT = 300


def tiny(**overrides) -> TrainConfig:
    """A VAE small enough to train an epoch on 300 images in well under a second."""
    base = {"latent_dim": 2, "hidden": (16,), "epochs": 2, "batch_size": 50, "tsne_points": 0}
    return TrainConfig.for_family("vae", **{**base, "n_validation": 100, **overrides})


@pytest.fixture
def manager(tmp_path):
    m = JobManager(tmp_path / "runs", device="cpu", poll_s=0.2, cancel_grace_s=30)
    yield m
    for run in m.runs():  # never leave a job behind
        if run.active:
            m.cancel(run.id)
    for run in m.runs():
        if run.active:
            m.wait(run.id, TIMEOUT_S)
    m.close()


def wait_for(check, what: str, timeout_s: float = TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)
    return result


def test_a_run_goes_from_queued_to_done_with_metrics_preview_and_a_loadable_model(manager):
    run_id = manager.start(tiny(), label="VAE", preset="quick", data_limit=DATA_LIMIT, log_every=2)
    assert manager.get(run_id).state in ("queued", "running")
    run = manager.wait(run_id, TIMEOUT_S)
    assert run.state == "done", run.status
    assert run.status["pid"] and run.status["device"] == "cpu"
    assert run.status["finished"] >= run.status["started"] >= run.status["created"]

    rows = run.metrics()
    steps = [r for r in rows if r["kind"] == "step"]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert len(steps) >= 2 and all(isinstance(r["train_elbo"], float) for r in steps)
    assert [r["epoch"] for r in epochs] == [1, 2] and all(r["val_elbo"] is not None for r in epochs)
    assert run.progress().fraction == 1.0

    images, epoch = read_preview(run.path)
    assert images.shape == (16, 784) and epoch == 2 and images.min() >= 0 and images.max() <= 1

    loaded = load_model(run.model_json)
    assert loaded.family == "vae" and loaded.name == run_id
    assert loaded.meta["training"]["n_train"] == DATA_LIMIT
    assert [m["run_id"] for m in done_models("vae", manager.root)] == [run_id]
    assert done_models("cvae", manager.root) == []

    manager.delete(run_id)
    assert not run.path.exists() and manager.runs() == []


def test_runs_queue_behind_the_concurrency_limit_and_can_be_cancelled(manager):
    long_run = tiny(epochs=10_000)
    first = manager.start(long_run, data_limit=DATA_LIMIT, log_every=1)
    second = manager.start(long_run, data_limit=DATA_LIMIT, log_every=1)
    wait_for(lambda: manager.get(first).metrics(), "the first run's metrics")
    assert manager.get(second).state == "queued"
    with pytest.raises(JobError, match="cancel it before deleting"):
        manager.delete(first)

    manager.cancel(second)
    assert manager.get(second).state == "cancelled"
    manager.cancel(first)
    run = manager.wait(first, 60)
    assert run.state == "cancelled" and run.model_json is None
    assert not list(run.path.glob("*.safetensors")) or (run.path / jobs.PREVIEW_FILE).exists()
    assert manager.get(second).status.get("pid") is None  # it never started


def test_a_run_that_raises_ends_failed_with_its_error_and_traceback(manager, tmp_path, monkeypatch):
    monkeypatch.setenv("AEVB_DATA_DIR", str(tmp_path / "no-data"))  # inherited by the spawned job
    run = manager.wait(manager.start(tiny(), data_limit=DATA_LIMIT), TIMEOUT_S)
    assert run.state == "failed"
    assert run.status["error"].startswith("MNISTUnavailable")
    assert "Traceback" in run.status["traceback"]
    assert run.model_json is None and done_models(root=manager.root) == []


def test_a_killed_worker_is_found_interrupted_by_a_new_manager(tmp_path):
    root = tmp_path / "runs"
    first = JobManager(root, device="cpu", supervise=False)
    run_id = first.start(tiny(epochs=10_000), data_limit=DATA_LIMIT, log_every=1)
    wait_for(lambda: first.get(run_id).metrics(), "the run's first metrics")
    os.kill(first.get(run_id).status["pid"], signal.SIGKILL)
    first.close()  # the old server is gone; its process table with it

    second = JobManager(root, device="cpu", poll_s=0.2)
    run = wait_for(lambda: (r := second.get(run_id)).state != "running" and r, "the run to be settled", 30)
    assert run.state == "interrupted"
    assert "process is gone" in run.status["error"]
    assert run.model_json is None
    second.delete(run_id)  # an interrupted run can be deleted
    second.close()


def test_the_owning_manager_reports_the_kill_signal(manager):
    run_id = manager.start(tiny(epochs=10_000), data_limit=DATA_LIMIT, log_every=1)
    wait_for(lambda: manager.get(run_id).metrics(), "the run's first metrics")
    os.kill(manager.get(run_id).status["pid"], signal.SIGKILL)
    run = manager.wait(run_id, 30)
    assert run.state == "interrupted" and "SIGKILL" in run.status["error"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": 10**9}, "epochs must be between 1 and 10000"),
        ({"lr": -1.0}, "learning rate must be in"),
        ({"latent_dim": 0}, "latent_dim must be in"),
        ({"hidden": (8192,) * 80}, "needs about .* GiB on cpu .* but only .* is free"),
        ({"batch_size": 0}, "batch_size must be between"),
    ],
)
def test_absurd_configurations_are_rejected_before_a_job_starts(manager, overrides, message):
    with pytest.raises(ConfigRejectedError, match=message):
        manager.start({**tiny().to_dict(), **overrides})
    assert manager.runs() == []


def test_unknown_fields_and_memory_estimates():
    with pytest.raises(ConfigRejectedError, match="unexpected keyword argument 'depth'"):
        jobs.validate_config({"family": "vae", "depth": 3})
    small, big = jobs.estimate_memory(tiny()), jobs.estimate_memory(tiny(hidden=(4096, 4096)))
    built = build_model("vae", tiny().model_config())
    assert small.parameters == sum(p.numel() for p in built.parameters())
    assert big.parameter_bytes > 100 * small.parameter_bytes and big.total_bytes > small.total_bytes
    assert jobs.eta_text(None) == "estimating…" and jobs.eta_text(75) == "about 1 min 15 s left"
