"""The published site (issue 35) in headless Chromium, served by ``python -m http.server`` with no Streamlit
process: its size, the first picture after navigation, pictures per second under a pad drag, and the time
of one VRNN row; and the replays of the recorded factor-analysis and Watch runs: the cost of recording them
(CPU seconds, bytes), a scrubbed frame and Play. Writes ``bench/results/publish.json``.

Also the helpers the browser tests share: :func:`publish_for_bench` and :func:`static_server`.
"""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: the site the issue sizes (<= 40 MB together)
MODELS = ("vae-cb-l2", "cvae-cb-l2", "gmvae-marginal", "vrnn")


def publish_for_bench(models: Iterable[str], out: Path) -> Path:
    """Publish ``models`` into ``out`` (:func:`explorer_core.publish.publish`); returns ``out``."""
    from explorer_core.publish import publish

    publish(list(models), out)
    return Path(out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def static_server(folder: Path, timeout_s: float = 20) -> Iterator[str]:
    """``python -m http.server`` serving ``folder`` on a free port of 127.0.0.1; yields its base URL and stops
    it afterwards."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/index.html", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"http.server did not answer on {url}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _ready(page, url: str) -> None:
    page.goto("about:blank")
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=60_000)


def measure(site: Path, url: str, repeats: int = 5) -> dict:
    """First picture (ms after navigation; the median of ``repeats`` loads of each model), pad frames per
    second under a 2-second mouse drag (each frame decodes a new z), and the time of one VRNN row (28 rows,
    from the page's own clock)."""
    from playwright.sync_api import sync_playwright

    from bench.common import CHROMIUM, CHROMIUM_ARGS

    out: dict = {"first_picture_ms": {}, "pad_frames_per_s": {}, "vrnn_row_ms": {}}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 720}, bypass_csp=True)
        page = context.new_page()
        for name in MODELS:
            times = []
            for _ in range(repeats):
                _ready(page, f"{url}/index.html#model={name}")
                times.append(float(page.locator("body").get_attribute("data-first-picture-ms")))
            out["first_picture_ms"][name] = {"median": round(_median(times), 1), "max": round(max(times), 1)}
        for name in ("vae-cb-l2", "cvae-cb-l2"):
            _ready(page, f"{url}/index.html#model={name}")
            canvas = page.locator("canvas.map")
            box = canvas.bounding_box()
            cx, cy, r = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"] * 0.3
            page.mouse.move(cx + r, cy)
            page.mouse.down()
            start_frames = int(canvas.get_attribute("data-frames") or 0)
            start_ms = float(canvas.get_attribute("data-frame-ms-total") or 0)
            t0 = time.perf_counter()
            k = 0
            while time.perf_counter() - t0 < 2.0:
                k += 1
                a = 0.05 * k
                page.mouse.move(cx + r * math.cos(a), cy + r * math.sin(a))
            elapsed = time.perf_counter() - t0
            page.mouse.up()
            page.wait_for_timeout(300)
            frames = int(canvas.get_attribute("data-frames") or 0) - start_frames
            busy = float(canvas.get_attribute("data-frame-ms-total") or 0) - start_ms
            out["pad_frames_per_s"][name] = {
                # what the drag showed: Playwright's mouse moves arrive at a bounded rate, so this is the
                # smaller of that rate and the page's
                "observed": round(frames / elapsed, 1),
                "moves": k,
                # what the page can do: frames per second of its own decode-and-draw time
                "frame_ms": round(busy / max(frames, 1), 2),
                "capacity": round(1000 * frames / max(busy, 1e-9), 1),
            }
        _ready(page, f"{url}/index.html#model=vrnn&seed=0")
        rows = []
        for _ in range(28):
            page.get_by_role("button", name="Next row").click()
            rows.append(float(page.locator("body").get_attribute("data-row-ms")))
        out["vrnn_row_ms"] = {"median": round(_median(rows), 2), "max": round(max(rows), 2), "n": len(rows)}
        browser.close()
    return out


