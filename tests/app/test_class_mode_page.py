"""Class mode without an operator passphrase on the server: the Training page is read-only for everyone (no
unlock form that could never succeed), and the exploring pages work as usual."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import pad_data

TIMEOUT = 120
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


@pytest.fixture
def class_without_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runs = tmp_path / "runs"
    monkeypatch.setenv("AEVB_RUNS_DIR", str(runs))
    monkeypatch.setenv("AEVB_CLASS_MODE", "1")
    monkeypatch.delenv("AEVB_OPERATOR_PASSPHRASE", raising=False)
    return runs


def test_without_a_passphrase_nobody_can_unlock_start_or_delete(class_without_passphrase):
    run = class_without_passphrase / "vae-20260101-120000-0007"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": {"family": "vae", "epochs": 3}, "options": {}}))
    (run / "status.json").write_text(json.dumps({"state": "failed", "created": 1.0, "error": "E: boom"}))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page(str(ROOT / "views" / "training.py")).run()
    assert not at.exception, at.exception
    assert any("read-only" in i.value and "no operator passphrase" in i.value for i in at.info)
    assert not [t for t in at.text_input if t.key == "tr_passphrase"]  # no form that cannot succeed
    assert at.button(key="tr_start").disabled
    assert at.button(key=f"tr_delete_{run.name}").disabled


def test_the_latent_pages_explore_in_class_mode(class_without_passphrase):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page(str(ROOT / "views" / "vae.py")).run()
    assert not at.exception, at.exception
    # a visitor moves z and the decoder answers: the control is live, not only drawn
    slider = at.slider(key="vae_u")
    assert not slider.disabled
    before = pad_data(at, "vae_pad")["image"]
    slider.set_value(slider.max).run()
    assert not at.exception, at.exception
    assert at.session_state["vae_u"] == slider.max
    assert pad_data(at, "vae_pad")["image"] != before
