"""Screenshots of every page (the live pages and Training) in lecture mode at a projector's 1280x720 at each
projector scale, and on a phone (390x844, touch, normal mode), and where the live picture lies.

Files: ``docs/screenshot-<page>-1280x720-<scale>.png`` (scale 100, 125, 150) and
``docs/screenshot-<page>-390x844.png``.

Usage (with the app served, e.g. by ``make run``)::

    .venv/bin/python docs/take_lecture_screenshots.py [http://localhost:8501]

Prints, per page and screen, the top and bottom edge (CSS pixels from the top of the window) of the main
picture (:data:`tests.browser.lecture_layout.MAIN_PICTURES`) and the page's width (``scrollWidth``: more than
the window's is a sideways scroll). Uses Debian's Chromium.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402 (one place for the recipe)
from tests.browser.lecture_layout import (  # noqa: E402
    LECTURE_PAGES,
    MAIN_PICTURES,
    open_in_lecture_mode,
    open_on_phone,
)
from tests.browser.test_browser import open_page  # noqa: E402

SCALES = (100, 125, 150)
PHONE = {"width": 390, "height": 844}


def _where(page, selector: str | None) -> str:
    box = page.locator(selector).first.bounding_box() if selector else None
    width = page.evaluate("() => document.documentElement.scrollWidth")
    picture = "" if box is None else f"picture {box['y']:.0f}-{box['y'] + box['height']:.0f} px, "
    return f"{picture}page width {width} px"


def main(base_url: str) -> None:
    """Save the screenshots and print where each page's picture lies."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for spec in (*LECTURE_PAGES, None):
            name = spec.name if spec else "training"
            for scale in (*SCALES, "phone"):
                phone = scale == "phone"
                context = browser.new_context(
                    viewport=PHONE if phone else {"width": 1280, "height": 720},
                    is_mobile=phone,
                    has_touch=phone,
                )
                context.set_default_timeout(90_000)
                page = context.new_page()
                selector = None
                if spec is None:
                    query = "" if phone else "?lecture=1" + (f"&scale={scale}" if scale != 100 else "")
                    open_page(page, f"{base_url}/training{query}", "Training")
                elif phone:
                    selector = open_on_phone(page, base_url, spec)
                else:
                    open_in_lecture_mode(page, base_url, spec, scale=scale)
                    selector = MAIN_PICTURES[spec.name][0]
                screen = "390x844" if phone else f"1280x720-{scale}"
                print(name, screen, _where(page, selector), flush=True)
                page.screenshot(path=DOCS / f"screenshot-{name}-{screen}.png")
                context.close()
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8501")
