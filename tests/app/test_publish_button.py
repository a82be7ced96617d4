"""**Publish for students** (issue 35): on the VAE, CVAE, GMVAE and VRNN pages for the operator (everyone
outside class mode), absent for a class-mode visitor; the zip it serves is the model's site, or a note when it
cannot be built."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer_core.paths import PRETRAINED_DIR
from tests.app.conftest import APP, TIMEOUT, VIEWS
from views.components.publish_button import site_zip_of

LABEL = "Publish for students"


def _labels(at: AppTest) -> list[str]:
    """The labels of the page's download buttons (AppTest shows them as UnknownElements)."""
    found = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        label = getattr(proto, "label", None)
        if isinstance(label, str) and getattr(node, "type", "") == "download_button":
            found.append(label)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


def _open(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page(str(VIEWS / f"{page}.py")).run()
    assert not at.exception, at.exception
    return at


#: each model page and the shipped model it opens with
PAGES = [("vae", "vae-cb-l2"), ("cvae", "cvae-cb-l2"), ("gmvae", "gmvae-marginal"), ("vrnn", "vrnn")]


@pytest.mark.parametrize(("page", "model"), PAGES)
def test_the_operator_gets_the_button(page, model):
    if not (PRETRAINED_DIR / f"{model}.json").is_file():
        pytest.skip("shipped models missing")
    assert LABEL in _labels(_open(page))


@pytest.mark.parametrize(("page", "model"), PAGES)
def test_a_class_mode_visitor_does_not(monkeypatch, tmp_path, page, model):
    if not (PRETRAINED_DIR / f"{model}.json").is_file():
        pytest.skip("shipped models missing")
    monkeypatch.setenv("AEVB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("AEVB_CLASS_MODE", "1")
    monkeypatch.delenv("AEVB_OPERATOR_PASSPHRASE", raising=False)
    assert LABEL not in _labels(_open(page))


def test_the_zip_is_the_site_or_a_note(tmp_path):
    if not (PRETRAINED_DIR / "vrnn.json").is_file():
        pytest.skip("shipped models missing")
    with zipfile.ZipFile(io.BytesIO(site_zip_of(PRETRAINED_DIR / "vrnn.json", "vrnn-site"))) as archive:
        assert {"vrnn-site/index.html", "vrnn-site/models/vrnn.js"} <= set(archive.namelist())
    with zipfile.ZipFile(io.BytesIO(site_zip_of(tmp_path / "gone.json", "gone-site"))) as archive:
        assert archive.namelist() == ["gone-site/README.txt"]
        note = archive.read("gone-site/README.txt").decode()
        assert "could not be built" in note and str(tmp_path) not in note and str(Path.home()) not in note
