"""A page's claim on the server's compute budget while its ▶ Play runs (Watch it learn, factor analysis,
VRNN): ``explorer_core.compute_budget`` holds the slots; this is the page side.

* Each frame of Play calls :meth:`SlotGate.steps_for_frame` (also the slot's heartbeat): granted, the frame
  runs at most that many steps (the holder's step rate); not granted, the player pauses and the visitor
  joins the line (None). :meth:`SlotGate.keep_playing` ends the frame (the slot goes back when Play stops).
  A page whose steps run in a thread (Watch it learn) calls :meth:`SlotGate.acquire` and paces the thread
  with :meth:`ComputeBudget.pace`.
* While in line, :meth:`SlotGate.waiting_panel` (mounted by the page's full run, before its frames) says in
  words that the server is busy and where the visitor is in line, polls the budget every
  :data:`POLL_S` seconds (a fragment with a timer, so a waiting visitor costs one tiny rerun every few
  seconds, never a spinner) and starts Play by itself when the visitor's turn comes; "Leave the line"
  gives up the place.
* :meth:`SlotGate.release` when Play pauses, when its queue is done or when it fails; a session that ends
  mid-Play stops sending heartbeats and the budget reclaims its slot after its timeout.

A page that answers one gesture runs it inside :meth:`ComputeBudget.gesture` (:func:`gesture_fragment`, and
``app.py`` for a whole run), so that paced trainers hold back for it.

The operator's session (class mode, passphrase given) and every session outside class mode is never queued
nor paced (``views.components.page_state.operator``). Work that answers one gesture (a pad move, a drawing,
a cluster pick, "Next row") never goes through here.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import streamlit as st

from explorer_core.compute_budget import ComputeBudget, Ticket, process_budget
from views.components.page_state import client_id, operator, session_id
from views.components.player import Player

#: seconds between two polls of a visitor waiting in line: a turn comes at most this late, and each poll is a
#: script run of its own, with its messages (fifteen visitors in line polled 15 runs a second at 1 s, 5 at
#: 3 s; those runs, more than the holder's training, slowed the lecturer's latent moves: make bench-class);
#: inside the budget's heartbeat timeout (10 s) with room for a late poll
POLL_S = 5.0


def gesture_owner() -> tuple[str | None, bool]:
    """(this run's session id, whether it is the operator's): whose gesture a run answers, for the budget's
    per-session gesture rate (:meth:`ComputeBudget.gesture`)."""
    return session_id(), operator()


def gesture_fragment(body: Callable[..., Any]) -> Callable[..., Any]:
    """``st.fragment(body)`` whose runs answer a gesture (a pad move, a cluster pick, a change of view):
    while one runs, the server's paced trainers wait (:meth:`ComputeBudget.gesture`)."""

    @functools.wraps(body)
    def answered(*args: Any, **kwargs: Any) -> Any:
        with process_budget().gesture(*gesture_owner()):
            return body(*args, **kwargs)

    return st.fragment(answered)


_ANNOUNCER_LOCK = threading.Lock()
_announcing: list[object] = []  # the runtime whose requests announce gestures (at most one)


def announce_gestures_on_arrival() -> bool:
    """Make the server announce every gesture to the process's budget the moment its request arrives
    (:meth:`ComputeBudget.announce_gesture`), a few ms before its run starts and enters its gesture
    block: paced trainers then start no step in between. A gesture is a ``rerun_script`` that no timer
    sent (``is_auto_rerun`` false: a click, a key, a page change; a fragment's ``run_every`` timer, such as a
    frame of Play or a poll of the line, is not one). Streamlit has no hook for arriving messages, so
    this wraps the running ``Runtime``'s ``handle_backmsg`` on the instance (its websocket handler calls
    it on the event loop); where that is missing (another Streamlit, AppTest), nothing changes. Once per
    process; whether it is in place."""
    if _announcing:  # (every run asks: no lock once it is in place)
        return True
    with _ANNOUNCER_LOCK:
        if _announcing:
            return True
        try:
            from streamlit.runtime import Runtime

            if not Runtime.exists():
                return False
            runtime = Runtime.instance()
            arrived = runtime.handle_backmsg
        except (ImportError, AttributeError, RuntimeError):
            return False
        budget = process_budget()

        def handle_backmsg(session_id: str, msg: Any, *args: Any, **kwargs: Any) -> Any:
            if msg.WhichOneof("type") == "rerun_script" and not msg.rerun_script.is_auto_rerun:
                budget.announce_gesture(session_id)
            return arrived(session_id, msg, *args, **kwargs)

        runtime.handle_backmsg = handle_backmsg
        _announcing.append(runtime)
        return True


