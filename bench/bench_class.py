"""A class on one server: K visitors pressing ▶ Play at once, and the lecturer's pages meanwhile (issue 23).

One fresh server in class mode, as ``make serve`` starts it (``AEVB_CLASS_MODE=1``, an operator passphrase
made up for the run; the shipped models, an empty temporary runs folder). Phases:

1. **Baseline (K = 0).** The lecturer, one headless Chromium session, gives the operator's passphrase on the
   Training page, then times ``--picks`` GMVAE cluster picks (a click on a cluster's pill) and ``--moves``
   pad-less latent moves on /vae (an arrow key on the z1 slider), 0.3-0.6 s apart. Each is timed twice:

   - **on the server** (the target): the server runs with ``bench/server_trace`` (a ``sitecustomize`` that
     logs each message it receives and sends, with the time and the session); the **server time** of a
     gesture runs from the rerun request it received to the last ``script_finished`` it sent for it: its
     wait before the script starts, the run, a fragment run that reruns the app, all included.
   - **in the page** (for comparison): an init script logs each websocket frame when the page's main
     thread gets to it; the **run** from the first ``new_session`` to the last ``script_finished`` then
     also holds the browser's own drawing of the frames (about 20-30 ms of a pick's 40, on this machine's
     two cores beside the server; in a class the lecturer's browser runs on another machine); the
     **round trip** runs from the gesture (a capturing listener's ``performance.now()``).

   A pick also reports the cluster panel's own "Server time" caption. Then the server's resident memory
   for ``--baseline-s``.
2. **Load.** K visitors (default 16), without a browser: each is a Streamlit session over its websocket
   (``bench/ws_client.py``: Streamlit's ``BackMsg`` / ``ForwardMsg`` protobufs, as a tab would send them, its
   fragments' timers included), half on /watch and half on /factor-analysis, arriving 0.25 s apart; each
   presses ▶ Play (two more sessions, one per page, opened in the warm-up, where each played a few seconds
   and paused before the baseline, stay open and idle throughout).
   Every second each visitor's state is read from what the server sent it: **running** (its "Step" metric
   rose within one poll of the line and a second: 6 s), **waiting** (the page said "... You are 3rd in
   line ..." within that time; the place is kept) or **idle**. After ``--settle-s`` the lecturer times the
   same gestures again while every visitor still plays; the visitors play ``--play-s`` seconds in all.
3. **After.** Every visitor closes its websocket (as a tab closes); the server's memory is sampled for
   ``--after-s`` seconds (the target reads it a minute after). Then the lecturer times the same gestures a
   third time, with no visitor left: **K = 0 is both quiet rounds together** (before and after), so that
   the ratio does not rest on one round (two quiet rounds of one server differed by up to 1.4x).

Throughout, the server process's CPU (cores, from its user + system time) and resident memory are sampled
every second (psutil when installed, else /proc). Errors: an exception element on any page, a connection the
server closed, a visitor that never got its page or its Play button, a lecturer gesture not answered within
60 s, and every "Uncaught app execution" in the server's log.

Targets (each stated pass / fail in the result): the lecturer's median server time per pick and per move
under load within 1.5x of K = 0; slot holders on Watch at least 50 steps/s; 0 errors; the server's memory
a minute after the visitors leave within 5 % of its baseline. Streamlit keeps a closed tab's session for
``server.disconnectedSessionTTL`` (120 s) in case it reconnects; the full run samples memory past that too.

    python bench/bench_class.py                  # K = 16, about 9 minutes
    python bench/bench_class.py --quick          # smoke run: K = 4, short phases (about 2 minutes)
    python bench/bench_class.py --visitors 8
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import contextlib
import itertools
import os
import random
import re
import secrets
import tempfile
import time
from pathlib import Path

import numpy as np
from common import (
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE_APP,
    ROOT,
    START_LOAD,
    start_server,
    stop_server,
    summary,
    write_result,
)
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from ws_client import StreamlitSession

from views.components.compute_slot import POLL_S
from views.components.player import PAUSE_LABEL, PLAY_LABEL

#: the pages the visitors play on, in turn
VISITOR_PAGES = ("watch", "factor-analysis")
#: the lecturer's pages: url path -> (the sidebar link's text, a text of the page's title)
LECTURER_PAGES = {
    "training": ("Training", "Training"),
    "gmvae": ("Gaussian mixture VAE", "mixture VAE"),
    "vae": ("VAE latent space", "the latent space"),
}
TIMEOUT_MS = 120_000
GESTURE_TIMEOUT_S = 60.0
#: seconds: a visitor whose step rose (or who was told its place in line) this recently is running (waiting)
STATE_WINDOW_S = POLL_S + 1.0  # a visitor in line hears of its place once a poll
#: seconds each warm-up session plays before the baseline
WARM_PLAY_S = 3.0
#: targets of issue 23
TARGET_LECTURER_RATIO = 1.5
#: the lecturer's timing the target reads: the server's own time per gesture (:func:`server_times`)
TARGET_TIMING = "server_run_ms"
#: the folder whose sitecustomize.py makes the server log its messages (AEVB_BENCH_TRACE)
SERVER_TRACE = Path(__file__).resolve().parent / "server_trace"
TARGET_WATCH_STEPS_S = 50.0
TARGET_MEMORY_RATIO = 1.05
#: seconds after the visitors leave at which the memory target is read
MEMORY_AFTER_S = 60.0
PLACE = re.compile(r"You are (next|(\d+)(?:st|nd|rd|th)) in line \((\d+) waiting\)")
SERVER_TIME = re.compile(r"Server time: (\d+) ms in all; sampling")


# ------------------------------------------------------------------------------------------ the server


def proc_sample(pid: int) -> tuple[float, float] | None:
    """(CPU seconds, user + system, of every thread; resident memory in MB) of process ``pid``, ``None`` when
    it is gone. psutil when installed, else /proc."""
    try:
        import psutil

        p = psutil.Process(pid)
        t = p.cpu_times()
        return t.user + t.system, p.memory_info().rss / 2**20
    except ImportError:
        pass
    except Exception:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        rss = None
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
        return (cpu, rss) if rss is not None else None
    except (OSError, ValueError, IndexError):
        return None


async def sample_server(pid: int, done: asyncio.Event, samples: list, every_s: float = 1.0) -> None:
    """Every ``every_s`` until ``done``: (monotonic time, CPU seconds so far, RSS MB) of the server."""
    while not done.is_set():
        got = proc_sample(pid)
        if got is not None:
            samples.append((time.monotonic(), got[0], got[1]))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), every_s)


def server_series(samples: list, t0: float, phases: dict[str, tuple[float, float]]) -> dict:
    """The server's CPU (cores, between samples) and RSS over time (seconds from ``t0``), and per phase
    (name -> (start, end) monotonic): mean and peak cores, median and peak RSS."""
    if len(samples) < 2:
        return {}
    t = np.array([s[0] for s in samples])
    cpu = np.array([s[1] for s in samples])
    rss = np.array([s[2] for s in samples])
    cores = np.diff(cpu) / np.maximum(np.diff(t), 1e-6)
    mid = t[1:]
    per_phase = {}
    for name, (a, b) in phases.items():
        inside = (mid >= a) & (mid <= b)
        r_inside = (t >= a) & (t <= b)
        if inside.any() and r_inside.any():
            per_phase[name] = {
                "seconds": round(b - a, 1),
                "cpu_cores_mean": round(float(cores[inside].mean()), 2),
                "cpu_cores_peak": round(float(cores[inside].max()), 2),
                "rss_mb_median": round(float(np.median(rss[r_inside])), 1),
                "rss_mb_peak": round(float(rss[r_inside].max()), 1),
            }
    step = max(1, len(samples) // 120)  # at most ~120 points over time
    over_time = [
        (round(float(mid[i] - t0), 1), round(float(cores[i]), 2), round(float(rss[i + 1]), 1))
        for i in range(0, len(cores), step)
    ]
    return {"phases": per_phase, "over_time_s_cores_rss_mb": over_time}


def uncaught_in_log(log: Path) -> list[str]:
    """The first line after each "Uncaught app execution" in the server's log (the page's redacted error)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    found = []
    for block in text.split("Uncaught app execution")[1:]:
        lines = [ln for ln in block.splitlines() if ln.strip()]
        found.append(lines[-1][:200] if lines else "?")
    return found


