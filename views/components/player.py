"""The shared Play / Pause player of the pages that stream frames (Watch it learn, factor analysis, VRNN).

What it does:

* **State** (``st.session_state[f"{key}_player"]``, a :class:`PlayerState`): whether it runs, whether it
  runs "free" (Play with nothing queued: it goes on until paused) or until the page's work is done, the
  frame count and the last frame times (for frames per second).
* **The button**: :meth:`Player.button` draws Play or Pause (:data:`PLAY_LABEL`, :data:`PAUSE_LABEL`). A
  click acts in an ``on_click`` callback, which Streamlit runs at the start of the next run, before any
  element is drawn, so a click is never lost to a frame that a newer request interrupts, and a frame
  requested by the timer before a stop can never switch Play back on (only callbacks start it).
  :meth:`Player.start` / :meth:`Player.stop` do the same from the page's own callbacks (a step button queues
  steps and starts the player).
* **The frames**: :meth:`Player.frames` mounts the page's frame function in a fragment that reruns itself
  every ``frame_seconds`` while the player runs (``st.fragment(run_every=...)``) and not at all otherwise,
  inside a container ``{key}_frames`` whose elements are not greyed out between frames.
  The frame function gets ``playing`` (True: advance and draw; False: draw only) and returns whether the
  player goes on; False (the queue is done, an error) stops it.
* **Stop conditions and the timer**: the fragment's timer is set when the whole page runs, so whenever the
  player was started or stopped since (by a callback, or by a frame that returned False), one full rerun
  (``st.rerun(scope="app")``) sets or drops it; :meth:`Player.sync` does this at the end of a controls
  fragment. Nothing else reruns the page while it plays.

The queue of what to play (E, M, E, M ...) stays with the experiment
(:class:`explorer_core.inference.schedule.PhaseQueue`); the page's callbacks fill it and its frame function
works it off.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from explorer_core.compute_budget import process_budget
from views.components.page_state import operator, session_id

#: frame times kept for the frames-per-second reading
FPS_WINDOW = 10
#: the button's labels (its accessible names) and icons (Material icons, which ship with Streamlit: a media
#: control emoji such as a pause sign is an empty box on a machine without an emoji font)
PLAY_LABEL, PLAY_ICON = "Play", ":material/play_arrow:"
PAUSE_LABEL, PAUSE_ICON = "Pause", ":material/pause:"


def _fragment_run() -> bool:
    """Whether this script run reruns fragments only (not the whole page)."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and getattr(ctx, "fragment_ids_this_run", None))


@dataclass
class PlayerState:
    """A player's session state.

    Attributes:
        running: frames advance (the timer runs).
        free: started with nothing queued: it runs until paused (else until the frame says it is done).
        frames: frames advanced since the page opened.
        stamps: ``time.time()`` of the last :data:`FPS_WINDOW` frames of this run.
        timer_on: whether the last full run mounted the frame fragment with its timer.
    """

    running: bool = False
    free: bool = False
    frames: int = 0
    stamps: list[float] = field(default_factory=list)
    timer_on: bool = False


class Player:
    """A page's Play/Pause player (see the module docstring).

    Args:
        key: the page's prefix (session state ``{key}_player``, widget keys ``{key}_play``, container
            ``{key}_frames``).
        frame_seconds: the timer between frames while playing (a frame that takes longer delays the next).
    """

    def __init__(self, key: str, frame_seconds: float):
        self.key = key
        self.frame_seconds = float(frame_seconds)

    # --- state ----------------------------------------------------------------------------------------
    @property
    def state(self) -> PlayerState:
        """This session's :class:`PlayerState` (created stopped)."""
        slot = f"{self.key}_player"
        if not isinstance(st.session_state.get(slot), PlayerState):
            st.session_state[slot] = PlayerState()
        return st.session_state[slot]

    @property
    def running(self) -> bool:
        """Whether frames advance."""
        return self.state.running

    @property
    def free(self) -> bool:
        """Whether it was started with nothing queued (runs until paused)."""
        return self.state.free

    def start(self, free: bool = False) -> None:
        """Run (from a callback or a frame); ``free``: until paused, else until a frame returns False."""
        s = self.state
        if not s.running:
            s.stamps = []
        s.running, s.free = True, bool(free)

    def stop(self) -> None:
        """Pause."""
        s = self.state
        s.running, s.free, s.stamps = False, False, []

    def fps(self) -> float | None:
        """Frames per second over the last frames of this run; ``None`` before three."""
        stamps = self.state.stamps
        if len(stamps) < 3 or stamps[-1] <= stamps[0]:
            return None
        return (len(stamps) - 1) / (stamps[-1] - stamps[0])

    # --- widgets --------------------------------------------------------------------------------------
    def button(
        self,
        container=None,
        on_play: Callable[[], bool] | None = None,
        on_pause: Callable[[], None] | None = None,
        **kwargs,
    ) -> None:
        """Play (or Pause while running), keyed ``{key}_play``, acting in a callback.

        ``on_play()`` runs before a start and returns ``free`` (True: nothing was queued, run until paused);
        ``on_pause()`` runs after a stop. ``kwargs`` go to ``st.button`` (e.g. ``help``).
        """

        def clicked() -> None:
            if self.running:
                self.stop()
                if on_pause is not None:
                    on_pause()
            else:
                self.start(free=on_play() if on_play is not None else True)

        where = container if container is not None else st
        where.button(
            PAUSE_LABEL if self.running else PLAY_LABEL,
            icon=PAUSE_ICON if self.running else PLAY_ICON,
            key=f"{self.key}_play",
            on_click=clicked,
            **kwargs,
        )

    def sync(self) -> None:
        """At the end of a fragment without a timer (the controls): if the player was started or stopped
        since the page last ran, rerun the page once so the frame fragment's timer follows (and the button's
        label). Nothing in a full run of the page: :meth:`frames`, further down, sets the timer then."""
        if self.state.running != self.state.timer_on and _fragment_run():
            st.rerun(scope="app")

    # --- frames ---------------------------------------------------------------------------------------
    def frames(self, frame: Callable[[bool], bool]) -> None:
        """Mount ``frame`` in a fragment that reruns every ``frame_seconds`` while the player runs.

        ``frame(playing)`` draws the page's live part; with ``playing`` it first advances one frame, and
        it returns whether the player goes on (its return value is ignored when not playing). Call this
        once per full run of the page, after the controls.
        """
        s = self.state
        s.timer_on = s.running
        # between frames Streamlit greys a running fragment's elements out ("stale") with an opacity
        # transition: the frames update in place, so keep them fully drawn (and spare the browser the
        # repaints of the fade)
        st.html(
            f"<style>.st-key-{self.key}_frames [data-stale='true'] "
            "{opacity: 1 !important; transition: none !important;}</style>"
        )

        def body() -> None:
            playing = self.state.running
            if playing:
                stamps = self.state.stamps
                stamps.append(time.time())
                del stamps[:-FPS_WINDOW]
                self.state.frames += 1
            with st.container(key=f"{self.key}_frames"):
                if playing:
                    go_on = frame(playing)
                else:  # a paused frame answers a click inside it ("Next row"), or is part of a page's run
                    # (then its gesture block is the page's): counted for the visitor's share of the server
                    with process_budget().gesture(session_id(), operator()):
                        go_on = frame(playing)
            if playing and not go_on and self.state.running:
                self.stop()
            if self.state.running != self.state.timer_on:
                st.rerun(scope="app")  # start or stop the timer (and relabel the button)

        st.fragment(body, run_every=self.frame_seconds if s.running else None)()
