"""Writing a file so that a reader never sees it half-written: write a temporary file beside it, then rename
it into place (``os.replace``, atomic on POSIX and Windows within one folder). The one implementation the core
uses for model files, run folders, checkpoints, caches and markers.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def replace_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` with a temporary path beside ``path`` (same suffix, unique per process and
    thread), then rename it to ``path``. Returns ``path``.

    Raises:
        OSError: the folder is not writable, or ``write`` failed (the temporary file is removed).
        Exception: whatever ``write`` raises (the temporary file is removed).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{threading.get_ident()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically. Raises OSError."""
    return replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Mapping[str, Any] | list, indent: int | None = 1) -> Path:
    """Write ``data`` as JSON (and a final newline) to ``path`` atomically.

    Raises:
        OSError: not writable.
        TypeError, ValueError: ``data`` is not JSON-serialisable (nothing is written).
    """
    text = json.dumps(data, indent=indent) + "\n"  # serialise first: a failure leaves no file behind
    return write_text(path, text)


def save_tensors(
    tensors: Mapping[str, Any], path: str | Path, metadata: Mapping[str, str] | None = None
) -> Path:
    """Write ``tensors`` (name -> torch.Tensor, any device) as a safetensors file at ``path`` atomically.

    Raises:
        OSError: not writable.
        ValueError: a tensor safetensors cannot store.
    """
    from safetensors.torch import save_file

    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return replace_atomically(
        path, lambda tmp: save_file(contiguous, str(tmp), metadata=dict(metadata) if metadata else None)
    )
