"""Where computation runs: the torch device and the CPU thread policy.

The order is cuda, then mps, then cpu. The environment variable ``AEVB_DEVICE`` overrides the choice
(for example ``AEVB_DEVICE=cpu`` on a GPU server, or ``AEVB_DEVICE=cuda:1``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

ENV_VAR = "AEVB_DEVICE"


class DeviceError(RuntimeError):
    """The device named in ``AEVB_DEVICE`` does not exist or is not usable on this machine."""


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(override: str | None = None) -> torch.device:
    """Return the device computation should run on.

    Args:
        override: a torch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``); when ``None``
            the environment variable ``AEVB_DEVICE`` is read, and when that is unset or empty the best
            available device is chosen (cuda > mps > cpu).

    Raises:
        DeviceError: the requested device string is malformed or names a device this machine lacks.
    """
    requested = override if override is not None else os.environ.get(ENV_VAR, "").strip()
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as err:
            raise DeviceError(f"{ENV_VAR}={requested!r} is not a torch device string: {err}") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise DeviceError(f"{ENV_VAR}={requested!r}, but CUDA is not available on this machine.")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"{ENV_VAR}={requested!r}, but only {torch.cuda.device_count()} CUDA device(s) exist."
            )
        if device.type == "mps" and not _mps_available():
            raise DeviceError(f"{ENV_VAR}={requested!r}, but MPS is not available on this machine.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass(frozen=True)
class DeviceInfo:
    """What the sidebar shows: the device in use, its human name, and the torch version."""

    device: torch.device
    name: str
    torch_version: str
    cpu_threads: int

    def label(self) -> str:
        """One line for display, e.g. ``"cpu (2 threads) · torch 2.13.0+cpu"``."""
        where = self.name if self.device.type != "cpu" else f"cpu ({self.cpu_threads} threads)"
        return f"{where} · torch {self.torch_version}"


@lru_cache(maxsize=1)
def device_info() -> DeviceInfo:
    """Describe the chosen device once per process (see :func:`pick_device`).

    Raises:
        DeviceError: as :func:`pick_device`.
    """
    device = pick_device()
    if device.type == "cuda":
        name = f"{device} ({torch.cuda.get_device_name(device)})"
    else:
        name = str(device)
    return DeviceInfo(device, name, torch.__version__, torch.get_num_threads())


#: torch's intra-op CPU threads in a page's run (app.py sets it before every page): each page's computation is
#: small (an FA step, a few decodes, a generated row, a Watch step of a small VAE), and on these models one
#: thread beats two, because the per-op hand-off costs more than the arithmetic (on a busy 2-core CPU two
#: threads made ten latent decodes 30 times slower); on a 2-core server a Watch
#: trainer thread and the page's frames then run side by side
PAGE_THREADS = 1


def limit_cpu_threads(n: int) -> None:
    """Cap torch's intra-op CPU threads, so a background job leaves cores to the UI.

    Small models (factor analysis, per-interaction decodes) run faster on one thread than on several,
    because the per-op thread hand-off costs more than the arithmetic.
    """
    torch.set_num_threads(max(1, int(n)))


def available_memory(device: str = "cpu") -> int | None:
    """Free bytes on ``device``: ``MemAvailable`` of /proc/meminfo for the CPU (else None), the CUDA
    driver's free memory for a GPU, None where unknown (MPS)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return int(free)
    if dev.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
    return None
