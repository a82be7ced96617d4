"""A prepared link reopens the same view on every live page (in a real Chromium): the page takes the link's
values and writes the same ones back into its URL, and what it shows follows them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser.conftest import fresh_page
from tests.browser.test_browser import assert_no_exception, open_page, poll

pytestmark = pytest.mark.browser

#: page, its title, the link's query, and a text the page then shows (or a field's selector and its value)
LINKS = [
    (
        "factor-analysis",
        "Factor analysis",
        "posterior=diagonal&lr=0.003&batch=64&seed=5&points=500&point=3",
        (".st-key-fa_point input", "3"),
    ),
    ("vae", "VAE", "model=vae-cb-l2&img=5&u=1.500&v=-0.500", "(1.50, -0.50)"),
    ("watch", "Watch it learn", "L=3&hidden=128&k=64&beta=2", "IWAE bound (k=64)"),
    ("cvae", "Conditional VAE", "model=cvae-cb-l2&label=7&seed=11", "y = 7"),
    ("gmvae", "Gaussian mixture", "cluster=3&seed=9", "seed 9"),
    ("vrnn", "Variational RNN", "seed=12&n=4", "Row 0 of 28"),
]


@pytest.mark.parametrize(("path", "title", "query", "shown"), LINKS, ids=[p for p, *_ in LINKS])
def test_a_link_reopens_its_view(browser, warm_app_url, path, title, query, shown):
    wanted = {k: v[0] for k, v in parse_qs(query).items()}
    with fresh_page(browser) as page:
        open_page(page, f"{warm_app_url}/{path}?{query}", title)

        def url_holds_the_link():
            now = {k: v[0] for k, v in parse_qs(urlparse(page.evaluate("location.href")).query).items()}
            return now if all(now.get(k) == v for k, v in wanted.items()) else None

        poll(url_holds_the_link, 30, f"the link's values {wanted} in the URL")
        if isinstance(shown, tuple):
            selector, value = shown
            assert page.locator(selector).first.input_value() == value
        else:
            page.get_by_text(shown).first.wait_for(timeout=30_000)
        assert_no_exception(page)
