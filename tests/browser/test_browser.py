"""End-to-end checks in a real Chromium: every page renders without an exception, and the factor-analysis
page's E- and M-step buttons move the metrics and the learning curves the way the tutorial says.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import server_tracebacks

pytestmark = pytest.mark.browser

PAGES = [("", "AEVB Explorer"), ("factor-analysis", "Factor analysis")]
LOAD_TIMEOUT_S = 90
STEP_TIMEOUT_S = 60
PLAY_TIMEOUT_S = 60


def poll(check: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.25) -> Any:
    """Call ``check`` until it returns something truthy and return that; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def is_idle(page) -> bool:
    """True when no script or fragment run is in progress and the running indicator is gone."""
    state = page.get_by_test_id("stApp").get_attribute("data-test-script-state")
    return state == "notRunning" and page.get_by_test_id("stStatusWidget").count() == 0


def wait_idle(page, timeout_s: float = LOAD_TIMEOUT_S, settle_s: float = 1.0) -> None:
    """Wait until the app has stayed idle for ``settle_s`` (a rerun can follow a run at once)."""
    deadline = time.monotonic() + timeout_s
    idle_since = None
    while True:
        if is_idle(page):
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= settle_s:
                return
        else:
            idle_since = None
        if time.monotonic() > deadline:
            pytest.fail(f"the app was still running after {timeout_s} s")
        time.sleep(0.2)


def open_page(page, url: str, title: str) -> None:
    """Go to ``url``, wait for an ``h1`` containing ``title`` and for the app to finish running."""
    page.goto(url, timeout=LOAD_TIMEOUT_S * 1000)
    page.locator("h1", has_text=title).first.wait_for(timeout=LOAD_TIMEOUT_S * 1000)
    wait_idle(page)


def assert_no_exception(page) -> None:
    """Fail with the exception's text if any element shows a Python exception or a stray dialog."""
    exceptions = page.get_by_test_id("stException")
    if exceptions.count():
        pytest.fail(f"the page shows {exceptions.all_inner_texts()}\nserver log:\n{server_tracebacks()}")
    dialogs = page.get_by_role("dialog")
    assert dialogs.count() == 0, dialogs.all_inner_texts()


def metric(page, label: str) -> str:
    """The displayed value of the ``st.metric`` whose label is exactly ``label``. While a run replaces a
    frame, the old element can stand beside the new one for a moment (a loaded machine, two GMVAE trainings
    beside the suite, showed two "Step" metrics once): this waits, up to 5 s, until one is left, and reads
    the newest."""
    box = page.get_by_test_id("stMetric").filter(has=page.get_by_text(label, exact=True))
    values = box.get_by_test_id("stMetricValue")
    for _ in range(100):
        if values.count() <= 1:
            break
        time.sleep(0.05)
    return values.last.inner_text().strip()


def canvas_frame(page, key: str) -> int:
    """The frame number a live canvas (components v2, in a shadow root: Playwright's CSS looks inside) drew
    last; 0 before it drew anything."""
    return int(page.locator(f".st-key-{key} canvas").first.get_attribute("data-frame") or 0)


def scatter_view(page) -> str:
    """The 3-D scatter's view (azimuth, elevation, zoom) as the canvas reports it."""
    return page.locator(".st-key-fa_scatter canvas").first.get_attribute("data-view") or ""


