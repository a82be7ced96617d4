"""**Publish for students** on each model page (issue 35): the page's model as a static site in a zip, which
runs in any browser with no server (``explorer_core.publish``; README, "Share with a class").

The zip is built only when the button is clicked (Streamlit calls the download's data function then, in a
thread of its own), as this session's heavy one-off work through the compute budget
(:func:`views.components.compute_slot.one_off_runner`). In class mode only the operator sees the button
(:func:`views.components.page_state.operator`); outside class mode everyone is the operator.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import streamlit as st

from explorer_core.publish import PublishError, build_site, site_zip
from views.components.compute_slot import one_off_runner
from views.components.page_state import operator

LOG = logging.getLogger(__name__)

#: what a visitor reads in the zip when the site could not be built (the server's log has the reason)
FAILED_TEXT = (
    "The site could not be built: the model or the MNIST test set could not be read on the server.\n"
    "Ask the person running AEVB Explorer to look at its log, or run: python -m explorer_core publish MODEL "
    "--out DIR\n"
)


def site_zip_of(json_path: str | Path, folder: str) -> bytes:
    """The published site of the model described by ``json_path``, zipped under ``folder/``; when it cannot
    be built, a zip holding only ``folder/README.txt`` that says so (no server path; the reason goes to the
    server's log)."""
    try:
        return site_zip(build_site([json_path]), folder)
    except PublishError as err:
        LOG.warning("publish for students failed: %s", err)
        return site_zip({"README.txt": FAILED_TEXT.encode()}, folder)


def publish_button(description: Any) -> None:
    """The button for the page's model (``description``: its
    :class:`explorer_core.artifacts.ModelDescription`, or ``None`` when no model is open: then nothing is
    shown). Shown to the operator only."""
    if description is None or not getattr(description, "path", None) or not operator():
        return
    name = str(description.name)
    folder = f"{name}-site"
    path = str(description.path)
    run = one_off_runner()
    st.download_button(
        "Publish for students",
        data=lambda: run(lambda: site_zip_of(path, folder)),
        file_name=f"{folder}.zip",
        mime="application/zip",
        icon=":material/public:",
        on_click="ignore",
        key=f"publish_site_{name}",
        help="This model as a web page that runs in any browser with no server: unzip it and open "
        "index.html, or put the folder on a course page. Built when clicked (a few seconds).",
    )
