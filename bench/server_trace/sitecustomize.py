"""Benchmarks only: a server started with this folder first on ``PYTHONPATH`` and ``AEVB_BENCH_TRACE`` set
to a file logs, per line, each message it receives from a browser and each message it hands to one, with
``time.monotonic()`` (the clock a benchmark reads too), the session and the message's type::

    B <seconds> <session id> <BackMsg type>     (received: rerun_script, ...)
    S <seconds> <session id> <ForwardMsg type>  (handed to its websocket: new_session, delta, ...)
    G <seconds> - start|stop [collected]         (a full collection of Python's cyclic garbage collector)

``bench_class.py`` reads the lecturer's lines: the server's own time per gesture, from the rerun request it
received to the last ``script_finished`` it sent, without the browser's drawing of the frames. It wraps two
methods of Streamlit's ``Runtime`` (``handle_backmsg``, ``_send_message``); when they are missing (another
Streamlit) it logs one ``X`` line saying so and nothing else, and the benchmark reports no server times.
Without ``AEVB_BENCH_TRACE`` it does nothing. The app never imports it.
"""

import os

if os.environ.get("AEVB_BENCH_TRACE"):
    import threading
    import time

    _out = open(os.environ["AEVB_BENCH_TRACE"], "a", buffering=1)  # noqa: SIM115 (open for the process)
    _lock = threading.Lock()

    def _log(kind: str, session_id: str, what: str) -> None:
        with _lock:
            _out.write(f"{kind} {time.monotonic():.6f} {session_id} {what}\n")

    try:
        from streamlit.runtime.runtime import Runtime

        _handle_backmsg, _send_message = Runtime.handle_backmsg, Runtime._send_message
    except (ImportError, AttributeError) as err:
        _log("X", "-", f"no trace: {type(err).__name__}")
    else:

        def handle_backmsg(self, session_id, msg, *args, **kwargs):
            _log("B", session_id, msg.WhichOneof("type"))
            return _handle_backmsg(self, session_id, msg, *args, **kwargs)

        def send_message(self, session_info, msg):
            _log("S", session_info.session.id, msg.WhichOneof("type"))
            return _send_message(self, session_info, msg)

        Runtime.handle_backmsg = handle_backmsg
        Runtime._send_message = send_message

    import gc

    def _collection(phase: str, info: dict) -> None:  # Python's cyclic collections: they hold the GIL
        if info.get("generation") == 2:
            _log("G", "-", f"{phase} {info.get('collected', '')}")

    gc.callbacks.append(_collection)