#: the recorded runs (explorer_core.publish.recordings), measured in a site of their own
REPLAYS = ("fa", "watch")


def measure_replays(folder: Path, play_s: float = 3.0) -> dict:
    """The replays of the recorded runs: the CPU and wall seconds of ``publish fa watch`` (recording both
    with torch on one thread, so CPU seconds are one core's; MNIST's loading included), their data files'
    bytes, and in Chromium (the site served by ``python -m http.server``) the time of one scrubbed frame (the
    median of 3 x 20 scrubber moves, each drawing every picture of the page) and what Play shows in
    ``play_s`` seconds (pictures per second, recorded steps per second at speed 1)."""
    from playwright.sync_api import sync_playwright

    from bench.common import CHROMIUM, CHROMIUM_ARGS
    from explorer_core.publish import build_site
    from explorer_core.publish.site import write_site

    cpu, wall = time.process_time(), time.perf_counter()
    files = build_site(list(REPLAYS))
    out: dict = {
        "record_cpu_s": round(time.process_time() - cpu, 1),
        "record_wall_s": round(time.perf_counter() - wall, 1),
        "bytes": {name: len(files[f"models/{name}.js"]) for name in REPLAYS},
        "scrub_frame_ms": {},
        "play": {},
    }
    write_site(files, folder)
    scrub = """n => { const r = document.querySelector('input.scrubber'); const t0 = performance.now();
      for (let i = 0; i < n; i++) { r.value = String(i * 3 + 1); r.dispatchEvent(new Event('input')); }
      return (performance.now() - t0) / n; }"""
    with static_server(folder) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
        for name in REPLAYS:
            _ready(page, f"{url}/index.html#model={name}&step=0")
            out["scrub_frame_ms"][name] = round(_median([page.evaluate(scrub, 20) for _ in range(3)]), 2)
            _ready(page, f"{url}/index.html#model={name}&step=0")
            pictures = int(page.locator("body").get_attribute("data-pictures"))
            page.get_by_role("button", name="Play the recording").click()
            t0 = time.perf_counter()
            page.wait_for_timeout(1000 * play_s)
            seconds = time.perf_counter() - t0
            done = int(page.locator("body").get_attribute("data-pictures")) - pictures
            step = int(page.locator("body").get_attribute("data-step"))
            out["play"][name] = {
                "pictures_per_s": round(done / seconds, 1),
                "steps_per_s": round(step / seconds, 1),
            }
        browser.close()
    return out


def main() -> None:
    """Publish the four-model site into a temporary folder, serve it, measure; then the replays in a site of
    their own (:func:`measure_replays`); write the results."""
    import json
    import tempfile

    from bench.common import RESULTS, machine

    with tempfile.TemporaryDirectory(prefix="aevb-publish-") as tmp:
        site = publish_for_bench(MODELS, Path(tmp) / "site")
        files = {p.relative_to(site).as_posix(): p.stat().st_size for p in site.rglob("*") if p.is_file()}
        with static_server(site) as url:
            result = measure(site, url)
    result.update(
        {
            "machine": machine(),
            "what": "the site of " + ", ".join(MODELS) + " served by python -m http.server (no Streamlit), "
            "headless Chromium (Debian) at 1280x720",
            "site_bytes": sum(files.values()),
            "file_bytes": dict(sorted(files.items())),
            "targets": {"site_mb": 40, "first_picture_s": 2, "pad_frames_per_s": 30, "vrnn_row_ms": 50},
        }
    )
    with tempfile.TemporaryDirectory(prefix="aevb-replays-") as tmp:
        result["replays"] = measure_replays(Path(tmp) / "site")
    result["replays_target"] = "recording both under 2 minutes of one CPU core, a few MB each"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "publish.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("file_bytes", "machine")}, indent=1))


if __name__ == "__main__":
    main()