# ------------------------------------------------------------------------------------------ visitors


class Visitor:
    """One visitor over the websocket: opens ``page``, presses ▶ Play, and is read every second."""

    def __init__(self, index: int, url: str, page: str):
        self.index = index
        self.page = page
        self.session = StreamlitSession(url, page)
        self.ticks: list[tuple[float, str, int | None, int | None]] = []  # (t, state, place, step)
        self.errors: list[str] = []
        self.play_pressed: float | None = None
        self.waiting_text: str | None = None
        self._last_step: int | None = None
        self._last_rise = -1e9

    def state(self, now: float) -> tuple[str, int | None, int | None]:
        """(running | waiting | idle, place in line when waiting, the step shown) as of ``now``."""
        seen = self.session.seen
        step = None
        for t, value in seen.metrics.get("Step", [])[-50:]:
            try:
                v = int(value.replace(",", ""))
            except ValueError:
                continue
            if self._last_step is not None and v > self._last_step:
                self._last_rise = max(self._last_rise, t)
            self._last_step = v if self._last_step is None else max(self._last_step, v)
            step = v
        step = self._last_step if step is None else step
        place = None
        t_wait = -1e9
        for t, _fmt, body in reversed(seen.alerts[-20:]):
            m = PLACE.search(body)
            if m:
                place = 1 if m.group(1) == "next" else int(m.group(2))
                t_wait = t
                self.waiting_text = body
                break
        if now - self._last_rise <= STATE_WINDOW_S and self._last_rise >= t_wait:
            return "running", None, step
        if now - t_wait <= STATE_WINDOW_S:
            return "waiting", place, step
        return "idle", None, step

    async def run(self, delay_s: float, stop: asyncio.Event) -> None:
        """Arrive after ``delay_s``, open the page, press ▶ Play, be read every second until ``stop``."""
        await asyncio.sleep(delay_s)
        try:
            await self.session.connect()
            await self.session.wait_for(lambda s: s.button_id(PLAY_LABEL), TIMEOUT_MS / 1e3)
            await asyncio.sleep(0.5)  # a person finds the button
            await self.session.click(PLAY_LABEL)
            self.play_pressed = time.monotonic()
        except Exception as err:
            self.errors.append(f"did not get to Play: {type(err).__name__}: {str(err)[:200]}")
        while not stop.is_set():
            now = time.monotonic()
            if self.play_pressed is not None:
                state, place, step = self.state(now)
                self.ticks.append((now, state, place, step))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        if self.session.closed_reason:
            self.errors.append(f"connection closed: {self.session.closed_reason}")
        for _t, kind, message in self.session.seen.exceptions:
            self.errors.append(f"exception on the page: {kind}: {message}")

    async def leave(self) -> None:
        """Close the tab (the websocket)."""
        await self.session.close()

    def report(self, t_from: float, t_to: float) -> dict:
        """This visitor over [t_from, t_to]: its state at the end, seconds per state, the places in line it
        was told, steps run and steps per second while running."""
        ticks = [k for k in self.ticks if t_from <= k[0] <= t_to]
        seconds = {"running": 0.0, "waiting": 0.0, "idle": 0.0}
        steps_running = 0
        for prev, cur in itertools.pairwise(ticks):
            dt = cur[0] - prev[0]
            seconds[cur[1]] += dt
            if cur[1] == "running" and prev[3] is not None and cur[3] is not None:
                steps_running += max(0, cur[3] - prev[3])
        places = [k[2] for k in ticks if k[2] is not None]
        first_run = next((k[0] for k in self.ticks if k[1] == "running"), None)
        last = ticks[-1] if ticks else None
        return {
            "visitor": self.index,
            "page": self.page,
            "state_at_end": None if last is None else last[1],
            "place_at_end": None if last is None else last[2],
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "places_seen": sorted(set(places)),
            "steps": steps_running,
            "steps_per_s_running": round(steps_running / seconds["running"], 1)
            if seconds["running"]
            else None,
            "first_running_after_play_s": None
            if first_run is None or self.play_pressed is None
            else round(first_run - self.play_pressed, 1),
            "messages_received": self.session.seen.messages,
            "mb_received": round(self.session.seen.bytes / 2**20, 1),
            "errors": self.errors[:5],
        }


