"""Who may change things: the operator's passphrase in class mode (no Streamlit here).

``make run`` serves on localhost only: whoever can open the page is the person at the machine, and may start,
cancel, resume and delete training runs. ``make serve`` opens the app to a class (``AEVB_CLASS_MODE=1``):
then everyone can explore every page and model, but changing things needs the operator's passphrase, taken
from the environment variable ``AEVB_OPERATOR_PASSPHRASE`` (never written to a file or a log). The
comparison is constant-time (``hmac.compare_digest`` of the two SHA-256 digests, so the length is not
revealed either). Without a passphrase set, class mode is read-only for everyone.
"""

from __future__ import annotations

import hashlib
import hmac
import os

ENV_CLASS_MODE = "AEVB_CLASS_MODE"
ENV_PASSPHRASE = "AEVB_OPERATOR_PASSPHRASE"
ENV_SESSION_LIMIT = "AEVB_SESSION_RUN_LIMIT"
#: queued or running runs one browser session may have started at once
DEFAULT_SESSION_RUN_LIMIT = 2


def class_mode() -> bool:
    """Whether the app is served to others (``AEVB_CLASS_MODE`` is ``1``, ``true`` or ``yes``)."""
    return os.environ.get(ENV_CLASS_MODE, "").strip().lower() in ("1", "true", "yes", "on")


def passphrase_configured() -> bool:
    """Whether an operator passphrase is set (an empty one counts as none)."""
    return bool(os.environ.get(ENV_PASSPHRASE, ""))


def check_passphrase(given: str | None) -> bool:
    """True when ``given`` is the operator's passphrase (constant-time; False when none is configured)."""
    expected = os.environ.get(ENV_PASSPHRASE, "")
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(
        hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest(),
        hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest(),
    )


def may_change(unlocked: bool) -> bool:
    """Whether a session may start, cancel, resume or delete runs: always outside class mode; in class mode
    only once it gave the passphrase (``unlocked``)."""
    return (not class_mode()) or bool(unlocked)


def session_run_limit() -> int:
    """Queued or running runs a session may have started at once (``AEVB_SESSION_RUN_LIMIT``, default 2)."""
    try:
        value = int(os.environ.get(ENV_SESSION_LIMIT, DEFAULT_SESSION_RUN_LIMIT))
    except ValueError:
        return DEFAULT_SESSION_RUN_LIMIT
    return max(1, min(value, 100))
