"""Issue 34's five hostile-class probes, each with K = 6 and K = 16 visitors, while the lecturer works.

A class on one server, as ``bench_class.py`` sets it up and measures it (whose functions this script uses):
per probe a fresh server in class mode (a made-up operator passphrase, ``bench/server_trace``, the shipped
models, an empty runs folder) with ``AEVB_SERVER_MEMORY_MB`` set (``--budget-mb``, 4096 by default: the
server-wide memory budget of ``explorer_core/memory_budget.py`` is what the first probe tests); the lecturer
in headless Chromium, unlocked with the passphrase (the operator: never queued), times GMVAE cluster picks
and test-image changes on /vae (a click on the "Test image" number input's + button, a new image each
time) on the server, from its trace; the visitors, without a browser, are Streamlit sessions over the
websocket (``bench/ws_client.py``), each with a cookie of its own (one browser each) unless a probe says
otherwise. The probes (the issue's, re-run as written):

1. **Heavy Watch links.** Each visitor opens ``/watch?L=64&hidden=500-500&n=50000&batch=1000&eval=<800-900>
   &map=5000&k=64&lik=continuous_bernoulli`` (about 1 GB by the page's estimate) and reloads it every 3-6 s
   with a new ``eval``; every third one instead stays and presses "↺ Reset" every 3-6 s. A visitor the
   memory budget refuses is told "the server is full" (counted, not an error).
2. **The true posterior and the gap split.** On /vae (the 2-D ``vae-cb-l2``) each visitor checks "Compute
   the true posterior of the chosen image" and steps the test image every 1-2 s from an image of its own;
   every third one is on ``vae-cb-l20`` and presses "Estimate the gap split of this image" after each step.
   The time from a change to its result shown, and the places in line the visitors were told.
3. **Exports.** Visitors ask for the VRNN page's GIF (``/vrnn?n=64&seed=5``, "This generation, row by row
   (GIF)") as the browser does (a deferred file), again every 1-2 s; every third one plays Watch
   (``map=5000``) a few seconds, pauses and asks for its map GIF the same way. The seconds to each answer
   (one that took 1 s or more was built, or waited in the line).
4. **Fast clicks.** One visitor plays factor analysis (the slot holder, its "Step" metric read); after it
   played alone a few seconds, K visitors press the VRNN page's "Next row" 13 times a second. The holder's
   steps/s alone and under the clicks (issue: 60 -> 3.3).
5. **Three tabs.** K browsers (one cookie each) open three sessions each on /watch and press ▶ Play; the
   places in line each tab is told (issue: one client with three tabs took places 2, 3 and 4; now one place
   per browser).

Per probe: the lecturer's round at K = 0; the server's memory for ``--baseline-s``; then for each K the
visitors act ``--act-s`` seconds (the lecturer's round starts ``--settle-s`` after they arrived; they go on
until it ends), leave (their websockets close, as tabs do), and the server's memory is sampled for
``--between-s`` seconds (``--later-s`` after the last K, with the lecturer's second K = 0 round in it after
the 60 s reading). **K = 0 is both quiet rounds together**, as in ``bench_class.py``.

Targets per probe and K (each stated pass / fail): the lecturer's median server time per pick and per
test-image change within 1.5x of K = 0; the server's memory never more than the budget above its K = 0
baseline (the budget is what the visitors' objects may hold together; the peak from the visitors' arrival
to the end of the window after they left); its memory a minute after the visitors left within 10 % of that
baseline (Streamlit keeps a closed tab's session for ``server.disconnectedSessionTTL``, 120 s; the app lets
go of its work 30 s after in class mode: the later reading is reported too); 0 errors (an exception on any
page, a connection the server closed, a visitor that never got its page, a failed download, a lecturer
gesture not answered within 60 s, "Uncaught app execution" in the server's log).

    python bench/bench_class_probes.py                    # all five, K = 6 and 16 (about 30 minutes)
    python bench/bench_class_probes.py --probes 1,3       # some of them
    python bench/bench_class_probes.py --quick --probes 2 # smoke run: K = 2, tiny phases
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import re
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import bench_class as bc
import numpy as np
from common import CHROMIUM, CHROMIUM_ARGS, RESULTS, START_LOAD, start_server, stop_server, write_result
from ws_client import StreamlitSession, browser_cookies

from views.components.player import PAUSE_LABEL, PLAY_LABEL

#: the issue's heavy Watch link (``eval`` varies)
HEAVY_WATCH = "L=64&hidden=500-500&n=50000&batch=1000&eval={eval}&map=5000&k=64&lik=continuous_bernoulli"
RESET_LABEL = "↺ Reset"
TEST_IMAGE = "Test image (index 0–9999"  # /vae's number input (its label begins so)
POSTERIOR_BOX = "Compute the true posterior of the chosen image"
GAP_BUTTON = "Estimate the gap split of this image (a few seconds)"
POSTERIOR_METRIC = "Evidence log p(x)"  # shown with the true posterior (L = 2)
SPLIT_METRIC = "Amortization gap"  # shown with the gap split (L = 20)
VRNN_GIF = "This generation, row by row (GIF)"
MAP_GIF = "The map forming (GIF)"
NEXT_ROW = "Next row"
LEAVE_LINE = "Leave the line"
#: what a refused visitor reads (explorer_core.memory_budget.ServerFullError)
FULL = re.compile(r"server is full", re.IGNORECASE)
#: what heavy one-off work tells a visitor in line ("... You are 2nd in line (3 waiting); ... when your turn
#: comes")
TURN = re.compile(r"when your turn comes")
BUSY = re.compile(r"not computed now|Cannot start this run now", re.IGNORECASE)
#: "Next row" presses per second of a fast-clicking visitor (the issue's script)
CLICKS_PER_S = 13.0
#: an export's answer this slow was built (or waited in the line); a kept one comes back in a few ms
BUILT_S = 1.0
TABS = 3
TARGET_LECTURER_RATIO = 1.5
TARGET_MEMORY_RATIO = 1.10
MEMORY_AFTER_S = 60.0
PROBES = {
    1: ("heavy_watch", "Heavy Watch links (memory budget)"),
    2: ("posterior", "The true posterior and the gap split (/vae)"),
    3: ("exports", "Exports: VRNN GIF and Watch map GIF"),
    4: ("fast_clicks", "Fast clicks on VRNN Next row beside a slot holder"),
    5: ("three_tabs", "Three tabs per browser on Watch"),
}


# ------------------------------------------------------------------------------------------ helpers


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop``; whether ``stop`` is set."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))
    return stop.is_set()


async def until(
    s: StreamlitSession,
    predicate: Callable[[StreamlitSession], object],
    stop: asyncio.Event,
    timeout_s: float,
) -> bool:
    """Wait (polling) until ``predicate(s)``; False when ``stop`` came first, the time ran out or the server
    closed the connection."""
    deadline = time.monotonic() + timeout_s
    while not predicate(s):
        if stop.is_set() or time.monotonic() > deadline or s.closed_reason is not None:
            return False
        await asyncio.sleep(0.1)
    return True


def texts_since(s: StreamlitSession, t: float) -> list[str]:
    """The alerts' and toasts' texts that session ``s`` received after ``t``."""
    return [b for when, _f, b in s.seen.alerts if when >= t] + [b for when, b in s.seen.toasts if when >= t]


def told(s: StreamlitSession, pattern: re.Pattern, t: float = 0.0) -> bool:
    """Whether an alert or toast after ``t`` matches ``pattern``."""
    return any(pattern.search(b) for b in texts_since(s, t))


def places(s: StreamlitSession, t: float = 0.0) -> list[int]:
    """The places in line that session ``s`` was told after ``t`` (1 = next), in order."""
    out = []
    for body in texts_since(s, t):
        m = bc.PLACE.search(body)
        if m:
            out.append(1 if m.group(1) == "next" else int(m.group(2)))
    return out


def step_value(text: str) -> int | None:
    try:
        return int(text.replace(",", ""))
    except ValueError:
        return None


def steps_per_s(s: StreamlitSession, a: float, b: float) -> float | None:
    """The rate of the "Step" metric session ``s`` was shown over [a, b] (the last value at or before each
    end), ``None`` without two values."""
    values = [(t, step_value(v)) for t, v in s.seen.metrics.get("Step", [])]
    values = [(t, v) for t, v in values if v is not None]
    before = [v for t, v in values if t <= a]
    upto = [(t, v) for t, v in values if t <= b]
    if not before or not upto or upto[-1][0] <= a:
        return None
    return round((upto[-1][1] - before[-1]) / (b - a), 1)


def stats(values: list[float], digits: int = 2) -> dict | None:
    """n, p50, p95 and max of seconds; ``None`` when there are none."""
    if not values:
        return None
    v = np.array(values, dtype=float)
    return {
        "n": len(v),
        "p50_s": round(float(np.percentile(v, 50)), digits),
        "p95_s": round(float(np.percentile(v, 95)), digits),
        "max_s": round(float(v.max()), digits),
    }


class Actor:
    """One visitor: a browser (a cookie of its own), the sessions (tabs, reloads) it opened, its errors and
    what it counted."""

    def __init__(self, index: int, url: str, seed: int, cookies: dict[str, str] | None = None):
        self.index = index
        self.url = url
        self.rng = random.Random(seed)
        self.cookies = cookies if cookies is not None else browser_cookies()
        self.sessions: list[StreamlitSession] = []
        self.errors: list[str] = []
        self.counts: collections.Counter = collections.Counter()
        self.seconds: dict[str, list[float]] = collections.defaultdict(list)
        self.places: list[int] = []
        self.notes: list[str] = []  # texts worth a look (a refusal, a busy message), the first few

    async def open(self, page: str, query: str = "", timeout_s: float = 60.0) -> StreamlitSession | None:
        """A new tab (or a reload) on ``page``; ``None`` (an error counted) when it does not connect."""
        s = StreamlitSession(self.url, page, query, cookies=self.cookies)
        self.sessions.append(s)
        try:
            await s.connect(timeout_s)
        except Exception as err:
            self.errors.append(f"{page}: did not connect: {type(err).__name__}: {str(err)[:150]}")
            return None
        return s

    def note(self, text: str) -> None:
        if len(self.notes) < 3 and text not in self.notes:
            self.notes.append(text[:300])

    async def leave(self) -> None:
        """Close every tab; then the errors the sessions saw are counted."""
        await asyncio.gather(*(s.close() for s in self.sessions))
        for s in self.sessions:
            if s.closed_reason:
                self.errors.append(f"{s.page}: connection closed: {s.closed_reason}")
            for _t, kind, message in s.seen.exceptions:
                self.errors.append(f"{s.page}: exception on the page: {kind}: {message}")
            self.places += places(s)
            for body in texts_since(s, 0.0):
                if FULL.search(body) or BUSY.search(body):
                    self.note(body)


# ------------------------------------------------------------------------------------------ the probes


async def heavy_watch(actor: Actor, stop: asyncio.Event) -> None:
    """Probe 1: reload the heavy Watch link every 3-6 s with a new ``eval``; every third visitor stays on
    its page and presses Reset every 3-6 s instead (reloading only when the page was refused)."""
    resetter = actor.index % 3 == 1
    while not stop.is_set():
        opened = time.monotonic()
        s = await actor.open("watch", HEAVY_WATCH.format(eval=actor.rng.randint(800, 900)))
        if s is None:
            await pause(stop, 2.0)
            continue
        actor.counts["loads"] += 1
        answered = False
        if resetter:
            answered = await until(s, lambda x, t=opened: x.finished_since(t) or told(x, FULL), stop, 60.0)
        else:
            await pause(stop, actor.rng.uniform(3.0, 6.0))
        if s.finished_since(opened):
            actor.seconds["load_answered"].append(
                next(t for t, _ in s.seen.finished_at if t > opened) - opened
            )
        if told(s, FULL):
            actor.counts["loads_refused"] += 1
        elif s.button_id(PLAY_LABEL):
            actor.counts["loads_built"] += 1
        elif places(s) or told(s, TURN):
            actor.counts["loads_in_line_when_left"] += 1
        else:
            actor.counts["loads_unanswered_when_left"] += 1
        if resetter and answered and not told(s, FULL):
            while not stop.is_set() and s.button_id(RESET_LABEL) and s.closed_reason is None:
                if await pause(stop, actor.rng.uniform(3.0, 6.0)):
                    break
                pressed = time.monotonic()
                await s.click(RESET_LABEL)
                actor.counts["resets"] += 1
                done = await until(s, lambda x, p=pressed: x.finished_since(p), stop, 60.0)
                if told(s, FULL, pressed):
                    actor.counts["resets_refused"] += 1
                elif told(s, BUSY, pressed):
                    actor.counts["resets_busy"] += 1
                elif done:
                    actor.counts["resets_done"] += 1
                    actor.seconds["reset"].append(
                        next(t for t, _ in s.seen.finished_at if t > pressed) - pressed
                    )
                elif stop.is_set():
                    actor.counts["resets_unanswered_at_the_end"] += 1
                else:
                    actor.counts["resets_unanswered_in_60s"] += 1
        elif resetter:
            await pause(stop, actor.rng.uniform(3.0, 6.0))
        await s.close()


async def posterior(actor: Actor, stop: asyncio.Event) -> None:
    """Probe 2: on /vae (every third visitor on the L = 20 model) step the test image every 1-2 s; the 2-D
    model's true posterior checked, the L = 20 model's gap split pressed after each step."""
    l20 = actor.index % 3 == 1
    s = await actor.open("vae", "model=vae-cb-l20" if l20 else "")
    if s is None:
        return
    if not await until(s, lambda x: x.widget_id(TEST_IMAGE), stop, 120.0):
        if not stop.is_set():
            actor.errors.append("vae: the test image's number input never came")
        return
    if l20 and not await until(s, lambda x: x.button_id(GAP_BUTTON), stop, 60.0):
        if not stop.is_set():
            actor.errors.append("vae (L = 20): the gap split's button never came")
        return
    metric = SPLIT_METRIC if l20 else POSTERIOR_METRIC
    if not l20:
        await s.set_widget(POSTERIOR_BOX, True)
    index = actor.rng.randrange(0, 9000)
    asked: list[float] = []
    while not stop.is_set():
        index += 1
        asked.append(time.monotonic())
        await s.set_widget(TEST_IMAGE, index)
        actor.counts["image_steps"] += 1
        if l20:
            await asyncio.sleep(0.4)  # a person finds the button
            asked.append(time.monotonic())
            await s.click(GAP_BUTTON)
            actor.counts["gap_split_presses"] += 1
        await pause(stop, actor.rng.uniform(1.0, 2.0))
    shown = [t for t, _ in s.seen.metrics.get(metric, [])]
    actor.counts["results_shown"] += len(shown)
    for t in shown:  # the time from the latest change before a result to the result
        before = [a for a in asked if a <= t]
        if before:
            actor.seconds["change_to_result"].append(t - before[-1])
    actor.counts["told_place"] += len(places(s))
    actor.counts["busy_warnings"] += sum(1 for b in texts_since(s, 0.0) if BUSY.search(b))
    actor.counts["l20" if l20 else "l2"] += 1


async def exports(actor: Actor, stop: asyncio.Event) -> None:
    """Probe 3: ask again and again for the VRNN GIF (every third visitor: for Watch's map GIF, after
    playing a few seconds and pausing), as the browser does."""
    watch = actor.index % 3 == 1
    label = MAP_GIF if watch else VRNN_GIF
    s = await actor.open("watch" if watch else "vrnn", "map=5000" if watch else "n=64&seed=5")
    if s is None:
        return
    if watch:
        if not await until(s, lambda x: x.button_id(PLAY_LABEL) or told(x, FULL), stop, 120.0):
            if not stop.is_set():
                actor.errors.append("watch: the Play button never came")
            return
        if told(s, FULL):
            actor.counts["refused"] += 1
            return
        await s.click(PLAY_LABEL)
        await pause(stop, 5.0)
        if s.shows_button(PAUSE_LABEL):
            await s.click(PAUSE_LABEL)
            await until(s, lambda x: x.shows_button(PLAY_LABEL), stop, 30.0)
        elif s.shows_button(LEAVE_LINE):  # it waited in line: give the place up
            await s.click(LEAVE_LINE)
    if not await until(s, lambda x: x.download_id(label), stop, 60.0):
        if not stop.is_set():
            actor.errors.append(f"{s.page}: the download button {label!r} never came")
        return
    first = True
    while not stop.is_set():
        if not s.download_id(label):
            if s.shows_button(PAUSE_LABEL):  # its turn came and Play started by itself: pause again
                await s.click(PAUSE_LABEL)
                await until(s, lambda x: x.shows_button(PLAY_LABEL), stop, 30.0)
            if not await until(s, lambda x: x.download_id(label), stop, 20.0):
                actor.counts["no_file_to_ask_for"] += 1
                continue
        got = await s.request_file(label)
        kind = "watch_map" if watch else "vrnn"
        actor.counts[f"{kind}_requests"] += 1
        if got.error:
            actor.errors.append(f"{s.page}: download {label!r}: {got.error}")
            actor.counts[f"{kind}_requests_failed"] += 1
        else:
            actor.seconds[f"{kind}_{'first' if first else 'again'}"].append(got.answer_s)
            slow = got.answer_s >= BUILT_S
            actor.counts[f"{kind}_requests_{'1s_or_more' if slow else 'under_1s'}"] += 1
            actor.counts["mb_fetched"] += got.nbytes / 2**20
        first = False
        await pause(stop, actor.rng.uniform(1.0, 2.0))
    actor.counts["watch_map_visitors" if watch else "vrnn_visitors"] += 1


async def clicker(actor: Actor, stop: asyncio.Event) -> None:
    """Probe 4: press VRNN "Next row" 13 times a second (whether or not the runs keep up)."""
    s = await actor.open("vrnn")
    if s is None:
        return
    if not await until(s, lambda x: x.button_id(NEXT_ROW), stop, 120.0):
        if not stop.is_set():
            actor.errors.append("vrnn: the Next row button never came")
        return
    start = next_at = time.monotonic()
    while not stop.is_set() and s.closed_reason is None:
        await s.click(NEXT_ROW)
        actor.counts["presses"] += 1
        next_at += 1.0 / CLICKS_PER_S
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    actor.counts["runs_finished"] += s.finished_since(start)
    actor.seconds["pressing"].append(time.monotonic() - start)


class Tab(bc.Visitor):
    """Probe 5: one tab of a browser on /watch pressing ▶ Play, read every second as ``bench_class`` reads
    its visitors (running, waiting with its place, idle); a tab the memory budget refuses is counted."""

    def __init__(self, index: int, url: str, browser: int, cookies: dict[str, str]):
        super().__init__(index, url, "watch")
        self.browser = browser
        self.session = StreamlitSession(url, "watch", cookies=cookies)
        self.refused = False

    async def run(self, delay_s: float, stop: asyncio.Event) -> None:
        await asyncio.sleep(delay_s)
        s = self.session
        try:
            await s.connect()
            ok = await until(s, lambda x: x.button_id(PLAY_LABEL) or told(x, FULL), stop, 120.0)
            if told(s, FULL):
                self.refused = True
            elif ok:
                await asyncio.sleep(0.5)
                await s.click(PLAY_LABEL)
                self.play_pressed = time.monotonic()
            elif not stop.is_set():
                self.errors.append("did not get to Play")
        except Exception as err:
            self.errors.append(f"did not get to Play: {type(err).__name__}: {str(err)[:200]}")
        while not stop.is_set():
            now = time.monotonic()
            if self.play_pressed is not None:
                state, place, step = self.state(now)
                self.ticks.append((now, state, place, step))
            await pause(stop, 1.0)


# ------------------------------------------------------------------------------------------ a phase


async def visitors_phase(number: int, k: int, url: str, args, seed: int, lecturer: Callable[[], Awaitable]):
    """K visitors of probe ``number`` act while the lecturer's round runs (``--settle-s`` after the last one
    arrived); they act ``--act-s`` seconds at least, then leave. Returns (the probe's stats, the errors,
    the lecturer's round, (phase start, end), the harness's CPU in cores)."""
    stop = asyncio.Event()
    start = time.monotonic()
    cpu0 = time.process_time()
    errors: list[str] = []
    extra: dict = {}
    if number == 5:
        tabs = []
        for b in range(k):
            cookies = browser_cookies()
            tabs += [Tab(len(tabs), url, b, cookies) for _ in range(TABS)]
        # a browser's three tabs open 0.3 s apart, the browsers 0.5 s apart
        tasks = [asyncio.create_task(t.run(0.5 * t.browser + 0.3 * (t.index % TABS), stop)) for t in tabs]
        arrival = 0.5 * k + 1.0
        actors: list[Actor] = []
    else:
        actors = [Actor(i, url, seed * 1000 + i) for i in range(k)]
        act = {1: heavy_watch, 2: posterior, 3: exports, 4: clicker}[number]
        holder = None
        if number == 4:  # the slot holder plays alone first
            holder = Actor(k, url, seed * 1000 + k)
            s = await holder.open("factor-analysis")
            got_play = s is not None and await until(s, lambda x: x.button_id(PLAY_LABEL), stop, 120.0)
            if got_play:
                await s.click(PLAY_LABEL)
                await until(s, lambda x: x.shows_button(PAUSE_LABEL), stop, 30.0)
            else:
                holder.errors.append("factor-analysis: the Play button never came")
            await asyncio.sleep(args.alone_s)
            extra["holder_alone"] = (time.monotonic() - args.alone_s + 2.0, time.monotonic())
            start = time.monotonic()

        async def arrive(a: Actor) -> None:
            await asyncio.sleep(0.25 * a.index)
            await act(a, stop)

        tasks = [asyncio.create_task(arrive(a)) for a in actors]
        arrival = 0.25 * k
    await asyncio.sleep(arrival + args.settle_s)
    lec_start = time.monotonic()
    rounds = await lecturer()
    lec_end = time.monotonic()
    left = args.act_s - (time.monotonic() - start)
    if left > 0:
        await asyncio.sleep(left)
    stop.set()
    end = time.monotonic()
    for got in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(got, BaseException):  # a visitor that broke off (this script's fault, or the server's)
            errors.append(f"a visitor broke off: {type(got).__name__}: {str(got)[:200]}")
    harness = round((time.process_time() - cpu0) / max(end - start, 1e-6), 2)
    if number == 5:
        await asyncio.gather(*(t.leave() for t in tabs))
        for t in tabs:
            errors += [f"tab {t.index} (browser {t.browser}): {e}" for e in t.errors]
            errors += [
                f"tab {t.index}: exception on the page: {e}: {m}" for _, e, m in t.session.seen.exceptions
            ]
            if t.session.closed_reason:
                errors.append(f"tab {t.index}: connection closed: {t.session.closed_reason}")
        probe = three_tabs_stats(tabs, start, end, lec_start, lec_end)
    else:
        everyone = [*actors, *([holder] if number == 4 and holder else [])]
        if number == 4 and holder is not None:
            s = holder.sessions[0] if holder.sessions else None
            extra["holder_rates"] = {
                "alone": steps_per_s(s, *extra["holder_alone"]) if s else None,
                "under_clicks": steps_per_s(s, start + 3.0, end) if s else None,
                "while_lecturer_measured": steps_per_s(s, lec_start, lec_end) if s else None,
            }
        for a in everyone:
            await a.leave()
            errors += [f"visitor {a.index}: {e}" for e in a.errors]
        probe = actor_stats(number, actors, start, end, extra)
    return probe, errors, rounds, (start, end), harness


def actor_stats(number: int, actors: list[Actor], start: float, end: float, extra: dict) -> dict:
    """A probe's counts over all visitors, its seconds' percentiles and the first notes."""
    counts: collections.Counter = collections.Counter()
    seconds: dict[str, list[float]] = collections.defaultdict(list)
    for a in actors:
        counts.update(a.counts)
        for key, values in a.seconds.items():
            seconds[key] += values
    out: dict = {
        "counts": {k: round(v, 1) if isinstance(v, float) else v for k, v in sorted(counts.items())},
        "seconds": {k: stats(v) for k, v in sorted(seconds.items())},
        "places_told_max": max((p for a in actors for p in a.places), default=None),
        "visitors_told_a_place": sum(1 for a in actors if a.places),
        "notes": list(dict.fromkeys(n for a in actors for n in a.notes))[:4],
        "seconds_acting": round(end - start, 1),
    }
    if number == 4:
        rates = extra.get("holder_rates") or {}
        out["holder_steps_per_s"] = rates
        out["presses_per_s"] = round(counts["presses"] / max(end - start, 1e-6), 1)
    if number == 3:
        out["exports_built_or_waited"] = {
            kind: counts[f"{kind}_requests_1s_or_more"] for kind in ("vrnn", "watch_map")
        }
    return out


def three_tabs_stats(tabs: list[Tab], start: float, end: float, lec_start: float, lec_end: float) -> dict:
    """Probe 5: per browser the first place each of its tabs was told, whether its waiting tabs ever showed
    different places at the same second, and the states over time."""
    browsers: dict[int, list[Tab]] = collections.defaultdict(list)
    for t in tabs:
        browsers[t.browser].append(t)

    def at(t: Tab, when: float):
        before = [k for k in t.ticks if k[0] <= when]
        return before[-1] if before else None

    disagree = 0
    seconds = np.arange(start + 2.0, end, 1.0)
    for group in browsers.values():
        for when in seconds:
            shown = {k[2] for k in (at(t, when) for t in group) if k is not None and k[1] == "waiting"}
            disagree += len(shown) > 1
    rows = []
    for b, group in sorted(browsers.items()):
        first = [next((k[2] for k in t.ticks if k[2] is not None), None) for t in group]
        rows.append(
            {
                "browser": b,
                "first_places": first,
                "places_seen": sorted({p for t in group for k in t.ticks if (p := k[2]) is not None}),
                "refused_tabs": sum(t.refused for t in group),
                "states_at_end": [(at(t, end) or (0, None))[1] for t in group],
            }
        )
    firsts = [[p for p in r["first_places"] if p is not None] for r in rows]
    told_browsers = [f for f in firsts if f]
    mid = (lec_start + lec_end) / 2

    def states(when: float) -> dict[str, int]:
        out: collections.Counter = collections.Counter()
        for t in tabs:
            k = at(t, when)
            out["refused" if t.refused else (k[1] if k else "none")] += 1
        return dict(out)

    all_places = [p for r in rows for p in r["places_seen"]]
    return {
        "browsers": len(browsers),
        "tabs": len(tabs),
        "refused_tabs": sum(t.refused for t in tabs),
        "browsers_told_a_place": len(told_browsers),
        "browsers_one_first_place": sum(1 for f in told_browsers if len(set(f)) == 1),
        "seconds_a_browser_showed_two_places": int(disagree),
        "places_told_max": max(all_places, default=None),
        "per_browser": rows,
        "states_while_lecturer_measured": states(mid),
        "states_at_end": states(end),
        "tabs_report": [t.report(start, end) for t in tabs],
        "seconds_acting": round(end - start, 1),
    }


# ------------------------------------------------------------------------------------------ the lecturer


async def image_steps(page, n: int, errors: list) -> list[dict]:
    """``n`` changes of /vae's test image (a click on its number input's +: a new image each time), timed."""
    out = []
    box = page.get_by_test_id("stNumberInput").filter(has_text="or click a point on the map").first
    up = box.get_by_test_id("stNumberInputStepUp")
    rng = random.Random(n)
    for _ in range(n):
        try:
            out.append(await bc.timed(page, up.click))
        except Exception as err:
            errors.append(f"lecturer: test image change: {type(err).__name__}: {str(err)[:200]}")
        await asyncio.sleep(rng.uniform(0.3, 0.6))
    return out


async def lecturer_round(page, picks: int, steps: int, seed: int, errors: list) -> dict:
    """The lecturer's gestures once: GMVAE picks, then /vae test-image changes; exceptions on the pages
    counted."""
    rng = random.Random(seed)
    await bc.goto_page(page, "gmvae")
    got_picks = await bc.cluster_picks(page, picks, rng, errors)
    problems = await page.get_by_test_id("stException").all_inner_texts()
    await bc.goto_page(page, "vae")
    got_steps = await image_steps(page, steps, errors)
    problems += await page.get_by_test_id("stException").all_inner_texts()
    errors.extend(f"lecturer: exception on the page: {p[:200]}" for p in problems)
    return {"picks": got_picks, "steps": got_steps}


# ------------------------------------------------------------------------------------------ warm-up


async def warm_up(number: int, url: str, errors: list) -> list[StreamlitSession]:
    """Open the probe's pages once (and do once what its visitors will do: the modules a first posterior,
    GIF or Play imports belong to the baseline); the sessions stay open, idle, to the end (so that a closed
    session Streamlit keeps is in neither the baseline nor the memory after); a failed download is an
    error."""
    stop = asyncio.Event()
    out = []

    async def open_page(page: str, query: str = "") -> StreamlitSession:
        s = StreamlitSession(url, page, query)
        await s.connect()
        await s.wait_for(lambda x: x.seen.runs_finished, bc.TIMEOUT_MS / 1e3)
        out.append(s)
        return s

    if number in (1, 3, 5):
        s = await open_page("watch")
        if number in (3, 5):
            await s.wait_for(lambda x: x.button_id(PLAY_LABEL), bc.TIMEOUT_MS / 1e3)
            await s.click(PLAY_LABEL)
            await until(s, lambda x: x.shows_button(PAUSE_LABEL), stop, 30.0)
            await asyncio.sleep(bc.WARM_PLAY_S)
            await s.click(PAUSE_LABEL)
            await until(s, lambda x: x.shows_button(PLAY_LABEL) and x.download_id(MAP_GIF), stop, 30.0)
            if number == 3 and s.download_id(MAP_GIF):
                got = await s.request_file(MAP_GIF)
                if got.error:
                    errors.append(f"warm-up: download {MAP_GIF!r}: {got.error}")
    if number == 2:
        s = await open_page("vae")
        await s.wait_for(lambda x: x.widget_id(POSTERIOR_BOX), bc.TIMEOUT_MS / 1e3)
        t = time.monotonic()
        await s.set_widget(POSTERIOR_BOX, True)
        await until(s, lambda x: any(w >= t for w, _ in x.seen.metrics.get(POSTERIOR_METRIC, [])), stop, 60.0)
        s = await open_page("vae", "model=vae-cb-l20")
        await s.wait_for(lambda x: x.button_id(GAP_BUTTON), bc.TIMEOUT_MS / 1e3)
        await s.click(GAP_BUTTON)
        await until(s, lambda x: x.seen.metrics.get(SPLIT_METRIC), stop, 60.0)
    if number in (3, 4):
        s = await open_page("vrnn")
        if number == 3:
            await s.wait_for(lambda x: x.download_id(VRNN_GIF), bc.TIMEOUT_MS / 1e3)
            got = await s.request_file(VRNN_GIF)
            if got.error:
                errors.append(f"warm-up: download {VRNN_GIF!r}: {got.error}")
        else:
            await s.wait_for(lambda x: x.button_id(NEXT_ROW), bc.TIMEOUT_MS / 1e3)
            await s.click(NEXT_ROW)
    if number == 4:
        s = await open_page("factor-analysis")
        await s.wait_for(lambda x: x.button_id(PLAY_LABEL), bc.TIMEOUT_MS / 1e3)
        await s.click(PLAY_LABEL)
        await until(s, lambda x: x.shows_button(PAUSE_LABEL), stop, 30.0)
        await asyncio.sleep(bc.WARM_PLAY_S)
        await s.click(PAUSE_LABEL)
        await until(s, lambda x: x.shows_button(PLAY_LABEL), stop, 30.0)
    await asyncio.sleep(2.0)  # a run a Pause had already set off finishes
    return out


# ------------------------------------------------------------------------------------------ one probe


async def run_probe(number: int, args, pw) -> dict:
    """One probe on a fresh server: warm-up, K = 0, each K with its window after, K = 0 again."""
    name = PROBES[number][0]
    folder = Path(tempfile.mkdtemp(prefix=f"bench-class-probe{number}-"))
    passphrase = secrets.token_urlsafe(12)
    log, trace = folder / "server.log", folder / "server_trace.txt"
    path = f"{bc.SERVER_TRACE}{os.pathsep}{bc.ROOT}"
    proc, url = start_server(
        log,
        folder / "runs",
        extra_env={
            "AEVB_CLASS_MODE": "1",  # as `make serve`
            "AEVB_OPERATOR_PASSPHRASE": passphrase,
            "AEVB_SERVER_MEMORY_MB": str(args.budget_mb),
            "AEVB_BENCH_TRACE": str(trace),
            "PYTHONPATH": path,
        },
    )
    print(f"probe {number} ({name}): server at {url}, log {log}", flush=True)
    samples: list = []
    done = asyncio.Event()
    sampler = asyncio.create_task(bc.sample_server(proc.pid, done, samples))
    t0 = time.monotonic()
    phases: dict[str, tuple[float, float]] = {}
    quiet_errors: list[str] = []
    per_k: dict[int, dict] = {}
    rounds: dict[str, dict] = {}
    uncaught_seen = 0

    def new_uncaught() -> list[str]:
        nonlocal uncaught_seen
        found = bc.uncaught_in_log(log)
        fresh, uncaught_seen = found[uncaught_seen:], len(found)
        return [f"server log: Uncaught app execution: {u}" for u in fresh]

    try:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context, page = await bc.login(browser, url, passphrase)
        warm = await warm_up(number, url, quiet_errors)
        await lecturer_round(page, 2, 2, 99, quiet_errors)
        a = time.monotonic()
        rounds["k0_before"] = await lecturer_round(page, args.picks, args.steps, 1, quiet_errors)
        phases["lecturer_k0"] = (a, time.monotonic())
        a = time.monotonic()
        await asyncio.sleep(args.baseline_s)
        phases["baseline"] = (a, time.monotonic())
        quiet_errors += new_uncaught()
        for i, k in enumerate(args.ks):
            last = i == len(args.ks) - 1
            k_errors: list[str] = []

            async def lecturer(k=k, k_errors=k_errors) -> dict:
                return await lecturer_round(page, args.picks, args.steps, 2 + k, k_errors)

            print(f"probe {number}: K = {k} ...", flush=True)
            probe, errors, loaded, (a, b), harness = await visitors_phase(
                number, k, url, args, 10 * number + k, lecturer
            )
            phases[f"k{k}"] = (a, b)
            rounds[f"k{k}"] = loaded
            left_at = time.monotonic()
            window = args.later_s if last else args.between_s
            read_at = min(MEMORY_AFTER_S, window - 5.0)
            await asyncio.sleep(max(0.0, read_at + 5.0 - (time.monotonic() - left_at)))
            if last:  # the second quiet round, in the window after the reading at a minute
                a2 = time.monotonic()
                rounds["k0_after"] = await lecturer_round(page, args.picks, args.steps, 1, quiet_errors)
                phases["lecturer_k0_after"] = (a2, time.monotonic())
            await asyncio.sleep(max(0.0, window - (time.monotonic() - left_at)))
            phases[f"after_k{k}"] = (left_at, time.monotonic())
            per_k[k] = {
                "probe": probe,
                "errors": [*errors, *k_errors, *new_uncaught()],
                "left_at": left_at,
                "read_at_s": read_at,
                "window_s": window,
                "harness_cpu_cores": harness,
            }
        for s in warm:
            if s.closed_reason:
                quiet_errors.append(f"warm-up session ({s.page}): connection closed: {s.closed_reason}")
            quiet_errors += [f"warm-up session ({s.page}): {e}: {m}" for _, e, m in s.seen.exceptions]
            await s.close()
        await context.close()
        await browser.close()
    finally:
        done.set()
        await sampler
        stop_server(proc)
    quiet_errors += new_uncaught()
    return probe_result(number, args, per_k, rounds, phases, samples, t0, trace, log, quiet_errors)


def probe_result(number, args, per_k, rounds, phases, samples, t0, trace, log, quiet_errors) -> dict:
    """A probe's numbers and targets per K from what :func:`run_probe` gathered."""
    name, title = PROBES[number]
    gestures = [g for r in rounds.values() for kind in ("picks", "steps") for g in r[kind]]
    trace_status = bc.server_times(trace, gestures)
    for g in gestures:
        g.pop("window", None)
    k0 = {
        kind: bc.gesture_summary(rounds["k0_before"][kind] + rounds.get("k0_after", {}).get(kind, []))
        for kind in ("picks", "steps")
    }
    quiet = {
        phase: {kind: bc.gesture_summary(rounds[phase][kind]) for kind in ("picks", "steps")}
        for phase in ("k0_before", "k0_after")
        if phase in rounds
    }
    rss = [(t, r) for t, _, r in samples]
    base = [r for t, r in rss if phases["baseline"][0] <= t <= phases["baseline"][1]]
    baseline_mb = round(float(np.median(base)), 1) if base else None

    def median_rss(a: float, b: float) -> float | None:
        window = [r for t, r in rss if a <= t <= b]
        return round(float(np.median(window)), 1) if window else None

    def p50(summary: dict | None) -> float | None:
        return ((summary or {}).get(bc.TARGET_TIMING) or {}).get("p50_ms")

    out_k = {}
    for k, got in per_k.items():
        a, _ = phases[f"k{k}"]
        left_at, end = phases[f"after_k{k}"]
        lecturer = {kind: bc.gesture_summary(rounds[f"k{k}"][kind]) for kind in ("picks", "steps")}
        ratios = {}
        for kind in ("picks", "steps"):
            x, y = p50(lecturer[kind]), p50(k0[kind])
            ratios[kind] = round(x / y, 2) if x is not None and y else None
        peak = max((r for t, r in rss if a <= t <= end), default=None)
        read = got["read_at_s"]
        after = median_rss(left_at + read - 5, left_at + read + 5)
        later = median_rss(end - 10, end)
        growth = None if peak is None or baseline_mb is None else round(peak - baseline_mb, 1)
        memory = {
            "baseline_mb": baseline_mb,
            "peak_mb": None if peak is None else round(peak, 1),
            "peak_above_baseline_mb": growth,
            "budget_mb": args.budget_mb,
            "after_read_at_s": read,
            "after_mb": after,
            "after_over_baseline": round(after / baseline_mb, 3) if after and baseline_mb else None,
            "later_read_at_s": round(end - left_at, 0),
            "later_mb": later,
            "later_over_baseline": round(later / baseline_mb, 3) if later and baseline_mb else None,
        }
        errors = got["errors"]
        targets = {
            "lecturer_within_1.5x_of_k0": {
                "value": ratios,
                "pass": all(r is not None and r <= TARGET_LECTURER_RATIO for r in ratios.values()),
            },
            "memory_within_budget": {
                "value": growth,
                "pass": growth is not None and growth <= args.budget_mb,
            },
            "memory_within_10pct_after_60s": {
                "value": memory["after_over_baseline"],
                "pass": memory["after_over_baseline"] is not None
                and memory["after_over_baseline"] <= TARGET_MEMORY_RATIO,
            },
            "zero_errors": {"value": len(errors), "pass": not errors},
        }
        out_k[str(k)] = {
            "visitors": k,
            "targets": targets,
            "all_pass": all(t["pass"] for t in targets.values()),
            "lecturer": lecturer,
            "lecturer_ratio_p50_server_run_ms": ratios,
            "memory": memory,
            "errors": len(errors),
            "error_examples": errors[:8],
            "probe": got["probe"],
            "harness_cpu_cores": got["harness_cpu_cores"],
        }
    series = bc.server_series(samples, t0, phases)
    return {
        "number": number,
        "name": name,
        "title": title,
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "lecturer_k0": k0,
        "lecturer_quiet_rounds": quiet,
        "server_trace": trace_status,
        "quiet_errors": len(quiet_errors),
        "quiet_error_examples": quiet_errors[:8],
        "k": out_k,
        "all_pass": not quiet_errors and all(v["all_pass"] for v in out_k.values()),
        "server": series,
        "phases_s_from_start": {k: (round(x - t0, 1), round(y - t0, 1)) for k, (x, y) in phases.items()},
        "server_log": str(log),
    }


