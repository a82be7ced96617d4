"""The top of every model page: load the picked model through the page's cache, say clearly why it cannot
be used, and show its stored test-set metrics in one row.

Every page passes its own cached loader (an ``st.cache_resource`` function of (json path, stamp, device)),
so each family keeps its cache, spinner text and size; what happens on failure is the same everywhere: one
``st.error`` that names the model and the reason, and the rest of the app keeps working.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st

from explorer_core.artifacts import ArtifactError
from explorer_core.data import MNISTUnavailable
from explorer_core.device import DeviceError, pick_device
from views._models import model_stamp
from views.components.lecture import lecture_mode

T = TypeVar("T")


def load_or_explain(
    meta: dict[str, Any], load: Callable[[str, str, str], T], mnist_needed_for: str | None = None
) -> tuple[T, str] | None:
    """``load(json path, stamp, device)`` for the model described by ``meta`` and its cache key
    (``"<json path>:<stamp>"``); on failure an ``st.error`` that says why, and ``None``.

    Args:
        meta: the model's description (``path``, ``name``), as :func:`views._models.model_picker` returns it.
        load: the page's cached loader.
        mnist_needed_for: what the page needs the MNIST test set for (said when it is missing); ``None``
            when the loader does not read MNIST.
    """
    name = meta.get("name", Path(str(meta.get("path", "?"))).stem)
    try:
        stamp = model_stamp(meta["path"])
        return load(meta["path"], stamp, str(pick_device())), f"{meta['path']}:{stamp}"
    except ArtifactError as err:
        st.error(
            f"**Model {name} cannot be used.** {err}\n\nPick another model in the sidebar; the rest of the "
            "app is not affected.",
            icon=":material/block:",
        )
    except MNISTUnavailable as err:
        need = f" {mnist_needed_for}" if mnist_needed_for else ""
        st.error(f"**The MNIST test set is needed{need}.** {err}", icon=":material/block:")
    except (DeviceError, OSError, ValueError) as err:
        st.error(f"**Model {name} cannot be used.** {err}", icon=":material/block:")
    return None


def number(value: Any, fmt: str = "{}") -> str:
    """``value`` shown with ``fmt`` when it is a number (not a bool); ``"–"`` when missing or damaged."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return fmt.format(value)
    return "–"


@dataclass(frozen=True)
class Metric:
    """One figure of the metrics row: ``value`` shown with ``fmt`` (``"–"`` when missing or not a number);
    ``text`` shows a ready-made string instead."""

    label: str
    value: Any = None
    fmt: str = "{}"
    help: str | None = None
    text: str | None = None

    def shown(self) -> str:
        """The text of the figure."""
        return self.text if self.text is not None else number(self.value, self.fmt)


def metrics_row(metrics: Sequence[Metric]) -> None:
    """The model's stored figures (test-set metrics, sizes) in one row of ``st.metric``; in lecture mode
    folded into a closed expander, so the live picture comes first."""
    where = st.expander("The model's test-set figures") if lecture_mode() else st.container()
    with where:
        for col, metric in zip(st.columns(len(metrics)), metrics, strict=True):
            col.metric(metric.label, metric.shown(), help=metric.help)
