"""The Gaussian mixture VAE page in a real Chromium: picking a cluster (a pill, or its disc on the chart)
shows new samples, with no exception; a disc shows the decoder mean at mu(y) and says so, a drag the lifted
plane point and says so; "New samples" puts its seed in the link and the gallery (issue 33, items 5 and 6).

The module starts its own server, with ``AEVB_MODEL_DIRS`` pointing at a temporary folder holding one tiny
untrained GMVAE (L = 4), so nothing here needs the shipped models; when those are present they are listed
too, and the test picks the tiny one by name.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from explorer_core.artifacts import load_model, save_model
from explorer_core.models.gmvae import GMVAE, GMVAEConfig
from tests.browser.conftest import (
    fresh_page,
    pad_canvas,
    pad_caption,
    pad_image_src,
    pad_images_seen,
    pad_point,
    streamlit_server,
    watch_pad_images,
)
from tests.browser.test_browser import assert_no_exception, poll, wait_idle
from tests.browser.test_latent_browser import choose_model
from tests.unit.test_no_emoji import emoji_in

pytestmark = pytest.mark.browser

CHANGE_TIMEOUT_S = 90
#: the first visit loads the model and computes q(y|x) of the 10,000 test images (slow on a busy CPU)
LOAD_TIMEOUT_S = 300
METRICS = {"elbo": -150.0, "elbo_without_log_c": -147.7, "conditional_entropy": 1.2, "cluster_accuracy": 0.2}
SAMPLES = '.st-key-gmvae_samples [data-testid="stImage"]'


@pytest.fixture(scope="module")
def gmvae_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding tiny-gmvae (random weights, C = 10, L = 4)."""
    folder = tmp_path_factory.mktemp("browser-gmvae")
    torch.manual_seed(0)
    model = GMVAE(GMVAEConfig(hidden=(32,), latent_dim=4))
    save_model(model, "gmvae", folder, "tiny-gmvae", {"preprocessing": "binarized", "test_metrics": METRICS})
    return folder


@pytest.fixture(scope="module")
def gmvae_app_url(gmvae_dir: Path) -> Iterator[str]:
    """A server whose model list holds tiny-gmvae."""
    folder = gmvae_dir
    env = {"AEVB_MODEL_DIRS": str(folder), "AEVB_DEVICE": "cpu"}
    with streamlit_server(folder / "server.log", env) as url:
        yield url


@pytest.fixture
def gmvae_page(browser, gmvae_app_url: str):
    """A fresh page (own Streamlit session) against the server with the tiny model."""
    with fresh_page(browser) as pg:
        yield pg


def samples_src(page) -> str:
    """The ``src`` of the picked cluster's sample grid."""
    return page.locator(SAMPLES).first.locator("img").get_attribute("src") or ""


def samples_caption(page) -> str:
    return page.locator(SAMPLES).first.inner_text().strip()


def open_tiny(page, url: str) -> None:
    """The GMVAE page with tiny-gmvae chosen, its samples drawn."""
    page.set_default_timeout(LOAD_TIMEOUT_S * 1000)  # a busy CPU slows the browser as much as the server
    page.goto(f"{url}/gmvae", timeout=LOAD_TIMEOUT_S * 1000)
    page.locator("h1", has_text="Gaussian mixture VAE").first.wait_for(timeout=LOAD_TIMEOUT_S * 1000)
    wait_idle(page, LOAD_TIMEOUT_S)
    choose_model(page, "gmvae", "tiny-gmvae")
    page.locator(SAMPLES).first.wait_for(timeout=LOAD_TIMEOUT_S * 1000)
    wait_idle(page, LOAD_TIMEOUT_S)
    assert_no_exception(page)