def turn_the_scatter(page) -> None:
    """A mouse drag across the 3-D scatter: the user turns the view."""
    box = page.locator(".st-key-fa_scatter canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 9):
        page.mouse.move(x + 15 * i, y + 5 * i)
    page.mouse.up()


def click(page, label: str) -> None:
    """Press the button labelled exactly ``label``."""
    page.get_by_role("button", name=label, exact=True).click()


def pause(page, timeout_s: float = 15.0) -> None:
    """Press Pause and wait until the button reads Play again and the app is idle. When the first press
    did not take within ``timeout_s`` (once on a loaded CI machine, cause not found: a press landing while
    a frame redraws the button?), press again, as a person would, and record a warning."""
    for attempt in range(2):
        click(page, "Pause")
        try:
            page.get_by_role("button", name="Play", exact=True).wait_for(timeout=timeout_s * 1000)
            break
        except Exception:  # playwright's TimeoutError
            if attempt == 1:
                raise
            warnings.warn("the first Pause press did not take; pressed again", stacklevel=2)
    wait_idle(page)


@pytest.mark.parametrize(("path", "title"), PAGES)
def test_page_renders_without_exception(page, warm_app_url: str, path: str, title: str) -> None:
    """Each page loads, shows no exception, and the sidebar names the torch build in use."""
    open_page(page, f"{warm_app_url}/{path}", title)
    assert_no_exception(page)
    assert "torch" in page.get_by_test_id("stSidebar").inner_text()


def test_fa_e_step_then_m_step(page, warm_app_url: str) -> None:
    """An E-step moves the ELBO but not the evidence; an M-step moves the evidence, and the text on that
    M-phase says the gap fell, as the chart shows (issue 33, item 3)."""
    open_page(page, f"{warm_app_url}/factor-analysis", "Factor analysis")
    assert metric(page, "Step") == "0"
    elbo0, evidence0 = metric(page, "Test ELBO (estimate)"), metric(page, "Exact evidence")
    curve0 = canvas_frame(page, "fa_curves")

    click(page, "E-step × N")
    poll(
        lambda: metric(page, "Step") != "0" and metric(page, "Test ELBO (estimate)") != elbo0,
        STEP_TIMEOUT_S,
        "the step count and the ELBO to change after an E-step",
    )
    poll(lambda: metric(page, "Step") == "100", STEP_TIMEOUT_S, "all 100 E-steps to run")
    wait_idle(page)
    assert metric(page, "Exact evidence") == evidence0, "an E-step must not move the evidence"
    poll(lambda: canvas_frame(page, "fa_curves") > curve0, STEP_TIMEOUT_S, "the learning curves to redraw")

    click(page, "M-step × N")
    poll(
        lambda: metric(page, "Exact evidence") != evidence0,
        STEP_TIMEOUT_S,
        "the evidence to change after an M-step",
    )
    poll(lambda: metric(page, "Step") == "200", STEP_TIMEOUT_S, "all 100 M-steps to run")
    wait_idle(page)
    assert_no_exception(page)
    # issue 33, item 3: the text on the M-phase once said "the gap grows" while the chart's gap fell
    reading = poll(
        lambda: page.get_by_test_id("stMarkdownContainer").filter(has_text="Last phase:").all_inner_texts(),
        STEP_TIMEOUT_S,
        "the reading of the last phase",
    )[0]
    assert "M-step × 100" in reading and "steps 101–200" in reading, reading
    assert "the gap fell" in reading and "grow" not in reading, reading


def test_fa_play_shows_many_frames_and_the_camera_stays_where_the_user_turned_it(page, warm_app_url: str):
    """▶ Play streams frames: the step count, the 3-D scatter and the curves change several times, and the
    view the user turned the 3-D scatter to is kept through every frame (it is the browser's, not the
    figure's)."""
    open_page(page, f"{warm_app_url}/factor-analysis", "Factor analysis")
    default_view = scatter_view(page)
    turn_the_scatter(page)
    turned = poll(lambda: scatter_view(page) if scatter_view(page) != default_view else "", 10, "the turn")
    steps, frames = set(), set()
    click(page, "Play")
    deadline = time.monotonic() + PLAY_TIMEOUT_S
    while (len(steps) < 5 or len(frames) < 5) and time.monotonic() < deadline:
        steps.add(metric(page, "Step"))
        frames.add(canvas_frame(page, "fa_scatter"))
        assert scatter_view(page) == turned, "a frame moved the camera"
        time.sleep(0.1)
    pause(page)
    assert len(steps) >= 5 and len(frames) >= 5, (steps, frames)
    assert scatter_view(page) == turned
    assert canvas_frame(page, "fa_curves") >= max(frames) - 1  # the curves follow the frames
    assert_no_exception(page)


def test_home_shows_a_card_per_explorer_and_a_card_opens_its_page(page, warm_app_url: str):
    open_page(page, warm_app_url, "AEVB Explorer")
    cards = page.locator('[class*="st-key-home_card_"]')
    assert cards.count() >= 6
    for i in range(cards.count()):
        card = cards.nth(i)
        assert card.get_by_test_id("stImage").count() == 1, card.inner_text()
        assert card.locator("img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    page.locator(".st-key-home_card_vae").get_by_role("link").first.click()
    page.locator("h1", has_text="VAE").first.wait_for(timeout=LOAD_TIMEOUT_S * 1000)
    assert "/vae" in page.url
