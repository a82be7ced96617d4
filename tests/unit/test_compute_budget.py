"""The compute budget for in-session work (issue 23): slots, the waiting line, reclaim, operator bypass,
the step rate, memory."""

from __future__ import annotations

import threading

import pytest

from explorer_core.compute_budget import (
    ComputeBudget,
    default_slots,
    process_budget,
    session_memory_limit,
)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


@pytest.fixture
def clock() -> Clock:
    return Clock()


def budget(clock: Clock, **kw) -> ComputeBudget:
    kw.setdefault("slots", 2)
    kw.setdefault("timeout_s", 10.0)
    kw.setdefault("step_rate", 100.0)
    return ComputeBudget(clock=clock, sleep=clock.sleep, **kw)


def held_gesture(b: ComputeBudget, seconds: float, ended: threading.Event) -> threading.Thread:
    """Another thread (a page answering a gesture) holds ``b.gesture()`` for ``seconds`` of real time,
    sets ``ended`` and leaves the block; returns once the block is entered."""
    entered = threading.Event()

    def hold() -> None:
        with b.gesture():
            entered.set()
            threading.Event().wait(seconds)
            ended.set()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    entered.wait(10.0)
    return thread


def test_slots_are_taken_and_released_in_order(clock):
    b = budget(clock)
    assert b.acquire("a").granted and b.acquire("b").granted
    c = b.acquire("c")
    assert not c.granted and c.position == 1 and c.holders == 2 and c.slots == 2
    d = b.acquire("d")
    assert not d.granted and d.position == 2 and d.waiting == 2
    assert "busy" in d.message() and "2nd in line" in d.message()
    assert b.acquire("a").granted  # a holder asking again keeps its slot
    b.release("a")
    assert not b.acquire("d").granted  # d is behind c: first come, first served
    assert b.acquire("c").granted
    assert b.position("d") == 1
    b.release("b")
    assert b.acquire("d").granted
    b.release("c"), b.release("d")
    assert b.snapshot()["holders"] == [] and b.snapshot()["waiting"] == []
    b.release("nobody")  # unknown: no-op


def test_a_waiter_that_leaves_gives_up_its_place(clock):
    b = budget(clock, slots=1)
    b.acquire("a"), b.acquire("b"), b.acquire("c")
    b.release("b")  # pressed Pause while waiting
    assert b.position("c") == 1


def test_a_silent_holder_is_reclaimed_after_the_timeout(clock):
    b = budget(clock, slots=1)
    assert b.acquire("stuck").granted
    assert not b.acquire("next").granted
    clock.t += 5
    assert b.heartbeat("next") is False  # the waiter keeps its place
    clock.t += 5.5  # "stuck" silent for 10.5 s > timeout, "next" for 5.5 s
    assert b.acquire("next").granted
    assert not b.holds("stuck") and b.reclaimed == 1


def test_a_silent_waiter_loses_its_place(clock):
    b = budget(clock, slots=1)
    b.acquire("a"), b.acquire("gone"), b.acquire("here")
    clock.t += 6
    b.acquire("a"), b.acquire("here")
    clock.t += 6
    assert b.position("gone") is None and b.position("here") == 1


def test_the_operator_is_never_queued_and_takes_no_slot(clock):
    b = budget(clock, slots=1)
    assert b.acquire("visitor").granted
    ticket = b.acquire("lecturer", operator=True)
    assert ticket.granted and ticket.bypass and "operator" in ticket.message()
    assert b.snapshot()["holders"] == ["visitor"]
    assert not b.acquire("other").granted


def test_no_slot_leaks_when_a_session_ends_mid_play(clock):
    """Sessions that start Play and vanish (no pause, no release) free their slots by timeout alone."""
    b = budget(clock, slots=2)
    for i in range(5):
        b.acquire(f"s{i}")
    assert len(b.snapshot()["holders"]) == 2 and len(b.snapshot()["waiting"]) == 3
    clock.t += 11  # every tab closed
    assert b.reclaim() and b.snapshot()["holders"] == [] and b.snapshot()["waiting"] == []
    assert b.acquire("new").granted