def test_picking_a_cluster_shows_new_samples(gmvae_page, gmvae_app_url):
    page = gmvae_page
    open_tiny(page, gmvae_app_url)
    src, caption = samples_src(page), samples_caption(page)
    assert src and caption.startswith("100 samples from cluster")

    # a pill: the last one (the first is picked at the start)
    pill = page.locator(".st-key-gmvae_cluster").get_by_role("radio").last
    label = pill.inner_text().strip()
    pill.click()
    poll(lambda: samples_src(page) != src, CHANGE_TIMEOUT_S, "new samples after a pill click")
    wait_idle(page)
    assert f"cluster {label} " in samples_caption(page)
    assert_no_exception(page)

    # a click on a cluster's disc (its prior mean) on the pad picks that cluster
    src, caption = samples_src(page), samples_caption(page)
    picked = page.locator(".st-key-gmvae_cluster").get_by_role("radio", checked=True).inner_text().strip()
    discs = pad_point(page, "gmvae_pad", "data-picks")
    assert len(discs) == 10
    target = next((d for d in discs if f"y={d[2]} " not in f"{picked} "), discs[0])
    pad_canvas(page, "gmvae_pad").scroll_into_view_if_needed()
    discs = pad_point(page, "gmvae_pad", "data-picks")
    x, y, cluster = next(d for d in discs if d[2] == target[2])
    page.mouse.click(x, y)
    poll(
        lambda: samples_caption(page) != caption,
        CHANGE_TIMEOUT_S,
        "another cluster after a click on its disc",
    )
    wait_idle(page)
    assert f"y={cluster} " in samples_caption(page)
    assert samples_src(page) != src
    assert_no_exception(page)

    # a drag on the pad decodes the z under the pointer (several images while the mouse is down)
    watch_pad_images(page, "gmvae_pad")
    canvas = pad_canvas(page, "gmvae_pad")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    for i in range(1, 31):
        page.mouse.move(box["x"] + box["width"] * (0.2 + 0.6 * i / 30), box["y"] + box["height"] * 0.5)
        page.wait_for_timeout(25)
    page.mouse.up()
    assert len(set(pad_images_seen(page))) >= 2
    wait_idle(page)
    assert_no_exception(page)

    # new samples of the same cluster
    src, caption = samples_src(page), samples_caption(page)
    page.get_by_role("button", name="New samples").click()
    poll(lambda: samples_src(page) != src, CHANGE_TIMEOUT_S, "new samples after the button")
    wait_idle(page)
    assert samples_caption(page).split(" (")[0] == caption.split(" (")[0]
    assert_no_exception(page)


def shown_pixels(src: str) -> np.ndarray:
    """The pad's decoded image (a PNG data URL, the server's or the browser's) as int [28, 28]."""
    png = base64.b64decode(src.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.int64)


def test_a_disc_shows_mu_y_a_drag_the_plane_and_new_samples_keep_the_link(
    gmvae_page, gmvae_app_url, gmvae_dir
):
    """Issue 33, items 5 and 6, as a class sees them: a click on a cluster's disc shows the decoder mean at
    mu(y) (the pixels of lambda(mu(y))) captioned as such; a drag shows the plane point lifted to 4-D and
    says so; back on the disc, mu(y) again; "New samples" moves the samples' seed, the gallery's and the
    link's together."""
    page = gmvae_page
    open_tiny(page, gmvae_app_url)
    model = load_model(gmvae_dir / "tiny-gmvae.json", "cpu").model
    with torch.no_grad():
        means = model.decode(model.prior().mean).mean.reshape(10, 28, 28).numpy()
    expected = np.round(np.clip(means, 0, 1) * 255).astype(np.int64)

    pad_canvas(page, "gmvae_pad").scroll_into_view_if_needed()
    for _ in range(2):
        discs = pad_point(page, "gmvae_pad", "data-picks")
        picked = page.locator(".st-key-gmvae_cluster").get_by_role("radio", checked=True).inner_text()
        x, y, cluster = next(d for d in discs if f"y={d[2]} " not in f"{picked.strip()} ")
        page.mouse.click(x, y)
        says = f"decoder mean at μ(y) of cluster y={cluster} "
        poll(
            lambda says=says: pad_caption(page, "gmvae_pad").startswith(says),
            CHANGE_TIMEOUT_S,
            "the caption of μ(y)",
        )
        wait_idle(page)
        assert np.abs(shown_pixels(pad_image_src(page, "gmvae_pad")) - expected[cluster]).max() <= 1

        # a drag off the disc: the plane point, lifted, and the caption says so (with the point)
        box = pad_canvas(page, "gmvae_pad").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.15, box["y"] + box["height"] * 0.2)
        page.mouse.down()
        for i in range(1, 16):
            page.mouse.move(box["x"] + box["width"] * (0.15 + 0.02 * i), box["y"] + box["height"] * 0.2)
            page.wait_for_timeout(40)
        page.mouse.up()
        poll(
            lambda: re.fullmatch(r"plane \(-?[0-9.]+, -?[0-9.]+\) → 4-D", pad_caption(page, "gmvae_pad")),
            CHANGE_TIMEOUT_S,
            "the caption of the plane point",
        )
        wait_idle(page)
        assert "lifted to 4-D" in page.locator(".st-key-gmvae_pad .title").first.inner_text()
        assert np.abs(shown_pixels(pad_image_src(page, "gmvae_pad")) - expected[cluster]).max() > 1
        assert_no_exception(page)

    caption = samples_caption(page)
    seed = int(re.search(r", seed (\d+)\)", caption).group(1))
    page.get_by_role("button", name="New samples").click()
    poll(lambda: f", seed {seed + 1})" in samples_caption(page), CHANGE_TIMEOUT_S, "the next seed's samples")
    poll(lambda: f"seed={seed + 1}" in page.url, CHANGE_TIMEOUT_S, "the next seed in the link")
    wait_idle(page)
    gallery = page.get_by_text(re.compile(rf"Seed {seed + 1}\.$"))
    assert gallery.count() >= 1, "the gallery's caption names the samples' seed"
    assert_no_exception(page)


