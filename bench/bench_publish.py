"""The published site (issue 35) in headless Chromium, served by ``python -m http.server`` with no Streamlit
process: its size, the first picture after navigation, pictures per second under a pad drag, and the time
of one VRNN row. Writes ``bench/results/publish.json``.

Also the helpers the browser tests share: :func:`publish_for_bench` and :func:`static_server`.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: the site the issue sizes (<= 40 MB together)
MODELS = ("vae-cb-l2", "cvae-cb-l2", "gmvae-marginal", "vrnn")


def publish_for_bench(models: Iterable[str], out: Path) -> Path:
    """Publish ``models`` into ``out`` (:func:`explorer_core.publish.publish`); returns ``out``."""
    from explorer_core.publish import publish

    publish(list(models), out)
    return Path(out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def static_server(folder: Path, timeout_s: float = 20) -> Iterator[str]:
    """``python -m http.server`` serving ``folder`` on a free port of 127.0.0.1; yields its base URL and stops
    it afterwards."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/index.html", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"http.server did not answer on {url}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
