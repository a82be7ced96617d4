"""The app in a real browser: cold start, cold deep link, and the latent drag under concurrent sessions.

(a) Cold start: ``streamlit run app.py`` (headless, a fresh port) is launched and timed until a Playwright
    Chromium page (launched beforehand, not counted) shows the home page's title with the script idle; then a
    fresh server again, deep-linked to /vae, until its first figure renders (the latent map's plotly chart or
    the decoded image, whichever comes first), the decoded image and the idle app. Each 3 times; p50.
(b) Concurrency: one warm server (the /vae page opened once, so the model is cached), N browser contexts in
    one Chromium (one Streamlit session each) open /vae with the shipped vae-cb-l2 and move z1 with the
    keyboard: the slider's thumb focused, one PageUp or PageDown press (alternating) is one move; the slider
    jumps by its page size and commits once, like the end of a drag. Latency: from the key press to the
    moment the decoded image's ``src`` differs from before the press (polled in the page every 20 ms); it
    includes Streamlit's slider handling, the fragment rerun on the server and the image transfer. After
    each move the session waits for the app to be idle, then 0.2-0.5 s (a user's pace). Errors: moves that
    time out, and pages that show an exception.

    python bench/bench_app.py            # about 5 minutes on a 2-core CPU
    python bench/bench_app.py --quick    # smoke run: 1 repeat, N = 1 and 3, 3 moves
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from common import ROOT, summary, write_result

CHROMIUM = os.environ.get("AEVB_CHROMIUM", "/usr/bin/chromium")
#: as tests/browser/conftest.py launches it
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
IDLE_APP = '[data-testid="stApp"][data-test-script-state="notRunning"]'
MODEL = "vae-cb-l2"
LOG_DIR = Path(tempfile.mkdtemp(prefix="bench-app-"))  # the servers' log, screenshots of failures
HOME_TITLE = "AEVB Explorer"
TIMEOUT_MS = 120_000
MOVE_TIMEOUT_MS = 30_000
MOVE_KEYS = ("PageUp", "PageDown")  # one press moves the slider by a page and commits once


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def server(log: Path):
    """A fresh ``streamlit run app.py``; yields (base URL, launch time, seconds until /_stcore/health)."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    # the shipped models only: no extra model folders, an empty folder of training runs
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AEVB_RUNS_DIR": str(log.parent / "runs")}
    env.pop("AEVB_MODEL_DIRS", None)
    url = f"http://localhost:{port}"
    with log.open("ab") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited with code {proc.returncode}; see {log}")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if time.perf_counter() - t0 > 120:
                    raise RuntimeError("streamlit did not answer within 120 s")
                await asyncio.sleep(0.05)
            yield url, t0, time.perf_counter() - t0
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def new_page(browser):
    context = await browser.new_context(viewport={"width": 1500, "height": 1100})
    context.set_default_timeout(TIMEOUT_MS)
    return context, await context.new_page()


def decoded_image(page):
    return page.get_by_test_id("stImage").filter(has_text="z = (").first


async def cold_start(browser, log: Path) -> dict:
    async with server(log) as (url, t0, health_s):
        context, page = await new_page(browser)
        await page.goto(url, timeout=TIMEOUT_MS)
        await page.locator("h1", has_text=HOME_TITLE).first.wait_for()
        await page.wait_for_selector(IDLE_APP)
        first_page_s = time.perf_counter() - t0
        await context.close()
    return {"health_s": round(health_s, 2), "first_page_s": round(first_page_s, 2)}


async def cold_deep_link(browser, log: Path) -> dict:
    async with server(log) as (url, t0, health_s):
        context, page = await new_page(browser)
        await page.goto(f"{url}/vae", timeout=TIMEOUT_MS)
        await page.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg, [data-testid="stImage"] img')
        first_figure_s = time.perf_counter() - t0
        await decoded_image(page).locator("img").wait_for()
        image_s = time.perf_counter() - t0
        await page.wait_for_selector(IDLE_APP)
        idle_s = time.perf_counter() - t0
        await context.close()
    return {
        "health_s": round(health_s, 2),
        "first_figure_s": round(first_figure_s, 2),
        "decoded_image_s": round(image_s, 2),
        "idle_s": round(idle_s, 2),
    }


async def wait_idle(page, settle_s: float = 0.3) -> None:
    """The app idle (no script or fragment run) for ``settle_s``."""
    while True:
        await page.wait_for_selector(IDLE_APP, timeout=TIMEOUT_MS)
        await asyncio.sleep(settle_s)
        if await page.locator(IDLE_APP).count():
            return


async def open_vae(browser, url: str, timeout_ms: int = TIMEOUT_MS):
    context, page = await new_page(browser)
    try:
        await page.goto(f"{url}/vae", timeout=timeout_ms)
        await decoded_image(page).locator("img").wait_for(state="attached", timeout=timeout_ms)
        await wait_idle(page)
    except Exception as err:
        try:  # what the page showed, for the error message (best effort: a busy browser may not answer)
            await page.screenshot(path=str(LOG_DIR / f"open-vae-failed-{id(page)}.png"), timeout=20_000)
            main = page.get_by_test_id("stMain")
            shown = (await main.inner_text(timeout=20_000))[:300] if await main.count() else "(no main)"
        except Exception:
            shown = "(the page did not answer)"
        await context.close()
        raise RuntimeError(
            f"/vae did not show its decoded image ({type(err).__name__}); it shows {shown!r}"
        ) from err
    box = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first
    shown = await box.inner_text() + " ".join(
        await box.locator("input").evaluate_all("e => e.map(i => i.value)")
    )
    if MODEL not in shown:
        raise RuntimeError(f"/vae does not show {MODEL} (its model picker shows {shown[:200]!r})")
    return context, page


