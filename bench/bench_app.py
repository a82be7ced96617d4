"""The app in a real browser: cold start, cold deep link, the live latent pad, and concurrent sessions.

(a) Cold start: ``python serve.py`` (what ``make run`` runs: ``streamlit run app.py`` with torch, the model
    code and MNIST loaded before the server answers; headless, a fresh port) is launched and timed until a
    Playwright Chromium page (launched beforehand, not counted) shows the home page's title with the script
    idle; then a fresh server again, deep-linked to /vae, until its first figure renders (the latent pad's
    decoded image, or any image), the pad's test points drawn, and the idle app. Each 3 times; p50; times
    are also given from the moment the server answers /_stcore/health.
(b) One session on /vae (vae-cb-l2). Latency of a latent move: from the key press (or pointer move) as the
    page sees it (a capturing listener's performance.now()) to the first animation frame that shows the new
    decoded image (a requestAnimationFrame loop compares its src). Key: ArrowRight / ArrowLeft on the focused
    pad. Pointer: the mouse held down on the pad, moved 6 px at a time, waiting for each answer. The same for
    a trivial fragment (a slider and a 224 px PNG, bench/probe_fragment_app.py, PageUp / PageDown) on its own
    server in the same run: Streamlit's floor. A continuous drag: the mouse held down and moved across the pad
    for about 2 s (80 steps); every distinct decoded image that reaches a frame while the button is down is
    counted; after the release, the last image's z must be the z under the pointer.
(c) Concurrency: one warm server, N browser contexts in one Chromium (one Streamlit session each) open /vae
    and move z with the keyboard on the pad, as in (b), at a user's pace (0.2-0.5 s between moves). Errors:
    moves that time out, and pages that show an exception. Server CPU per move: the server process's CPU
    time (user + system) over the moves phase, divided by the moves.

    python bench/bench_app.py            # about 6 minutes on a 2-core CPU
    python bench/bench_app.py --quick    # smoke run: 1 repeat, N = 1 and 3, few moves
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from common import (
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE_APP,
    ROOT,
    free_port,
    healthy,
    server_command,
    server_env,
    summary,
    write_result,
)

MODEL = "vae-cb-l2"
LOG_DIR = Path(tempfile.mkdtemp(prefix="bench-app-"))  # the servers' log, screenshots of failures
HOME_TITLE = "AEVB Explorer"
TIMEOUT_MS = 120_000
MOVE_TIMEOUT_MS = 30_000


@asynccontextmanager
async def server(log: Path, script: str = "app.py"):
    """A fresh server of ``script``; yields (base URL, launch time, seconds until /_stcore/health, the
    server's process). The app is started as ``make run`` starts it (``serve.py``: its libraries and MNIST
    are loaded before the server answers); any other script with ``streamlit run``."""
    from common import stop_server

    port = free_port()
    cmd = server_command(port, script)
    env = server_env(log.parent / "runs")
    url = f"http://localhost:{port}"
    with log.open("ab") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            while not healthy(url, proc):
                if time.perf_counter() - t0 > 120:
                    raise RuntimeError("streamlit did not answer within 120 s")
                await asyncio.sleep(0.05)
            yield url, t0, time.perf_counter() - t0, proc
        finally:
            stop_server(proc)


async def new_page(browser):
    context = await browser.new_context(viewport={"width": 1500, "height": 1100})
    context.set_default_timeout(TIMEOUT_MS)
    return context, await context.new_page()


PAD = "vae_pad"
#: page-side helpers: the decoded image's src of the VAE pad (in its shadow root) or of the probe's image, and
#: a latency probe (the input event's time as the page saw it, the first frame showing a new src)
PAGE_JS = """
window.__benchSrc = () => {
  const host = document.querySelector('.st-key-vae_pad [data-testid="stBidiComponentIsolated"]');
  const pad = host && host.shadowRoot && host.shadowRoot.querySelector('img.decoded');
  if (pad) return pad.getAttribute('src');
  const img = document.querySelector('[data-testid="stImage"] img');
  return img ? img.getAttribute('src') : null;
};
if (!window.__benchArmed) {
  window.__benchArmed = true;
  const mark = () => { if (window.__tIn === null) window.__tIn = performance.now(); };
  window.addEventListener('keydown', mark, true);
  window.addEventListener('pointermove', (e) => { if (e.buttons) mark(); }, true);
}
window.__benchArm = () => {
  window.__tIn = null; window.__tImg = null;
  const prev = window.__benchSrc();
  const loop = () => {
    const src = window.__benchSrc();
    if (src && src !== prev) { window.__tImg = performance.now(); return; }
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
};
window.__benchRecord = () => {
  window.__seen = []; window.__recording = true;
  let prev = window.__benchSrc();
  const loop = () => {
    const src = window.__benchSrc();
    if (src && src !== prev) { window.__seen.push([performance.now(), src]); prev = src; }
    if (window.__recording) requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
};
"""


async def cold_start(browser, log: Path) -> dict:
    async with server(log) as (url, t0, health_s, _):
        context, page = await new_page(browser)
        await page.goto(url, timeout=TIMEOUT_MS)
        await page.locator("h1", has_text=HOME_TITLE).first.wait_for()
        await page.wait_for_selector(IDLE_APP)
        first_page_s = time.perf_counter() - t0
        await context.close()
    return {"health_s": round(health_s, 2), "first_page_s": round(first_page_s, 2)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def first_src(page) -> str | None:
    await page.evaluate(PAGE_JS)
    return await page.evaluate("window.__benchSrc()")


async def cold_deep_link(browser, log: Path) -> dict:
    async with server(log) as (url, t0, health_s, _):
        context, page = await new_page(browser)
        await page.goto(f"{url}/vae", timeout=TIMEOUT_MS)
        await page.wait_for_selector(
            f'.st-key-{PAD} img.decoded[src^="data:image/png"], [data-testid="stImage"] img'
        )
        first_figure_s = time.perf_counter() - t0
        await page.locator(f".st-key-{PAD} canvas.canvas[data-sample]").wait_for(state="attached")
        points_s = time.perf_counter() - t0
        await page.wait_for_selector(IDLE_APP)
        idle_s = time.perf_counter() - t0
        await context.close()
    return {
        "health_s": round(health_s, 2),
        "first_figure_s": round(first_figure_s, 2),
        "first_figure_after_health_s": round(first_figure_s - health_s, 2),
        "points_drawn_s": round(points_s, 2),
        "idle_s": round(idle_s, 2),
        "idle_after_health_s": round(idle_s - health_s, 2),
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
        await page.locator(f".st-key-{PAD} canvas.canvas[data-sample]").wait_for(
            state="attached", timeout=timeout_ms
        )
        await wait_idle(page)
    except Exception as err:
        try:  # what the page showed, for the error message (best effort: a busy browser may not answer)
            await page.screenshot(path=str(LOG_DIR / f"open-vae-failed-{id(page)}.png"), timeout=20_000)
            main = page.get_by_test_id("stMain")
            shown = (await main.inner_text(timeout=20_000))[:300] if await main.count() else "(no main)"
        except Exception:
            shown = "(the page did not answer)"
        await context.close()
        raise RuntimeError(f"/vae did not show its pad ({type(err).__name__}); it shows {shown!r}") from err
    box = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first
    shown = await box.inner_text() + " ".join(
        await box.locator("input").evaluate_all("e => e.map(i => i.value)")
    )
    if MODEL not in shown:
        raise RuntimeError(f"/vae does not show {MODEL} (its model picker shows {shown[:200]!r})")
    await first_src(page)
    return context, page


async def timed_move(page, act) -> float:
    """Milliseconds from the input event (as the page saw it) to the first frame with a new image."""
    await page.evaluate("window.__benchArm()")
    await act()
    await page.wait_for_function("() => window.__tImg !== null", timeout=MOVE_TIMEOUT_MS, polling=10)
    t_in, t_img = await page.evaluate("[window.__tIn, window.__tImg]")
    if t_in is None:
        raise RuntimeError("the page saw no input event")
    return t_img - t_in


async def key_moves(page, focus, keys: tuple[str, str], moves: int, seed: int, pace=(0.2, 0.5)) -> dict:
    """``moves`` key presses (alternating ``keys``) on the element ``focus``; latency of each."""
    rng = random.Random(seed)
    latencies, errors = [], []
    for i in range(moves):
        await focus.focus()
        try:
            latencies.append(await timed_move(page, lambda k=keys[i % 2]: page.keyboard.press(k)))
        except Exception as err:  # a timeout is an error of this move; the session goes on
            errors.append(f"move {i}: {type(err).__name__}")
        try:
            await wait_idle(page, 0.1)
        except Exception as err:
            errors.append(f"move {i}, waiting for idle: {type(err).__name__}")
        await asyncio.sleep(rng.uniform(*pace))
    if await page.get_by_test_id("stException").count():
        errors.append("the page shows an exception")
    return {"latencies_ms": latencies, "errors": errors}


async def pointer_moves(page, moves: int) -> dict:
    """The mouse held down on the pad and moved 6 px at a time; latency of each move's new image."""
    canvas = page.locator(f".st-key-{PAD} canvas.canvas").first
    box = await canvas.bounding_box()
    x, y = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3
    await page.mouse.move(x, y)
    await page.mouse.down()
    await page.mouse.move(x + 4, y + 4)  # past the drag threshold
    await wait_idle(page, 0.2)
    latencies, errors = [], []
    for i in range(moves):
        x += 6
        y += 3 * (-1) ** i
        try:
            latencies.append(await timed_move(page, lambda x=x, y=y: page.mouse.move(x, y)))
        except Exception as err:
            errors.append(f"pointer move {i}: {type(err).__name__}")
        await wait_idle(page, 0.05)
        await asyncio.sleep(0.15)
    await page.mouse.up()
    await wait_idle(page)
    return {"latencies_ms": latencies, "errors": errors}


async def drag(page, seconds: float = 2.0, steps: int = 80) -> dict:
    """A continuous drag across the pad; distinct decoded images per second while the button is down, and
    whether the final image is the decoding of the z under the pointer."""
    canvas = page.locator(f".st-key-{PAD} canvas.canvas").first
    box = await canvas.bounding_box()
    start, end = (0.15, 0.25), (0.8, 0.7)
    await page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    await page.evaluate("window.__benchRecord()")
    await page.mouse.down()
    t_down = await page.evaluate("performance.now()")
    t0 = time.perf_counter()
    for i in range(1, steps + 1):
        f = i / steps
        fx, fy = start[0] + (end[0] - start[0]) * f, start[1] + (end[1] - start[1]) * f
        await page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        delay = t0 + seconds * i / steps - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    await page.mouse.up()
    t_up = await page.evaluate("performance.now()")
    await asyncio.sleep(1.0)
    await wait_idle(page, 0.5)
    await page.evaluate("window.__recording = false")
    seen = await page.evaluate("window.__seen")
    during = [t for t, _ in seen if t_down <= t <= t_up]
    # where the pointer stopped, in plane coordinates (the pad's region and size), and what was decoded last
    region = [float(v) for v in (await canvas.get_attribute("data-region")).split(",")]
    u = region[0] + end[0] * (region[1] - region[0])
    v = region[2] + (1 - end[1]) * (region[3] - region[2])
    caption = await page.locator(f".st-key-{PAD} .caption").first.inner_text()
    shown = [float(t) for t in caption.strip().removeprefix("z = (").removesuffix(")").split(",")]
    pixel = max((region[1] - region[0]) / box["width"], (region[3] - region[2]) / box["height"])
    final_error = max(abs(shown[0] - u), abs(shown[1] - v))
    return {
        "drag_s": round((t_up - t_down) / 1e3, 2),
        "steps": steps,
        "images_during_drag": len(during),
        "images_per_s": round(len(during) / ((t_up - t_down) / 1e3), 1),
        "images_after_release": len(seen) - len(during),
        "pointer_stopped_at": [round(u, 3), round(v, 3)],
        "last_image_z": shown,
        "last_image_matches": bool(final_error <= 0.005 + 2 * pixel),
    }


async def single_session(browser, url: str, moves: int) -> dict:
    context, page = await open_vae(browser, url)
    try:
        canvas = page.locator(f".st-key-{PAD} canvas.canvas").first
        keys = await key_moves(page, canvas, ("ArrowRight", "ArrowLeft"), moves, seed=1)
        pointer = await pointer_moves(page, max(5, moves // 2))
        drags = [await drag(page) for _ in range(2)]
    finally:
        await context.close()
    out = {"key": {**summary(np.array(keys["latencies_ms"])), "errors": keys["errors"][:5]}}
    out["pointer"] = {**summary(np.array(pointer["latencies_ms"])), "errors": pointer["errors"][:5]}
    out["drag"] = drags
    return out


async def probe(browser, log: Path, moves: int) -> dict:
    """The trivial fragment (slider -> image) on its own server: Streamlit's floor, measured the same way."""
    async with server(log, "bench/probe_fragment_app.py") as (url, _, _, _):
        context, page = await new_page(browser)
        try:
            await page.goto(url, timeout=TIMEOUT_MS)
            await page.get_by_test_id("stImage").locator("img").first.wait_for()
            await wait_idle(page)
            await first_src(page)
            thumb = page.get_by_test_id("stSlider").get_by_role("slider").first
            result = await key_moves(page, thumb, ("PageUp", "PageDown"), moves, seed=2)
        finally:
            await context.close()
    return {**summary(np.array(result["latencies_ms"])), "errors": result["errors"][:5]}


async def concurrency(browser, url: str, n: int, moves: int, server_pid: int) -> dict:
    t0 = time.perf_counter()
    opened = await asyncio.gather(*(open_vae(browser, url) for _ in range(n)), return_exceptions=True)
    pages = [p for p in opened if not isinstance(p, BaseException)]
    open_errors = [f"{type(p).__name__}: {str(p)[:200]}" for p in opened if isinstance(p, BaseException)]
    open_s = time.perf_counter() - t0
    cpu0 = cpu_seconds(server_pid)
    t0 = time.perf_counter()

    async def one(page, seed):
        canvas = page.locator(f".st-key-{PAD} canvas.canvas").first
        return await key_moves(page, canvas, ("ArrowRight", "ArrowLeft"), moves, seed)

    results = await asyncio.gather(*(one(page, seed) for seed, (_, page) in enumerate(pages)))
    drag_s = time.perf_counter() - t0
    cpu_s = cpu_seconds(server_pid) - cpu0
    for context, _ in pages:
        await context.close()
    latencies = np.array([v for r in results for v in r["latencies_ms"]])
    errors = open_errors + [e for r in results for e in r["errors"]]
    row = {
        "sessions": n,
        "moves_per_session": moves,
        "open_all_s": round(open_s, 1),
        "moves_phase_s": round(drag_s, 1),
        "errors": len(errors),
        "error_samples": errors[:5],
        "moves_done": len(latencies),
        "moves_tried": n * moves,
        "server_cpu_ms_per_move": round(cpu_s * 1e3 / max(1, len(latencies)), 1),
    }
    if len(latencies):
        row.update(summary(latencies))
    print(
        f"N = {n}: {row.get('p50_ms')} / {row.get('p95_ms')} ms p50 / p95, {len(errors)} error(s), "
        f"{row['server_cpu_ms_per_move']} server CPU ms per move",
        flush=True,
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
    single_moves = 6 if args.quick else 40
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
            floor = await probe(browser, log, single_moves)
            print(f"trivial fragment: {floor}", flush=True)
            rows = []
            async with server(log) as (url, _, _, proc):
                # warm: the model is loaded and cached (a cold load can be slow on a busy machine)
                context, _page = await open_vae(browser, url, timeout_ms=3 * TIMEOUT_MS)
                await context.close()
                single = await single_session(browser, url, single_moves)
                print(f"one session: key {single['key']}, pointer {single['pointer']}", flush=True)
                print(f"drags: {single['drag']}", flush=True)
                for n in levels:
                    rows.append(await concurrency(browser, url, n, moves[n], proc.pid))
        finally:
            await browser.close()

    def p50(runs: list[dict], key: str) -> float | None:
        return round(float(np.median([r[key] for r in runs])), 2) if runs else None

    key_p95, floor_p95 = single["key"].get("p95_ms"), floor.get("p95_ms")
    return {
        "what": __doc__.strip().split("\n\n")[0],
        "method": __doc__.strip().split("\n\n")[1],
        "mode": "quick" if args.quick else "full",
        "model": MODEL,
        "repeats": repeats,
        "torch_threads_server": 1,
        "training_paused": args.training_paused,
        "cold_start": {"runs": starts, "p50_first_page_s": p50(starts, "first_page_s")},
        "cold_deep_link": {
            "runs": deep,
            "p50_first_figure_s": p50(deep, "first_figure_s"),
            "p50_first_figure_after_health_s": p50(deep, "first_figure_after_health_s"),
            "p50_points_drawn_s": p50(deep, "points_drawn_s"),
            "p50_idle_s": p50(deep, "idle_s"),
        },
        "trivial_fragment": floor,
        "latent_move": single["key"],
        "pointer_move": single["pointer"],
        "key_p95_over_floor_p95": round(key_p95 / floor_p95, 2) if key_p95 and floor_p95 else None,
        "drag": single["drag"],
        "move": "one ArrowRight / ArrowLeft press (alternating) on the focused latent pad",
        "concurrency": rows,
        "server_log": str(log),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--skip-cold", action="store_true", help="no cold starts (for development)")
    parser.add_argument(
        "--training-paused",
        default="unknown",
        help="say in the results whether background training was paused during the run (yes / no)",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    result = asyncio.run(run(args))
    result["seconds"] = round(time.perf_counter() - start, 1)
    write_result("app", result)


if __name__ == "__main__":
    main()