# ------------------------------------------------------------------------------------------ the lecturer

#: protobuf field numbers the page's websocket log looks for
FIELDS = {
    "rerun": BackMsg.DESCRIPTOR.fields_by_name["rerun_script"].number,
    "new_session": ForwardMsg.DESCRIPTOR.fields_by_name["new_session"].number,
    "script_finished": ForwardMsg.DESCRIPTOR.fields_by_name["script_finished"].number,
}
#: an init script of the lecturer's page: every websocket frame the page sends or receives is logged with its
#: time (performance.now()) and its top-level protobuf field numbers, and the first gesture (key, pointer)
#: after ``window.__gesture = 0`` is timed
WS_LOG_JS = """(() => {
  const fields = (data) => {
    const b = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : new Uint8Array(data);
    const out = [];
    let i = 0;
    const varint = () => { let v = 0, m = 1, x; do { x = b[i++]; v += (x & 0x7f) * m; m *= 128; }
                           while (x & 0x80 && i < b.length); return v; };
    while (i < b.length) {
      const tag = varint(), wt = tag % 8;
      out.push(Math.floor(tag / 8));
      if (wt === 0) varint();
      else if (wt === 2) { const n = varint(); i += n; }  // not `i += varint()`: i is read before the call
      else if (wt === 1) i += 8;
      else if (wt === 5) i += 4; else break;
    }
    return out;
  };
  window.__wslog = [];
  const Orig = window.WebSocket;
  function Logged(...args) {
    const ws = new Orig(...args);
    ws.addEventListener('message', (ev) => {
      const t = performance.now();
      if (ev.data instanceof ArrayBuffer) window.__wslog.push([t, 'in', fields(ev.data)]);
    });
    const send = ws.send.bind(ws);
    ws.send = (data) => {
      try { window.__wslog.push([performance.now(), 'out', fields(data)]); } catch (e) {}
      return send(data);
    };
    return ws;
  }
  Logged.prototype = Orig.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Logged[k] = Orig[k];
  window.WebSocket = Logged;
  window.__gesture = 0;
  for (const ev of ['keydown', 'pointerdown', 'mousedown', 'click'])
    document.addEventListener(ev, () => {
      if (!window.__gesture) window.__gesture = performance.now();
    }, true);
})();"""
#: after a gesture: [gesture, rerun request sent, first run started, last run finished so far] once a run
#: that the gesture asked for has finished, else null (the times are the page's performance.now(), ms)
RUN_AFTER_JS = """(f) => {
  const t0 = window.__gesture;
  if (!t0) return null;
  let sent = null, start = null, end = null;
  for (const [t, dir, fields] of window.__wslog) {
    if (t < t0) continue;
    if (dir === 'out' && sent === null && fields.includes(f.rerun)) sent = t;
    else if (dir === 'in' && sent !== null && start === null && fields.includes(f.new_session)) start = t;
    else if (dir === 'in' && start !== null && fields.includes(f.script_finished)) end = t;
  }
  return end === null ? null : [t0, sent, start, end];
}"""


