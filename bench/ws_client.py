"""A Streamlit session without a browser: Streamlit's own websocket protocol (``/_stcore/stream``, binary
``BackMsg`` / ``ForwardMsg`` protobufs), as much of it as a visitor pressing buttons needs.

What it does, as Streamlit's frontend does:

* opens the websocket (subprotocol ``streamlit``; no Origin header, so no XSRF token is needed) and asks for
  a run of one page (``page_name``, the page's URL path);
* keeps the elements the server sends (``delta.new_element``) by their delta path, and the newest of each
  kind by text (metrics by label, buttons by label with their widget id); what a full run did not draw
  again is gone when it finishes, as in the browser;
* keeps every widget's state, as the frontend's widget manager does: a checkbox, toggle, number input,
  selectbox, radio, slider or select slider starts at the value the server drew (its default, or the value
  the script set), keeps what :meth:`StreamlitSession.set_widget` gave it, and every rerun sends them all
  (so a checked box stays checked); a widget inside a form is sent only by its form's submit (never here);
  the states of widgets a full run no longer draws are dropped;
* presses a button: a ``rerun_script`` with the button's trigger value beside those states;
* asks for a download button's deferred file (``st.download_button`` with a callable: the server builds it
  when clicked, a ``backend_operation_request``) and fetches the file from the URL it answers;
* sends a ``Cookie`` header when given one: sessions with the same ``_streamlit_xsrf`` cookie are tabs of one
  browser (:func:`browser_cookies` makes one browser's);
* honours ``auto_rerun`` (a fragment with ``run_every``): a timer that asks for a rerun of that fragment every
  interval seconds, cleared when a full run starts (``new_session`` without fragment ids) or by
  ``stop_auto_rerun``, as the frontend does;
* records what a test or a benchmark reads: every exception element, every alert and toast, every metric
  value with its arrival time, when each script run finished, and whether the connection closed.

It does not report cached message hashes, so the server always sends whole messages (never a reference).

    session = StreamlitSession("http://localhost:8501", "watch")
    await session.connect()
    await session.wait_for(lambda s: s.button_id(PLAY_LABEL))
    await session.click(PLAY_LABEL)
    ...
    await session.close()

    tab = StreamlitSession(url, "vae", cookies=browser_cookies())   # a tab of a browser of its own
    await tab.connect()
    await tab.wait_for(lambda s: s.widget_id("Test image"))
    await tab.set_widget("Test image", 42)                             # a rerun with every widget's state
    got = await tab.request_file("This generation, row by row (GIF)")  # on /vrnn: seconds, bytes, error
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import urllib.request
import uuid
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
        toasts: (time, body) of every toast.
        runs_finished: script runs (full or fragment) that finished.
        finished_at: (time, status) of every ``script_finished`` (status: ``ok``, ``fragment``, ``rerun``
            (ended early for a rerun), ``compile_error``).
        messages: ForwardMsgs received.
        bytes: bytes received.
    """

    alerts: list[tuple[float, str, str]] = field(default_factory=list)
    metrics: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    exceptions: list[tuple[float, str, str]] = field(default_factory=list)
    toasts: list[tuple[float, str]] = field(default_factory=list)
    runs_finished: int = 0
    finished_at: list[tuple[float, str]] = field(default_factory=list)
    messages: int = 0
    bytes: int = 0


@dataclass
class FileGot:
    """One deferred file asked for (:meth:`StreamlitSession.request_file`).

    Attributes:
        answer_s: seconds from the request to the server's answer (its build, or its wait, included).
        total_s: seconds from the request to the file's last byte (``None`` when there was no file).
        nbytes: the file's size (0 when there was none).
        error: why there is no file (the server's error message, a timeout ...), else ``None``.
    """

    answer_s: float
    total_s: float | None = None
    nbytes: int = 0
    error: str | None = None


#: the cookie Streamlit's server sets once per browser (Tornado's XSRF token); the app's place in line is per
#: browser, derived from it (views/components/page_state.browser_id)
BROWSER_COOKIE = "_streamlit_xsrf"


def browser_cookies() -> dict[str, str]:
    """The cookies of a new browser: an XSRF token of its own (the same for all its tabs)."""
    return {BROWSER_COOKIE: secrets.token_hex(16)}


_FINISHED = {0: "ok", 1: "compile_error", 2: "rerun", 3: "fragment"}
#: element kind -> the ``WidgetState`` field its value goes in (see :meth:`StreamlitSession._widget`)
WIDGET_KINDS = ("checkbox", "number_input", "selectbox", "radio", "slider")


