"""The server announces a gesture to the compute budget when its request arrives
(``views.components.compute_slot.announce_gestures_on_arrival``): a timer's rerun is not a gesture."""

from __future__ import annotations

from streamlit.proto.BackMsg_pb2 import BackMsg

import views.components.compute_slot as compute_slot
from explorer_core.compute_budget import ComputeBudget


class FakeRuntime:
    """What the announcer needs of Streamlit's ``Runtime``: ``handle_backmsg``."""

    def __init__(self) -> None:
        self.handled: list[tuple[str, str]] = []

    def handle_backmsg(self, session_id, msg, *, client=None) -> None:
        self.handled.append((session_id, msg.WhichOneof("type")))


def rerun(auto: bool) -> BackMsg:
    msg = BackMsg()
    msg.rerun_script.is_auto_rerun = auto
    return msg


def test_clicks_are_announced_timers_are_not_and_every_message_is_still_handled(monkeypatch):
    from streamlit.runtime import Runtime

    runtime, budget = FakeRuntime(), ComputeBudget(slots=1)
    monkeypatch.setattr(compute_slot, "_announcing", [])
    monkeypatch.setattr(compute_slot, "process_budget", lambda: budget)
    monkeypatch.setattr(Runtime, "exists", classmethod(lambda cls: True))
    monkeypatch.setattr(Runtime, "instance", classmethod(lambda cls: runtime))
    assert compute_slot.announce_gestures_on_arrival() is True
    assert compute_slot.announce_gestures_on_arrival() is True  # once: not wrapped twice
    runtime.handle_backmsg("s1", rerun(auto=True))  # a frame of Play, a poll of the line
    assert len(budget._announced) == 0
    runtime.handle_backmsg("s1", rerun(auto=False), client=None)  # a click
    assert len(budget._announced) == 1
    other = BackMsg()
    other.stop_script = True
    runtime.handle_backmsg("s2", other)
    assert len(budget._announced) == 1
    assert runtime.handled == [("s1", "rerun_script"), ("s1", "rerun_script"), ("s2", "stop_script")]


def test_without_a_running_server_nothing_changes(monkeypatch):
    from streamlit.runtime import Runtime

    monkeypatch.setattr(compute_slot, "_announcing", [])
    monkeypatch.setattr(Runtime, "exists", classmethod(lambda cls: False))
    assert compute_slot.announce_gestures_on_arrival() is False
