"""Fixtures for the browser tests: a live Streamlit server and a headless Chromium driven by Playwright.

The browser is Debian's Chromium (``/usr/bin/chromium``, or the path in ``AEVB_CHROMIUM``); Playwright's
own browser download is never used. Without Playwright or Chromium the tests are skipped, unless
``AEVB_REQUIRE_BROWSER=1`` is set, in which case they fail.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.common import CHROMIUM, CHROMIUM_ARGS, stop_server
from serve import headless_command

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT_S = 60
IDLE_APP = '[data-testid="stApp"][data-test-script-state="notRunning"]'
#: the log files of the servers the tests started, so a failing test can quote the server's traceback
SERVER_LOGS: list[Path] = []


def server_tracebacks(limit_chars: int = 6000) -> str:
    """The uncaught app exceptions logged so far by the test servers (Streamlit logs each one with its
    traceback as "Uncaught app execution"; the page itself shows only a redacted message), the last
    ``limit_chars`` characters; "" when there is none."""
    found = []
    for log_path in SERVER_LOGS:
        try:
            text = log_path.read_text(errors="replace")
        except OSError:
            continue
        for block in text.split("Uncaught app execution")[1:]:
            found.append(f"{log_path}: Uncaught app execution{block[:3000]}")
    return "\n".join(found)[-limit_chars:]


def _unavailable(reason: str) -> None:
    """Skip, or fail when ``AEVB_REQUIRE_BROWSER=1`` demands that the browser tests run."""
    if os.environ.get("AEVB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (AEVB_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    """Return a TCP port that is free right now on localhost."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def streamlit_server(log_path: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run the app as ``make run`` does (``serve.py``: ``streamlit run app.py`` after preloading) on a free
    port (with extra environment ``env``), yield its base URL once ``/_stcore/health`` answers, and stop it
    afterwards. The server's output goes to ``log_path``."""
    port = _free_port()
    cmd = headless_command(port)
    SERVER_LOGS.append(log_path)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        url = f"http://localhost:{port}"
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while True:
                if proc.poll() is not None:
                    out = log_path.read_text(errors="replace")
                    pytest.fail(f"streamlit exited with code {proc.returncode}:\n{out}")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not answer on {url} within {SERVER_START_TIMEOUT_S} s")
                time.sleep(0.5)
            yield url
        finally:
            stop_server(proc)


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with its shipped models, on a free port, for the whole session."""
    with streamlit_server(tmp_path_factory.mktemp("streamlit") / "server.log") as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium (Debian's build) launched through Playwright; skips when unavailable."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        _unavailable(f"playwright is not importable: {err}")
    if not Path(CHROMIUM).is_file():
        _unavailable(f"no Chromium binary at {CHROMIUM} (set AEVB_CHROMIUM to its path)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def warm_app_url(browser, app_url: str) -> str:
    """The app's URL after the server's first session, which deep-links to the FA page.

    A fresh server's first session that opens a page other than the default one once got a spurious
    "Page not found" dialog (Streamlit issue 8860, caused by a ``pages/`` folder beside ``app.py``; the
    pages live in ``views/`` for that reason). This visit checks that it stays away, and pays the torch
    warm-up once for the tests that follow.
    """
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{app_url}/factor-analysis", timeout=90_000)
    page.wait_for_selector("h1", timeout=90_000)
    page.wait_for_selector(IDLE_APP, timeout=90_000)
    dialogs = page.get_by_role("dialog")
    assert dialogs.count() == 0, f"first-session deep link: {dialogs.all_inner_texts()}"
    context.close()
    return app_url


@contextmanager
def fresh_page(browser, viewport: dict[str, int] | None = None) -> Iterator:
    """A page in its own browser context (so its own Streamlit session), ``viewport`` (default 1500 x 1100
    CSS pixels), generous timeouts."""
    context = browser.new_context(viewport=viewport or {"width": 1500, "height": 1100})
    context.set_default_timeout(60_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser, warm_app_url: str):
    """A fresh browser page for the tests against the app with its shipped models."""
    with fresh_page(browser) as pg:
        yield pg


# ------------------------------------------------------------------------------ the latent pad (shared)
# The pad (views/components/latent_pad) sits in a shadow root; Playwright's CSS locators pierce it.


def pad_canvas(page, key: str):
    """The canvas of the latent pad mounted with ``key``."""
    return page.locator(f".st-key-{key} canvas.canvas").first


def pad_image_src(page, key: str) -> str:
    """The ``src`` (a PNG data URL) of the pad's decoded image."""
    return page.locator(f".st-key-{key} img.decoded").first.get_attribute("src") or ""


def pad_caption(page, key: str) -> str:
    """The caption under the pad's decoded image (``z = (u, v)`` and the like)."""
    return page.locator(f".st-key-{key} .caption").first.inner_text().strip()


def pad_point(page, key: str, attribute: str = "data-sample") -> list[tuple[float, float, int]]:
    """Page coordinates and ids of the pad's isolated test point (``data-sample``) or of its pickable marks
    (``data-picks``), as the pad reports them."""
    canvas = pad_canvas(page, key)
    box = canvas.bounding_box()
    text = canvas.get_attribute(attribute) or ""
    out = []
    for item in filter(None, text.split(";")):
        x, y, i = item.split(",")
        out.append((box["x"] + float(x), box["y"] + float(y), int(i)))
    return out


def pad_ticks(page, key: str) -> list[tuple[str, str, float, float, float, float]]:
    """The tick labels the pad mounted with ``key`` drew: (axis ``x`` or ``y``, text, left, right, top,
    bottom), the box in CSS pixels of the canvas."""
    text = pad_canvas(page, key).get_attribute("data-ticks") or ""
    out = []
    for item in filter(None, text.split(";")):
        axis, label, *box = item.split("|")
        out.append((axis, label, *(float(v) for v in box)))
    return out


def assert_ticks_readable(page, key: str) -> None:
    """Every tick label of the pad ``key`` lies wholly inside its canvas, and a negative one starts with a
    minus sign (the label at the left edge once lost its minus: "−10" read "10")."""
    canvas = pad_canvas(page, key)
    width, height = canvas.evaluate("c => [c.clientWidth, c.clientHeight]")
    ticks = pad_ticks(page, key)
    assert {t[0] for t in ticks} == {"x", "y"}, ticks
    outside = [t for t in ticks if t[2] < 0 or t[3] > width or t[4] < 0 or t[5] > height]
    assert not outside, (outside, width, height)
    region = [float(v) for v in (canvas.get_attribute("data-region") or "").split(",")]
    lowest_x = min((t for t in ticks if t[0] == "x"), key=lambda t: t[2])
    if region[0] < -1e-9 and lowest_x[1] != "0":  # the left edge is negative: its label reads negative
        assert lowest_x[1].startswith("\u2212"), lowest_x
    for axis, label, *_ in ticks:
        assert "-" not in label, f"{axis} tick {label!r}: a hyphen where a minus sign belongs"


def watch_pad_images(page, key: str) -> None:
    """Start recording every new ``src`` of the pad's decoded image (read with :func:`pad_images_seen`)."""
    page.locator(f".st-key-{key} img.decoded").first.evaluate(
        """img => { window.__padSrcs = [];
            new MutationObserver(() => window.__padSrcs.push(img.getAttribute('src')))
                .observe(img, {attributes: true, attributeFilter: ['src']}); }"""
    )


def pad_images_seen(page) -> list[str]:
    """The decoded images shown since :func:`watch_pad_images`, in order."""
    return page.evaluate("window.__padSrcs || []")
