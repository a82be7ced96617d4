"""The published site (issue 35) in headless Chromium, with no Streamlit process: opened from a static server
(``python -m http.server``) and from ``file://``, the pad follows a drag, the arrow keys and a touch drag,
a drawing is encoded in the browser, the CVAE's labels, the GMVAE's clusters and the VRNN's rows change the
pictures, and the recorded factor-analysis and Watch runs scrub and play (phases shaded, the app's numbers);
nothing needs a sideways scroll at the lecture scales; the console stays clean, and no request leaves the
site's own files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bench.bench_publish import publish_for_bench, static_server
from explorer_core.data import MNISTUnavailable, load_mnist_splits, make_fa_dataset
from explorer_core.explore.fa import (
    FAExperiment,
    FAHistory,
    FATrainingConfig,
    describe_phase_change,
    last_phase_change,
)
from explorer_core.paths import PRETRAINED_DIR
from explorer_core.publish.export import unb64
from explorer_core.publish.recordings import one_thread

MODELS = ("vae-cb-l2", "cvae-cb-l2", "vae-cb-l20", "gmvae-marginal", "vrnn", "fa", "watch")
#: the recorded runs (explorer_core/publish/recordings.py), recorded when the site is built
RECORDED = ("fa", "watch")
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 720}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    missing = [m for m in MODELS if m not in RECORDED and not (PRETRAINED_DIR / f"{m}.json").is_file()]
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
    for model in ("vae-cb-l2", "cvae-cb-l2", "gmvae-marginal", "vrnn", "fa", "watch"):
        with site_page(browser, base, f"model={model}", csp=True) as (page, problems):
            if page.locator("canvas.map").count():
                drag(page, "canvas.map", [(0.3, 0.3), (0.6, 0.6)])
            if page.locator("button.cluster").count():
                page.locator("button.cluster").nth(1).click()
            if page.get_by_role("button", name="Next row").count():
                page.get_by_role("button", name="Next row").click()
            if page.locator("canvas.draw").count():
                draw_a_one(page)
            if page.locator("input.scrubber").count():  # a recorded run: scrub, turn the scatter, play
                page.locator("input.scrubber").fill("3")
                if page.locator("canvas.scatter").count():
                    drag(page, "canvas.scatter", [(0.4, 0.5), (0.6, 0.5)])
                page.get_by_role("button", name="Play the recording").click()
            page.wait_for_timeout(300)
            assert problems == [], model


# ------------------------------------------------------------------------------------- recorded runs
def payload(site, name: str) -> dict:
    """The payload of the site's ``models/<name>.js``."""
    text = (site / "models" / f"{name}.js").read_text()
    marker = f"window.AEVB_MODEL_DATA[{json.dumps(name)}] = "
    return json.loads(text[text.index(marker) + len(marker) :].rstrip().rstrip(";"))


def scrub(page, position: int) -> None:
    """Move the scrubber to ``position`` (a step of the FA run, an evaluation of the Watch run)."""
    page.locator("input.scrubber").fill(str(position))


def band_colours(page, selector: str) -> list[tuple[str, tuple[int, int, int]]]:
    """The shaded phases of a chart canvas (its ``data-bands``): each band's label and the colour most of the
    pixels of one column inside it show (curves and grid lines cross it in a few pixels only)."""
    return [
        (label, tuple(rgb))
        for label, rgb in page.locator(selector).first.evaluate(
            """c => {
              const r = c.width / c.clientWidth;
              const ctx = c.getContext('2d');
              return JSON.parse(c.dataset.bands).map(([label, x0, x1, y0, y1]) => {
                const x = Math.round((x0 + 0.4 * (x1 - x0)) * r);
                const counts = new Map();
                for (let y = Math.round(y0 * r) + 3; y < Math.round(y1 * r) - 3; y++) {
                  const d = ctx.getImageData(x, y, 1, 1).data;
                  const k = `${d[0]},${d[1]},${d[2]}`;
                  counts.set(k, (counts.get(k) || 0) + 1);
                }
                const best = [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
                return [label, best.split(',').map(Number)];
              });
            }"""
        )
    ]


def assert_phases_shaded(page, selector: str) -> None:
    """E-phases grey, M-phases amber (explorer_core.figures.common.PHASE_SHADES over white)."""
    bands = [(label, rgb) for label, rgb in band_colours(page, selector) if label]
    assert {label for label, _ in bands} == {"E", "M"}, bands
    for label, (r, g, b) in bands:
        if label == "E":
            assert max(r, g, b) - min(r, g, b) <= 6 and r < 240, (label, (r, g, b))
        else:
            assert r > 245 and r - b > 20, (label, (r, g, b))


def body(page, key: str) -> str:
    return page.locator("body").get_attribute(f"data-{key}")


