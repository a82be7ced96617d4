"""The Training page under AppTest, with ``AEVB_RUNS_DIR`` in a temporary folder: it renders, a bad value is
explained instead of started, a tiny job started from the page shows up there and then in the VAE picker,
and a failed run shows its error. MNIST must be on disk (``make test`` fetches it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer_core.jobs import list_runs

TIMEOUT = 120
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGE = str(ROOT / "views" / "training.py")


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "runs"
    monkeypatch.setenv("AEVB_RUNS_DIR", str(folder))
    return folder


def open_training() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])


@pytest.mark.usefixtures("runs_dir")
def test_the_page_offers_every_family_and_its_recipes():
    at = open_training()
    assert at.title[0].value.endswith("Training")
    family = at.selectbox(key="tr_family")
    assert family.options == ["VAE", "CVAE", "GMVAE (marginal)", "GMVAE (Gumbel)", "VRNN"]
    assert "vae-cb-l20" in at.radio(key="tr_preset_vae").options
    assert "No runs yet" in texts(at)
    assert not at.button(key="tr_start").disabled

    family.set_value("gmvae-gumbel").run()
    assert not at.exception
    recipes = at.radio(key="tr_preset_gmvae-gumbel")
    assert recipes.value == "quick" and recipes.options[0].startswith("quick (a lecture-sized run: 50 s")
    assert recipes.options[1] == "gmvae-gumbel"
    recipes.set_value("gmvae-gumbel").run()
    assert at.number_input(key="tr_temp_end_gmvae-gumbel_gmvae-gumbel").value == pytest.approx(0.5)


@pytest.mark.usefixtures("runs_dir")
def test_an_absurd_value_is_explained_and_cannot_start():
    at = open_training()
    at.text_input(key="tr_hidden_vae_quick").input(", ".join(["8192"] * 16)).run()  # the default recipe
    assert any("Cannot start" in e.value and "GiB" in e.value for e in at.error)
    assert at.button(key="tr_start").disabled


def test_a_tiny_job_started_from_the_page_is_shown_and_lands_in_the_vae_picker(runs_dir):
    at = open_training()
    at.radio(key="tr_preset_vae").set_value("quick").run()
    at.number_input(key="tr_epochs_vae_quick").set_value(1)
    at.text_input(key="tr_hidden_vae_quick").input("16")
    at.selectbox(key="tr_data_limit").set_value(300)
    at.button(key="tr_start").click().run()
    assert not at.exception, at.exception
    runs = list_runs(runs_dir)
    assert len(runs) == 1
    run_id = runs[0].id
    assert run_id in texts(at)

    deadline = time.monotonic() + TIMEOUT
    while list_runs(runs_dir)[0].active:
        assert time.monotonic() < deadline, "the tiny run did not finish"
        time.sleep(0.5)
    at.run()
    assert not at.exception, at.exception
    assert list_runs(runs_dir)[0].state == "done"
    assert any("Done in" in s.value and run_id in s.value for s in at.success)
    assert at.selectbox(key="tr_inspect").value == run_id

    from views._models import available_models, model_label

    models = available_models("vae")
    ours = [m for m in models if m.get("run_id") == run_id]
    assert len(ours) == 1 and run_id in model_label(ours[0])


def test_a_failed_run_shows_its_error_and_traceback(runs_dir):
    run = runs_dir / "vae-20260101-120000-beef"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": {"family": "vae", "epochs": 3}, "options": {}}))
    status = {
        "state": "failed",
        "created": 1.0,
        "started": 2.0,
        "finished": 5.0,
        "device": "cpu",
        "error": "TrainingError: epoch 1, step 7: the ELBO is nan",
        "traceback": "Traceback (most recent call last):\n  ...\nTrainingError: epoch 1, step 7",
    }
    (run / "status.json").write_text(json.dumps(status))
    at = open_training()
    assert any("the ELBO is nan" in e.value for e in at.error)
    assert any(x.label == "Traceback" for x in at.expander)
    assert at.button(key="tr_delete_vae-20260101-120000-beef")


def tiny_interrupted_run(runs_dir: Path) -> str:
    """A tiny VAE run killed after its first checkpoint, as a server restart leaves it: interrupted."""
    from explorer_core.jobs import JobManager
    from explorer_core.training.recipes import TrainConfig

    config = TrainConfig.for_family(
        "vae", latent_dim=2, hidden=(16,), epochs=3, batch_size=50, tsne_points=0, n_validation=100
    )
    manager = JobManager(runs_dir, device="cpu", supervise=False)
    # the worker kills itself once epoch 1's checkpoint is on disk: no race with a run that finishes fast
    run_id = manager.start(
        config, label="VAE", preset="quick", data_limit=300, log_every=1, crash_after_epoch=1
    )
    deadline = time.monotonic() + TIMEOUT
    while manager.get(run_id).active:
        assert time.monotonic() < deadline, "the killed run was not settled"
        manager.tick()
        time.sleep(0.1)
    manager.close()
    assert manager.get(run_id).state == "interrupted"
    assert (runs_dir / run_id / "checkpoint.json").exists()
    return run_id


def test_an_interrupted_run_resumes_from_the_page(runs_dir):
    run_id = tiny_interrupted_run(runs_dir)
    at = open_training()
    assert any("Interrupted" in w.value and "resumed" in w.value for w in at.warning)
    at.button(key=f"tr_resume_{run_id}").click().run()
    assert not at.exception, at.exception
    assert list_runs(runs_dir)[0].state in ("queued", "running", "done")
    deadline = time.monotonic() + TIMEOUT
    while list_runs(runs_dir)[0].active:
        assert time.monotonic() < deadline, "the resumed run did not finish"
        time.sleep(0.5)
    run = list_runs(runs_dir)[0]
    assert run.state == "done" and run.status["resumed_from"] >= 1, run.status
    at.run()
    assert any("Done in" in s.value and run_id in s.value for s in at.success)
    assert [r["epoch"] for r in run.metrics() if r["kind"] == "epoch"] == [1, 2, 3]


@pytest.mark.usefixtures("runs_dir")
def test_an_invalid_value_disables_start_instead_of_starting_the_previous_one():
    at = open_training()
    at.radio(key="tr_preset_vae").set_value("quick").run()
    at.number_input(key="tr_epochs_vae_quick").set_value(0).run()
    assert any("Cannot start" in e.value and "epochs must be between 1" in e.value for e in at.error)
    assert at.button(key="tr_start").disabled
    at.number_input(key="tr_lr_vae_quick").set_value(50.0).run()
    assert at.button(key="tr_start").disabled


@pytest.mark.usefixtures("runs_dir")
def test_an_empty_page_shows_what_a_run_looks_like():
    at = open_training()
    assert "What a run looks like" in texts(at)
    charts = at.get("plotly_chart")
    assert len(charts) == 1 and "validation" in charts[0].proto.spec  # the shipped model's curves


def test_damaged_run_folders_are_listed_and_the_rest_works(runs_dir):
    good = runs_dir / "vae-20260101-120000-0001"
    good.mkdir(parents=True)
    (good / "config.json").write_text(json.dumps({"config": {"family": "vae", "epochs": 3}, "options": {}}))
    (good / "status.json").write_text(json.dumps({"state": "failed", "created": 1.0, "error": "E: boom"}))
    bad = runs_dir / "vae-20260101-120000-0002"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"config": {"family": "vae"}}))
    (bad / "status.json").write_text(json.dumps({"state": "done", "created": "yesterday"}))
    at = open_training()
    assert any("1 run folder cannot be read" in w.value for w in at.warning)
    assert any("created must be a number" in t.value for t in at.text)
    assert any("boom" in e.value for e in at.error)  # the valid run is still shown
    at.button(key="tr_delete_bad_vae-20260101-120000-0002").click().run()
    assert not bad.exists() and good.exists()


def test_class_mode_visitors_explore_but_only_the_operator_changes_runs(runs_dir, monkeypatch):
    monkeypatch.setenv("AEVB_CLASS_MODE", "1")
    monkeypatch.setenv("AEVB_OPERATOR_PASSPHRASE", "correct horse")
    run = runs_dir / "vae-20260101-120000-0003"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": {"family": "vae", "epochs": 3}, "options": {}}))
    status = {"state": "failed", "created": 1.0, "error": "E: boom", "traceback": "Traceback /srv/secret.py"}
    (run / "status.json").write_text(json.dumps(status))
    at = open_training()
    assert at.button(key="tr_start").disabled
    assert at.button(key=f"tr_delete_{run.name}").disabled
    assert not any(x.label == "Traceback" for x in at.expander)  # no server paths for visitors
    assert str(runs_dir) not in texts(at)

    at.text_input(key="tr_passphrase").input("wrong")
    at.button(key="tr_unlock").click().run()
    assert any("not the operator's passphrase" in e.value for e in at.error)
    assert at.button(key="tr_start").disabled

    at.text_input(key="tr_passphrase").input("correct horse")
    at.button(key="tr_unlock").click().run()
    assert not at.exception, at.exception
    assert any("Operator mode" in s.value for s in at.success)
    assert not at.button(key="tr_start").disabled
    assert not at.button(key=f"tr_delete_{run.name}").disabled
    assert any(x.label == "Traceback" for x in at.expander)


def test_a_session_cannot_queue_more_than_its_limit(runs_dir, monkeypatch):
    monkeypatch.setenv("AEVB_SESSION_RUN_LIMIT", "1")
    at = open_training()
    at.radio(key="tr_preset_vae").set_value("quick").run()
    at.number_input(key="tr_epochs_vae_quick").set_value(10_000)
    at.text_input(key="tr_hidden_vae_quick").input("16")
    at.selectbox(key="tr_data_limit").set_value(300)
    at.button(key="tr_start").click().run()
    assert not at.exception, at.exception
    assert len(list_runs(runs_dir)) == 1
    assert at.button(key="tr_start").disabled
    assert any("at most 1" in w.value for w in at.warning)
    run_id = list_runs(runs_dir)[0].id
    at.button(key=f"tr_cancel_{run_id}").click().run()
    deadline = time.monotonic() + TIMEOUT
    while list_runs(runs_dir)[0].active:
        assert time.monotonic() < deadline, "the cancelled run did not end"
        time.sleep(0.5)
    assert list_runs(runs_dir)[0].state == "cancelled"
