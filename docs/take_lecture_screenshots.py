"""Screenshots of every live page in lecture mode at a projector's 1280x720, and where its live picture and
its controls lie (``docs/screenshot-lecture-<page>-1280x720.png``).

Usage (with the app served, e.g. by ``make run``)::

    .venv/bin/python docs/take_lecture_screenshots.py [http://localhost:8501]

Prints, per page, the bottom edge (CSS pixels from the top of the window) of the main picture and of each
control the lecturer needs (:data:`tests.browser.lecture_layout.LECTURE_PAGES`). Uses Debian's Chromium.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402 (one place for the recipe)
from tests.browser.lecture_layout import LECTURE_PAGES, bottoms, open_in_lecture_mode  # noqa: E402


def main(base_url: str) -> None:
    """Save one screenshot per page and print the bottoms of its picture and controls."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for spec in LECTURE_PAGES:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            open_in_lecture_mode(page, base_url, spec)
            found = bottoms(page, spec)
            print(spec.name, {k: round(v) if v is not None else None for k, v in found.items()})
            page.screenshot(path=DOCS / f"screenshot-lecture-{spec.name}-1280x720.png")
            page.close()
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8501")
