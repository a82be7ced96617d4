"""Take the README screenshots from a running app.

Usage (with the app served, e.g. by ``make run``)::

    .venv/bin/python docs/take_screenshots.py [http://localhost:8501]

Writes ``docs/screenshot-home.png`` and ``docs/screenshot-fa.png`` (the factor-analysis page after the
tutorial's E, M, E, M × 1000 schedule). Uses Debian's Chromium (``/usr/bin/chromium`` or ``AEVB_CHROMIUM``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, IDLE_APP  # noqa: E402 (one place for the recipe)

SCHEDULE_STEPS = "4,000"
SCHEDULE_TIMEOUT_S = 240


def open_page(page: Page, url: str) -> None:
    """Open ``url`` and wait for the title and for the script run to finish; close any dialog."""
    page.goto(url, timeout=90_000)
    page.wait_for_selector("h1", timeout=90_000)
    page.wait_for_selector(IDLE_APP, timeout=90_000)
    if page.get_by_role("dialog").count():  # e.g. Streamlit's spurious "Page not found" on a cold server
        page.keyboard.press("Escape")


def step_count(page: Page) -> str:
    """The value of the "Step" metric."""
    box = page.get_by_test_id("stMetric").filter(has=page.get_by_text("Step", exact=True))
    return box.get_by_test_id("stMetricValue").inner_text().strip()


def settle(page: Page, seconds: float = 2.0) -> None:
    """Let the app finish its last run and the charts finish drawing."""
    page.wait_for_selector(IDLE_APP, timeout=90_000)
    page.wait_for_timeout(seconds * 1000)


def full_screenshot(page: Page, path: Path) -> None:
    """Screenshot the whole app: Streamlit scrolls inside ``stMain``, so grow the viewport to fit it."""
    size = page.viewport_size
    height = page.get_by_test_id("stMain").evaluate("e => e.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    settle(page)  # the charts re-layout to the new size
    page.screenshot(path=path, full_page=True)
    page.set_viewport_size(size)


def main(base_url: str) -> None:
    """Save the home-page and factor-analysis screenshots into ``docs/``."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})

        open_page(page, base_url)  # the home page first: it also warms the server up
        settle(page)
        full_screenshot(page, DOCS / "screenshot-home.png")

        open_page(page, f"{base_url}/factor-analysis")
        page.get_by_role("button", name="Paper schedule", exact=True).click()
        deadline = time.monotonic() + SCHEDULE_TIMEOUT_S
        while step_count(page) != SCHEDULE_STEPS:
            if time.monotonic() > deadline:
                sys.exit(f"the schedule did not reach {SCHEDULE_STEPS} steps in {SCHEDULE_TIMEOUT_S} s")
            time.sleep(1)
        settle(page)
        page.mouse.move(0, 0)  # no hover tooltips in the picture
        full_screenshot(page, DOCS / "screenshot-fa.png")
        browser.close()
    print(f"wrote {DOCS / 'screenshot-home.png'} and {DOCS / 'screenshot-fa.png'}")


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://localhost:8501")
