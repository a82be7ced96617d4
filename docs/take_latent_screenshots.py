"""Take the README screenshots of the latent pages (VAE, CVAE, GMVAE) from a running app.

Usage (with the app served, e.g. by ``make run``)::

    .venv/bin/python docs/take_latent_screenshots.py [http://localhost:8501]

Each page is opened from a URL with query parameters (the state a lecturer would hand out), a short drag is
made on its latent pad, and ``docs/screenshot-{vae,cvae,gmvae}.png`` are written. Uses Debian's Chromium
(``/usr/bin/chromium`` or ``AEVB_CHROMIUM``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, IDLE_APP  # noqa: E402 (one place for the recipe)

VIEWS = {
    "vae": ("vae?model=vae-cb-l2&u=1.2&v=-0.6&img=3&zoom=1", 1300, None),
    "cvae": ("cvae?model=cvae-cb-l2&u=0.4&v=0.8&label=3&img=3&zoom=1", 1450, None),
    "gmvae": ("gmvae?model=gmvae-marginal&cluster=4&img=0", 1200, "Pick a cluster and sample from p(z|y)"),
}


def settle(page: Page, seconds: float = 2.0) -> None:
    """Let the app finish its last run and the pad finish drawing."""
    page.wait_for_selector(IDLE_APP, timeout=300_000)
    page.wait_for_timeout(seconds * 1000)


def drag(page: Page, key: str) -> None:
    """A short drag on the pad (the screenshot then shows the decoding under the pointer)."""
    canvas = page.locator(f".st-key-{key} canvas.canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.45
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x + 3 * i, y + 2 * i)
        page.wait_for_timeout(40)
    page.mouse.up()


def main(base_url: str) -> None:
    """Save the three latent pages' screenshots into ``docs/``."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        for name, (path, height, heading) in VIEWS.items():
            page = browser.new_page(viewport={"width": 1500, "height": height})
            page.set_default_timeout(300_000)
            page.goto(f"{base_url}/{path}", timeout=300_000)
            page.locator(f".st-key-{name}_pad canvas.canvas[data-sample]").wait_for(state="attached")
            settle(page)
            drag(page, f"{name}_pad")
            settle(page)
            if heading:
                page.get_by_role("heading", name=heading).scroll_into_view_if_needed()
                page.get_by_test_id("stMain").evaluate("e => e.scrollBy(0, 0)")
                page.get_by_role("heading", name=heading).evaluate("e => e.scrollIntoView({block: 'start'})")
            else:
                page.get_by_test_id("stMain").evaluate("e => e.scrollTo(0, 0)")
            settle(page, 1.0)
            out = DOCS / f"screenshot-{name}.png"
            page.screenshot(path=out)
            print(f"wrote {out}")
            page.close()
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8501")