def test_fa_replay_scrub_play_and_the_apps_numbers(browser, base, site):
    d = payload(site, "fa")
    with site_page(browser, base, "model=fa&step=0") as (page, problems):
        assert "Recording" in page.inner_text(".recording") and "nothing is trained here" in page.inner_text(
            "main"
        )
        scatter, curves = picture(page, "canvas.scatter"), picture(page, "canvas.curves")
        scrub(page, 1500)
        assert body(page, "step") == "1500"
        assert picture(page, "canvas.scatter") != scatter  # the model's samples moved
        assert picture(page, "canvas.curves") != curves  # the cursor and the curves drawn up to it
        assert_phases_shaded(page, "canvas.curves")
        # the reading is the app's sentence on the latest phase, computed from the recorded numbers
        history = FAHistory()
        history.phase = ["init", *[p for p, a, b in d["segments"] for _ in range(a, b + 1)][:1500]]
        for name in ("elbo", "evidence", "gap"):
            setattr(history, name, unb64(d[name], "<f8")[:1501].tolist())
        expected = describe_phase_change(last_phase_change(history)).replace("**", "")
        assert page.locator(".reading p").first.inner_text() == expected
        # q(z|x) and the exact p(z|x) the page computes at step 100 are the app's
        scrub(page, 100)
        with one_thread():
            ex = FAExperiment(make_fa_dataset(), FATrainingConfig())
            ex.run("e_step", 100)
            app = ex.posteriors_of(0)
        for key in ("q", "p"):
            shown = [
                float(v) for v in page.locator("canvas.ellipses").get_attribute(f"data-{key}").split(",")
            ]
            want = [*app[f"{key}_mean"], *app[f"{key}_cov"].ravel()]
            assert max(abs(a - b) for a, b in zip(shown, want, strict=True)) < 1e-4, (key, shown, want)
        # a drag turns the 3-D view
        view, before = (
            page.locator("canvas.scatter").get_attribute("data-view"),
            picture(page, "canvas.scatter"),
        )
        drag(page, "canvas.scatter", [(0.4, 0.5), (0.7, 0.6)])
        assert page.locator("canvas.scatter").get_attribute("data-view") != view
        assert picture(page, "canvas.scatter") != before
        # Play moves through the steps and the picture with them; Pause stops
        page.get_by_role("button", name="Play the recording").click()
        page.wait_for_function("Number(document.body.dataset.step) >= 400")
        page.get_by_role("button", name="Pause the recording").click()
        assert body(page, "playing") == "0"
        stopped = body(page, "step")
        page.wait_for_timeout(300)
        assert body(page, "step") == stopped
        link = page.url
        assert f"step={stopped}" in link and "az=" in link
        assert problems == []
    with site_page(browser, base, link.split("#", 1)[1]) as (page, problems):
        assert body(page, "step") == stopped
        assert page.locator("input.scrubber").input_value() == stopped
        assert page.locator("canvas.scatter").get_attribute("data-view").split(",")[0] != view.split(",")[0]
        assert problems == []


def test_watch_replay_map_forms_as_it_plays(browser, base, site):
    d = payload(site, "watch")
    last = d["frames"] - 1
    with site_page(browser, base, "model=watch&step=0") as (page, problems):
        assert "Recording" in page.inner_text(".recording")
        start = picture(page, "canvas.map-replay"), picture(page, "canvas[aria-label^='the manifold']")
        assert page.locator("canvas[aria-label^='the manifold']").get_attribute("data-step") == "0"
        scrub(page, last)
        assert body(page, "step") == str(d["steps"])
        assert picture(page, "canvas.map-replay") != start[0]
        assert picture(page, "canvas[aria-label^='the manifold']") != start[1]
        assert page.locator("canvas[aria-label^='the manifold']").get_attribute("data-step") == str(
            d["steps"]
        )
        assert_phases_shaded(page, "canvas.curves")
        assert_phases_shaded(page, "canvas.terms")
        elbo = unb64(d["elbo"], "<f8")[last]
        assert f"= {elbo:.1f} nats per image" in page.inner_text(".reading")
        # Play from the start: the map forms
        scrub(page, 0)
        page.get_by_role("button", name="Play the recording").click()
        page.wait_for_function("Number(document.body.dataset.step) >= 500")
        assert picture(page, "canvas.map-replay") != start[0]
        page.get_by_role("button", name="Pause the recording").click()
        assert problems == []


@pytest.mark.parametrize(
    ("viewport", "scales"), [(LAPTOP, ("125", "150")), (PHONE, ("100", "150"))], ids=["1280x720", "390x844"]
)
def test_lecture_scale_needs_no_sideways_scroll(browser, http_url, viewport, scales):
    """At the lecture scales (the page's CSS zoom) every page of the site fits the screen's width."""
    with site_page(browser, http_url, "model=vae-cb-l2", viewport=viewport) as (page, problems):
        for model in MODELS:
            for scale in scales:
                page.goto("about:blank")
                page.goto(f"{http_url}/index.html#model={model}&scale={scale}")
                page.wait_for_selector("body[data-ready='1']", state="attached")
                page.wait_for_timeout(100)
                assert page.locator("#scale").input_value() == scale
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"], f"{model} at {scale} %: {width} px wide"
        assert problems == []


def test_the_pad_follows_the_pointer_at_150_percent(browser, base, site):
    """Zoomed by the lecture scale, a tap on the map puts z under the finger: the map's bounds at the tap's
    fraction of the canvas."""
    bounds = payload(site, "vae-cb-l2")["map"]["bounds"]
    with site_page(browser, base, "model=vae-cb-l2&scale=150") as (page, problems):
        canvas = page.locator("canvas.map")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        z0 = canvas.get_attribute("data-z")
        page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + 0.25 * box["height"])
        page.wait_for_function("z => document.querySelector('canvas.map').dataset.z !== z", arg=z0)
        u, v = (float(t) for t in canvas.get_attribute("data-z").split(","))
        (u0, u1), (v0, v1) = bounds
        assert abs(u - (u0 + 0.75 * (u1 - u0))) < 0.02 * (u1 - u0)
        assert abs(v - (v0 + 0.75 * (v1 - v0))) < 0.02 * (v1 - v0)
        assert problems == []
