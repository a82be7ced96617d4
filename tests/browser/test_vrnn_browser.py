"""The variational RNN page in a real Chromium: a user steps a row, then plays a generation to the end and
sees all 28 rows, the last one included (the reference animation never showed it).

The module starts its own server, with ``AEVB_MODEL_DIRS`` pointing at a temporary folder with a tiny random
VRNN, so nothing here needs the shipped models; when those are present they are listed too, and the test picks
the tiny one by name.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from explorer_core.artifacts import save_model
from explorer_core.explore.sequences import FUTURE_RGB
from explorer_core.models.vrnn import VRNN, VRNNConfig
from tests.browser.conftest import REPO_ROOT, fresh_page, streamlit_server
from tests.browser.test_browser import assert_no_exception, open_page, poll, wait_idle
from tests.browser.test_latent_browser import choose_model

pytestmark = pytest.mark.browser

PLAY_TIMEOUT_S = 300  # 28 frames of 0.3 s, on a busy 2-core machine much longer
CHANGE_TIMEOUT_S = 60
METRICS = {"elbo": -91.23, "reconstruction": -80.0, "kl": 11.23}


@pytest.fixture(scope="module")
def vrnn_app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose model list holds tiny-vrnn (random weights)."""
    folder = tmp_path_factory.mktemp("browser-vrnn")
    torch.manual_seed(0)
    model = VRNN(VRNNConfig(hidden=(16,), rnn_hidden=16, rnn_layers=1))
    save_model(model, "vrnn", folder, "tiny-vrnn", {"preprocessing": "binarized", "test_metrics": METRICS})
    env = {"AEVB_MODEL_DIRS": str(folder), "AEVB_DEVICE": "cpu"}
    with streamlit_server(folder / "server.log", env) as url:
        yield url


@pytest.fixture
def vrnn_page(browser, vrnn_app_url: str):
    with fresh_page(browser) as pg:
        yield pg


def row_status(page) -> str:
    """The line above the grid, e.g. "Row 3 of 28 · paused"."""
    texts = page.get_by_test_id("stMarkdown").filter(has_text=re.compile(r"^Row \d+ of 28")).all_inner_texts()
    return texts[0].strip() if texts else ""


def grid_pixels(page, base_url: str) -> np.ndarray:
    """The generation grid as the browser received it, RGB [H, W, 3]."""
    src = page.locator(".st-key-vrnn_grid img").first.get_attribute("src") or ""
    response = page.request.get(src if src.startswith("http") else base_url + src)
    assert response.ok, src
    return np.asarray(Image.open(io.BytesIO(response.body())).convert("RGB"))


def grey_rows(pixels: np.ndarray) -> int:
    """Image rows that contain a not-yet-generated pixel."""
    return int((pixels == FUTURE_RGB).all(-1).any(1).sum())


def test_play_a_generation_to_the_end_and_see_all_28_rows(vrnn_page, vrnn_app_url):
    page = vrnn_page
    open_page(page, f"{vrnn_app_url}/vrnn", "Variational RNN")
    choose_model(page, "vrnn", "tiny-vrnn")
    poll(lambda: row_status(page).startswith("Row 0 of 28"), CHANGE_TIMEOUT_S, "the row counter")
    assert_no_exception(page)
    empty = grey_rows(grid_pixels(page, vrnn_app_url))
    assert empty > 0

    page.get_by_role("button", name="Next row").click()
    poll(lambda: row_status(page).startswith("Row 1 of 28"), CHANGE_TIMEOUT_S, "one row to be generated")
    wait_idle(page)
    assert 0 < grey_rows(grid_pixels(page, vrnn_app_url)) < empty

    page.get_by_role("button", name="Play", exact=True).click()
    poll(
        lambda: row_status(page) == "Row 28 of 28 · all rows generated",
        PLAY_TIMEOUT_S,
        "the generation to play to its end",
        interval_s=0.5,
    )
    wait_idle(page)
    assert row_status(page) == "Row 28 of 28 · all rows generated"
    assert grey_rows(grid_pixels(page, vrnn_app_url)) == 0  # every row drawn, the 28th included
    assert page.get_by_role("button", name="Play", exact=True).count() == 1  # stopped by itself
    assert_no_exception(page)


@pytest.mark.skipif(not (REPO_ROOT / "pretrained" / "vrnn.json").exists(), reason="no shipped VRNN")
def test_play_with_the_shipped_model_advances_row_after_row(page, warm_app_url):
    """▶ Play on the shipped VRNN: the row counter and the grid image move on many times, one row at a time.
    With ``AEVB_SCREENSHOTS=1`` the page, paused part-way, is saved as docs/screenshot-vrnn.png."""
    open_page(page, f"{warm_app_url}/vrnn", "Variational RNN")
    poll(lambda: row_status(page).startswith("Row 0 of 28"), CHANGE_TIMEOUT_S, "the row counter")
    seen, grids = [], set()
    page.get_by_role("button", name="Play", exact=True).click()
    deadline = time.monotonic() + PLAY_TIMEOUT_S
    while time.monotonic() < deadline:
        match = re.match(r"Row (\d+) of 28", row_status(page))
        if match and (not seen or seen[-1] != int(match.group(1))):
            seen.append(int(match.group(1)))
            grids.add(page.locator(".st-key-vrnn_grid img").first.get_attribute("src"))
        if seen and seen[-1] >= 18:
            break
        time.sleep(0.05)
    page.get_by_role("button", name="Pause", exact=True).click()
    wait_idle(page)
    assert seen == sorted(seen) and len(seen) >= 8, seen  # row after row, in order
    assert len(grids) >= 8  # a new grid image with every row shown
    assert page.locator(".st-key-vrnn_trajectory canvas").first.get_attribute("data-frame")
    assert_no_exception(page)
    if os.environ.get("AEVB_SCREENSHOTS") == "1":
        page.mouse.move(0, 0)
        page.screenshot(path=REPO_ROOT / "docs" / "screenshot-vrnn.png", full_page=True)
