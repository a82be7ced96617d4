"""The VAE and CVAE pages in a real Chromium: dragging a slider, clicking the map and drawing a digit change
what the page shows, with no exception.

The module starts its own server, with ``AEVB_MODEL_DIRS`` pointing at a temporary folder of tiny untrained
models (L = 2), so nothing here needs the shipped models; when those are present they are listed too, and the
tests pick the tiny ones by name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from explorer_core.artifacts import save_model
from explorer_core.models.vae import CVAE, VAE, VAEConfig
from tests.browser.conftest import fresh_page, streamlit_server
from tests.browser.test_browser import assert_no_exception, open_page, poll, wait_idle

pytestmark = pytest.mark.browser

CHANGE_TIMEOUT_S = 60
METRICS = {"elbo": -543.2, "reconstruction": -540.0, "kl": 3.2, "active_units": 2}


@pytest.fixture(scope="module")
def latent_app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose model list holds tiny-vae and tiny-cvae (random weights, L = 2)."""
    folder = tmp_path_factory.mktemp("browser-models")
    torch.manual_seed(0)
    small = {"latent_dim": 2, "hidden": (64,), "dropout": 0.0}
    meta = {"preprocessing": "dequantized", "test_metrics": METRICS}
    save_model(VAE(VAEConfig(**small)), "vae", folder, "tiny-vae", meta)
    save_model(CVAE(VAEConfig(**small)), "cvae", folder, "tiny-cvae", meta)
    env = {"AEVB_MODEL_DIRS": str(folder), "AEVB_DEVICE": "cpu"}
    with streamlit_server(folder / "server.log", env) as url:
        yield url


@pytest.fixture
def latent_page(browser, latent_app_url: str):
    """A fresh page (own Streamlit session) against the server with the tiny models."""
    with fresh_page(browser) as pg:
        yield pg


def choose_model(page, family: str, name: str) -> None:
    """Pick ``name`` in the sidebar's model selectbox (when it is not the one shown)."""
    box = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox")
    if name in box.inner_text():
        return
    box.click()
    page.get_by_role("option", name=name).first.click()
    wait_idle(page)


def decoded_src(page) -> str:
    """The ``src`` of the latent panel's decoded image (captioned "z = (u, v)")."""
    image = page.get_by_test_id("stImage").filter(has_text="z = (").first
    return image.locator("img").get_attribute("src") or ""


def decoded_caption(page) -> str:
    return page.get_by_test_id("stImage").filter(has_text="z = (").first.inner_text().strip()


def chosen_image_caption(page) -> str:
    """The caption of the encoder view's image ("test image N (digit d)" or "your drawing")."""
    captions = page.get_by_test_id("stImage").filter(has_text="test image").all_inner_texts()
    return captions[0].strip() if captions else ""


def drag_slider(page, label: str, dx: float) -> None:
    """Drag the thumb of the slider labelled ``label`` by ``dx`` pixels."""
    slider = page.get_by_test_id("stSlider").filter(has=page.get_by_text(label, exact=True)).first
    thumb = slider.get_by_role("slider")
    box = thumb.bounding_box()
    # the element with role "slider" is the round thumb (height x height) at its left edge, followed by room
    # for the value label: grab the circle, not the middle (which lies on the track and would jump there)
    x, y = box["x"] + box["height"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 9):
        page.mouse.move(x + dx * i / 8, y)
    page.mouse.up()


def open_latent(page, url: str, path: str, title: str, family: str, model: str) -> None:
    open_page(page, f"{url}/{path}", title)
    choose_model(page, family, model)
    page.get_by_test_id("stImage").filter(has_text="z = (").first.wait_for()
    assert_no_exception(page)


def test_vae_slider_drag_and_map_click_change_the_decoded_image(latent_page, latent_app_url):
    page = latent_page
    open_latent(page, latent_app_url, "vae", "VAE", "vae", "tiny-vae")
    src, caption = decoded_src(page), decoded_caption(page)
    assert src and "z = (0.00, 0.00)" in caption

    drag_slider(page, "z1", 90)
    poll(lambda: decoded_src(page) != src, CHANGE_TIMEOUT_S, "the decoded image to change after a drag")
    wait_idle(page)
    assert decoded_caption(page) != caption
    assert_no_exception(page)

    # a click on an empty part of the map moves z there (the invisible click grid)
    src, caption = decoded_src(page), decoded_caption(page)
    plot = page.locator(".st-key-vae_map .nsewdrag").first
    box = plot.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.12, box["y"] + box["height"] * 0.12)
    poll(lambda: decoded_caption(page) != caption, CHANGE_TIMEOUT_S, "z to move after a click on the map")
    wait_idle(page)
    assert decoded_src(page) != src
    assert_no_exception(page)

    # a click on a test image's point picks that image for the encoder view (trace 0 is the click grid)
    assert chosen_image_caption(page) == "test image 0 (digit 7)"
    points = page.locator(".st-key-vae_map .scatterlayer .trace").nth(5).locator("path.point")
    box = points.nth(points.count() // 2).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    poll(
        lambda: chosen_image_caption(page) not in ("", "test image 0 (digit 7)"),
        CHANGE_TIMEOUT_S,
        "the encoder view to show the clicked test image",
    )
    wait_idle(page)
    assert_no_exception(page)


def test_vae_drawing_reaches_the_encoder_view(latent_page, latent_app_url):
    page = latent_page
    open_latent(page, latent_app_url, "vae", "VAE", "vae", "tiny-vae")
    canvas = page.locator(".st-key-vae_canvas canvas").last
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.2
    page.mouse.move(x0, y0)
    page.mouse.down()
    for i in range(1, 13):
        page.mouse.move(x0, y0 + box["height"] * 0.6 * i / 12)
    page.mouse.up()
    poll(
        lambda: page.get_by_test_id("stImage").filter(has_text="your drawing").count() > 0,
        CHANGE_TIMEOUT_S,
        "the encoder view to show the drawing",
    )
    wait_idle(page)
    assert_no_exception(page)


def test_cvae_label_pill_changes_the_decoded_image(latent_page, latent_app_url):
    page = latent_page
    open_latent(page, latent_app_url, "cvae", "Conditional VAE", "cvae", "tiny-cvae")
    src = decoded_src(page)
    page.locator(".st-key-cvae_label").get_by_role("radio", name="7", exact=True).click()
    poll(lambda: decoded_src(page) != src, CHANGE_TIMEOUT_S, "the decoded image to change with the label")
    wait_idle(page)
    assert "Decoded with y = 7" in page.get_by_test_id("stMain").inner_text()
    assert_no_exception(page)
