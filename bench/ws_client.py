"""A Streamlit session without a browser: Streamlit's own websocket protocol (``/_stcore/stream``, binary
``BackMsg`` / ``ForwardMsg`` protobufs), as much of it as a visitor pressing buttons needs.

What it does, as Streamlit's frontend does:

* opens the websocket (subprotocol ``streamlit``; no Origin header, so no XSRF token is needed) and asks for
  a run of one page (``page_name``, the page's URL path);
* keeps the elements the server sends (``delta.new_element``) by their delta path, and the newest of each
  kind by text (metrics by label, buttons by label with their widget id);
* presses a button: a ``rerun_script`` with the button's trigger value;
* honours ``auto_rerun`` (a fragment with ``run_every``): a timer that asks for a rerun of that fragment every
  interval seconds, cleared when a full run starts (``new_session`` without fragment ids) or by
  ``stop_auto_rerun``, as the frontend does;
* records what a test or a benchmark reads: every exception element, every alert, every metric value with
  its arrival time, and whether the connection closed.

It does not report cached message hashes, so the server always sends whole messages (never a reference).

    session = StreamlitSession("http://localhost:8501", "watch")
    await session.connect()
    await session.wait_for(lambda s: s.button_id(PLAY_LABEL))
    await session.click(PLAY_LABEL)
    ...
    await session.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

#: how many of the latest alerts and metric values a session keeps
HISTORY = 2000


@dataclass
class Seen:
    """What a session has received so far (times are ``time.monotonic()`` seconds).

    Attributes:
        alerts: (time, format name (``info``, ``error`` ...), body) of every alert element.
        metrics: label -> list of (time, value text) of every metric element with that label.
        exceptions: (time, type, message) of every exception element (an uncaught error on the page).
        runs_finished: script runs (full or fragment) that finished.
        messages: ForwardMsgs received.
        bytes: bytes received.
    """

    alerts: list[tuple[float, str, str]] = field(default_factory=list)
    metrics: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    exceptions: list[tuple[float, str, str]] = field(default_factory=list)
    runs_finished: int = 0
    messages: int = 0
    bytes: int = 0


_ALERT_FORMATS = {0: "unused", 1: "error", 2: "warning", 3: "info", 4: "success"}


class StreamlitSession:
    """One Streamlit session over a websocket (see the module docstring).

    Args:
        base_url: the server, e.g. ``http://localhost:8501``.
        page: the page's URL path (``watch``, ``factor-analysis``; ``""`` for the default page).
        query_string: the URL's query string, without ``?``.
    """

    def __init__(self, base_url: str, page: str = "", query_string: str = ""):
        self.url = base_url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/")
        self.url += "/_stcore/stream"
        self.page = page
        self.query_string = query_string
        self.seen = Seen()
        self.session_id: str | None = None
        self.page_script_hash = ""
        self.script_running = False
        self.closed_reason: str | None = None  # why the connection closed when we did not close it
        self._ws = None
        self._reader: asyncio.Task | None = None
        self._timers: dict[str, tuple[float, asyncio.Task]] = {}
        self._buttons: dict[str, str] = {}  # label -> widget id (newest)
        self._elements: dict[tuple[int, ...], tuple[str, str]] = {}  # delta path -> (kind, text)
        self._closing = False
        self._changed = asyncio.Event()

    # --- connection ------------------------------------------------------------------------------
    async def connect(self, timeout_s: float = 60.0) -> None:
        """Open the websocket and ask for a run of the page.

        Raises:
            OSError, websockets.exceptions.WebSocketException, TimeoutError: the server cannot be reached.
        """
        self._ws = await asyncio.wait_for(
            websockets.connect(self.url, subprotocols=["streamlit"], max_size=None, open_timeout=timeout_s),
            timeout_s,
        )
        self._reader = asyncio.create_task(self._read())
        await self.rerun()

    async def close(self) -> None:
        """Close the websocket (the server's session then ends as when a tab closes) and stop the timers."""
        self._closing = True
        for _, task in self._timers.values():
            task.cancel()
        self._timers.clear()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    @property
    def connected(self) -> bool:
        """Whether the websocket is open and its reader running."""
        return self._reader is not None and not self._reader.done() and self.closed_reason is None

    # --- sending ---------------------------------------------------------------------------------
    async def rerun(
        self, widgets: list | None = None, fragment_id: str | None = None, auto: bool = False
    ) -> None:
        """Send a ``rerun_script``: the whole page, or the fragment ``fragment_id``; ``widgets`` are
        ``WidgetState`` protobufs (e.g. a button's trigger), ``auto`` marks a timer's rerun."""
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query_string
        cs.page_script_hash = self.page_script_hash
        cs.page_name = self.page
        if fragment_id:
            cs.fragment_id = fragment_id
        cs.is_auto_rerun = bool(auto)
        for w in widgets or []:
            cs.widget_states.widgets.append(w)
        await self._ws.send(msg.SerializeToString())

    async def click(self, label: str) -> None:
        """Press the button labelled ``label`` (as last drawn).

        Raises:
            KeyError: no such button was drawn.
        """
        widget_id = self._buttons[label]
        msg = BackMsg().rerun_script.widget_states.widgets.add()
        msg.id = widget_id
        msg.trigger_value = True
        await self.rerun([msg])

    # --- reading ---------------------------------------------------------------------------------
    def button_id(self, label: str) -> str | None:
        """The widget id of the button labelled ``label`` as last drawn, ``None`` if there is none."""
        return self._buttons.get(label)

    def shows_button(self, label: str) -> bool:
        """Whether a button labelled ``label`` is drawn now (:meth:`button_id` also knows a label the
        button had before: a Play button relabelled Pause keeps its id under its Play label too)."""
        return any(kind == "button" and text == label for kind, text in self._elements.values())

    def texts(self) -> list[str]:
        """The texts of the elements the page shows now (markdown, alerts, metrics as ``label: value``,
        button labels), in delta-path order."""
        return [text for _, (_, text) in sorted(self._elements.items())]

    def last_metric(self, label: str) -> tuple[float, str] | None:
        """(time, value text) of the newest metric labelled ``label``, ``None`` before one came."""
        values = self.seen.metrics.get(label)
        return values[-1] if values else None

    async def wait_for(self, predicate: Callable[[StreamlitSession], object], timeout_s: float = 60.0):
        """Wait until ``predicate(self)`` is true (checked after each message); its value.

        Raises:
            TimeoutError: not within ``timeout_s``.
            ConnectionError: the connection closed first.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate(self)
            if value:
                return value
            if self.closed_reason is not None:
                raise ConnectionError(self.closed_reason)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("condition not met in time")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 1.0))

    # --- receiving -------------------------------------------------------------------------------
    async def _read(self) -> None:
        try:
            async for data in self._ws:
                self.seen.bytes += len(data)
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._handle(msg)
                self._changed.set()
        except asyncio.CancelledError:
            raise
        except Exception as err:
            if not self._closing:
                self.closed_reason = f"{type(err).__name__}: {err}"[:300]
        else:
            if not self._closing:
                self.closed_reason = "the server closed the connection"
        finally:
            self._changed.set()

    def _handle(self, msg: ForwardMsg) -> None:
        self.seen.messages += 1
        kind = msg.WhichOneof("type")
        now = time.monotonic()
        if kind == "new_session":
            self.session_id = msg.new_session.initialize.session_id or self.session_id
            if not list(msg.metadata.run.fragment_ids):  # a full run: the frontend drops every timer
                for _, task in self._timers.values():
                    task.cancel()
                self._timers.clear()
        elif kind == "navigation":  # the page that runs (its hash goes with every later rerun)
            if msg.navigation.page_script_hash:
                self.page_script_hash = msg.navigation.page_script_hash
        elif kind == "session_status_changed":
            self.script_running = msg.session_status_changed.script_is_running
        elif kind == "script_finished":
            self.seen.runs_finished += 1
        elif kind == "auto_rerun":
            self._set_timer(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                timer = self._timers.pop(fid, None)
                if timer is not None:
                    timer[1].cancel()
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(tuple(msg.metadata.delta_path), msg.delta.new_element, now)

    def _element(self, path: tuple[int, ...], el, now: float) -> None:
        kind = el.WhichOneof("type")
        text = ""
        if kind == "markdown":
            text = el.markdown.body
        elif kind == "alert":
            text = el.alert.body
            self._keep(self.seen.alerts, (now, _ALERT_FORMATS.get(el.alert.format, "?"), text))
        elif kind == "metric":
            text = f"{el.metric.label}: {el.metric.body}"
            self._keep(self.seen.metrics.setdefault(el.metric.label, []), (now, el.metric.body))
        elif kind == "button":
            text = el.button.label
            self._buttons[el.button.label] = el.button.id
        elif kind == "exception":
            text = f"{el.exception.type}: {el.exception.message}"
            self.seen.exceptions.append((now, el.exception.type, el.exception.message[:300]))
        elif kind == "heading":
            text = el.heading.body
        self._elements[path] = (kind or "", text)

    @staticmethod
    def _keep(values: list, item) -> None:
        values.append(item)
        if len(values) > HISTORY:
            del values[: len(values) - HISTORY]

    def _set_timer(self, fragment_id: str, interval: float) -> None:
        if not fragment_id:
            return
        old = self._timers.get(fragment_id)
        if old is not None and old[0] == interval:
            return
        if old is not None:
            old[1].cancel()

        async def tick() -> None:
            while True:
                await asyncio.sleep(interval)
                with contextlib.suppress(Exception):
                    await self.rerun(fragment_id=fragment_id, auto=True)

        self._timers[fragment_id] = (interval, asyncio.create_task(tick()))