def test_a_holders_steps_are_capped_at_its_rate(clock):
    b = budget(clock, step_rate=100.0)
    assert b.take_steps("nobody", 10) == 0  # no slot, no steps
    b.acquire("a")
    assert b.take_steps("a", 1000) == 50  # the burst: half a second of steps
    assert b.take_steps("a", 10) == 0
    clock.t += 0.25
    assert b.take_steps("a", 1000) == 25
    # a trainer thread: pace() waits for each step
    start = clock.t
    for _ in range(200):
        assert b.pace("a")
    assert clock.t - start == pytest.approx(2.0, abs=0.02)
    b.release("a")
    assert b.pace("a") is False  # released: the thread stops


def test_memory_of_the_holders_together_is_bounded(clock):
    b = budget(clock, slots=3, memory_limit_bytes=1000)
    assert b.acquire("a", memory_bytes=600).granted
    big = b.acquire("b", memory_bytes=600)
    assert not big.granted and "memory" in big.message()
    b.release("a")
    assert b.acquire("b", memory_bytes=600).granted


def test_threads_never_hold_more_slots_than_there_are(clock):
    b = ComputeBudget(slots=3, timeout_s=60, step_rate=100)
    most = []
    lock = threading.Lock()

    def visitor(i: int) -> None:
        for _ in range(200):
            if b.acquire(f"v{i}").granted:
                with lock:
                    most.append(len(b.snapshot()["holders"]))
                b.release(f"v{i}")

    threads = [threading.Thread(target=visitor, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most and max(most) <= 3


def test_defaults_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("AEVB_SESSION_COMPUTE_SLOTS", "3")
    assert default_slots() == 3
    monkeypatch.setenv("AEVB_SESSION_COMPUTE_SLOTS", "zero")
    assert default_slots() >= 1
    monkeypatch.setenv("AEVB_SESSION_COMPUTE_SLOTS", "-4")
    assert default_slots() == 1
    monkeypatch.setenv("AEVB_SESSION_MEMORY_MB", "256")
    assert session_memory_limit() == 256 * 2**20
    assert process_budget() is process_budget()
    with pytest.raises(ValueError):
        ComputeBudget(slots=0)


def test_a_holder_whose_turn_is_over_goes_to_the_back_of_the_line(clock):
    b = budget(clock, slots=1, turn_s=120.0, timeout_s=1000.0)
    assert b.acquire("long").granted
    clock.t += 200
    assert b.acquire("long").granted  # nobody waits: it keeps playing
    waiting = b.acquire("waiter")
    assert not waiting.granted and waiting.position == 1
    clock.t += 5
    over = b.acquire("long")  # held 205 s > 120 s while someone waits
    assert not over.granted and over.position == 2 and "turn" in over.message()
    assert b.pace("long") is False  # its trainer thread stops
    assert b.acquire("waiter").granted


def test_a_paced_step_waits_while_a_page_answers_a_gesture(clock):
    """Gestures first: a trainer's next step waits for the gesture to end (not for its whole allowance)."""
    import time

    b = budget(clock, slots=1, gesture_wait_s=30.0)
    assert b.acquire("trainer").granted
    took = threading.Event()

    def trainer() -> None:
        b.pace("trainer")
        took.set()

    with b.gesture():
        with b.gesture():  # nested (or concurrent) gestures count
            thread = threading.Thread(target=trainer)
            start = time.monotonic()
            thread.start()
            assert not took.wait(0.2)  # held back while the gesture runs
        assert not took.wait(0.1)  # one gesture still runs
    assert took.wait(10.0)  # the last one ended: the step goes on at once, long before 30 s
    thread.join()
    assert time.monotonic() - start < 20.0


def test_a_step_that_waited_for_its_rate_yields_to_a_gesture_begun_meanwhile(clock):
    """A trainer spends most of its time waiting for its rate: a gesture that begins during that wait holds
    the step back too (the check is made again after the wait, not only before it)."""
    import time

    b = None
    gesture = None
    ended = threading.Event()

    def sleep(s: float) -> None:  # the wait for the rate; another thread's gesture begins meanwhile
        nonlocal gesture
        clock.t += s
        if gesture is None:
            gesture = held_gesture(b, 0.3, ended)

    b = ComputeBudget(clock=clock, sleep=sleep, slots=1, timeout_s=10.0, step_rate=10.0, gesture_wait_s=30.0)
    assert b.acquire("trainer").granted
    start = time.monotonic()
    for _ in range(100):  # the bucket's burst, then a wait for the rate
        assert b.pace("trainer") is True
        if gesture is not None:
            break
    assert gesture is not None
    assert ended.is_set()  # the step was taken only once the gesture had ended
    assert time.monotonic() - start >= 0.25


def test_paced_work_waits_a_little_after_a_gesture_ends(clock):
    """The server still sends a gesture's answer after its block ends: paced work waits the linger too,
    and not once it has passed."""
    b = budget(clock, slots=1, gesture_linger_s=0.03)
    with b.gesture():
        pass
    assert b.wait_for_gestures() == pytest.approx(0.03)  # (the fake clock's sleep)
    assert b.wait_for_gestures() == 0.0  # the linger is over
    with b.gesture():
        pass
    clock.t += 1.0
    assert b.wait_for_gestures() == 0.0  # long after the gesture: no wait
    with b.gesture():
        pass
    assert b.wait_for_gestures(0.01) == pytest.approx(0.01)  # never more than the limit


def test_a_paced_step_waits_at_most_its_allowance(clock):
    """A gesture that does not end (a visitor dragging for ever) slows a trainer, never stops it."""
    import time

    b = budget(clock, slots=1, gesture_wait_s=0.05)
    assert b.acquire("trainer").granted
    ended = threading.Event()
    held = held_gesture(b, 1.0, ended)  # a page's gesture, in another thread
    start = time.monotonic()
    assert b.pace("trainer") is True
    assert time.monotonic() - start >= 0.04
    assert not ended.is_set()  # the step went on while the gesture still ran
    held.join()
    start = time.monotonic()
    assert b.pace("trainer") is True  # no gesture: no wait beyond the bucket's (fake-clock) pacing
    assert time.monotonic() - start < 0.04


def test_a_thread_never_waits_for_its_own_gesture(clock):
    """A visitor's frame drawn in the run that answers that visitor's own click runs inside that run's
    gesture block: its yields return at once (they waited the whole allowance before), while another
    thread still waits for the gesture."""
    b = budget(clock, slots=1, gesture_wait_s=0.2, gesture_linger_s=0.0)
    other: list[float] = []
    with b.gesture():
        assert b.wait_for_gestures() == 0.0
        with b.gesture():  # nested blocks of the same thread
            assert b.wait_for_gestures() == 0.0
        assert b.wait_for_gestures() == 0.0
        thread = threading.Thread(target=lambda: other.append(b.wait_for_gestures()))
        thread.start()
        thread.join()
    assert other and other[0] >= 0.2  # another thread waited for it, up to its limit
    assert b.wait_for_gestures() == 0.0  # after the block: nothing to wait for


def test_a_gesture_announced_on_arrival_holds_paced_work_until_its_run_begins(clock):
    """The request of a gesture arrives a few ms before its run enters its gesture block: paced work waits
    from the arrival, for GESTURE_ANNOUNCE_S at most; once the run has begun, its block takes over."""
    from explorer_core.compute_budget import GESTURE_ANNOUNCE_S

    b = budget(clock, slots=1, gesture_wait_s=1.0, gesture_linger_s=0.0)
    b.announce_gesture()
    assert b.wait_for_gestures() == pytest.approx(GESTURE_ANNOUNCE_S)  # its run never came: it expires
    assert b.wait_for_gestures() == 0.0
    b.announce_gesture()
    with b.gesture():  # its run begins: the announcement is used up
        pass
    assert b.wait_for_gestures() == 0.0  # (no linger here)
    b.announce_gesture()
    assert b.wait_for_gestures(0.01) == pytest.approx(0.01)  # never more than the limit
    clock.t += 1.0
    assert b.wait_for_gestures() == 0.0  # long expired


def test_a_fast_clicking_visitor_loses_priority_beyond_its_gesture_rate(clock):
    """A script clicking 13 times a second (issue 34) gets priority for its burst, then at most the rate;
    its other gestures are answered without anybody waiting; a person's 3 clicks a second never lose it, and
    the operator is never limited."""
    from explorer_core.compute_budget import GESTURE_BURST, GESTURE_RATE

    b = budget(clock, slots=1, gesture_linger_s=0.0)
    prioritised = 0
    for _ in range(13 * 10):  # ten seconds of a script
        clock.t += 1 / 13
        prioritised += b.gesture_priority("script")
    assert prioritised <= GESTURE_BURST + 10 * GESTURE_RATE + 1
    assert prioritised >= 10 * GESTURE_RATE - 1 and b.unprioritised_gestures == 130 - prioritised
    # over its rate, its gesture block makes nobody wait, and its arrival is not announced
    with b.gesture("script"):
        waited: list[float] = []
        thread = threading.Thread(target=lambda: waited.append(b.wait_for_gestures()))
        thread.start()
        thread.join()
        assert waited == [0.0]
    b.announce_gesture("script")
    assert b.wait_for_gestures() == 0.0
    # a person: three clicks a second for a minute, every one with priority
    clock.t += 10.0  # (its bucket refills)
    for _ in range(180):
        clock.t += 1 / 3
        assert b.gesture_priority("person")
    # the operator: never limited, and its arrivals are announced
    for _ in range(100):
        assert b.gesture_priority("lecturer", operator=True)
    b.announce_gesture("lecturer")
    assert b.wait_for_gestures(0.01) == pytest.approx(0.01)


def test_a_visitors_gesture_within_its_rate_still_holds_paced_work_back(clock):
    b = budget(clock, slots=1, gesture_wait_s=0.2, gesture_linger_s=0.0)
    waited: list[float] = []
    with b.gesture("visitor"):
        thread = threading.Thread(target=lambda: waited.append(b.wait_for_gestures()))
        thread.start()
        thread.join()
    assert waited and waited[0] >= 0.2


def test_two_tabs_of_one_browser_hold_one_place_in_line(clock):
    """The line's holder is the browser (a digest of Streamlit's per-browser cookie), not the tab: one
    client with three tabs took places 2, 3 and 4 before (issue 34); a reload keeps the place."""
    from views.components.page_state import BROWSER_COOKIE, browser_id

    b = budget(clock, slots=1)
    assert b.acquire("someone/watch").granted
    token = bytes.fromhex("9f8e7d6c5b4a3928")

    def cookie(mask: bytes) -> dict[str, str]:  # the server masks the token anew on every page load
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(token))
        return {BROWSER_COOKIE: f"2|{mask.hex()}|{masked.hex()}|1765000000"}

    masks = (b"\x1a\x2b\x3c\x4d", b"\x00\x00\x00\x00", b"\xff\x10\x20\x30")
    tabs = [browser_id(cookie(m), fallback=f"session-{i}") + "/watch" for i, m in enumerate(masks)]
    assert len({c[BROWSER_COOKIE] for c in map(cookie, masks)}) == 3  # three cookie strings...
    assert len(set(tabs)) == 1 and token.hex() not in tabs[0]  # ...one id; the token itself not kept
    places = [b.acquire(tab).position for tab in tabs]
    assert places == [1, 1, 1] and len(b.snapshot()["waiting"]) == 1
    other = browser_id({BROWSER_COOKIE: "2|00000000|0123456789ab|1765000001"}, "session-9") + "/watch"
    assert b.acquire(other).position == 2
    # without the cookie (AppTest, cookies refused) each session is its own place
    assert browser_id({}, "session-7") == "session-7" and browser_id(None, "s") == "s"


# --- heavy one-off work (issue 34) ----------------------------------------------------------------------
def test_one_off_work_waits_in_line_for_a_slot_and_gives_it_back(clock):
    """A posterior grid, a q* fit, a GIF build: with the one slot held by someone's Play, the one-off job
    waits in the same line (told its place each time it looks), runs when the slot frees, holds it while
    it runs, and gives it back at the end."""
    b = budget(clock, slots=1)
    assert b.acquire("player/watch").granted
    places: list[int] = []

    def on_wait(ticket):
        places.append(ticket.position)
        assert "is computed when your turn comes" in ticket.message(
            then="it is computed when your turn comes"
        )
        if len(places) == 3:
            b.release("player/watch")  # the holder pauses

    with b.one_off("visitor/once", on_wait=on_wait) as ticket:
        assert ticket.granted and not ticket.bypass
        assert b.snapshot()["holders"] == ["visitor/once"]
        assert not b.acquire("late/watch").granted  # a later Play waits behind the job
    assert places == [1, 1, 1]
    assert "visitor/once" not in b.snapshot()["holders"]
    assert b.acquire("late/watch").granted


def test_one_off_work_of_the_operator_never_waits(clock):
    b = budget(clock, slots=1)
    assert b.acquire("player/watch").granted
    with b.one_off("lecturer/once", operator=True, on_wait=lambda t: pytest.fail("the operator waited")) as t:
        assert t.granted and t.bypass
    assert b.snapshot()["holders"] == ["player/watch"]  # took no slot, released none


def test_one_off_work_runs_inside_its_own_browsers_slot(clock):
    """A browser whose Play holds the slot (another tab) does not wait behind itself."""
    b = budget(clock, slots=1)
    assert b.acquire("browser1/watch").granted
    with b.one_off("browser1/once", group="browser1", on_wait=lambda t: pytest.fail("waited on itself")):
        pass
    assert b.snapshot()["holders"] == ["browser1/watch"]  # its Play keeps the slot


def test_a_one_off_job_gives_its_slot_back_when_it_fails_and_is_not_reclaimed_while_it_runs(clock):
    b = budget(clock, slots=1, timeout_s=10.0)
    with pytest.raises(RuntimeError, match="boom"), b.one_off("visitor/once"):
        clock.t += 60  # a long build sends no heartbeat: still its slot
        assert b.holds("visitor/once")
        raise RuntimeError("boom")
    assert b.snapshot()["holders"] == []


def test_a_one_off_job_that_waits_too_long_is_told_and_leaves_the_line(clock):
    from explorer_core.compute_budget import ComputeBusyError

    b = budget(clock, slots=1, timeout_s=1000.0)
    assert b.acquire("player/watch").granted
    with pytest.raises(ComputeBusyError, match="try again"), b.one_off("visitor/once", max_wait_s=5.0):
        pytest.fail("ran without a slot")
    assert b.snapshot()["waiting"] == []


def test_a_holder_starved_by_gestures_keeps_its_turn(clock):
    """The seconds a holder's frames wait for other sessions' gestures do not use up its turn."""
    b = budget(clock, slots=1, turn_s=120.0, timeout_s=1000.0)
    assert b.acquire("holder").granted
    assert not b.acquire("waiter").granted
    clock.t += 100
    b.credit_turn("holder", 50.0)  # half of that time it could not train
    clock.t += 60  # 160 s held, 110 s of them usable: its turn goes on
    assert b.acquire("holder").granted
    clock.t += 20  # 130 s usable: over
    assert not b.acquire("holder").granted


def test_a_paced_step_that_waits_for_a_gesture_does_not_count_towards_the_turn():
    """``pace`` credits the holder's turn with the time it waited for a gesture (real clock: the gesture is
    held by another thread)."""
    b = ComputeBudget(slots=1, timeout_s=100.0, step_rate=1000.0, gesture_wait_s=0.2, gesture_linger_s=0.0)
    assert b.acquire("holder").granted
    since = b._holders["holder"].since
    ended = threading.Event()
    thread = held_gesture(b, 0.15, ended)
    assert b.pace("holder")
    thread.join(5)
    assert b._holders["holder"].since - since >= 0.1


def test_a_one_off_job_does_not_wait_for_a_play_holders_whole_turn(clock):
    """A true posterior of a second must not wait 120 s behind someone's Play: once the holder has had its
    slot for ONE_OFF_PREEMPT_AFTER_S, its next frame steps aside, first in line after the job, and gets the
    slot back when the job is done; a holder that just got its slot keeps it."""
    from explorer_core.compute_budget import ONE_OFF_PREEMPT_AFTER_S

    b = budget(clock, slots=1, turn_s=120.0, timeout_s=1000.0)
    assert b.acquire("player/watch").granted
    also_waiting = b.acquire("other/fa")  # a Play waiting in line before the job
    assert not also_waiting.granted
    seen: list[tuple[int, bool]] = []

    def on_wait(ticket):
        frame = b.acquire("player/watch")  # the holder's next frame of Play
        seen.append((ticket.position, frame.granted))
        if not frame.granted:
            assert frame.position == 2 and "short computation" in frame.message()
        clock.t += 1.0

    with b.one_off("visitor/once", on_wait=on_wait) as ticket:
        assert ticket.granted and b.snapshot()["waiting"] == ["player/watch", "other/fa"]
        assert b.pace("player/watch") is False  # its trainer thread stops meanwhile
    waited = len(seen)
    assert ONE_OFF_PREEMPT_AFTER_S - 1 <= waited <= ONE_OFF_PREEMPT_AFTER_S + 2
    assert all(granted for _, granted in seen[:-1]) and not seen[-1][1]
    assert b.acquire("player/watch").granted  # Play goes on right after the job
    assert not b.acquire("other/fa").granted


def test_a_holder_gives_at_most_its_share_of_time_to_others_gestures():
    """Issue 34, probe 4: pages answering gestures without end (scripts clicking fast) cannot stop a slot
    holder: once it has given MAX_YIELD_SHARE of its recent time to them, its steps stop waiting. Real
    clock: a gesture held by another thread for 2 s; without the cap the trainer would wait 0.25 s a step
    (8 steps in 2 s)."""
    b = ComputeBudget(slots=1, timeout_s=100.0, step_rate=500.0, gesture_wait_s=0.25, gesture_linger_s=0.0)
    assert b.acquire("holder").granted
    ended = threading.Event()
    held_gesture(b, 2.0, ended)
    steps = 0
    while not ended.is_set():
        assert b.pace("holder")
        steps += 1
    assert steps > 100
    assert b._holders["holder"].yielded <= 1.3  # about MAX_YIELD_SHARE * YIELD_MEMORY_S


def test_a_frame_of_play_yields_within_the_same_share(clock):
    """SlotGate frames call yield_to_gestures: the waits count, credit the turn, and stop at the share."""
    from explorer_core.compute_budget import MAX_YIELD_SHARE, YIELD_MEMORY_S

    b = budget(clock, slots=1, timeout_s=1000.0, gesture_wait_s=0.25)
    assert b.acquire("holder").granted
    assert b._yield_allowance("holder", 0.25) == 0.25
    b._count_yield_locked(b._holders["holder"], clock(), MAX_YIELD_SHARE * YIELD_MEMORY_S)
    assert b._yield_allowance("holder", 0.25) == 0.0  # its share is used up: no wait
    clock.t += 2 * YIELD_MEMORY_S  # it decays: the holder yields again
    assert b._yield_allowance("holder", 0.25) == 0.25
    assert b._yield_allowance("not-a-holder", 0.25) == 0.25


def test_a_session_whose_gesture_runs_take_more_than_its_share_waits_before_the_next(clock):
    """A script clicking many times a second: once its gesture runs took more than GESTURE_SHARE of the
    recent time, its next gesture sleeps first (spaced out, holding no GIL); a person's clicks do not; the
    operator never waits."""
    from explorer_core.compute_budget import GESTURE_SHARE, MAX_GESTURE_DELAY_S, YIELD_MEMORY_S

    b = budget(clock, slots=1)
    with b.gesture("person"):
        clock.t += 0.2  # a run of 200 ms
    clock.t += 0.5  # a person clicks again half a second later
    before = clock.t
    with b.gesture("person"):
        pass
    assert clock.t == before and b.delayed_gestures == 0
    for _ in range(20):  # runs of 100 ms back to back
        with b.gesture("script"):
            clock.t += 0.1
    assert b.delayed_gestures > 0
    start = clock.t
    with b.gesture("script"):
        pass
    assert 0 < clock.t - start <= MAX_GESTURE_DELAY_S
    assert b._gesture_delay("script") == 0.0  # after its wait it is within its share again
    assert GESTURE_SHARE * YIELD_MEMORY_S > 0.2  # (the person's one run never came near it)
    for _ in range(20):
        with b.gesture("lecturer", operator=True):
            clock.t += 0.1
    start = clock.t
    with b.gesture("lecturer", operator=True):
        pass
    assert clock.t == start
