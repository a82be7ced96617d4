"""A bounded soak: many browser sessions across every page for a few minutes while a job trains.

One fresh server (the shipped models, an empty temporary runs folder); a training job (a VAE, hidden 500-500,
on all of MNIST, more epochs than the soak lasts) is started through the job manager before the sessions
begin, as the Training page would start it. Then N browser contexts in one headless Chromium (one Streamlit
session each, starting 3 s apart, as a class arrives) first visit every page once in a random order (the
ramp: each session's state comes to be, e.g. its own live VAE on the Watch page) and, once all of them are
through it, visit the pages in a random order, again and again, for the given duration (the steady phase):
each visit is a click on the page's link in the sidebar (the first one a load of its URL), timed until its
title is shown and the script is idle (and at most one light interaction on the FA page: an E-step), then
0.5-2 s of reading. Reported for the steady phase (and the ramp apart): visits, errors (a visit that times
out, or a page that shows an exception or a dialog; 0 expected), p50/p95 visit latency per page and overall,
and the server's resident memory (VmRSS of the server process; the job is a separate process) sampled every
2 s: first, at the start of the steady phase, peak, last, and the slope of a least-squares line over the
steady phase (MB per minute; about 0 means no growth). Every 2 s the server's answer times to its health
check and to the app's HTML page are sampled too, so an error can be told apart: a stalled server (every
answer slow before it) or a stalled browser (the server answered at once). Each error keeps what that
session's browser saw since its visit began (websocket closes, console errors, a crashed renderer) and a
screenshot (in the soak's temporary folder). The CPU each process group used (server, job, Chromium, this
script) is reported in cores, and the memory's median over the steady phase's first and last minute.
The job is killed at the end. Chromium runs on the same machine as the server and takes its share of it.

    python bench/bench_soak.py                 # 20 sessions, 300 s steady (about 10 minutes in all)
    python bench/bench_soak.py --quick         # smoke run: 3 sessions, 30 s
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from common import CHROMIUM, CHROMIUM_ARGS, ROOT, start_server, stop_server, summary, write_result

#: url path -> (the sidebar link's text, a text of the page's title)
PAGES = {
    "": ("Home", "AEVB Explorer"),
    "factor-analysis": ("Factor analysis", "Factor analysis"),
    "vae": ("VAE latent space", "the latent space"),
    "watch": ("Watch it learn", "Watch it learn"),
    "cvae": ("Conditional VAE", "Conditional VAE"),
    "gmvae": ("Gaussian mixture VAE", "mixture VAE"),
    "vrnn": ("Variational RNN", "Variational RNN"),
    "training": ("Training", "Training"),
}
#: seconds between the starts of two sessions (a class arriving, not one instant)
RAMP_S = 3.0
VISIT_TIMEOUT_MS = 120_000


def rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` in MB (VmRSS), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def cpu_seconds_by_group(server_pid: int, job_pid: int | None) -> dict[int, tuple[str, float]]:
    """Every process's CPU time so far (user + system, seconds) and its group: "server", "job" (the
    training worker), "chromium" (the browser and its renderers), "harness" (this script and Playwright's
    driver), or "other: <command name>"; keyed by pid."""
    tick = os.sysconf("SC_CLK_TCK")
    seen: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14 and 15 of stat)
        if pid == server_pid:
            group = "server"
        elif pid == job_pid:
            group = "job"
        elif b"chromium" in cmd or b"chrome" in cmd or "(chromium)" in stat or "(chrome" in stat:
            group = "chromium"
        elif pid == os.getpid() or b"playwright" in cmd:
            group = "harness"  # this script and Playwright's driver
        else:  # by its command name, e.g. "other: python" (a child of the job) or "other: kworker/0:1"
            group = "other: " + stat[stat.index("(") + 1 : stat.rindex(")")]
        seen[pid] = (group, seconds)
    return seen


async def sample_cpu(server_pid: int, job_pid: int | None, done: asyncio.Event, samples: list) -> None:
    """Every 2 s until ``done``: (monotonic time, {pid: (group, CPU seconds)})
    (see :func:`cpu_seconds_by_group`)."""
    while not done.is_set():
        samples.append((time.monotonic(), await asyncio.to_thread(cpu_seconds_by_group, server_pid, job_pid)))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), 2.0)


def cpu_report(samples: list, t_from: float) -> dict:
    """Share of the machine's CPU time each group used after ``t_from`` (monotonic): CPU seconds per
    group over the wall time, in cores (2.0 = both cores of this machine busy); a process that began
    later counts from its first sample."""
    chosen = [(t, procs) for t, procs in samples if t >= t_from]
    if len(chosen) < 2:
        return {}
    first: dict[int, float] = {}
    last: dict[int, tuple[str, float]] = {}
    for _, procs in chosen:
        for pid, (group, seconds) in procs.items():
            first.setdefault(pid, seconds)
            last[pid] = (group, seconds)
    wall = chosen[-1][0] - chosen[0][0]
    used: dict[str, float] = {}
    for pid, (group, seconds) in last.items():
        used[group] = used.get(group, 0.0) + seconds - first[pid]
    shown = {g: round(v / wall, 2) for g, v in sorted(used.items(), key=lambda gv: -gv[1])}
    return {"wall_s": round(wall, 1), "cores": {g: c for g, c in shown.items() if c >= 0.01}}


def start_job(folder: Path) -> tuple[str, object]:
    """A VAE run that outlasts the soak, started as the Training page starts one."""
    sys.path.insert(0, str(ROOT))
    from explorer_core.jobs import JobManager
    from explorer_core.training.recipes import TrainConfig

    manager = JobManager(folder / "runs", device="cpu", supervise=False)
    config = TrainConfig("vae", latent_dim=2, epochs=200, tsne_points=0)
    run_id = manager.start(config, label="VAE", preset="soak")
    return run_id, manager


async def idle(page, timeout_ms: int = VISIT_TIMEOUT_MS, settle_s: float = 0.3) -> None:
    """The script is idle and has stayed so for ``settle_s`` (the Training page's run list reruns itself every
    second while a job runs, so there any idle moment counts)."""
    deadline = time.monotonic() + timeout_ms / 1000
    since = None
    while time.monotonic() < deadline:
        state = await page.get_by_test_id("stApp").get_attribute("data-test-script-state")
        running = await page.get_by_test_id("stStatusWidget").count()
        if state == "notRunning" and not running:
            since = since or time.monotonic()
            if time.monotonic() - since >= settle_s:
                return
        else:
            since = None
        await asyncio.sleep(0.1)
    raise TimeoutError("the app did not become idle")


def watch_page(page, events: list) -> None:
    """Record what the browser saw happen on ``page`` into ``events`` as (monotonic time, what): a crashed
    renderer, an uncaught page error, a console error, a websocket that closed (Streamlit's connection)."""

    def note(what: str) -> None:
        events.append((time.monotonic(), what[:200]))

    page.on("crash", lambda _p: note("renderer crashed"))
    page.on("pageerror", lambda err: note(f"page error: {err}"))
    page.on("console", lambda msg: msg.type == "error" and note(f"console error: {msg.text}"))
    page.on(
        "websocket",
        lambda ws: (
            note(f"websocket opened {ws.url[-30:]}"),
            ws.on("close", lambda _w: note("websocket closed")),
        ),
    )


async def session(
    browser,
    url: str,
    seed: int,
    duration: float,
    visits: list,
    errors: list,
    ramp_done: list,
    shots: Path | None = None,
) -> None:
    """One visitor: opens the app, visits every page once in a random order (the ramp: its Streamlit session
    and the pages' per-session state come to be), waits until every visitor is through the ramp, then goes
    from page to page at random through the sidebar for ``duration`` seconds (the steady phase)."""
    rng = random.Random(seed)
    await asyncio.sleep(max(seed, 0) * RAMP_S)
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(VISIT_TIMEOUT_MS)
    page = await context.new_page()
    events: list[tuple[float, str]] = []
    watch_page(page, events)
    opened = False
    ramp = rng.sample(list(PAGES), len(PAGES))
    until = None
    try:
        while until is None or time.monotonic() < until:
            if ramp:
                path = ramp.pop()
            else:
                if until is None:  # through the ramp: the steady phase starts when every visitor is
                    ramp_done.append(time.monotonic())
                    while ramp_done[0] is None:
                        await asyncio.sleep(0.2)
                    until = ramp_done[0] + duration
                    if time.monotonic() >= until:
                        break
                path = rng.choice(list(PAGES))
            link, title = PAGES[path]
            phase = "ramp" if until is None else "steady"
            start = time.perf_counter()
            try:
                if not opened:
                    await page.goto(f"{url}/{path}", timeout=VISIT_TIMEOUT_MS, wait_until="commit")
                    opened = True
                else:
                    nav = page.get_by_test_id("stSidebarNav").get_by_role("link", name=link, exact=True)
                    await nav.first.click(timeout=VISIT_TIMEOUT_MS)
                await page.locator("h1", has_text=title).first.wait_for(timeout=VISIT_TIMEOUT_MS)
                await idle(page, settle_s=0.0 if path in ("training", "watch") else 0.3)
                seconds = time.perf_counter() - start
                if path == "factor-analysis" and rng.random() < 0.5:
                    await page.get_by_role("button", name="E-step").first.click()
                    await idle(page)
                problems = await page.get_by_test_id("stException").all_inner_texts()
                problems += await page.get_by_role("dialog").all_inner_texts()
                if problems:
                    errors.append({"page": path or "home", "error": problems[0][:300], "phase": phase})
                visits.append(
                    {"page": path or "home", "seconds": seconds, "t": time.monotonic(), "phase": phase}
                )
            except Exception as err:  # a timeout or a closed page: an error of the soak
                message = f"{type(err).__name__}: {str(err)[:200]}"
                now = time.monotonic()
                shot = None
                if shots is not None:
                    shot = shots / f"error-{seed}-{len(errors)}-{path or 'home'}.png"
                    with contextlib.suppress(Exception):
                        await page.screenshot(path=shot, timeout=30_000)
                errors.append(
                    {
                        "page": path or "home",
                        "error": message,
                        "phase": phase,
                        "at_s": round(now, 1),
                        "visit_began_s": round(now - (time.perf_counter() - start), 1),
                        # what the browser saw in this session since the visit began, and just before
                        "browser_events": [
                            (round(t, 1), what)
                            for t, what in events
                            if t >= now - VISIT_TIMEOUT_MS / 1e3 - 10
                        ],
                        "screenshot": None if shot is None else shot.name,
                    }
                )
                opened = False  # start again from a fresh load
            await asyncio.sleep(rng.uniform(0.5, 2.0))  # a user reads the page
    finally:
        await context.close()


async def sample_memory(pid: int, done: asyncio.Event, samples: list) -> None:
    """VmRSS of ``pid`` every 2 s, as (monotonic time, MB), until ``done``."""
    while not done.is_set():
        value = rss_mb(pid)
        if value is not None:
            samples.append((time.monotonic(), round(value, 1)))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), 2.0)


