"""Lecture mode on a projector's 1280x720 in a real Chromium: every live page's picture and the controls used
while it plays lie on the first screen, and the projector scale enlarges text and canvases together."""

from __future__ import annotations

import pytest

from tests.browser.conftest import assert_ticks_readable, fresh_page
from tests.browser.lecture_layout import LECTURE_PAGES, bottoms, open_in_lecture_mode
from tests.browser.test_browser import assert_no_exception

pytestmark = pytest.mark.browser

PROJECTOR = {"width": 1280, "height": 720}


@pytest.mark.parametrize("spec", LECTURE_PAGES, ids=lambda s: s.name)
def test_the_picture_and_its_controls_are_on_the_first_screen(browser, warm_app_url, spec):
    with fresh_page(browser, viewport=PROJECTOR) as page:
        open_in_lecture_mode(page, warm_app_url, spec)
        found = bottoms(page, spec)
        assert_no_exception(page)
    missing = [selector for selector, bottom in found.items() if bottom is None]
    assert not missing, f"{spec.name}: not on the page: {missing}"
    below = {selector: round(bottom) for selector, bottom in found.items() if bottom > PROJECTOR["height"]}
    assert not below, f"{spec.name}: below the first 720 px: {below}"


def test_the_cvae_row_of_ten_labels_is_on_the_first_screen_and_its_ticks_read(browser, warm_app_url):
    cvae = next(s for s in LECTURE_PAGES if s.name == "cvae")
    with fresh_page(browser, viewport=PROJECTOR) as page:
        open_in_lecture_mode(page, warm_app_url, cvae)
        row = page.locator(".st-key-cvae_pad img.row").first
        row.wait_for()  # "the same z under all ten labels", the row under the pad
        box = row.bounding_box()
        canvas = page.locator(cvae.picture).first.bounding_box()
        assert_ticks_readable(page, "cvae_pad")  # "−10" at the left edge once read "10"
        assert_no_exception(page)
    assert box is not None and box["height"] > 20, box
    bottom = box["y"] + box["height"]
    assert bottom <= PROJECTOR["height"], f"the row ends at {bottom:.0f} px"
    # the map keeps its scale: about as tall as wide (its region is about square)
    assert 0.8 <= canvas["height"] / canvas["width"] <= 1.25, canvas


def test_at_150_percent_text_and_canvases_are_half_as_large_again(browser, warm_app_url):
    vae = next(s for s in LECTURE_PAGES if s.name == "vae")
    sizes = {}
    for scale in (100, 150):
        with fresh_page(browser, viewport={"width": 1400, "height": 1000}) as page:
            open_in_lecture_mode(page, warm_app_url, vae, scale=scale)
            canvas = page.locator(vae.picture).first
            sizes[scale] = {
                # a line of Streamlit's text (the page title) as drawn on the screen
                "title": page.locator("h1").first.bounding_box()["height"],
                # the canvas's text is drawn in backing-store pixels per CSS pixel x its font size: the
                # factor (devicePixelRatio x the zoom) is what its text grows by on the screen
                "canvas_text": canvas.evaluate(
                    "c => c.width / c.clientWidth * parseFloat(getComputedStyle(c).fontSize || '12')"
                ),
            }
            assert_no_exception(page)
    for what in ("title", "canvas_text"):
        assert sizes[150][what] >= 1.5 * sizes[100][what] - 0.5, (what, sizes)
