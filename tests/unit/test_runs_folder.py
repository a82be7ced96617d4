"""One runs folder: the repository's runs/ (or AEVB_RUNS_DIR); old runs in explorer_core/runs/ come back."""

import shutil
import uuid

from explorer_core import paths
from explorer_core.cli import main
from explorer_core.jobs import store


def test_the_default_runs_folder_is_the_repositorys_runs(monkeypatch):
    monkeypatch.delenv("AEVB_RUNS_DIR", raising=False)
    monkeypatch.setattr(store, "_legacy_done", [True])  # no move in this test
    assert store.runs_root() == paths.REPO_ROOT / "runs"
    assert (paths.REPO_ROOT / "explorer_core").is_dir() and (paths.REPO_ROOT / "pretrained").is_dir()
    monkeypatch.setenv("AEVB_RUNS_DIR", "/somewhere/else")
    assert str(store.runs_root()) == "/somewhere/else"


def test_the_cli_default_run_dir_is_under_the_same_folder(monkeypatch, tmp_path, capsys):
    # `train` refuses to start over a checkpoint, naming the folder it would use: the runs folder's cli-NAME
    monkeypatch.delenv("AEVB_RUNS_DIR", raising=False)
    monkeypatch.setattr(store, "_legacy_done", [True])
    name = f"test-runs-folder-{uuid.uuid4().hex[:8]}"
    run_dir = paths.REPO_ROOT / "runs" / f"cli-{name}"
    run_dir.mkdir(parents=True)
    try:
        (run_dir / "checkpoint.json").write_text("{}")
        assert main(["train", "vae", "--preset", "vae-cb-l2", "--out", str(tmp_path), "--name", name]) == 2
        assert f"{run_dir} already holds a checkpoint" in capsys.readouterr().err
    finally:
        shutil.rmtree(run_dir)


def test_runs_left_in_the_old_folder_are_moved_with_a_message(tmp_path, caplog):
    legacy, root = tmp_path / "explorer_core" / "runs", tmp_path / "runs"
    for run_id in ("20261203-a", "20261203-b"):
        (legacy / run_id).mkdir(parents=True)
        (legacy / run_id / "status.json").write_text('{"state": "done"}')
    (root / "20261203-b").mkdir(parents=True)  # the same id already in the new folder: left alone
    with caplog.at_level("WARNING"):
        moved = store.move_legacy_runs(legacy, root)
    assert moved == ["20261203-a"]
    assert (root / "20261203-a" / "status.json").read_text() == '{"state": "done"}'
    assert (legacy / "20261203-b").is_dir()  # not overwritten, not lost
    assert "moved 1 run(s)" in caplog.text and "20261203-b" in caplog.text
    assert store.move_legacy_runs(tmp_path / "nothing-here", root) == []


def test_the_old_folder_is_removed_once_empty(tmp_path):
    legacy, root = tmp_path / "old", tmp_path / "runs"
    (legacy / "x").mkdir(parents=True)
    assert store.move_legacy_runs(legacy, root) == ["x"]
    assert not legacy.exists() and (root / "x").is_dir()


def test_publish_run_writes_the_last_status_and_removes_what_is_none(tmp_path):
    """jobs.store.publish_run, the one last status write of a run that made a model (the worker's and
    Watch's export): state, finish time, model file name, test ELBO and message merged in; None removes."""
    from explorer_core.jobs.store import publish_run, read_status, update_status

    run = tmp_path / "vae-run"
    run.mkdir()
    update_status(run, state="running", created=1.0, finishing=True)
    status = publish_run(run, "done", run / "vae-run.json", -95.5, "done after 3 epochs", finishing=None)
    assert status["state"] == "done" and status["model"] == "vae-run.json" and status["test_elbo"] == -95.5
    assert "finishing" not in status and status["created"] == 1.0 and status["finished"] > 1.0
    assert read_status(run)["message"] == "done after 3 epochs"
    fresh = tmp_path / "watch-run"  # a run being made has no status yet
    fresh.mkdir()
    assert "test_elbo" not in publish_run(fresh, "done", fresh / "m.json", None, "exported")