#: the holder id's last part for a browser's heavy one-off work (``<browser id>/once``)
ONE_OFF_KEY = "once"
T = TypeVar("T")


@contextlib.contextmanager
def heavy_work(what: str, show_place: bool = True) -> Iterator[None]:
    """Run the block, a heavy one-off job of this session (``what``: e.g. "the true posterior of this
    image"), through the compute budget (:meth:`ComputeBudget.one_off`): while no slot is free the visitor
    waits in the line, told its place in a message that goes when the turn comes; the operator never waits.
    ``show_place``: False in a widget's callback, which must not draw (the run's status shows it waits).

    Raises:
        ComputeBusyError: no turn came within the budget's longest wait (the caller tells the visitor).
    """
    placeholder = st.empty() if show_place else None

    def on_wait(ticket: Ticket) -> None:
        if placeholder is not None:
            placeholder.info(
                ticket.message(then=f"{what} is computed when your turn comes"),
                icon=":material/hourglass_top:",
            )

    try:
        with process_budget().one_off(
            f"{client_id()}/{ONE_OFF_KEY}", operator=operator(), group=client_id(), on_wait=on_wait
        ):
            if placeholder is not None:
                placeholder.empty()
            yield
    finally:
        if placeholder is not None:
            placeholder.empty()


def one_off_runner() -> Callable[[Callable[[], T]], T]:
    """``run(build)``, which calls ``build`` as this session's heavy one-off work through the compute budget
    (:meth:`ComputeBudget.one_off`), for a download's file: Streamlit builds it when clicked, in a thread
    of its own with no session, so the session's identity is taken now, in the page's run. The download
    waits for its turn (no message: the browser's download waits); the operator's never does."""
    holder, group, is_operator = f"{client_id()}/{ONE_OFF_KEY}", client_id(), operator()

    def run(build: Callable[[], T]) -> T:
        with process_budget().one_off(holder, operator=is_operator, group=group):
            return build()

    return run


def _no_wait() -> None:
    """Gives way to no one (:meth:`SlotGate.give_way` of a paused frame)."""


