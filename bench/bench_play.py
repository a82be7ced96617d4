"""Play as a browser shows it: frames per second on the factor-analysis page, rows per second on the VRNN
page.

A fresh server of the app as ``make run`` starts it (serve.py; headless, the shipped models) and Debian's
Chromium driven by Playwright (launched as tests/browser/conftest.py does, 1500 x 1100). In the page, a
sampler polls the DOM every 10 ms and records, with ``performance.now()``, every change of what the user sees:

- FA: the "Step" metric (one change per frame shown) and plotly's ``plotly_afterplot`` events of the 3-D
  scatter, the learning curves and the posterior ellipses (one per redraw of that chart). ▶ Play (joint
  steps, 100 steps per frame, the page's defaults) runs for ``--seconds``; frames per second = the Step
  changes after the first one, over the time from the first to the last. The 3-D camera is read before and
  after (``scene.camera`` of the chart's full layout) after a scripted rotation: it must not move.
- VRNN: the "Row r of 28" line above the grid (rows per frame: the page's default, 1). ▶ Play from row 0
  to row 28, ``--repeats`` times (↺ Reset in between); rows per second = rows shown after the first change
  over the time from the first change to the last.

Background trainings (``explorer_core train``) should be paused while this runs (SIGSTOP, then SIGCONT).

    python bench/bench_play.py             # about 2 minutes
    python bench/bench_play.py --quick     # shorter Play, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
from common import CHROMIUM, CHROMIUM_ARGS, DEEP_JS, start_server, stop_server, write_result

TIMEOUT_MS = 120_000
TARGET_PER_S = 5.0

#: Installed in the page: records [t_ms, value] of every change of the watched texts, and afterplot events.
SAMPLER_JS = (
    """
