"""PNG exports for a slide (issue 33, "PNG exports"): every plotly chart goes through one helper,
``views.components.charts.plotly_chart``, whose config makes the modebar's "Download plot as a PNG" save at
3x the shown size under a file name that says what it is, and whose font is a system font (the PNG is painted
without the page's web fonts: laid out in Source Sans and painted in DejaVu Sans, tick labels, titles and
legends were clipped)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from views.components.charts import CHART_FONT, EXPORT_SCALE, plotly_config

ROOT = Path(__file__).resolve().parents[2]
VIEWS = ROOT / "views"
HELPER = VIEWS / "components" / "charts.py"


def test_the_config_exports_png_at_3x_with_a_telling_name():
    config = plotly_config("gmvae", "confusion", model="gmvae-marginal")
    assert EXPORT_SCALE >= 2
    assert config["toImageButtonOptions"] == {
        "format": "png",
        "filename": "aevb-gmvae-confusion-gmvae-marginal",  # plotly adds ".png"
        "scale": EXPORT_SCALE,
    }
    assert config["displaylogo"] is False
    more = plotly_config("vae", "tsne", modeBarButtonsToRemove=["lasso2d"], displayModeBar=False)
    assert more["modeBarButtonsToRemove"] == ["lasso2d"] and more["displayModeBar"] is False
    assert more["toImageButtonOptions"]["scale"] == EXPORT_SCALE
    assert "Source Sans" not in CHART_FONT and CHART_FONT.endswith("sans-serif")


def test_every_plotly_chart_of_the_views_goes_through_the_helper():
    """A source scan: ``st.plotly_chart(`` is called in the helper only, and the pages call the helper."""
    direct, callers = [], []
    for path in sorted(VIEWS.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        code = re.sub(r'"""[\s\S]*?"""', "", text)  # docstrings may name it
        if path != HELPER and re.search(r"\bst\.plotly_chart\(|\.plotly_chart\(", code):
            direct.append(str(path.relative_to(ROOT)))
        if path != HELPER and re.search(r"(?<![.\w])plotly_chart\(", code):
            assert "from views.components.charts import plotly_chart" in text, path
            callers.append(path.name)
    assert not direct, f"st.plotly_chart called without the shared config in {direct}"
    assert {"gmvae.py", "vrnn.py", "training.py", "_latent_common.py"} <= set(callers)


def _one_chart() -> None:
    import plotly.graph_objects as go

    from views.components.charts import plotly_chart

    figure = go.Figure(go.Scatter(x=[0, 4000], y=[0.001, 1]), layout={"title": {"text": "t"}})
    plotly_chart(figure, "fa", "elbo-curves", model="fa-toy", key="chart", config={"displayModeBar": True})


def test_the_chart_carries_the_config_and_the_font():
    """What the browser gets: the chart's config (the PNG options) and the figure's fonts."""
    at = AppTest.from_function(_one_chart).run(timeout=30)
    assert not at.exception
    (chart,) = at.get("plotly_chart")
    config = json.loads(chart.proto.config)
    assert config["toImageButtonOptions"]["scale"] == EXPORT_SCALE
    assert config["toImageButtonOptions"]["filename"] == "aevb-fa-elbo-curves-fa-toy"
    assert config["displayModeBar"] is True and config["displaylogo"] is False
    layout = json.loads(chart.proto.spec)["layout"]
    assert layout["font"]["family"] == CHART_FONT and layout["title"]["font"]["family"] == CHART_FONT


def _show_shared(figure) -> None:
    from views.components.charts import plotly_chart

    plotly_chart(figure, "fa", "curves", key="c")


def test_a_shared_figure_is_never_changed_by_showing_it():
    """A figure cached for every session (st.cache_resource) must not be mutated by a page showing it: the
    font goes on a copy when a figure lacks it; the figure builders set it themselves (with_chart_font)."""
    import numpy as np
    import plotly.graph_objects as go

    from explorer_core.figures.latent import latent_map_figure

    shared = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]))
    before = shared.to_json()
    at = AppTest.from_function(_show_shared, args=(shared,)).run(timeout=30)
    assert not at.exception
    assert shared.to_json() == before
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["font"]["family"] == CHART_FONT
    built = latent_map_figure(np.zeros((3, 2)), np.arange(3))
    assert built.layout.font.family == CHART_FONT