class SlotGate:
    """The claim of one page (``key``) of this session on the budget.

    Args:
        key: the page's prefix (the holder is ``<browser id>/<key>``; state ``{key}_slot_wait``).
        player: the page's player (paused while waiting, started again when the slot comes).
        budget: the budget (default: the process's, :func:`explorer_core.compute_budget.process_budget`).
    """

    def __init__(self, key: str, player: Player, budget: ComputeBudget | None = None):
        self.key = key
        self.player = player
        self._budget = budget

    @property
    def budget(self) -> ComputeBudget:
        """The budget this gate asks."""
        return self._budget if self._budget is not None else process_budget()

    @property
    def holder(self) -> str:
        """This browser's id on this page (:func:`views.components.page_state.client_id`): the tabs of one
        browser hold one place in line (and share one slot), a reload keeps it."""
        return f"{client_id()}/{self.key}"

    @property
    def waiting(self) -> bool:
        """Whether this session waits in line (Play paused until its turn)."""
        return f"{self.key}_slot_wait" in st.session_state

    def acquire(self, memory_bytes: int = 0) -> Ticket:
        """Take (or keep) the slot, or the place in line; the slot's heartbeat."""
        return self.budget.acquire(self.holder, operator=operator(), memory_bytes=memory_bytes)

    def take_steps(self, wanted: int) -> int:
        """How many of ``wanted`` steps this frame may run (all of them for the operator)."""
        if operator():
            return int(wanted)
        return self.budget.take_steps(self.holder, wanted)

    def steps_for_frame(self, wanted: int, memory_bytes: int = 0) -> int | None:
        """One frame of Play's claim on the budget: take (or keep) the slot, the slot's heartbeat
        (:meth:`acquire`), and return how many of ``wanted`` steps the frame may run now
        (:meth:`take_steps`: 0 .. ``wanted``; all of them for the operator). Without a slot the visitor
        joins the line (:meth:`wait`: the player pauses, :meth:`waiting_panel` starts it again on their
        turn) and this returns None."""
        ticket = self.acquire(memory_bytes)
        if not ticket.granted:
            self.wait(ticket)
            return None
        return int(wanted) if ticket.bypass else self.budget.take_steps(self.holder, wanted)

    def keep_playing(self, go_on: bool) -> bool:
        """The end of a frame of Play: when Play stops (``go_on`` False: its queue is done, an error) the
        slot goes back at once; returns ``go_on``."""
        if not go_on:
            self.release()
        return go_on

    def release(self) -> None:
        """Give the slot back (or leave the line); forget the waiting state."""
        st.session_state.pop(f"{self.key}_slot_wait", None)
        self.budget.release(self.holder)

    def wait(self, ticket: Ticket) -> None:
        """No slot: pause the player (remembering how it ran) and stay in line (:meth:`waiting_panel`). A
        toast says so too: at 1280x720 the line's panel can sit below the fold, under the ▶ Play row."""
        st.session_state[f"{self.key}_slot_wait"] = {"free": self.player.free, "message": ticket.message()}
        self.player.stop()
        st.toast(ticket.message(), icon=":material/hourglass_top:")

    def behind_gestures(self, frame: Callable[[bool], bool]) -> Callable[[bool], bool]:
        """The player's ``frame``, which while playing first waits for the pages answering gestures (at most
        the budget's ``gesture_wait_s``; :meth:`ComputeBudget.wait_for_gestures`), except in the operator's
        session: a frame's evaluation and drawing is Python that holds the server's GIL."""

        @functools.wraps(frame)
        def behind(playing: bool) -> bool:
            if playing:
                self.yield_to_gestures()
            return frame(playing)

        return behind

    def yield_to_gestures(self) -> None:
        """Wait while pages answer gestures (at most the budget's ``gesture_wait_s``), except in the
        operator's session. A frame that waited long for something else (Watch's frame waits for the
        trainer's next parameters) calls it again before its own heavy part."""
        if not operator():
            # at most its share of time, and the wait does not use up this holder's turn
            self.budget.yield_to_gestures(self.holder)

    def give_way(self, playing: bool) -> Callable[[], None]:
        """What a frame calls between the parts of its drawing (Python that holds the GIL a gesture's run
        needs): while ``playing``, :meth:`yield_to_gestures`, so that a gesture begun during the drawing
        waits for one part at most; a paused frame answers this visitor's own gesture and waits for no one."""
        return self.yield_to_gestures if playing else _no_wait

    def waiting_panel(self) -> None:
        """While this session waits: a fragment that polls the budget every :data:`POLL_S` seconds, shows
        the place in line and starts Play when the slot comes. Nothing otherwise. Call in the page's full
        run, before the frames."""
        if not self.waiting:
            return

        def leave() -> None:
            self.release()

        def poll() -> None:
            wait = st.session_state.get(f"{self.key}_slot_wait")
            if wait is None:  # left the line, or Play started
                return
            self.yield_to_gestures()  # a poll can wait for a page answering a gesture
            ticket = self.acquire()
            if ticket.granted:
                st.session_state.pop(f"{self.key}_slot_wait", None)
                self.player.start(free=bool(wait.get("free")))
                st.rerun(scope="app")
            wait["message"] = ticket.message()
            c1, c2 = st.columns([5, 1], vertical_alignment="center")
            c1.info(ticket.message(), icon=":material/hourglass_top:")
            c2.button("Leave the line", key=f"{self.key}_slot_leave", on_click=leave)

        st.fragment(poll, run_every=POLL_S)()
