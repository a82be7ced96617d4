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
from explorer_core.training.recipes import TrainConfig

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
    wait_for(lambda: (manager.get(first).path / "checkpoint.json").exists(), "the first epoch's checkpoint")
    manager.cancel(first)
    run = manager.wait(first, 60)
    # a cancelled run keeps and evaluates its best epoch (as Ctrl-C does in the CLI): a loadable model
    assert run.state == "cancelled" and run.model_json is not None, run.status
    assert run.status["best_epoch"] >= 1 and "best epoch" in run.status["message"]
    loaded = load_model(run.model_json)
    assert loaded.name == first and loaded.meta["training"]["best_epoch"] == run.status["best_epoch"]
    assert [m["run_id"] for m in done_models("vae", manager.root)] == [first]
    assert run.resumable  # its checkpoint stays, to continue it
    assert manager.get(second).status.get("pid") is None  # it never started
    assert not manager.get(second).resumable  # cancelled in the queue: nothing to continue


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
        ({"lr": -1.0}, "lr must be between"),
        ({"latent_dim": 0}, "latent_dim must be between"),
        ({"epochs": 2.5}, "epochs must be a whole number"),
        ({"hidden": ["a"]}, r"hidden\[0\] must be a number"),
        ({"dropout": "0.1"}, "dropout must be a number"),
        ({"hidden": (8192,) * 16}, "needs about .* GiB on cpu .* but only .* is free"),
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


def test_an_interrupted_run_resumes_from_its_checkpoint_to_the_end(manager):
    # the worker kills itself (SIGKILL) once epoch 1's checkpoint is written: a 4-epoch run on a fast machine
    # cannot finish before the kill, as it could when the test waited for the checkpoint file to appear
    run_id = manager.start(tiny(epochs=4), data_limit=DATA_LIMIT, log_every=1, crash_after_epoch=1)
    run = manager.wait(run_id, TIMEOUT_S)
    assert run.state == "interrupted" and run.resumable and "SIGKILL" in run.status["error"], run.status
    with pytest.raises(JobError, match="only an interrupted or cancelled run"):
        manager.resume(manager.start(tiny(), data_limit=DATA_LIMIT))  # a queued or running one is not

    manager.resume(run_id)
    run = manager.wait(run_id, TIMEOUT_S)
    assert run.state == "done", run.status
    assert run.status["resumed_from"] >= 1
    loaded = load_model(run.model_json)
    assert loaded.meta["training"]["resumed"] is True
    assert [h["epoch"] for h in loaded.meta["training"]["history"]] == [1, 2, 3, 4]
    epochs = [r["epoch"] for r in run.metrics() if r["kind"] == "epoch"]
    assert epochs == [1, 2, 3, 4]  # the curves go on from the checkpoint, without duplicates
    assert not (run.path / "checkpoint.json").exists()  # a done run drops its checkpoint
    with pytest.raises(JobError, match="only an interrupted or cancelled run"):
        manager.resume(run_id)


def test_a_diverging_run_ends_failed_and_is_not_published(manager):
    # the case: a VAE with lr 10 (validation ELBO about -1e15 nats) used to end "done"
    run = manager.wait(manager.start(tiny(lr=10.0, hidden=(500, 500)), data_limit=DATA_LIMIT), TIMEOUT_S)
    assert run.state == "failed", run.status
    assert "diverged" in run.status["error"] and "smaller learning rate" in run.status["error"]
    assert run.model_json is None and done_models(root=manager.root) == []


def test_a_full_queue_refuses_more_runs(manager):
    manager.max_queued = 1
    manager.start(tiny(epochs=10_000), data_limit=DATA_LIMIT)
    manager.start(tiny(epochs=10_000), data_limit=DATA_LIMIT)
    with pytest.raises(ConfigRejectedError, match="already waiting in the queue"):
        manager.start(tiny(), data_limit=DATA_LIMIT)


def test_stale_temporary_files_are_removed_when_a_manager_starts(tmp_path):
    root = tmp_path / "runs"
    run = root / "vae-20260101-000000-dead"
    run.mkdir(parents=True)
    dead = run / ".vae.safetensors.tmp-999999999"
    mine = run / f".status.json.tmp-{os.getpid()}-1"
    dead.write_bytes(b"half")
    mine.write_text("{}")
    JobManager(root, device="cpu", supervise=False).close()
    assert not dead.exists() and mine.exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -3.4e10, None])
def test_non_finite_or_absurd_elbos_are_refused(value):
    with pytest.raises(jobs.TrainingError, match="diverged"):
        jobs.check_elbo(value, "validation ELBO")
    jobs.check_elbo(-85.0, "validation ELBO")
    jobs.check_elbo(1820.0, "validation ELBO")


def test_folders_that_are_not_runs_are_never_deleted(tmp_path):
    root = tmp_path / "runs"
    (root / "gmvae-seeds").mkdir(parents=True)  # e.g. a CLI training's output folder under the runs root
    manager = JobManager(root, device="cpu", supervise=False)
    for run_id in ("gmvae-seeds", "..", "../runs", "missing"):
        with pytest.raises(JobError):
            manager.delete(run_id)
    assert (root / "gmvae-seeds").is_dir()
    manager.close()
