"""Class mode in a real Chromium (``make serve`` sets ``AEVB_CLASS_MODE=1``): a visitor can explore pages and
runs but cannot start or delete a run; with the operator's passphrase the same browser can do both.

The server runs with ``AEVB_CLASS_MODE=1``, ``AEVB_OPERATOR_PASSPHRASE`` and a temporary runs folder holding
one finished (failed) run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import fresh_page, streamlit_server
from tests.browser.test_browser import assert_no_exception, poll, wait_idle
from tests.browser.test_training_browser import LOAD_TIMEOUT_S, open_page, set_number

pytestmark = pytest.mark.browser

PASSPHRASE = "a lecture on AEVB"
RUN_ID = "vae-20260101-120000-c1a5"


def finished_run(root: Path) -> None:
    folder = root / RUN_ID
    folder.mkdir(parents=True)
    config = {"config": {"family": "vae", "latent_dim": 2, "hidden": [16], "epochs": 2}, "options": {}}
    (folder / "config.json").write_text(json.dumps(config))
    status = {
        "state": "failed",
        "created": 1.0,
        "started": 2.0,
        "finished": 5.0,
        "device": "cpu",
        "error": "TrainingError: a failure for the class to see",
        "traceback": "Traceback (most recent call last):\n  File /srv/secret/path.py\nTrainingError",
    }
    (folder / "status.json").write_text(json.dumps(status))


@pytest.fixture(scope="module")
def class_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("class-mode")
    runs = folder / "runs"
    finished_run(runs)
    env = {
        "AEVB_RUNS_DIR": str(runs),
        "AEVB_DEVICE": "cpu",
        "AEVB_CLASS_MODE": "1",
        "AEVB_OPERATOR_PASSPHRASE": PASSPHRASE,
    }
    with streamlit_server(folder / "server.log", env) as url:
        yield url, runs
    assert PASSPHRASE not in (folder / "server.log").read_text(errors="replace")  # never logged


def button(page, name: str):
    return page.get_by_role("button", name=name).first


def test_a_visitor_explores_but_cannot_start_or_delete_and_the_operator_can(browser, class_url):
    url, runs = class_url
    with fresh_page(browser) as page:
        page.set_default_timeout(LOAD_TIMEOUT_S * 1000)
        open_page(page, f"{url}/training", "Training")
        assert page.get_by_text("Served to a class").count() == 1
        assert button(page, "Start training").is_disabled()
        assert button(page, "Delete run").is_disabled()
        assert page.get_by_text("a failure for the class to see").count() >= 1  # runs are visible
        body = page.locator("body").inner_text()
        assert "/srv/secret" not in body and str(runs) not in body  # no traceback, no server path
        open_page(page, f"{url}/factor-analysis", "Factor analysis")  # exploring works
        assert_no_exception(page)

        open_page(page, f"{url}/training", "Training")
        box = page.get_by_label("Operator passphrase")
        box.fill("not it")
        button(page, "Unlock").click()
        wait_idle(page)
        assert page.get_by_text("not the operator's passphrase").count() == 1
        assert button(page, "Start training").is_disabled()

        box = page.get_by_label("Operator passphrase")
        box.fill(PASSPHRASE)
        button(page, "Unlock").click()
        wait_idle(page)
        poll(lambda: page.get_by_text("Operator mode").count(), 30, "operator mode")
        assert not button(page, "Delete run").is_disabled()
        button(page, "Delete run").click()
        wait_idle(page)
        poll(lambda: not (runs / RUN_ID).exists(), 30, "the run to be deleted")

        page.get_by_text("quick (a lecture", exact=False).click()
        wait_idle(page)
        set_number(page, "Epochs", "1")
        hidden = page.get_by_label("Hidden layers", exact=True)
        hidden.fill("16")
        hidden.press("Enter")
        wait_idle(page)
        assert not button(page, "Start training").is_disabled()
        button(page, "Start training").click()
        poll(lambda: [d for d in runs.iterdir() if d.name.startswith("vae-")], 60, "a run folder")
        cancel = page.get_by_role("button", name="Cancel")
        poll(lambda: cancel.count(), 60, "the new run's Cancel button")
        cancel.first.click()
        wait_idle(page)
        assert_no_exception(page)