_ALERT_FORMATS = {0: "unused", 1: "error", 2: "warning", 3: "info", 4: "success"}


class StreamlitSession:
    """One Streamlit session over a websocket (see the module docstring).

    Args:
        base_url: the server, e.g. ``http://localhost:8501``.
        page: the page's URL path (``watch``, ``factor-analysis``; ``""`` for the default page).
        query_string: the URL's query string, without ``?``.
        cookies: cookies the websocket's request sends (e.g. :func:`browser_cookies`: sessions that send the
            same are tabs of one browser); none by default (each session is then a browser of its own).
    """

    def __init__(
        self,
        base_url: str,
        page: str = "",
        query_string: str = "",
        cookies: dict[str, str] | None = None,
    ):
        self.http_url = base_url.rstrip("/")
        self.url = base_url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/")
        self.url += "/_stcore/stream"
        self.page = page
        self.query_string = query_string
        self.cookies = dict(cookies or {})
        self.seen = Seen()
        self.session_id: str | None = None
        self.page_script_hash = ""
        self.script_running = False
        self.closed_reason: str | None = None  # why the connection closed when we did not close it
        self.reruns_sent = 0
        self.last_rerun_at: float | None = None  # time.monotonic() of the last rerun request sent
        self._ws = None
        self._reader: asyncio.Task | None = None
        self._timers: dict[str, tuple[float, asyncio.Task]] = {}
        self._buttons: dict[str, str] = {}  # label -> widget id (newest)
        self._downloads: dict[str, str] = {}  # download button label -> deferred file id (newest, non-empty)
        self._widgets: dict[str, tuple[str, str]] = {}  # label -> (kind, widget id) (newest)
        self._states: dict[str, object] = {}  # widget id -> its WidgetState, as the frontend keeps it
        self._drawn: set[str] = set()  # widget ids drawn since the last full run started
        self._paths: set[tuple[int, ...]] = set()  # delta paths drawn since the last full run started
        self._answers: dict[str, tuple[float, object]] = {}  # backend operation request id -> (t, response)
        self._elements: dict[tuple[int, ...], tuple[str, str]] = {}  # delta path -> (kind, text)
        self._closing = False
        self._changed = asyncio.Event()

    # --- connection ------------------------------------------------------------------------------
    async def connect(self, timeout_s: float = 60.0) -> None:
        """Open the websocket and ask for a run of the page.

        Raises:
            OSError, websockets.exceptions.WebSocketException, TimeoutError: the server cannot be reached.
        """
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else None
        self._ws = await asyncio.wait_for(
            websockets.connect(
                self.url,
                subprotocols=["streamlit"],
                max_size=None,
                open_timeout=timeout_s,
                additional_headers=headers,
            ),
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
        """Send a ``rerun_script``: the whole page, or the fragment ``fragment_id``, with every widget's state
        (as the frontend does); ``widgets`` are ``WidgetState`` protobufs sent besides (e.g. a button's
        trigger), ``auto`` marks a timer's rerun."""
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query_string
        cs.page_script_hash = self.page_script_hash
        cs.page_name = self.page
        if fragment_id:
            cs.fragment_id = fragment_id
        cs.is_auto_rerun = bool(auto)
        extra = {w.id for w in widgets or []}
        for widget_id, state in self._states.items():
            if widget_id not in extra:
                cs.widget_states.widgets.append(state)
        for w in widgets or []:
            cs.widget_states.widgets.append(w)
        self.reruns_sent += 1
        self.last_rerun_at = time.monotonic()
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

    def widget_id(self, label: str) -> str | None:
        """The id of the widget (checkbox, number input, select box, radio, slider) labelled ``label`` as
        last drawn, or of the one whose label starts with ``label`` when none is labelled exactly so;
        ``None`` if there is none."""
        found = self._widget_named(label)
        return found[1] if found else None

    def widget_value(self, label: str):
        """The value this session holds for the widget labelled ``label`` (see :meth:`widget_id`), as it
        would send it (a number, a bool, a string, a list); ``None`` if there is none."""
        found = self._widget_named(label)
        state = self._states.get(found[1]) if found else None
        if state is None or state.WhichOneof("value") is None:
            return None
        value = getattr(state, state.WhichOneof("value"))
        return list(value.data) if hasattr(value, "data") else value

    async def set_widget(self, label: str, value) -> None:
        """Give the widget labelled ``label`` (see :meth:`widget_id`) the value ``value`` and rerun, as a
        person changing it does: a checkbox takes a bool, a number input a number, a select box or radio
        the option's text as shown, a slider a number or a list of them, a select slider an option's text
        or a list of them.

        Raises:
            KeyError: no such widget was drawn.
        """
        found = self._widget_named(label)
        if found is None:
            raise KeyError(label)
        kind, widget_id = found
        state = self._states.get(widget_id)
        if state is None:
            state = BackMsg().rerun_script.widget_states.widgets.add()
            state.id = widget_id
        field_name = state.WhichOneof("value") or _VALUE_FIELDS.get(kind, "")
        if field_name == "bool_value":
            state.bool_value = bool(value)
        elif field_name == "int_value":
            state.int_value = int(value)
        elif field_name == "double_value":
            state.double_value = float(value)
        elif field_name == "string_value":
            state.string_value = str(value)
        elif field_name == "double_array_value":
            state.double_array_value.data[:] = [float(v) for v in _as_list(value)]
        elif field_name == "string_array_value":
            state.string_array_value.data[:] = [str(v) for v in _as_list(value)]
        else:
            raise KeyError(f"{label}: a {kind} whose value this client cannot set")
        self._states[widget_id] = state
        await self.rerun()

    def download_id(self, label: str) -> str | None:
        """The deferred file id of the download button labelled ``label`` as last drawn with one (a button
        drawn disabled, or with its data given at once, has none); ``None`` if there is none."""
        return self._downloads.get(label)

    async def request_file(self, label: str, timeout_s: float = 120.0, fetch: bool = True) -> FileGot:
        """Ask for the file of the download button labelled ``label`` as the frontend does when it is
        clicked (a ``backend_operation_request`` with its ``deferred_file`` id: the server runs the page's
        build function, in a thread of its own, and answers with the file's URL), then fetch the file
        (``fetch``). Never raises for the server's answer: a :class:`FileGot` says what happened.

        Raises:
            KeyError: no such download button, or it has no deferred file.
        """
        file_id = self._downloads[label]
        msg = BackMsg()
        req = msg.backend_operation_request
        req.request_id = str(uuid.uuid4())
        req.session_id = self.session_id or ""
        req.deferred_file.file_id = file_id
        start = time.monotonic()
        await self._ws.send(msg.SerializeToString())
        try:
            answered_at, response = await self.wait_for(
                lambda s: s._answers.pop(req.request_id, None), timeout_s
            )
        except (TimeoutError, ConnectionError) as err:
            return FileGot(time.monotonic() - start, error=f"no answer: {type(err).__name__}: {err}"[:300])
        got = FileGot(answered_at - start)
        if response.error_msg:
            got.error = response.error_msg[:300]
            return got
        url = response.deferred_file.url
        if not fetch:
            return got
        if not url:
            got.error = "the answer holds no URL"
            return got
        full = url if "://" in url else f"{self.http_url}/{url.lstrip('/')}"

        def get() -> int:
            with urllib.request.urlopen(full, timeout=timeout_s) as resp:
                return len(resp.read())

        try:
            got.nbytes = await asyncio.to_thread(get)
            got.total_s = time.monotonic() - start
        except OSError as err:
            got.error = f"fetching the file: {type(err).__name__}: {err}"[:300]
        return got

    # --- reading ---------------------------------------------------------------------------------
    def button_id(self, label: str) -> str | None:
        """The widget id of the button labelled ``label`` as last drawn, ``None`` if there is none."""
        return self._buttons.get(label)

    def shows_button(self, label: str) -> bool:
        """Whether a button labelled ``label`` is drawn now (:meth:`button_id` also knows a label the
        button had before: a Play button relabelled Pause keeps its id under its Play label too)."""
        return any(kind == "button" and text == label for kind, text in self._elements.values())

    def finished_since(self, t: float) -> int:
        """Script runs (full or fragment) that finished after ``t`` (a ``time.monotonic()`` time)."""
        return sum(1 for when, _ in self.seen.finished_at if when > t)

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
                self._drawn = set()
                self._paths = set()
        elif kind == "navigation":  # the page that runs (its hash goes with every later rerun)
            if msg.navigation.page_script_hash:
                self.page_script_hash = msg.navigation.page_script_hash
        elif kind == "session_status_changed":
            self.script_running = msg.session_status_changed.script_is_running
        elif kind == "script_finished":
            self.seen.runs_finished += 1
            status = _FINISHED.get(msg.script_finished, "?")
            self._keep(self.seen.finished_at, (now, status))
            if status == "ok":  # a full run's end: the frontend forgets what it no longer drew
                self._forget_undrawn()
        elif kind == "backend_operation_response":
            response = msg.backend_operation_response
            self._answers[response.request_id] = (now, response)
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
        self._paths.add(path)
        old = self._elements.get(path)
        if old is not None and old[0] == "download_button":  # replaced: its file id is gone with it
            self._downloads.pop(old[1], None)
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
        elif kind == "download_button":
            text = el.download_button.label
            if el.download_button.deferred_file_id and not el.download_button.disabled:
                self._downloads[text] = el.download_button.deferred_file_id
            else:
                self._downloads.pop(text, None)
        elif kind in WIDGET_KINDS:
            text = self._widget(kind, getattr(el, kind))
        elif kind == "toast":
            text = el.toast.body
            self._keep(self.seen.toasts, (now, text))
        elif kind == "exception":
            text = f"{el.exception.type}: {el.exception.message}"
            self.seen.exceptions.append((now, el.exception.type, el.exception.message[:300]))
        elif kind == "heading":
            text = el.heading.body
        self._elements[path] = (kind or "", text)

    def _widget(self, kind: str, w) -> str:
        """Keep a drawn widget by its label, and its state as the frontend would: the value the server
        set (``set_value``), else the one held, else the widget's default. A form's widget is not kept
        (its form's submit sends it). Returns the label."""
        if getattr(w, "form_id", ""):
            return w.label
        if kind == "slider" and w.type == w.SELECT_SLIDER:
            kind = "select_slider"
        self._widgets[w.label] = (kind, w.id)
        self._drawn.add(w.id)
        if w.set_value or w.id not in self._states:
            state = _initial_state(kind, w)
            if state is not None:
                self._states[w.id] = state
            else:  # (set to no value: an empty select box or number input sends nothing)
                self._states.pop(w.id, None)
        return w.label

    def _forget_undrawn(self) -> None:
        """After a full run: the elements, widget states and download files it did not draw are gone (as
        the frontend drops them)."""
        for widget_id in [w for w in self._states if w not in self._drawn]:
            del self._states[widget_id]
        gone = [path for path in self._elements if path not in self._paths]
        for path in gone:
            kind, text = self._elements.pop(path)
            if kind == "download_button" and not any(
                k == kind and t == text for k, t in self._elements.values()
            ):
                self._downloads.pop(text, None)

    def _widget_named(self, label: str) -> tuple[str, str] | None:
        if label in self._widgets:
            return self._widgets[label]
        return next((v for k, v in self._widgets.items() if k.startswith(label)), None)

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


#: the ``WidgetState`` field of each kind's value (a number input's depends on its data type)
_VALUE_FIELDS = {
    "checkbox": "bool_value",
    "selectbox": "string_value",
    "radio": "string_value",
    "slider": "double_array_value",
    "select_slider": "string_array_value",
}


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def _initial_state(kind: str, w):
    """The ``WidgetState`` the frontend holds for widget ``w`` (a ``kind`` element) when it is drawn: the
    value the server set, else its default; ``None`` when it has none (an empty select box, a number input
    without a value)."""
    state = BackMsg().rerun_script.widget_states.widgets.add()
    state.id = w.id
    if kind == "checkbox":
        state.bool_value = w.value if w.set_value else w.default
    elif kind == "number_input":
        if not w.HasField("value" if w.set_value else "default"):
            return None
        value = w.value if w.set_value else w.default
        if w.data_type == w.INT:
            state.int_value = int(value)
        else:
            state.double_value = float(value)
    elif kind in ("selectbox", "radio"):
        if w.set_value:
            if not w.HasField("raw_value"):
                return None
            state.string_value = w.raw_value
        elif w.HasField("default") and 0 <= w.default < len(w.options):
            state.string_value = w.options[w.default]
        else:
            return None
    elif kind == "slider":
        state.double_array_value.data[:] = list(w.value if w.set_value else w.default)
    elif kind == "select_slider":
        if w.set_value and len(w.raw_value):
            state.string_array_value.data[:] = list(w.raw_value)
        else:
            indices = list(w.value if w.set_value else w.default)
            if not all(0 <= int(i) < len(w.options) for i in indices):
                return None
            state.string_array_value.data[:] = [w.options[int(i)] for i in indices]
    else:
        return None
    return state
