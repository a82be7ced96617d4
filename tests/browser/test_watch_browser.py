"""The "Watch it learn" page in a real Chromium: ▶ Play streams frames (the step count, the latent map and the
learning curves change several times), switching it off pauses them, and a drag on the paused map decodes.
"""

from __future__ import annotations

import time

import pytest

from tests.browser.test_browser import assert_no_exception, metric, open_page, poll, wait_idle

pytestmark = pytest.mark.browser

PLAY_TIMEOUT_S = 120
CHANGE_TIMEOUT_S = 60
MAP = ".st-key-watch_map"
CURVES = ".st-key-watch_curves path.js-line"
PLAY = ".st-key-watch_play_toggle"


def set_playing(page, on: bool) -> None:
    """Switch the ▶ Play toggle on or off (a toggle, so that the click survives the frames' reruns)."""
    switch = page.locator(f"{PLAY} input[type=checkbox]")
    if switch.is_checked() != on:
        page.locator(PLAY).get_by_text("Play").click()
    poll(
        lambda: switch.is_checked() == on, CHANGE_TIMEOUT_S, f"the Play toggle to be {'on' if on else 'off'}"
    )


def map_signature(page) -> str:
    """Where the map's points are drawn now (their SVG transforms), as one string."""
    return page.locator(f"{MAP} .scatterlayer path.point").evaluate_all(
        "els => els.slice(0, 400).map(e => e.getAttribute('transform')).join(';')"
    )


def curves_signature(page) -> str:
    """The learning curves' SVG path data."""
    return page.locator(CURVES).evaluate_all("els => els.map(e => e.getAttribute('d') || '').join('|')")


def captions(page) -> str:
    """The text of every image caption on the page."""
    return " ".join(page.get_by_test_id("stImageCaption").all_inner_texts())


def test_play_streams_frames_pause_stops_and_the_map_decodes(page, warm_app_url: str):
    open_page(page, f"{warm_app_url}/watch", "Watch it learn")
    assert_no_exception(page)
    assert "lower estimate" in page.get_by_test_id("stMain").inner_text()
    assert metric(page, "Step") == "0"

    steps, maps, curves = set(), set(), set()
    set_playing(page, True)
    deadline = time.monotonic() + PLAY_TIMEOUT_S
    while (len(steps) < 4 or len(maps) < 4 or len(curves) < 4) and time.monotonic() < deadline:
        steps.add(metric(page, "Step"))
        maps.add(map_signature(page))
        curves.add(curves_signature(page))
        time.sleep(0.15)
    set_playing(page, False)
    assert len(steps) >= 4 and len(maps) >= 4 and len(curves) >= 4, (steps, len(maps), len(curves))
    wait_idle(page)
    paused_at = metric(page, "Step")
    time.sleep(1.5)
    assert metric(page, "Step") == paused_at, "frames went on after Play was switched off"
    assert int(paused_at.replace(",", "")) > 0
    assert_no_exception(page)

    plot = page.locator(f"{MAP} .nsewdrag").first
    plot.scroll_into_view_if_needed()
    box = plot.bounding_box()

    # a drag on the paused map (plotly's box select) decodes the box's centre and shows its manifold
    x0, y0 = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3
    page.mouse.move(x0, y0)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x0 + box["width"] * 0.35 * i / 10, y0 + box["height"] * 0.3 * i / 10)
    page.mouse.up()
    poll(lambda: "dragged box" in captions(page), CHANGE_TIMEOUT_S, "the manifold of the dragged box")
    poll(lambda: "decoded at" in captions(page), CHANGE_TIMEOUT_S, "the decoded image of the drag")
    wait_idle(page)
    assert metric(page, "Step") == paused_at, "decoding must not train"
    assert_no_exception(page)