async def idle(page, timeout_ms: int = TIMEOUT_MS) -> None:
    """The app's script is idle and no status widget shows."""
    await page.locator(IDLE_APP).wait_for(timeout=timeout_ms)


async def goto_page(page, path: str) -> None:
    """Go to the lecturer's page ``path`` through the sidebar (the same Streamlit session)."""
    link, title = LECTURER_PAGES[path]
    nav = page.get_by_test_id("stSidebarNav").get_by_role("link", name=link, exact=True)
    await nav.first.click(timeout=TIMEOUT_MS)
    await page.locator("h1", has_text=title).first.wait_for(timeout=TIMEOUT_MS)
    await idle(page)
    await asyncio.sleep(1.0)


async def login(browser, url: str, passphrase: str):
    """The lecturer's page, unlocked with the operator's passphrase on the Training page."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    await context.add_init_script(WS_LOG_JS)
    page = await context.new_page()
    await page.goto(f"{url}/training", timeout=TIMEOUT_MS)
    await page.locator("h1", has_text="Training").first.wait_for()
    await idle(page)
    await page.get_by_label("Operator passphrase").fill(passphrase)
    await page.get_by_role("button", name="Unlock").first.click()
    await page.get_by_text("Operator mode").first.wait_for()
    return context, page


async def timed(page, act) -> dict:
    """Run the gesture ``act()`` and time the script run it asks for, from the page's websocket log
    (:data:`WS_LOG_JS`): gesture to the last run's ``script_finished`` (round trip), the first run's
    ``new_session`` to it (the page's view of the run, its own drawing included), gesture to the rerun
    request (a widget's own delay before it sends); and its ``window`` of ``time.monotonic()`` (before the
    gesture, after its run) in which :func:`server_times` finds it in the server's trace."""
    await page.evaluate("() => { window.__gesture = 0; window.__wslog = []; }")
    before = time.monotonic()
    await act()
    await page.wait_for_function(RUN_AFTER_JS, arg=FIELDS, timeout=GESTURE_TIMEOUT_S * 1e3, polling=10)
    await idle(page)
    await asyncio.sleep(0.05)
    t0, sent, start, end = await page.evaluate(RUN_AFTER_JS, FIELDS)
    return {
        "round_trip_ms": round(end - t0, 1),
        "run_ms": round(end - start, 1),
        "send_delay_ms": round(sent - t0, 1),
        "window": (before, time.monotonic()),  # (time.monotonic: the server's trace reads the same clock)
    }


async def cluster_picks(page, n: int, rng: random.Random, errors: list) -> list[dict]:
    """``n`` GMVAE cluster picks: a click on a pill not picked now, timed; the panel's server time read."""
    out = []
    pills = page.get_by_test_id("stButtonGroup").first.locator('button[aria-checked="false"]')
    for _ in range(n):
        try:
            count = await pills.count()
            target = pills.nth(rng.randrange(count))
            got = await timed(page, lambda t=target: t.click())
            caption = await page.get_by_text(SERVER_TIME).first.inner_text()
            m = SERVER_TIME.search(caption)
            got["server_ms"] = float(m.group(1)) if m else None
            out.append(got)
        except Exception as err:
            errors.append(f"lecturer: cluster pick: {type(err).__name__}: {str(err)[:200]}")
        await asyncio.sleep(rng.uniform(0.3, 0.6))
    return out


async def latent_moves(page, n: int, rng: random.Random, errors: list) -> list[dict]:
    """``n`` moves of z1 on /vae with the keyboard on its slider (no pad), each timed."""
    out = []
    slider = page.get_by_test_id("stSlider").filter(has=page.get_by_text("z1", exact=True)).first
    thumb = slider.get_by_role("slider")
    for i in range(n):
        try:
            await thumb.focus()
            key = "ArrowRight" if i % 2 == 0 else "ArrowLeft"
            out.append(await timed(page, lambda k=key: page.keyboard.press(k)))
        except Exception as err:
            errors.append(f"lecturer: latent move: {type(err).__name__}: {str(err)[:200]}")
        await asyncio.sleep(rng.uniform(0.3, 0.6))
    return out


async def lecturer_round(page, picks: int, moves: int, seed: int, errors: list) -> dict:
    """The lecturer's gestures once: GMVAE picks, then /vae moves; exceptions on the pages counted."""
    rng = random.Random(seed)
    await goto_page(page, "gmvae")
    got_picks = await cluster_picks(page, picks, rng, errors)
    problems = await page.get_by_test_id("stException").all_inner_texts()
    await goto_page(page, "vae")
    got_moves = await latent_moves(page, moves, rng, errors)
    problems += await page.get_by_test_id("stException").all_inner_texts()
    errors.extend(f"lecturer: exception on the page: {p[:200]}" for p in problems)
    return {"picks": got_picks, "moves": got_moves}


def server_times(trace: Path, gestures: list[dict]) -> str:
    """Give each of the lecturer's ``gestures`` its ``server_run_ms`` from the server's trace (see
    ``bench/server_trace``): from the first rerun request the lecturer's session sent in the gesture's
    ``window`` to the last ``script_finished`` the server sent it before the window closed. The lecturer's
    session is the one with a rerun request in most windows. Returns "ok", or why there are no times."""
    if not trace.exists():
        return "the server wrote no trace"
    reruns: list[tuple[float, str]] = []
    finished: dict[str, list[float]] = {}
    for line in trace.read_text().splitlines():
        kind, t, session, what = [*line.split(" ", 3), "", "", ""][:4]
        if kind == "X":
            return f"no server trace: {what}"
        if kind == "B" and what == "rerun_script":
            reruns.append((float(t), session))
        elif kind == "S" and what == "script_finished":
            finished.setdefault(session, []).append(float(t))
    reruns.sort()
    times = [t for t, _ in reruns]

    def reruns_in(a: float, z: float) -> list[tuple[float, str]]:
        return reruns[bisect.bisect_left(times, a) : bisect.bisect_right(times, z)]

    votes = collections.Counter(
        session for g in gestures for session in {s for _, s in reruns_in(*g["window"])}
    )
    if not votes:
        return "no rerun request of the lecturer in the trace"
    lecturer = votes.most_common(1)[0][0]
    ends = sorted(finished.get(lecturer, []))
    for g in gestures:
        a, z = g["window"]
        asked = next((t for t, s in reruns_in(a, z) if s == lecturer), None)
        if asked is None:
            continue
        done = ends[bisect.bisect_left(ends, asked) : bisect.bisect_right(ends, z)]
        if done:
            g["server_run_ms"] = round((done[-1] - asked) * 1e3, 1)
    return "ok"


def gesture_summary(rows: list[dict]) -> dict | None:
    """p50/p95/mean of each timing of a list of gestures."""
    if not rows:
        return None
    out = {}
    for key in ("server_run_ms", "run_ms", "round_trip_ms", "send_delay_ms", "server_ms"):
        values = np.array([r[key] for r in rows if r.get(key) is not None], dtype=float)
        if len(values):
            out[key] = summary(values)
    return out


# ------------------------------------------------------------------------------------------ the run


async def run(args) -> dict:
    from playwright.async_api import async_playwright

    folder = Path(tempfile.mkdtemp(prefix="bench-class-"))
    passphrase = secrets.token_urlsafe(12)
    saved = {k: os.environ.get(k) for k in ("AEVB_CLASS_MODE", "AEVB_OPERATOR_PASSPHRASE")}
    os.environ["AEVB_CLASS_MODE"] = "1"  # as `make serve`
    os.environ["AEVB_OPERATOR_PASSPHRASE"] = passphrase
    log, trace = folder / "server.log", folder / "server_trace.txt"
    try:
        path = f"{SERVER_TRACE}{os.pathsep}{ROOT}"  # bench/server_trace's sitecustomize first
        proc, url = start_server(
            log, folder / "runs", extra_env={"AEVB_BENCH_TRACE": str(trace), "PYTHONPATH": path}
        )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    errors: list[str] = []
    samples: list = []
    done = asyncio.Event()
    sampler = asyncio.create_task(sample_server(proc.pid, done, samples))
    t0 = time.monotonic()
    phases: dict[str, tuple[float, float]] = {}
    visitors = [Visitor(i, url, VISITOR_PAGES[i % len(VISITOR_PAGES)]) for i in range(args.visitors)]
    warm_sessions: list[StreamlitSession] = []
    harness_cpu: dict[str, float] = {}
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context, page = await login(browser, url, passphrase)
            # warm-up: both of the lecturer's pages once, and each visitor page once (their models and
            # caches); these two sessions stay open, idle, to the end, so that a closed session Streamlit
            # still keeps (server.disconnectedSessionTTL) is in neither the baseline nor the memory after
            await lecturer_round(page, 2, 2, 99, errors)
            # each warm session also plays a few seconds and pauses: what a first Play fills once per
            # process (its data, a lazily imported module) belongs to the baseline, not to the class
            for p in VISITOR_PAGES:
                warm = StreamlitSession(url, p)
                await warm.connect()
                await warm.wait_for(lambda s: s.button_id(PLAY_LABEL), TIMEOUT_MS / 1e3)
                await warm.click(PLAY_LABEL)
                # the button as drawn now: a Play that found the slot still held by the session before
                # (its Pause not yet run) waits in line and starts on its turn (a poll, 5 s)
                await warm.wait_for(lambda s: s.shows_button(PAUSE_LABEL), TIMEOUT_MS / 1e3)
                await asyncio.sleep(WARM_PLAY_S)
                await warm.click(PAUSE_LABEL)
                await warm.wait_for(lambda s: s.shows_button(PLAY_LABEL), TIMEOUT_MS / 1e3)
                warm_sessions.append(warm)
            await asyncio.sleep(2.0)  # a run a Pause had already set off finishes
            a = time.monotonic()
            warm_runs = [w.seen.runs_finished for w in warm_sessions]
            baseline = await lecturer_round(page, args.picks, args.moves, 1, errors)
            phases["lecturer_k0"] = (a, time.monotonic())
            a = time.monotonic()
            await asyncio.sleep(args.baseline_s)
            phases["baseline"] = (a, time.monotonic())
            for w, runs in zip(warm_sessions, warm_runs, strict=True):  # K = 0 means no one plays
                if w.seen.runs_finished > runs:
                    errors.append(f"warm-up session ({w.page}) ran {w.seen.runs_finished - runs}x in K = 0")

            stop = asyncio.Event()
            a = time.monotonic()
            cpu_before = time.process_time()
            tasks = [asyncio.create_task(v.run(0.25 * v.index, stop)) for v in visitors]
            await asyncio.sleep(0.25 * args.visitors + args.settle_s)
            b = time.monotonic()
            loaded = await lecturer_round(page, args.picks, args.moves, 1, errors)
            phases["lecturer_load"] = (b, time.monotonic())
            left = args.play_s - (time.monotonic() - a)
            if left > 0:
                await asyncio.sleep(left)
            stop.set()
            await asyncio.gather(*tasks)
            phases["load"] = (a, time.monotonic())
            harness_cpu["load"] = round((time.process_time() - cpu_before) / (time.monotonic() - a), 2)
            await asyncio.gather(*(v.leave() for v in visitors))
            left_at = time.monotonic()
            await asyncio.sleep(args.after_s)
            phases["after"] = (left_at, time.monotonic())
            # K = 0 once more, now that the visitors have gone: the baseline is the two rounds together, so
            # that a drift over the run (or one slow round) does not make the ratio
            a = time.monotonic()
            baseline_after = await lecturer_round(page, args.picks, args.moves, 1, errors)
            phases["lecturer_k0_after"] = (a, time.monotonic())
            for warm in warm_sessions:
                if warm.closed_reason:
                    errors.append(f"warm-up session: connection closed: {warm.closed_reason}")
                await warm.close()
            await context.close()
            await browser.close()
    finally:
        done.set()
        await sampler
        stop_server(proc)

    rounds = (baseline, loaded, baseline_after)
    trace_status = server_times(trace, [g for r in rounds for kind in ("picks", "moves") for g in r[kind]])
    for r in rounds:
        for g in (g for kind in ("picks", "moves") for g in r[kind]):
            g.pop("window", None)
    for v in visitors:
        errors.extend(f"visitor {v.index} ({v.page}): {e}" for e in v.errors)
    uncaught = uncaught_in_log(log)
    errors.extend(f"server log: Uncaught app execution: {u}" for u in uncaught)

    a, b = phases["load"]
    per_visitor = [v.report(a + 0.25 * v.index, b) for v in visitors]
    watch = [r for r in per_visitor if r["page"] == "watch"]
    fa = [r for r in per_visitor if r["page"] == "factor-analysis"]

    def holders_rate(rows: list[dict]) -> float | None:
        seconds = sum(r["seconds"]["running"] for r in rows)
        return round(sum(r["steps"] for r in rows) / seconds, 1) if seconds else None

    def states_at(t: float) -> dict[str, int]:
        counts: dict[str, int] = {}
        for v in visitors:
            before = [k for k in v.ticks if k[0] <= t]
            if before:
                counts[before[-1][1]] = counts.get(before[-1][1], 0) + 1
        return counts

    lecturer = {
        "k0": {kind: gesture_summary(baseline[kind] + baseline_after[kind]) for kind in ("picks", "moves")},
        "load": {"picks": gesture_summary(loaded["picks"]), "moves": gesture_summary(loaded["moves"])},
        "k0_before": {kind: gesture_summary(baseline[kind]) for kind in ("picks", "moves")},
        "k0_after": {kind: gesture_summary(baseline_after[kind]) for kind in ("picks", "moves")},
    }

    def ratio(kind: str, key: str = TARGET_TIMING) -> float | None:
        try:
            return round(lecturer["load"][kind][key]["p50_ms"] / lecturer["k0"][kind][key]["p50_ms"], 2)
        except (KeyError, TypeError, ZeroDivisionError):
            return None

    rss = [(t, r) for t, _, r in samples]
    base_rss = [r for t, r in rss if phases["baseline"][0] <= t <= phases["baseline"][1]]
    baseline_mb = float(np.median(base_rss)) if base_rss else None

    def rss_after(seconds: float) -> float | None:
        window = [r for t, r in rss if left_at + seconds - 5 <= t <= left_at + seconds + 5]
        return round(float(np.median(window)), 1) if window else None

    after_60 = rss_after(min(MEMORY_AFTER_S, args.after_s - 5))
    memory = {
        "baseline_mb": None if baseline_mb is None else round(baseline_mb, 1),
        "peak_under_load_mb": round(max((r for t, r in rss if a <= t <= b), default=0.0), 1),
        "after_leave_mb": {
            f"{s:g}s": rss_after(s) for s in (10, 30, 60, 90, 130, 170) if s <= args.after_s - 5
        },
        "target_read_after_s": min(MEMORY_AFTER_S, args.after_s - 5),
        "after_mb": after_60,
    }
    memory["after_over_baseline"] = (
        round(after_60 / baseline_mb, 3) if after_60 is not None and baseline_mb else None
    )
    watch_rate = holders_rate(watch)
    ratios = {"picks": ratio("picks"), "moves": ratio("moves")}
    targets = {
        "lecturer_within_1.5x_of_k0": {
            "value": ratios,
            "pass": all(r is not None and r <= TARGET_LECTURER_RATIO for r in ratios.values()),
        },
        "watch_holders_at_least_50_steps_s": {
            "value": watch_rate,
            "pass": watch_rate is not None and watch_rate >= TARGET_WATCH_STEPS_S,
        },
        "zero_errors": {"value": len(errors), "pass": not errors},
        "memory_within_5pct_of_baseline": {
            "value": memory["after_over_baseline"],
            "pass": memory["after_over_baseline"] is not None
            and memory["after_over_baseline"] <= TARGET_MEMORY_RATIO,
        },
    }
    mid_load = (phases["lecturer_load"][0] + phases["lecturer_load"][1]) / 2
    note = (
        f"Measured beside other load: the 1-minute load average was {START_LOAD} when the run began."
        if START_LOAD >= 0.5
        else ""
    )
    return {
        "note": note,
        "what": __doc__.split("    python bench")[0].strip(),
        "mode": "quick" if args.quick else "full",
        "visitors": args.visitors,
        "durations_s": {
            "play": args.play_s,
            "settle": args.settle_s,
            "after": args.after_s,
            "baseline": args.baseline_s,
        },
        "gestures_per_phase": {"picks": args.picks, "moves": args.moves},
        "slots": os.environ.get("AEVB_SESSION_COMPUTE_SLOTS") or "default (cores - 1, at least 1)",
        "targets": targets,
        "all_pass": all(t["pass"] for t in targets.values()),
        "lecturer": lecturer,
        "lecturer_target_timing": TARGET_TIMING,
        "server_trace": trace_status,
        "lecturer_ratio_p50_server_run_ms": ratios,
        "lecturer_ratio_p50_run_ms": {"picks": ratio("picks", "run_ms"), "moves": ratio("moves", "run_ms")},
        "lecturer_ratio_p50_round_trip_ms": {
            "picks": ratio("picks", "round_trip_ms"),
            "moves": ratio("moves", "round_trip_ms"),
        },
        "holders_steps_per_s": {"watch": watch_rate, "factor-analysis": holders_rate(fa)},
        "visitor_states_while_lecturer_measured": states_at(mid_load),
        "visitor_states_at_end": states_at(b),
        "visitors_report": per_visitor,
        "waiting_message_example": next((v.waiting_text for v in visitors if v.waiting_text), None),
        "errors": len(errors),
        "error_examples": errors[:12],
        "memory": memory,
        "server": server_series(samples, t0, phases),
        # this script's own CPU while the visitors played (their websockets and protobufs), in cores
        "harness_cpu_cores_under_load": harness_cpu.get("load"),
        "phases_s_from_start": {k: (round(x - t0, 1), round(y - t0, 1)) for k, (x, y) in phases.items()},
        "server_log": str(log),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--visitors", type=int, default=16, help="K, visitors pressing Play (default 16)")
    parser.add_argument("--play-s", type=float, default=150.0, help="seconds the visitors play in all")
    parser.add_argument("--settle-s", type=float, default=20.0, help="seconds of load before the lecturer")
    parser.add_argument("--after-s", type=float, default=180.0, help="seconds sampled after they leave")
    parser.add_argument("--baseline-s", type=float, default=15.0, help="seconds of baseline memory")
    parser.add_argument("--picks", type=int, default=30, help="GMVAE cluster picks per lecturer round")
    parser.add_argument("--moves", type=int, default=45, help="latent moves per lecturer round")
    parser.add_argument("--quick", action="store_true", help="K = 4, short phases (smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.visitors = 4 if args.visitors == 16 else args.visitors
        args.play_s, args.settle_s, args.after_s, args.baseline_s = 45.0, 8.0, 25.0, 5.0
        args.picks, args.moves = 6, 8
    result = asyncio.run(run(args))
    lec = result["lecturer"]
    print(f"lecturer K=0: {lec['k0']}")
    print(f"lecturer K={result['visitors']}: {lec['load']}")
    print(f"ratios (p50 server ms, the target): {result['lecturer_ratio_p50_server_run_ms']}")
    print(f"ratios (p50 run ms in the page): {result['lecturer_ratio_p50_run_ms']}")
    print(f"holders steps/s: {result['holders_steps_per_s']}")
    for r in result["visitors_report"]:
        print(
            f"  visitor {r['visitor']:2d} {r['page']:16s} end: {r['state_at_end']} "
            f"place {r['place_at_end']}; "
            f"s {r['seconds']}; places {r['places_seen']}; steps {r['steps']} "
            f"({r['steps_per_s_running']} /s running)"
        )
    print(f"memory: {result['memory']}")
    print(f"server per phase: {result['server'].get('phases')}")
    print(f"errors: {result['errors']} {result['error_examples'][:5]}")
    print(f"targets: {result['targets']}; all pass: {result['all_pass']}")
    write_result("class", result)


if __name__ == "__main__":
    main()
