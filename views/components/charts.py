"""Every plotly chart of the app goes through :func:`plotly_chart`: one config, one font, PNGs for a slide.

* **The modebar's "Download plot as a PNG"** saves at :data:`EXPORT_SCALE` times the size the chart is shown
  at (plotly's ``toImageButtonOptions``; at 1x a chart in a column is a 378 x 420 px picture), under a file
  name that says what it is (:func:`explorer_core.export.export_name`), e.g.
  ``aevb-gmvae-confusion-gmvae-marginal.png``.
* **The font**: plotly draws its PNG by painting the chart's SVG as an image, and an image cannot use the
  page's web fonts. Under Streamlit's theme the chart is laid out in the page's "Source Sans" and painted in
  the system's fallback font (DejaVu Sans on Debian: wider), which clipped tick labels, titles and legends in
  the PNG. The charts use a system font stack (``explorer_core.figures.common.CHART_FONT``, set by every
figure builder) instead, so the PNG shows what the page
  shows; the canvas charts (live charts, 3-D scatter) draw in the system's sans-serif too.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from explorer_core.export import export_name
from explorer_core.figures.common import CHART_FONT

#: the modebar's PNG is this many times the size the chart has on the page (2-3x reads on a slide)
EXPORT_SCALE = 3


def plotly_config(page: str, what: str, model: str | None = None, **options: Any) -> dict[str, Any]:
    """The ``config`` of a plotly chart: no plotly logo, and a modebar PNG at :data:`EXPORT_SCALE` times the
    shown size named ``export_name(page, what, "png", model)``; ``options`` add or override plotly config
    keys (``modeBarButtonsToRemove``, ``displayModeBar``...)."""
    stem = export_name(page, what, "png", model=model).removesuffix(".png")  # plotly adds the extension
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": stem, "scale": EXPORT_SCALE},
        **options,
    }


def plotly_chart(
    figure: Any,
    page: str,
    what: str,
    model: str | None = None,
    config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """``st.plotly_chart(figure, **kwargs)`` with :func:`plotly_config` (``page``, ``what``, ``model`` name
    the PNG; ``config`` adds plotly config keys) and the figure's text in :data:`CHART_FONT`. Returns what
    ``st.plotly_chart`` returns (the selection event with ``on_select``)."""
    layout = getattr(figure, "layout", None)
    # the figure builders set the font (explorer_core.figures.common.with_chart_font); a figure without it
    # gets it on a copy: a figure cached with st.cache_resource is shared by every session, never changed
    typeface = None if layout is None else layout.font.family
    if layout is not None and typeface != CHART_FONT:
        figure = type(figure)(figure)
        figure.update_layout(font_family=CHART_FONT, title_font_family=CHART_FONT)
    return st.plotly_chart(figure, config=plotly_config(page, what, model, **(config or {})), **kwargs)