# ------------------------------------------------------------------------------------------ the run


async def run(args) -> dict:
    from playwright.async_api import async_playwright

    probes = {}
    started = time.monotonic()
    async with async_playwright() as pw:
        for number in args.probes:
            t = time.monotonic()
            probes[str(number)] = await run_probe(number, args, pw)
            probes[str(number)]["seconds"] = round(time.monotonic() - t)
            print_probe(probes[str(number)])
    note = (
        f"Measured beside other load: the 1-minute load average was {START_LOAD} when the run began."
        if START_LOAD >= 0.5
        else ""
    )
    return {
        "note": note,
        "what": __doc__.split("    python bench")[0].strip(),
        "mode": "quick" if args.quick else "full",
        "visitors": args.ks,
        "probes_run": args.probes,
        "budget_mb": args.budget_mb,
        "slots": os.environ.get("AEVB_SESSION_COMPUTE_SLOTS") or "default (cores - 1, at least 1)",
        "durations_s": {
            "act": args.act_s,
            "settle": args.settle_s,
            "baseline": args.baseline_s,
            "between": args.between_s,
            "later": args.later_s,
            "holder_alone": args.alone_s,
        },
        "gestures_per_round": {"picks": args.picks, "steps": args.steps},
        "lecturer_target_timing": bc.TARGET_TIMING,
        "probes": probes,
        "all_pass": all(p["all_pass"] for p in probes.values()),
        "seconds": round(time.monotonic() - started),
    }


