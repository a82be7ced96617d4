"""The step controls of the pages that run the AEVB phases one at a time (factor analysis, Watch it learn):
the E-step × N, M-step × N and Joint × N buttons, and the choice of what ▶ Play runs when nothing is queued.

An approximate E-step updates the inference parameters φ only, an approximate M-step the generative
parameters θ only, a joint step both (plain AEVB; tutorial section 4). The page's callback queues the steps
(``explorer_core.inference.schedule``) and starts its player.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from views.components import lecture

#: what ▶ Play runs when nothing is queued: phase -> the radio's label
PHASE_LABELS = {"joint": "joint (θ and φ)", "e_step": "E-step (φ only)", "m_step": "M-step (θ only)"}

#: the step buttons: phase, label, its short form (lecture mode above 100 %), widget key suffix
#: (``<prefix>_<suffix>``), help
STEP_BUTTONS = (
    ("e_step", "E-step × N", "E×N", "e", "approximate E-step: update φ only"),
    ("m_step", "M-step × N", "M×N", "m", "approximate M-step: update θ only"),
    ("joint", "Joint × N", "Joint×N", "joint", "plain AEVB: update θ and φ together"),
)


def step_buttons(columns: Sequence[Any], prefix: str, on_click: Callable[[str], None]) -> None:
    """The three step buttons, one in each of ``columns`` [3]; a click calls ``on_click(phase)`` (an
    ``on_click`` callback, run before the next run draws anything)."""
    for col, (phase, full, short, suffix, help_) in zip(columns, STEP_BUTTONS, strict=True):
        col.button(
            lecture.label(full, short), key=f"{prefix}_{suffix}", help=help_, on_click=on_click, args=(phase,)
        )


def autoplay_radio(prefix: str) -> None:
    """The choice of the phase ▶ Play runs while nothing is queued (a key of :data:`PHASE_LABELS`), kept in
    ``st.session_state[f"{prefix}_autoplay_phase"]``."""
    st.radio(
        "▶ Play runs, when nothing is queued:",
        list(PHASE_LABELS),
        format_func=PHASE_LABELS.get,
        horizontal=True,
        key=f"{prefix}_autoplay_phase",
    )