(spec) => {
  const out = {texts: {}, plots: {}};
  const last = {};
"""
    + DEEP_JS
    + """  const read = {
    step: () => {
      const m = [...document.querySelectorAll('[data-testid="stMetric"]')].find(
        (e) => (e.querySelector('[data-testid="stMetricLabel"]')?.innerText || '').trim() === 'Step');
      return m ? m.querySelector('[data-testid="stMetricValue"]').innerText.trim() : null;
    },
    row: () => {
      const m = [...document.querySelectorAll('[data-testid="stMarkdown"]')].find(
        (e) => /^Row \\d+ of \\d+/.test(e.innerText.trim()));
      return m ? m.innerText.trim().match(/^Row (\\d+)/)[1] : null;
    },
    grid: () => document.querySelector('.st-key-vrnn_grid img')?.getAttribute('src') || null,
    scatter: () => deep(document.querySelector('.st-key-fa_scatter'), 'canvas')?.dataset.frame || null,
    curves: () => deep(document.querySelector('.st-key-fa_curves'), 'canvas')?.dataset.frame || null,
    ellipses: () => deep(document.querySelector('.st-key-fa_latent'), 'canvas')?.dataset.frame || null,
  };
  for (const name of spec.texts) { out.texts[name] = []; }
  for (const key of spec.plots) { out.plots[key] = []; }
  window.__play = out;
  window.__playTimer = setInterval(() => {
    const t = performance.now();
    for (const name of spec.texts) {
      const v = read[name]();
      if (v !== null && v !== last[name]) { last[name] = v; out.texts[name].push([t, v]); }
    }
    for (const key of spec.plots) {
      const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
      if (gd && !gd.__playHooked && gd.on) {
        gd.__playHooked = true;
        gd.on('plotly_afterplot', () => out.plots[key].push(performance.now()));
      }
    }
  }, 10);
}
"""
)

SCATTER_CANVAS = ".st-key-fa_scatter canvas"  # Playwright's CSS locators look into the shadow root


@contextmanager
def server(log: Path):
    """A fresh server of the app with the shipped models, started as ``make run`` starts it; yields its base
    URL once healthy."""
    proc, url = start_server(log, log.parent / "runs")
    try:
        yield url
    finally:
        stop_server(proc)


def wait_idle(page, settle_s: float = 1.0, timeout_s: float = 120) -> None:
    """Until the app has stayed idle (no script or fragment run) for ``settle_s``."""
    deadline = time.monotonic() + timeout_s
    idle_since = None
    while time.monotonic() < deadline:
        state = page.get_by_test_id("stApp").get_attribute("data-test-script-state")
        if state == "notRunning" and page.get_by_test_id("stStatusWidget").count() == 0:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= settle_s:
                return
        else:
            idle_since = None
        time.sleep(0.1)
    raise RuntimeError("the app did not become idle")


def open_page(page, url: str, title: str) -> None:
    page.goto(url, timeout=TIMEOUT_MS)
    page.locator("h1", has_text=title).first.wait_for(timeout=TIMEOUT_MS)
    wait_idle(page)


def rate(changes: list, value: Callable[[Any], float] | None = None) -> dict:
    """Changes per second after the first one: (the number of changes, or with ``value`` the difference of
    the last and the first value) / (t_last - t_first); and the gaps between changes."""
    if len(changes) < 2:
        return {"per_s": 0.0, "changes": len(changes), "seconds": 0.0}
    t = np.array([c[0] for c in changes]) / 1e3
    seconds = float(t[-1] - t[0])
    amount = len(t) - 1.0 if value is None else float(value(changes[-1][1]) - value(changes[0][1]))
    gaps = np.diff(t) * 1e3
    return {
        "per_s": round(amount / seconds, 2) if seconds > 0 else 0.0,
        "changes": len(changes),
        "seconds": round(seconds, 2),
        "gap_p50_ms": round(float(np.percentile(gaps, 50)), 1),
        "gap_p95_ms": round(float(np.percentile(gaps, 95)), 1),
        "gap_max_ms": round(float(gaps.max()), 1),
    }


def rotate_scene(page) -> None:
    """A mouse drag across the 3-D scatter: the user turns the camera."""
    box = page.locator(SCATTER_CANVAS).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x + 12 * i, y + 4 * i)
    page.mouse.up()


def camera(page) -> dict | None:
    """The 3-D view the canvas shows now: azimuth, elevation (radians) and zoom."""
    view = page.locator(SCATTER_CANVAS).get_attribute("data-view")
    return json.loads(view) if view else None


def camera_moved(a: dict | None, b: dict | None) -> float:
    """Largest difference between two views (inf when one is missing)."""
    if not a or not b:
        return float("inf")
    return max(abs(a[k] - b[k]) for k in ("az", "el", "zoom"))


def measure_fa(browser, url: str, seconds: float) -> dict:
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        open_page(page, f"{url}/factor-analysis", "Factor analysis")
        rotate_scene(page)
        time.sleep(0.5)
        camera_before = camera(page)
        page.evaluate(SAMPLER_JS, {"texts": ["step", "scatter", "curves", "ellipses"], "plots": []})
        page.get_by_role("button", name="Play", exact=True).click()
        time.sleep(seconds)
        camera_during = camera(page)
        page.get_by_role("button", name="Pause", exact=True).click()
        wait_idle(page)
        camera_after = camera(page)
        data = page.evaluate("() => { clearInterval(window.__playTimer); return window.__play; }")
    finally:
        context.close()
    steps = data["texts"]["step"]
    shown = rate(steps[1:])  # the first change may be the click's own frame
    plots = {name: rate(data["texts"][name][1:]) for name in ("scatter", "curves", "ellipses")}
    return {
        "frames_per_s": shown["per_s"],
        "frames": shown,
        "last_step_shown": steps[-1][1] if steps else None,
        "redraws_per_s": {k: v["per_s"] for k, v in plots.items()},
        "redraws": plots,
        "camera_moved_by_play": round(
            max(camera_moved(camera_before, c) for c in (camera_during, camera_after)), 4
        ),
        "camera_before": camera_before,
        "camera_after": camera_after,
        "play_seconds": seconds,
    }


def measure_vrnn(browser, url: str, repeats: int) -> dict:
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    runs = []
    try:
        open_page(page, f"{url}/vrnn", "Variational RNN")
        for _ in range(repeats):
            page.get_by_role("button", name="↺ Reset", exact=True).click()
            wait_idle(page)
            page.evaluate(SAMPLER_JS, {"texts": ["row", "grid"], "plots": []})
            page.get_by_role("button", name="Play", exact=True).click()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                rows = page.evaluate("() => window.__play.texts.row.map((r) => r[1])")
                if rows and rows[-1] == "28":
                    break
                time.sleep(0.2)
            wait_idle(page)
            data = page.evaluate("() => { clearInterval(window.__playTimer); return window.__play; }")
            rows = [r for r in data["texts"]["row"] if r[1] != "0"]
            run = rate(rows, value=float)
            run["rows_seen"] = [int(r[1]) for r in rows]
            run["grid_images"] = len(data["texts"]["grid"])
            runs.append(run)
    finally:
        context.close()
    return {
        "rows_per_s": round(float(np.median([r["per_s"] for r in runs])), 2),
        "runs": runs,
    }


def paused_trainings() -> dict:
    """Whether background ``explorer_core train`` processes exist and are all stopped (state T)."""
    out = subprocess.run(
        ["pgrep", "-f", "explorer_core train"], capture_output=True, text=True
    ).stdout.split()
    states = []
    for pid in out:
        with suppress(OSError, IndexError):
            states.append(Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0])
    return {"found": len(states), "stopped": sum(s == "T" for s in states)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter FA Play, one VRNN run")
    parser.add_argument("--seconds", type=float, default=10.0, help="FA Play duration")
    parser.add_argument("--repeats", type=int, default=3, help="VRNN plays from row 0 to 28")
    parser.add_argument("--only", choices=("fa", "vrnn"), help="measure one page (not written to play.json)")
    parser.add_argument("--label", default="", help="stored with the result (e.g. 'before')")
    args = parser.parse_args()
    seconds, repeats = (5.0, 1) if args.quick else (args.seconds, args.repeats)

    from playwright.sync_api import sync_playwright

    log = Path(tempfile.mkdtemp(prefix="bench-play-")) / "server.log"
    trainings = paused_trainings()
    with sync_playwright() as pw, server(log) as url:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            warm = browser.new_context()
            open_page(warm.new_page(), f"{url}/factor-analysis", "Factor analysis")  # torch warm-up
            warm.close()
            fa, vrnn = {}, {}
            if args.only != "vrnn":
                fa = measure_fa(browser, url, seconds)
                print(
                    f"FA: {fa['frames_per_s']} frames/s shown, redraws/s {fa['redraws_per_s']}, "
                    f"camera moved by {fa['camera_moved_by_play']}"
                )
            if args.only != "fa":
                vrnn = measure_vrnn(browser, url, repeats)
                print(f"VRNN: {vrnn['rows_per_s']} rows/s shown ({[r['per_s'] for r in vrnn['runs']]})")
        finally:
            browser.close()
    if args.only:
        print(json.dumps({"fa": fa, "vrnn": vrnn}, indent=1)[:4000])
        return
    write_result(
        "play",
        {
            "label": args.label,
            "quick": args.quick,
            "target_per_s": TARGET_PER_S,
            "background_trainings": trainings,
            "fa": fa,
            "vrnn": vrnn,
            "method": (
                "headless Debian Chromium (Playwright), 1500x1100, a fresh server with the shipped models; "
                "FA: Step-metric changes per second during ▶ Play (joint, 100 steps per frame); VRNN: rows "
                "per second from row 1 to 28 (1 row per frame), median of the runs"
            ),
        },
    )


if __name__ == "__main__":
    main()
