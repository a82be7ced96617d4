"""The published site (issue 35) in headless Chromium, with no Streamlit process: opened from a static server
(``python -m http.server``) and from ``file://``, the pad follows a drag, the arrow keys and a touch drag,
a drawing is encoded in the browser, the CVAE's labels, the GMVAE's clusters and the VRNN's rows change the
pictures; the console stays clean, and no request leaves the site's own files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bench.bench_publish import publish_for_bench, static_server
from explorer_core.data import MNISTUnavailable, load_mnist_splits
from explorer_core.paths import PRETRAINED_DIR

MODELS = ("vae-cb-l2", "cvae-cb-l2", "vae-cb-l20", "gmvae-marginal", "vrnn")
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    missing = [m for m in MODELS if not (PRETRAINED_DIR / f"{m}.json").is_file()]
    if missing:
        pytest.skip(f"shipped models missing: {missing}")
    try:
        load_mnist_splits(n_validation=0)
    except MNISTUnavailable as err:
        pytest.skip(f"MNIST missing: {err}")
    return publish_for_bench(MODELS, tmp_path_factory.mktemp("published"))


@pytest.fixture(scope="module")
def http_url(site) -> Iterator[str]:
    with static_server(site) as url:
        yield url


@pytest.fixture(params=["http", "file"])
def base(request, site):
    """The site's address: from the static server, or the folder itself."""
    if request.param == "http":
        return request.getfixturevalue("http_url")
    return site.as_uri()


@contextmanager
def site_page(browser, base: str, fragment: str, csp: bool = False, **context_args):
    """A fresh page at ``base/index.html#fragment``, ready; yields (page, problems): console errors, page
    errors and requests for anything outside ``base``. The page's Content-Security-Policy (no eval) is
    bypassed so that the test can read canvases and wait on conditions, unless ``csp``."""
    context = browser.new_context(
        **({"viewport": {"width": 1280, "height": 720}, "bypass_csp": not csp} | context_args)
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: None if r.url.startswith(base) else problems.append(f"request: {r.url}"))
    try:
        page.goto(f"{base}/index.html#{fragment}")
        page.wait_for_selector("body[data-ready='1']", state="attached")
        yield page, problems
    finally:
        context.close()


def picture(page, selector: str) -> str:
    """The pixels of a canvas, as a data URL."""
    return page.locator(selector).first.evaluate("c => c.toDataURL()")


def drag(page, selector: str, points: list[tuple[float, float]]) -> None:
    """A mouse drag through ``points`` (fractions of the element's box), the element scrolled into view."""
    page.locator(selector).first.scroll_into_view_if_needed()
    box = page.locator(selector).first.bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=4)
    page.mouse.up()


def draw_a_one(page, selector: str = "canvas.draw") -> None:
    drag(page, selector, [(0.5, 0.15), (0.5, 0.5), (0.48, 0.85)])


def test_vae_pad_drawing_and_link(browser, base):
    with site_page(browser, base, "model=vae-cb-l2") as (page, problems):
        z0 = page.locator("canvas.map").get_attribute("data-z")
        before = picture(page, "canvas.big")
        drag(page, "canvas.map", [(0.3, 0.3), (0.5, 0.5), (0.7, 0.6)])
        page.wait_for_function("z => document.querySelector('canvas.map').dataset.z !== z", arg=z0)
        z1 = page.locator("canvas.map").get_attribute("data-z")
        assert picture(page, "canvas.big") != before
        # arrow keys move z
        page.locator("canvas.map").focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function("z => document.querySelector('canvas.map').dataset.z !== z", arg=z1)
        z2 = page.locator("canvas.map").get_attribute("data-z")
        assert float(z2.split(",")[0]) > float(z1.split(",")[0])
        # a drawing, encoded here: its input, its decoding and the ellipse on the map
        map_before = picture(page, "canvas.map")
        draw_a_one(page)
        page.wait_for_function("document.body.innerText.includes('q(z|x): μ =')")
        assert picture(page, "canvas.map") != map_before
        # the manifold and the interpolation were drawn; another end image changes the strip
        strip = picture(page, "canvas[aria-label^='interpolation']")
        page.locator("input[type=number]").nth(2).fill("7")
        page.locator("input[type=number]").nth(2).dispatch_event("input")
        assert picture(page, "canvas[aria-label^='interpolation']") != strip
        page.wait_for_timeout(300)  # the hash is written 150 ms after a change
        link = page.url
        assert "u=" in link and "to=7" in link
        assert problems == []
    # the link reopens the view: the same z
    fragment = link.split("#", 1)[1]
    with site_page(browser, base, fragment) as (page, problems):
        again = page.locator("canvas.map").get_attribute("data-z").split(",")
        assert all(abs(float(a) - float(b)) <= 1e-3 for a, b in zip(again, z2.split(","), strict=True))
        assert problems == []