async def session(page, moves: int, seed: int) -> dict:
    """Move z1 ``moves`` times; latency per move from the key presses to the decoded image's new src."""
    rng = random.Random(seed)
    thumb = page.get_by_test_id("stSlider").filter(has=page.get_by_text("z1", exact=True)).first
    thumb = thumb.get_by_role("slider")
    latencies, errors = [], []
    for i in range(moves):
        img = decoded_image(page).locator("img")
        before = await img.get_attribute("src")
        await thumb.focus()
        t0 = time.perf_counter()
        await page.keyboard.press(MOVE_KEYS[i % 2])
        try:
            await page.wait_for_function(
                """prev => { const el = [...document.querySelectorAll('[data-testid="stImage"]')]
                      .find(e => e.innerText.includes('z = ('));
                      const img = el && el.querySelector('img');
                      return img && img.getAttribute('src') !== prev; }""",
                arg=before,
                polling=20,
                timeout=MOVE_TIMEOUT_MS,
            )
            latencies.append((time.perf_counter() - t0) * 1e3)
        except Exception as err:  # a timeout is an error of this move; the session goes on
            errors.append(f"move {i}: {type(err).__name__}")
        try:
            await wait_idle(page)
        except Exception as err:
            errors.append(f"move {i}, waiting for idle: {type(err).__name__}")
        await asyncio.sleep(rng.uniform(0.2, 0.5))
    if await page.get_by_test_id("stException").count():
        errors.append("the page shows an exception")
    loaded = await decoded_image(page).locator("img").evaluate("i => i.complete && i.naturalWidth > 0")
    if not loaded:
        errors.append("the decoded image did not load (broken or still loading after the app went idle)")
    return {"latencies_ms": latencies, "errors": errors}


async def concurrency(browser, url: str, n: int, moves: int) -> dict:
    t0 = time.perf_counter()
    opened = await asyncio.gather(*(open_vae(browser, url) for _ in range(n)), return_exceptions=True)
    pages = [p for p in opened if not isinstance(p, BaseException)]
    open_errors = [f"{type(p).__name__}: {str(p)[:200]}" for p in opened if isinstance(p, BaseException)]
    open_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = await asyncio.gather(*(session(page, moves, seed) for seed, (_, page) in enumerate(pages)))
    drag_s = time.perf_counter() - t0
    for context, _ in pages:
        await context.close()
    latencies = np.array([v for r in results for v in r["latencies_ms"]])
    errors = open_errors + [e for r in results for e in r["errors"]]
    row = {
        "sessions": n,
        "moves_per_session": moves,
        "open_all_s": round(open_s, 1),
        "drag_phase_s": round(drag_s, 1),
        "errors": len(errors),
        "error_samples": errors[:5],
        "moves_done": len(latencies),
        "moves_tried": n * moves,
    }
    if len(latencies):
        row.update(summary(latencies))
    print(
        f"N = {n}: {row.get('p50_ms')} / {row.get('p95_ms')} ms p50 / p95, {len(errors)} error(s)", flush=True
    )
    return row


async def run(args) -> dict:
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).is_file():
        raise SystemExit(f"no Chromium at {CHROMIUM} (set AEVB_CHROMIUM)")
    if not (ROOT / "pretrained" / f"{MODEL}.json").is_file():
        raise SystemExit(f"pretrained/{MODEL}.json is missing")
    repeats = 1 if args.quick else 3
    levels = (1, 3) if args.quick else (1, 5, 20)
    moves = {1: 3, 3: 3} if args.quick else {1: 20, 5: 10, 20: 5}
    log = LOG_DIR / "server.log"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            starts, deep = [], []
            for i in range(0 if args.skip_cold else repeats):
                starts.append(await cold_start(browser, log))
                print(f"cold start {i + 1}: {starts[-1]}", flush=True)
                deep.append(await cold_deep_link(browser, log))
                print(f"cold deep link {i + 1}: {deep[-1]}", flush=True)
            rows = []
            async with server(log) as (url, _, _):
                # warm: the model is loaded and cached (a cold load can be slow on a busy machine)
                context, _page = await open_vae(browser, url, timeout_ms=3 * TIMEOUT_MS)
                await context.close()
                for n in levels:
                    rows.append(await concurrency(browser, url, n, moves[n]))
        finally:
            await browser.close()

    def p50(runs: list[dict], key: str) -> float | None:
        return round(float(np.median([r[key] for r in runs])), 2) if runs else None

    return {
        "what": __doc__.strip().split("\n\n")[0],
        "method": __doc__.strip().split("\n\n")[1],
        "mode": "quick" if args.quick else "full",
        "model": MODEL,
        "repeats": repeats,
        "cold_start": {"runs": starts, "p50_first_page_s": p50(starts, "first_page_s")},
        "cold_deep_link": {
            "runs": deep,
            "p50_first_figure_s": p50(deep, "first_figure_s"),
            "p50_decoded_image_s": p50(deep, "decoded_image_s"),
            "p50_idle_s": p50(deep, "idle_s"),
        },
        "move": "one PageUp / PageDown press on the z1 slider (alternating)",
        "concurrency": rows,
        "server_log": str(log),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--skip-cold", action="store_true", help="concurrency only (for development)")
    args = parser.parse_args()
    start = time.perf_counter()
    result = asyncio.run(run(args))
    result["seconds"] = round(time.perf_counter() - start, 1)
    write_result("app", result)


if __name__ == "__main__":
    main()
