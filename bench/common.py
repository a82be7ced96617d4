"""Shared by the benchmark scripts: machine facts, percentiles, and where results go.

Every script writes ``bench/results/<name>.json``; ``bench/report.py`` renders them all into BENCHMARKS.md,
so no number there is typed by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
#: Debian's Chromium and its flags (the closed network needs them), for the benchmarks and the browser tests
CHROMIUM = os.environ.get("AEVB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
#: a Streamlit app whose script has finished its run
IDLE_APP = '[data-testid="stApp"][data-test-script-state="notRunning"]'
RESULTS = ROOT / "bench" / "results"
#: JavaScript for a page script: ``deep(root, selector)``, a querySelector that looks into shadow roots too
#: (a components-v2 element draws its canvas in one); a ``const`` declaration, two-space indented
DEEP_JS = """  const deep = (root, sel) => {  // querySelector that looks into shadow roots too
    if (!root) return null;
    const hit = root.querySelector(sel);
    if (hit) return hit;
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) { const h = deep(el.shadowRoot, sel); if (h) return h; }
    }
    return null;
  };
"""
#: the 1-minute load average when this benchmark process started (its own load is not in it)
START_LOAD = round(os.getloadavg()[0], 2)
sys.path.insert(0, str(ROOT))

from serve import headless_command  # noqa: E402  (the repository root is on the path from here)


def free_port() -> int:
    """A TCP port free on this machine now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(port: int, script: str = "app.py") -> list[str]:
    """The command that serves ``script`` headless on ``port``: the app as ``make run`` starts it
    (``serve.py``, its libraries and MNIST loaded before the server answers), any other script with
    ``streamlit run`` and the same options."""
    command = headless_command(port)
    if script != "app.py":
        command[1:2] = ["-m", "streamlit", "run", script]
    return command


def server_env(runs_dir: Path) -> dict[str, str]:
    """The environment of a benchmark's server: the shipped models only (no extra model folders) and the
    training runs in ``runs_dir``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AEVB_RUNS_DIR": str(runs_dir)}
    env.pop("AEVB_MODEL_DIRS", None)
    return env


def healthy(url: str, proc: subprocess.Popen) -> bool:
    """Whether the server at ``url`` answers /_stcore/health; raises RuntimeError when ``proc`` has exited."""
    if proc.poll() is not None:
        raise RuntimeError(f"the server exited with code {proc.returncode}")
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def start_server(
    log_path: Path,
    runs_dir: Path,
    script: str = "app.py",
    timeout_s: float = 120,
    extra_env: dict[str, str] | None = None,
):
    """Start a server of ``script`` (output to ``log_path``; ``extra_env`` added to its environment) and
    wait until it is healthy; (process, URL).

    Raises:
        RuntimeError: it exited, or did not answer within ``timeout_s``.
    """
    port = free_port()
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            server_command(port, script),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**server_env(runs_dir), **(extra_env or {})},
        )
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + timeout_s
    while not healthy(url, proc):
        if time.monotonic() > deadline:
            proc.terminate()
            raise RuntimeError(f"the server did not answer within {timeout_s:.0f} s; see {log_path}")
        time.sleep(0.1)
    return proc, url


def stop_server(proc: subprocess.Popen, timeout_s: float = 15) -> None:
    """End a server process: SIGTERM, and SIGKILL when it has not exited within ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def machine() -> dict:
    """CPU model, cores, load average, torch version and device, date (UTC)."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from explorer_core.device import device_info

    info = device_info()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1min": START_LOAD,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "device": info.name,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def time_ms(fn: Callable[[], object], repeat: int, warmup: int = 5) -> np.ndarray:
    """Wall-clock milliseconds of ``repeat`` calls of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = np.empty(repeat)
    for i in range(repeat):
        start = time.perf_counter()
        fn()
        times[i] = (time.perf_counter() - start) * 1e3
    return times


def summary(ms: np.ndarray) -> dict:
    """p50, p95, mean and count of a sample of milliseconds."""
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "n": len(ms),
    }


def write_result(name: str, data: dict) -> Path:
    """Write ``bench/results/<name>.json`` with the machine facts added."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path