def test_cvae_labels_and_l20_plane(browser, base):
    with site_page(browser, base, "model=cvae-cb-l2") as (page, problems):
        before = picture(page, "canvas.big")
        row = picture(page, "canvas[aria-label^='the same z']")
        page.locator(".labels button[data-label='3']").first.click()
        assert picture(page, "canvas.big") != before
        assert picture(page, "canvas[aria-label^='the same z']") == row  # the row shows all ten labels
        draw_a_one(page)
        page.wait_for_function("document.body.innerText.includes('y = 0): μ =')")
        assert problems == []
    with site_page(browser, base, "model=vae-cb-l20") as (page, problems):
        assert "PC 1" not in page.inner_text("body")  # drawn on the canvas, not in the text
        before = picture(page, "canvas.big")
        drag(page, "canvas.map", [(0.5, 0.5), (0.2, 0.8)])
        page.wait_for_timeout(100)
        assert picture(page, "canvas.big") != before
        assert problems == []


def test_gmvae_clusters_and_drawing(browser, base):
    with site_page(browser, base, "model=gmvae-marginal") as (page, problems):
        samples = picture(page, "canvas[aria-label^='samples']")
        page.locator("button.cluster[data-cluster='2']").click()
        after = picture(page, "canvas[aria-label^='samples']")
        assert after != samples
        page.locator("input[type=range]").fill("0.2")
        assert picture(page, "canvas[aria-label^='samples']") != after
        draw_a_one(page)
        page.wait_for_function("document.querySelectorAll('.bars .bar').length === 10")
        assert "The most probable cluster is y =" in page.inner_text("body")
        assert problems == []


def test_vrnn_rows_play_and_completion(browser, base):
    with site_page(browser, base, "model=vrnn&seed=3") as (page, problems):
        empty = picture(page, "canvas[aria-label^='the sampled rows']")
        page.get_by_role("button", name="Next row").click()
        assert page.locator("body").get_attribute("data-rows") == "1"
        assert picture(page, "canvas[aria-label^='the sampled rows']") != empty
        page.get_by_role("button", name="Play").click()
        page.wait_for_selector("body[data-rows='28']", state="attached")
        completions = picture(page, "canvas[aria-label='completions']")
        draw_a_one(page)
        page.wait_for_function("document.body.innerText.includes('First: your drawing')")
        assert picture(page, "canvas[aria-label='completions']") != completions
        assert problems == []


def test_phone_touch_drag_and_no_sideways_scroll(browser, http_url):
    with site_page(browser, http_url, "model=vae-cb-l2", viewport=PHONE, has_touch=True, is_mobile=True) as (
        page,
        problems,
    ):
        for fragment in ("model=vae-cb-l2", "model=gmvae-marginal", "model=vrnn"):
            if fragment != "model=vae-cb-l2":
                page.goto("about:blank")
                page.goto(f"{http_url}/index.html#{fragment}")
                page.wait_for_selector("body[data-ready='1']", state="attached")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{fragment}: {width} px wide"
        page.goto("about:blank")
        page.goto(f"{http_url}/index.html#model=vae-cb-l2")
        page.wait_for_selector("body[data-ready='1']", state="attached")
        canvas = page.locator("canvas.map")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        z0 = canvas.get_attribute("data-z")
        before = picture(page, "canvas.big")
        cdp = page.context.new_cdp_session(page)
        x0, y0 = box["x"] + 0.3 * box["width"], box["y"] + 0.3 * box["height"]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x0, "y": y0}]})
        for k in range(1, 8):
            point = {"x": x0 + 12 * k, "y": y0 + 9 * k}
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
            page.wait_for_timeout(20)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        page.wait_for_timeout(100)
        assert canvas.get_attribute("data-z") != z0
        assert picture(page, "canvas.big") != before
        assert problems == []


def test_content_security_policy_holds(browser, base):
    """With the page's own policy in force (script and style from the site only, no eval, no inline style),
    every view loads and answers the pointer without a violation (each would be a console error)."""
    for model in ("vae-cb-l2", "cvae-cb-l2", "gmvae-marginal", "vrnn"):
        with site_page(browser, base, f"model={model}", csp=True) as (page, problems):
            if page.locator("canvas.map").count():
                drag(page, "canvas.map", [(0.3, 0.3), (0.6, 0.6)])
            if page.locator("button.cluster").count():
                page.locator("button.cluster").nth(1).click()
            if page.get_by_role("button", name="Next row").count():
                page.get_by_role("button", name="Next row").click()
            draw_a_one(page)
            page.wait_for_timeout(300)
            assert problems == [], model
