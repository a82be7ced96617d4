"""The "Watch it learn" page in a real Chromium: ▶ Play streams frames (the step count, the latent map and the
learning curves change several times), Pause stops them, a schedule plays its phases, and a drag on the
paused map (the latent pad) decodes. The map is one square of one size playing and paused, its tick labels
read (negative ones with a minus sign), and no metric label is cut, in lecture mode at 1280x720 and at
1400x1000. After an M-phase the reading calls log p(x) by its name, not "the IWAE bound".
"""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import assert_ticks_readable, fresh_page, pad_canvas, pad_caption, pad_image_src
from tests.browser.test_browser import (
    assert_no_exception,
    canvas_frame,
    click,
    metric,
    open_page,
    pause,
    poll,
    wait_idle,
)

pytestmark = pytest.mark.browser

PLAY_TIMEOUT_S = 120
CHANGE_TIMEOUT_S = 60
PAD = "watch_pad"


def step(page) -> int:
    return int(metric(page, "Step").replace(",", ""))


def test_play_streams_frames_pause_stops_and_the_map_decodes(page, warm_app_url: str):
    open_page(page, f"{warm_app_url}/watch", "Watch it learn")
    assert_no_exception(page)
    assert "lower estimate" in page.get_by_test_id("stMain").inner_text()
    assert metric(page, "Step") == "0"

    click(page, "Play")
    page.get_by_role("button", name="Pause", exact=True).wait_for(timeout=CHANGE_TIMEOUT_S * 1000)
    steps, maps, curves = set(), set(), set()
    deadline = time.monotonic() + PLAY_TIMEOUT_S
    while (len(steps) < 4 or len(maps) < 4 or len(curves) < 4) and time.monotonic() < deadline:
        steps.add(metric(page, "Step"))
        if page.locator(".st-key-watch_map canvas").count():
            maps.add(canvas_frame(page, "watch_map"))
        curves.add(canvas_frame(page, "watch_curves"))
        time.sleep(0.1)
    pause(page)
    assert len(steps) >= 4 and len(maps) >= 4 and len(curves) >= 4, (steps, maps, curves)
    paused_at = metric(page, "Step")
    time.sleep(1.5)
    assert metric(page, "Step") == paused_at, "frames went on after Pause"
    assert int(paused_at.replace(",", "")) > 0
    assert_no_exception(page)

    # a drag on the paused map (the latent pad) decodes z as it moves
    canvas = pad_canvas(page, PAD)
    canvas.scroll_into_view_if_needed()
    poll(lambda: pad_image_src(page, PAD), CHANGE_TIMEOUT_S, "the pad's decoded image")
    # paused, the model is fixed: the pad holds its decoder and decodes the drag in the browser
    poll(lambda: canvas.get_attribute("data-local") == "1", CHANGE_TIMEOUT_S, "the pad to hold the decoder")
    before_src, before_caption = pad_image_src(page, PAD), pad_caption(page, PAD)
    box = canvas.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
    page.mouse.move(x0, y0)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x0 + box["width"] * 0.3 * i / 10, y0 - box["height"] * 0.25 * i / 10)
    page.mouse.up()
    poll(
        lambda: pad_caption(page, PAD) != before_caption and pad_image_src(page, PAD) != before_src,
        CHANGE_TIMEOUT_S,
        "the decoding of the dragged z",
    )
    wait_idle(page)
    assert "decoded at" in pad_caption(page, PAD)
    assert metric(page, "Step") == paused_at, "decoding must not train"
    assert_no_exception(page)


def test_a_schedule_plays_e_then_m_and_stops_play_when_paused(page, warm_app_url: str):
    open_page(page, f"{warm_app_url}/watch", "Watch it learn")
    click(page, "E/M schedule")
    page.get_by_role("button", name="Pause", exact=True).wait_for(timeout=CHANGE_TIMEOUT_S * 1000)
    poll(lambda: step(page) > 260, PLAY_TIMEOUT_S, "the schedule to reach its first M-phase")
    pause(page)
    assert "steps queued" in page.get_by_test_id("stMain").inner_text()
    paused_at = metric(page, "Step")
    time.sleep(1.5)
    assert metric(page, "Step") == paused_at
    # ▶ Play right after the pause goes on with the queue (no click is ignored)
    click(page, "Play")
    poll(lambda: metric(page, "Step") != paused_at, CHANGE_TIMEOUT_S, "Play to go on with the queue")
    pause(page)
    assert_no_exception(page)


