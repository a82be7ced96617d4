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
    assert at.radio(key="tr_preset_gmvae-gumbel").options[0] == "gmvae-gumbel"
    assert at.number_input(key="tr_temp_end_gmvae-gumbel_gmvae-gumbel").value == pytest.approx(0.5)


@pytest.mark.usefixtures("runs_dir")
def test_an_absurd_value_is_explained_and_cannot_start():
    at = open_training()
    at.text_input(key="tr_hidden_vae_vae-cb-l20").input(", ".join(["8192"] * 80)).run()
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