def http_ms(url: str, timeout_s: float = 60.0) -> float:
    """Milliseconds for the server to answer GET ``url`` (its full body read); ``timeout_s`` * 1e3 when it
    did not answer in time."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            resp.read()
    except OSError:
        return timeout_s * 1e3
    return (time.perf_counter() - start) * 1e3


async def sample_http(url: str, done: asyncio.Event, samples: list) -> None:
    """Every 2 s until ``done``: how long the server takes to answer its health check and the app's HTML page
    (``/``), as (monotonic time, health ms, page ms): it tells a server that stalls (Tornado's event loop
    blocked, every visit waits) from a browser that does (the server answers at once)."""
    while not done.is_set():
        t = time.monotonic()
        health = await asyncio.to_thread(http_ms, f"{url}/_stcore/health")
        html = await asyncio.to_thread(http_ms, f"{url}/")
        samples.append((t, round(health, 1), round(html, 1)))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), 2.0)


async def steady_clock(ramp_done: list, sessions: int) -> None:
    """Start the steady phase (``ramp_done[0]``) when all ``sessions`` visitors are through their ramp."""
    while len(ramp_done) - 2 < sessions:
        await asyncio.sleep(0.2)
    ramp_done[0] = time.monotonic()


async def run(args) -> dict:
    from playwright.async_api import async_playwright

    folder = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    proc, url = start_server(folder / "server.log", folder / "runs")
    run_id, manager = start_job(folder)
    visits: list[dict] = []
    errors: list[dict] = []
    memory: list[tuple[float, float]] = []
    http: list[tuple[float, float, float]] = []
    cpu: list = []
    shots = folder / "errors"  # a screenshot of the page at each error
    shots.mkdir()
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            # warm-up: one session visits every page once (models load into the server's caches)
            context = await browser.new_context()
            page = await context.new_page()
            for path, (_link, title) in PAGES.items():
                await page.goto(f"{url}/{path}", timeout=VISIT_TIMEOUT_MS)
                await page.locator("h1", has_text=title).first.wait_for(timeout=VISIT_TIMEOUT_MS)
                await idle(page, settle_s=0.0)
            await context.close()
            t_start = time.monotonic()
            done = asyncio.Event()
            sampler = asyncio.create_task(sample_memory(proc.pid, done, memory))
            http_sampler = asyncio.create_task(sample_http(url, done, http))
            job_pid = manager.get(run_id).status.get("pid")
            cpu_sampler = asyncio.create_task(sample_cpu(proc.pid, job_pid, done, cpu))
            # [start of the steady phase (None until every visitor is through its ramp), visitors, ...ends]
            ramp_done: list = [None, args.sessions]
            await asyncio.gather(
                steady_clock(ramp_done, args.sessions),
                *(
                    session(browser, url, seed, args.duration, visits, errors, ramp_done, shots)
                    for seed in range(args.sessions)
                ),
            )
            done.set()
            await sampler
            await http_sampler
            await cpu_sampler
            await browser.close()
        job = manager.get(run_id)
        job_rows = [r for r in job.metrics() if r["kind"] == "step"]
    finally:
        status = manager.get(run_id).status
        if status.get("pid"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(status["pid"], signal.SIGKILL)
        manager.close()
        stop_server(proc)
    steady = [v for v in visits if v["phase"] == "steady"]
    seconds = np.array([v["seconds"] for v in steady]) * 1e3
    ramp_seconds = np.array([v["seconds"] for v in visits if v["phase"] == "ramp"]) * 1e3
    per_page = {
        p or "home": summary(np.array([v["seconds"] * 1e3 for v in steady if v["page"] == (p or "home")]))
        for p in PAGES
        if any(v["page"] == (p or "home") for v in steady)
    }
    t_steady = ramp_done[0] if ramp_done[0] is not None else float("inf")
    times = np.array([t - t_start for t, _ in memory])
    values = np.array([m for _, m in memory])
    during = times >= t_steady - t_start  # both relative to the start of the soak
    http_seen = http_report(http, t_start, errors)
    for e in errors:  # times from the start of the soak
        if "at_s" in e:
            e["at_s"] = round(e["at_s"] - t_start, 1)
            e["visit_began_s"] = round(e["visit_began_s"] - t_start, 1)
            e["browser_events"] = [(round(t - t_start, 1), what) for t, what in e["browser_events"]]
    slope = float(np.polyfit(times[during], values[during], 1)[0] * 60) if during.sum() >= 3 else None
    # the resident size swings by tens of MB from sample to sample (allocations between collections): the
    # medians of the steady phase's first and last minute tell growth from that noise better than two samples
    steady_t = times[during]
    first_min = values[during][steady_t <= steady_t.min() + 60] if during.any() else np.array([])
    last_min = values[during][steady_t >= steady_t.max() - 60] if during.any() else np.array([])
    return {
        "what": __doc__.split("python bench")[0].strip(),
        "sessions": args.sessions,
        "duration_s": args.duration,
        "ramp_s": round(t_steady - t_start, 1) if ramp_done[0] is not None else None,
        "visits": len(steady),
        "errors": len([e for e in errors if e["phase"] == "steady"]),
        "ramp_visits": len(visits) - len(steady),
        "ramp_errors": len([e for e in errors if e["phase"] == "ramp"]),
        "error_examples": errors[:8],
        "latency": summary(seconds) if len(seconds) else None,
        "ramp_latency": summary(ramp_seconds) if len(ramp_seconds) else None,
        "per_page": per_page,
        "memory_mb": {
            "first": float(values[0]) if len(values) else None,
            "at_steady_start": float(values[during][0]) if during.any() else None,
            "peak": float(values.max()) if len(values) else None,
            "last": float(values[-1]) if len(values) else None,
            "slope_mb_per_min_steady": None if slope is None else round(slope, 2),
            "median_first_minute_steady": round(float(np.median(first_min)), 1) if len(first_min) else None,
            "median_last_minute_steady": round(float(np.median(last_min)), 1) if len(last_min) else None,
            "samples": [(round(t, 1), m) for t, m in zip(times, values, strict=True)][
                :: max(1, len(memory) // 60)
            ],
        },
        "job": {
            "config": "VAE, hidden 500-500, L = 2, all of MNIST",
            "steps_during_soak": (job_rows[-1]["step"] if job_rows else 0),
            "state_at_end": job.state,
        },
        "server_http_ms": http_seen,
        # CPU used per process group: the whole soak, and the steady phase alone (in cores; 2 on this machine)
        "cpu_cores": {"soak": cpu_report(cpu, t_start), "steady": cpu_report(cpu, t_steady)},
        "error_screenshots": str(shots),
        "mode": "quick" if args.quick else "full",
    }


def http_report(http: list[tuple[float, float, float]], t_start: float, errors: list[dict]) -> dict:
    """The server's answer times over the soak (see :func:`sample_http`): p50/p95/max of the health check and
    of the app's HTML page, and for each error the slowest answer in the 120 s before it."""
    if not http:
        return {}
    times = np.array([t for t, _, _ in http])
    health, html = np.array([h for _, h, _ in http]), np.array([p for _, _, p in http])
    around = []
    for e in errors:
        if "at_s" in e:
            window = (times >= e["at_s"] - VISIT_TIMEOUT_MS / 1e3) & (times <= e["at_s"])
            around.append(
                {
                    "page": e["page"],
                    "at_s": round(e["at_s"] - t_start, 1),
                    "slowest_health_ms": float(health[window].max()) if window.any() else None,
                    "slowest_page_ms": float(html[window].max()) if window.any() else None,
                }
            )
    return {
        "health": summary(health),
        "page": summary(html),
        "max_health_ms": float(health.max()),
        "max_page_ms": float(html.max()),
        "before_each_error": around,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of the steady phase")
    parser.add_argument("--quick", action="store_true", help="3 sessions, 30 s")
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.duration = 3, 30.0
    result = asyncio.run(run(args))
    memory = result["memory_mb"]
    print(
        f"ramp: {result['ramp_visits']} visits in {result['ramp_s']} s, {result['ramp_errors']} errors; "
        f"steady: {result['visits']} visits, {result['errors']} errors, latency {result['latency']}, memory "
        f"{memory['at_steady_start']} -> {memory['last']} MB (peak {memory['peak']}, slope "
        f"{memory['slope_mb_per_min_steady']} MB/min; median of the first / last minute "
        f"{memory['median_first_minute_steady']} / {memory['median_last_minute_steady']} MB)"
    )
    http = result["server_http_ms"]
    if http:
        print(
            f"server answers (every 2 s): health p95 {http['health']['p95_ms']} ms, "
            f"max {http['max_health_ms']} ms; "
            f"page p95 {http['page']['p95_ms']} ms, max {http['max_page_ms']} ms; before each error: "
            f"{http['before_each_error']}"
        )
    print(f"CPU in cores (2 = this machine's both): {result['cpu_cores']}")
    write_result("soak", result)


if __name__ == "__main__":
    main()
