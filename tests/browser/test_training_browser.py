"""The Training page in a real Chromium: start a tiny VAE run from the page, watch its progress and learning
curves come in, and find the finished run in the VAE page's model picker.

The module starts its own server with ``AEVB_RUNS_DIR`` in a temporary folder; the job is a real background
process training a 16-unit VAE on the first 1,000 MNIST images (MNIST must be on disk).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.browser.conftest import fresh_page, pad_image_src, streamlit_server
from tests.browser.test_browser import assert_no_exception, poll, wait_idle
from tests.browser.test_latent_browser import choose_model

pytestmark = pytest.mark.browser

RUN_TIMEOUT_S = 300
LOAD_TIMEOUT_S = 300  # generous: a busy 2-core machine loads the VAE page slowly
EPOCHS = 10


@pytest.fixture(scope="module")
def training_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose runs live in a fresh temporary folder."""
    folder = tmp_path_factory.mktemp("browser-runs")
    env = {"AEVB_RUNS_DIR": str(folder / "runs"), "AEVB_DEVICE": "cpu"}
    with streamlit_server(folder / "server.log", env) as url:
        yield url


def open_page(page, url: str, title: str) -> None:
    """Go to ``url`` and wait for its title and for the app to be idle (long timeouts)."""
    page.goto(url, timeout=LOAD_TIMEOUT_S * 1000)
    page.locator("h1", has_text=title).first.wait_for(timeout=LOAD_TIMEOUT_S * 1000)
    wait_idle(page, LOAD_TIMEOUT_S)


def set_number(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_idle(page)


def test_a_run_started_in_the_browser_shows_progress_and_lands_in_the_vae_picker(browser, training_url):
    with fresh_page(browser) as page:
        page.set_default_timeout(LOAD_TIMEOUT_S * 1000)
        open_page(page, f"{training_url}/training", "Training")
        page.get_by_text("quick (a lecture", exact=False).click()
        wait_idle(page)
        set_number(page, "Epochs", str(EPOCHS))
        hidden = page.get_by_label("Hidden layers", exact=True)
        hidden.fill("16")
        hidden.press("Enter")
        wait_idle(page)
        page.get_by_test_id("stSelectbox").filter(has_text="Training data").click()
        page.get_by_role("option", name="first 1,000 of each split").click()
        wait_idle(page)
        page.get_by_role("button", name="Start training").click()

        # the run's card: a progress bar whose text moves through the epochs, and the learning curves
        progress = page.get_by_test_id("stProgress")
        seen = poll(
            lambda: (
                progress.count()
                and re.search(rf"epoch ([1-9]\d*) of {EPOCHS}", progress.first.inner_text())
                and progress.first.inner_text()
            ),
            RUN_TIMEOUT_S,
            "the progress bar to report an epoch",
            interval_s=0.1,
        )
        assert "left" in seen
        run_code = page.locator("code", has_text=re.compile(r"^vae-\d{8}-\d{6}-[0-9a-f]{4}$"))
        run_id = run_code.first.inner_text()
        done = page.get_by_test_id("stAlertContentSuccess").filter(has_text="Done in")
        poll(lambda: done.count(), RUN_TIMEOUT_S, "the run to finish")
        assert run_id in done.first.inner_text()
        wait_idle(page)
        lines = page.locator("[class*='st-key-tr_curves_'] path.js-line")
        poll(lambda: lines.count() >= 2, 30, "the learning curves")
        assert page.get_by_test_id("stImage").filter(has_text="samples after epoch").count() == 1
        downloads = page.get_by_test_id("stDownloadButton")
        poll(lambda: downloads.count() == 2, 30, "the weights and JSON download buttons")
        assert_no_exception(page)

        open_page(page, f"{training_url}/vae", "VAE")
        choose_model(page, "vae", run_id)
        # the searchable selectbox shows its value in an <input>, not in its text
        picker = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").locator("input").first
        poll(lambda: run_id in picker.input_value(), LOAD_TIMEOUT_S, "the run to be the chosen VAE model")
        # the run's decoder answers on the latent pad (a PNG data URL in the pad's decoded image)
        poll(
            lambda: pad_image_src(page, "vae_pad").startswith("data:image"), LOAD_TIMEOUT_S, "a decoded image"
        )
        assert_no_exception(page)


@pytest.fixture(scope="module")
def interrupted_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server whose runs folder holds one tiny run killed after its first checkpoint (interrupted)."""
    from tests.app.test_training_page import tiny_interrupted_run

    folder = tmp_path_factory.mktemp("browser-resume")
    run_id = tiny_interrupted_run(folder / "runs")
    env = {"AEVB_RUNS_DIR": str(folder / "runs"), "AEVB_DEVICE": "cpu"}
    with streamlit_server(folder / "server.log", env) as url:
        yield url, run_id


def test_an_interrupted_run_resumes_in_the_browser(browser, interrupted_url):
    url, run_id = interrupted_url
    with fresh_page(browser) as page:
        page.set_default_timeout(LOAD_TIMEOUT_S * 1000)
        open_page(page, f"{url}/training", "Training")
        warning = page.get_by_test_id("stAlertContentWarning").filter(has_text="Interrupted")
        poll(lambda: warning.count(), 60, "the interrupted run's warning")
        assert "resumed" in warning.first.inner_text()
        page.get_by_role("button", name="Resume").click()
        done = page.get_by_test_id("stAlertContentSuccess").filter(has_text="Done in")
        poll(lambda: done.count(), RUN_TIMEOUT_S, "the resumed run to finish")
        assert run_id in done.first.inner_text()
        wait_idle(page)
        assert page.get_by_role("button", name="Resume").count() == 0
        downloads = page.get_by_test_id("stDownloadButton")
        poll(lambda: downloads.count() == 2, 30, "the weights and JSON download buttons")
        assert_no_exception(page)
