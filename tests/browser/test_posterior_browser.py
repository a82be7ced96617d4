"""The true posterior beside q(z|x) in a real Chromium: on /vae with the shipped 2-D VAE, a picked test
image's posterior and its numbers appear, and ▶ Play runs the per-image E-step to the split of the gap."""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import fresh_page
from tests.browser.test_browser import assert_no_exception, open_page, poll, wait_idle

pytestmark = pytest.mark.browser


def test_pick_an_image_see_its_posterior_and_fit_q_star(browser, warm_app_url):
    with fresh_page(browser) as page:
        open_page(page, f"{warm_app_url}/vae?model=vae-cb-l2&img=3", "VAE")
        if not page.get_by_text("L = 2 ·").count():
            pytest.skip("the shipped 2-D VAE is not there")
        switch = page.get_by_text("Compute the true posterior of the chosen image")
        switch.scroll_into_view_if_needed()
        switch.click()
        page.get_by_text("Evidence log p(x)").first.wait_for(timeout=90_000)
        wait_idle(page)
        assert_no_exception(page)
        assert page.locator(".st-key-vae_posterior_chart").count() == 1
        start = time.monotonic()
        page.locator(".st-key-vae_qstar_play button").first.click()
        split = poll(lambda: page.get_by_text("The gap split").count(), 120, "the split of the gap")
        assert split
        assert time.monotonic() - start < 120
        assert_no_exception(page)
        text = page.get_by_test_id("stMarkdownContainer").filter(has_text="The gap split").first.inner_text()
        assert "approximation" in text and "amortization" in text
