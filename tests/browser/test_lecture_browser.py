"""Lecture mode in a real Chromium: at a projector scale the latent pad is zoomed, drawn sharp, and a drag
ends where the pointer is (the same z as at 100 %)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from tests.browser.conftest import fresh_page, pad_canvas
from tests.browser.test_browser import assert_no_exception, open_page, poll, wait_idle

pytestmark = pytest.mark.browser


def drag_to_centre(page) -> tuple[float, float, float]:
    """Drag on the pad from a little off its centre to its centre (as seen on screen); returns the CSS zoom
    and the z (u, v) the URL then holds."""
    canvas = pad_canvas(page, "vae_pad")
    canvas.scroll_into_view_if_needed()
    zoom = canvas.evaluate("c => c.currentCSSZoom || 1")
    backing, css = canvas.evaluate("c => [c.width, c.clientWidth]")
    # the backing store follows the zoom: as many pixels as the canvas covers on screen (sharp)
    assert backing == pytest.approx(css * zoom * page.evaluate("devicePixelRatio"), abs=2)

    def url_z():
        query = parse_qs(urlparse(page.evaluate("location.href")).query)
        return query.get("u", [""])[0], query.get("v", [""])[0]

    before = url_z()
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx + 25, cy - 20)
    page.mouse.down()
    page.mouse.move(cx + 10, cy - 8, steps=4)
    page.mouse.move(cx, cy, steps=4)
    page.mouse.up()

    def moved():
        now = url_z()
        return (float(now[0]), float(now[1])) if now != before and all(now) else None

    u, v = poll(moved, 60, "the dragged z in the URL")
    wait_idle(page)
    assert_no_exception(page)
    return zoom, u, v


def test_at_150_percent_the_pad_is_sharp_and_a_drag_lands_under_the_pointer(browser, warm_app_url):
    url = f"{warm_app_url}/vae?model=vae-cb-l2&img=0&u=3&v=3"
    with fresh_page(browser) as page:
        open_page(page, url, "VAE")
        zoom_1, u_1, v_1 = drag_to_centre(page)
    with fresh_page(browser) as page:
        open_page(page, f"{url}&lecture=1&scale=150", "VAE")
        zoom_15, u_15, v_15 = drag_to_centre(page)
    assert zoom_1 == 1 and zoom_15 == pytest.approx(1.5)
    # the centre of the pad is the same z whatever the zoom (the region does not depend on pixels); a pointer
    # read without the zoom would land about a third of the pad away
    assert (u_15, v_15) == pytest.approx((u_1, v_1), abs=0.35)


def test_the_fa_curves_and_a_vrnn_generation_download_for_a_slide(browser, warm_app_url):
    import csv
    import io
    from pathlib import Path

    from PIL import Image

    with fresh_page(browser) as page:
        open_page(page, f"{warm_app_url}/factor-analysis", "Factor analysis")
        with page.expect_download(timeout=60_000) as info:
            page.locator(".st-key-fa_csv button").first.click()
        download = info.value
        assert download.suggested_filename.startswith("aevb-fa-elbo-evidence-gap")
        rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
        assert rows and rows[0]["phase"] == "init" and float(rows[0]["gap_nats_per_point"]) > 0
        assert_no_exception(page)

        open_page(page, f"{warm_app_url}/vrnn", "Variational RNN")
        with page.expect_download(timeout=60_000) as info:
            page.locator(".st-key-vrnn_gif button").first.click()
        download = info.value
        assert download.suggested_filename.endswith(".gif") and "seed0" in download.suggested_filename
        gif = Image.open(download.path())
        assert gif.n_frames == 28  # a frame per row
        assert_no_exception(page)


@pytest.mark.parametrize("scale", [100, 150])
def test_a_canvas_saves_what_it_shows_as_a_png(browser, warm_app_url, scale):
    from pathlib import Path

    from PIL import Image

    lecture = "" if scale == 100 else f"&lecture=1&scale={scale}"
    with fresh_page(browser) as page:
        open_page(page, f"{warm_app_url}/vae?model=vae-cb-l2&img=3{lecture}", "VAE")
        canvas = pad_canvas(page, "vae_pad")
        canvas.scroll_into_view_if_needed()
        canvas.hover()
        button = page.locator(".st-key-vae_pad .aevb-png").first
        with page.expect_download(timeout=60_000) as info:
            button.click()
        download = info.value
        assert download.suggested_filename == "aevb-vae-pad.png"
        saved = Image.open(Path(download.path()))
        css_width, css_height = canvas.evaluate("c => [c.clientWidth, c.clientHeight]")
        dpr = page.evaluate("devicePixelRatio")
        # the canvas redrawn for the file at 3 backing-store pixels per CSS pixel (more where the screen
        # has more: canvas.js EXPORT_SCALE), cursor and overlays included; then again for the screen
        ratio = max(3, dpr * scale / 100)
        assert saved.size[0] == pytest.approx(css_width * ratio, abs=2)
        assert saved.size[1] == pytest.approx(css_height * ratio, abs=2)
        width = canvas.evaluate("c => c.width")
        assert width == pytest.approx(css_width * dpr * scale / 100, abs=2)  # the pad's size x the scale
        assert len(np.unique(np.asarray(saved.convert("L")))) > 10  # a picture, not a blank
        assert_no_exception(page)