def png_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def test_pngs_for_a_slide_and_icons_without_an_emoji_font(gmvae_page, gmvae_app_url):
    """Issue 33, "PNG exports" and "Icons": the plotly modebar's PNG is 3x the chart's size on the page,
    under a file name that says what it shows; a canvas's PNG button saves it 3x too; a picture's PNG button
    saves it enlarged for a slide. The page shows no emoji (what tests/unit/test_no_emoji.py looks for): its
    icons are Material icons, drawn from Streamlit's font."""
    page = gmvae_page
    open_tiny(page, gmvae_app_url)

    chart = page.locator('[data-testid="stPlotlyChart"]').filter(has_text="q(y|x)").first
    chart.scroll_into_view_if_needed()
    chart.hover()
    box = chart.locator(".main-svg").first.bounding_box()
    with page.expect_download() as download:
        chart.locator('.modebar-btn[data-title="Download plot as a PNG"]').click()
    assert download.value.suggested_filename == "aevb-gmvae-qyx-test-image-0-digit-7-tiny-gmvae.png"
    width, height = png_size(Path(download.value.path()).read_bytes())
    assert abs(width - 3 * box["width"]) <= 3 and abs(height - 3 * box["height"]) <= 3, (width, height, box)

    canvas = pad_canvas(page, "gmvae_pad")
    canvas.scroll_into_view_if_needed()
    canvas.hover()
    css = canvas.evaluate("c => [c.clientWidth, c.clientHeight]")  # CSS pixels, its border aside
    with page.expect_download() as download:
        page.locator(".st-key-gmvae_pad button.aevb-png").first.click()
    width, height = png_size(Path(download.value.path()).read_bytes())
    assert abs(width - 3 * css[0]) <= 3 and abs(height - 3 * css[1]) <= 3, (width, height, css)
    assert canvas.evaluate("c => c.width") < width  # drawn again for the screen afterwards

    button = page.locator(".st-key-gmvae_samples_png button").first
    button.scroll_into_view_if_needed()
    with page.expect_download() as download:
        button.click()
    shown = page.locator(SAMPLES).first.locator("img").evaluate("i => [i.naturalWidth, i.naturalHeight]")
    saved = png_size(Path(download.value.path()).read_bytes())
    assert saved[0] >= 3 * shown[0] and saved[0] / shown[0] == saved[1] / shown[1], (saved, shown)

    assert not emoji_in(page.locator("body").inner_text())
    icons = page.locator('[data-testid="stSidebarNav"] [data-testid="stIconMaterial"]')
    assert icons.count() >= 8  # every page's icon in the navigation
    assert "Material Symbols" in icons.first.evaluate("e => getComputedStyle(e).fontFamily")
    assert page.evaluate("document.fonts.check('24px \"Material Symbols Rounded\"')")
    assert_no_exception(page)