def print_probe(p: dict) -> None:
    print(f"== probe {p['number']}: {p['title']} ({p.get('seconds')} s); server trace: {p['server_trace']}")
    k0 = p["lecturer_k0"]
    print(
        "  lecturer K=0 p50 server ms: picks "
        f"{((k0['picks'] or {}).get('server_run_ms') or {}).get('p50_ms')}, steps "
        f"{((k0['steps'] or {}).get('server_run_ms') or {}).get('p50_ms')}; quiet errors {p['quiet_errors']} "
        f"{p['quiet_error_examples'][:3]}"
    )
    for k, r in p["k"].items():
        print(f"  K={k}: ratios {r['lecturer_ratio_p50_server_run_ms']}; memory {r['memory']}")
        print(f"    errors {r['errors']} {r['error_examples'][:4]}")
        probe = {key: v for key, v in r["probe"].items() if key not in ("tabs_report",)}
        print(f"    probe: {json.dumps(probe)[:1500]}")
        print(f"    targets: { {n: t['pass'] for n, t in r['targets'].items()} }")


def merge_earlier(result: dict) -> dict:
    """A full run of some probes keeps the other probes of the last full run (each says when it ran)."""
    path = RESULTS / "class_probes.json"
    if result["mode"] != "full" or not path.exists():
        return result
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return result
    if earlier.get("mode") != "full":
        return result
    for number, p in (earlier.get("probes") or {}).items():
        if number not in result["probes"]:
            p.setdefault("measured", (earlier.get("machine") or {}).get("date"))
            result["probes"][number] = p
    result["probes"] = dict(sorted(result["probes"].items()))
    result["all_pass"] = all(p["all_pass"] for p in result["probes"].values())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", default="1,2,3,4,5", help="which probes, e.g. 1,3 (default all five)")
    parser.add_argument("--visitors", default="6,16", help="the values of K, e.g. 6,16 (default)")
    parser.add_argument("--budget-mb", type=int, default=4096, help="AEVB_SERVER_MEMORY_MB of the server")
    parser.add_argument("--act-s", type=float, default=30.0, help="seconds the visitors act (at least)")
    parser.add_argument("--settle-s", type=float, default=5.0, help="seconds of load before the lecturer")
    parser.add_argument("--baseline-s", type=float, default=10.0, help="seconds of baseline memory")
    parser.add_argument(
        "--between-s", type=float, default=65.0, help="seconds sampled after a K but the last"
    )
    parser.add_argument("--later-s", type=float, default=130.0, help="seconds sampled after the last K")
    parser.add_argument("--alone-s", type=float, default=8.0, help="probe 4: seconds the holder plays alone")
    parser.add_argument("--picks", type=int, default=10, help="GMVAE cluster picks per lecturer round")
    parser.add_argument("--steps", type=int, default=12, help="test-image changes per lecturer round")
    parser.add_argument("--quick", action="store_true", help="K = 2, tiny phases (smoke run)")
    args = parser.parse_args()
    args.probes = sorted({int(p) for p in args.probes.split(",") if p.strip()})
    if not args.probes or any(p not in PROBES for p in args.probes):
        parser.error(f"--probes: numbers among {sorted(PROBES)}")
    args.ks = [int(k) for k in args.visitors.split(",") if k.strip()]
    if args.quick:
        args.ks = [2] if args.visitors == "6,16" else args.ks
        args.act_s, args.settle_s, args.baseline_s = 10.0, 2.0, 4.0
        args.between_s, args.later_s, args.alone_s = 20.0, 25.0, 4.0
        args.picks, args.steps = 3, 3
    result = merge_earlier(asyncio.run(run(args)))
    print(f"all pass: {result['all_pass']}")
    write_result("class_probes", result)


if __name__ == "__main__":
    main()