# the label's text box (Streamlit shortens a label that does not fit with an ellipsis)
CUT_LABELS = """() => [...document.querySelectorAll('[data-testid="stMetricLabel"]')].map(label => {
    const box = label.querySelector('[data-testid="stMarkdownEllipsis"]') || label;
    return [label.innerText.trim(), box.scrollWidth, box.clientWidth];
}).filter(([, scroll, client]) => scroll > client)"""


def map_size(page, key: str) -> tuple[float, float]:
    box = page.locator(f".st-key-{key} canvas.canvas").first.bounding_box()
    return box["width"], box["height"]


@pytest.mark.parametrize(
    ("query", "viewport"),
    [("?lecture=1", {"width": 1280, "height": 720}), ("", {"width": 1400, "height": 1000})],
    ids=["lecture-1280x720", "1400x1000"],
)
def test_the_map_is_one_square_playing_and_paused_and_the_metric_labels_are_whole(
    browser, warm_app_url, query, viewport
):
    with fresh_page(browser, viewport) as page:
        open_page(page, f"{warm_app_url}/watch{query}", "Watch it learn")
        page.locator(f".st-key-{PAD} canvas.canvas").first.wait_for()
        assert page.get_by_test_id("stMetric").count() == 8
        paused = map_size(page, PAD)
        assert abs(paused[0] - paused[1]) <= 2 and paused[0] >= 250, paused  # square (it was 226 x 432)
        assert not page.evaluate(CUT_LABELS)  # "IWAE bound (k=16)", "Gap estimate": cut at 8 in a row
        assert_ticks_readable(page, PAD)

        play = page.locator(".st-key-watch_play button").first
        play.click()
        live = page.locator(".st-key-watch_map canvas.canvas").first
        live.wait_for(timeout=CHANGE_TIMEOUT_S * 1000)
        poll(lambda: int(live.get_attribute("data-frame") or 0) > 1, PLAY_TIMEOUT_S, "frames of the live map")
        playing = map_size(page, "watch_map")
        assert not page.evaluate(CUT_LABELS)
        play.click()  # pause
        page.locator(f".st-key-{PAD} canvas.canvas").first.wait_for(timeout=CHANGE_TIMEOUT_S * 1000)
        wait_idle(page)
        again = map_size(page, PAD)
        assert_ticks_readable(page, PAD)
        assert_no_exception(page)
    # one shape and one size while it plays and while it is paused
    for size in (playing, again):
        assert abs(size[0] - paused[0]) <= 1 and abs(size[1] - paused[1]) <= 1, (paused, playing, again)


def test_after_an_m_phase_the_reading_does_not_call_log_p_the_iwae_bound(page, warm_app_url: str):
    """Issue 33, item 4: the M-step's reading called log p(x) "the IWAE bound", a lower bound on it."""
    open_page(page, f"{warm_app_url}/watch", "Watch it learn")
    field = page.locator(".st-key-watch_n input").first
    field.fill("10")
    field.press("Enter")
    wait_idle(page)
    page.locator(".st-key-watch_m button").first.click()
    poll(lambda: step(page) == 10, PLAY_TIMEOUT_S, "the 10 M-steps to run")
    page.get_by_role("button", name="Play", exact=True).wait_for(timeout=CHANGE_TIMEOUT_S * 1000)
    wait_idle(page)
    reading = poll(
        lambda: (
            page.get_by_test_id("stMarkdownContainer").filter(has_text="Last phase: M-step").all_inner_texts()
        ),
        CHANGE_TIMEOUT_S,
        "the reading of the M-phase",
    )[0]
    assert_no_exception(page)
    assert "(the IWAE bound)" not in reading and "a lower bound on log p(x)" in reading, reading
