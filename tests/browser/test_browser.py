"""End-to-end checks in a real Chromium: every page renders without an exception, and the factor-analysis
page's E- and M-step buttons move the metrics and the learning curves the way the tutorial says.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.browser

PAGES = [("", "AEVB Explorer"), ("factor-analysis", "Factor analysis")]
LOAD_TIMEOUT_S = 90
STEP_TIMEOUT_S = 60
CURVE_LINES = ".st-key-fa_curves path.js-line"


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
    assert exceptions.count() == 0, exceptions.all_inner_texts()
    dialogs = page.get_by_role("dialog")
    assert dialogs.count() == 0, dialogs.all_inner_texts()


def metric(page, label: str) -> str:
    """The displayed value of the ``st.metric`` whose label is exactly ``label``."""
    box = page.get_by_test_id("stMetric").filter(has=page.get_by_text(label, exact=True))
    return box.get_by_test_id("stMetricValue").inner_text().strip()


def curve_path_length(page) -> int:
    """Total length of the SVG path data of the learning-curve lines (grows as steps are added)."""
    return page.locator(CURVE_LINES).evaluate_all(
        "els => els.reduce((n, e) => n + (e.getAttribute('d') || '').length, 0)"
    )


def click(page, label: str) -> None:
    """Press the button labelled exactly ``label``."""
    page.get_by_role("button", name=label, exact=True).click()


@pytest.mark.parametrize(("path", "title"), PAGES)
def test_page_renders_without_exception(page, warm_app_url: str, path: str, title: str) -> None:
    """Each page loads, shows no exception, and the sidebar names the torch build in use."""
    open_page(page, f"{warm_app_url}/{path}", title)
    assert_no_exception(page)
    assert "torch" in page.get_by_test_id("stSidebar").inner_text()


def test_fa_e_step_then_m_step(page, warm_app_url: str) -> None:
    """An E-step moves the ELBO but not the evidence; an M-step moves the evidence."""
    open_page(page, f"{warm_app_url}/factor-analysis", "Factor analysis")
    assert metric(page, "Step") == "0"
    elbo0, evidence0 = metric(page, "Test ELBO (estimate)"), metric(page, "Exact evidence")
    curve0 = curve_path_length(page)

    click(page, "E-step × N")
    poll(
        lambda: metric(page, "Step") != "0" and metric(page, "Test ELBO (estimate)") != elbo0,
        STEP_TIMEOUT_S,
        "the step count and the ELBO to change after an E-step",
    )
    poll(lambda: metric(page, "Step") == "100", STEP_TIMEOUT_S, "all 100 E-steps to run")
    wait_idle(page)
    assert metric(page, "Exact evidence") == evidence0, "an E-step must not move the evidence"
    poll(lambda: curve_path_length(page) > curve0, STEP_TIMEOUT_S, "the learning curves to grow")

    click(page, "M-step × N")
    poll(
        lambda: metric(page, "Exact evidence") != evidence0,
        STEP_TIMEOUT_S,
        "the evidence to change after an M-step",
    )
    poll(lambda: metric(page, "Step") == "200", STEP_TIMEOUT_S, "all 100 M-steps to run")
    wait_idle(page)
    assert_no_exception(page)
