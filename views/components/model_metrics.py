"""The metrics row of every model page: a model's stored test-set figures, those its family's entry in
``views/pages.py`` names (:mod:`views.components.metric_figures`), read from its typed description
(:class:`explorer_core.artifacts.ModelDescription`).

The pages call :func:`metrics_row`; :func:`views.components.model_panel.metrics_row` draws it.
"""

from __future__ import annotations

from explorer_core.artifacts import ModelDescription
from views.components import model_panel
from views.components.model_panel import Metric
from views.pages import PAGES


def row_metrics(d: ModelDescription) -> list[Metric]:
    """The figures of ``d``'s family (its page's ``family.metrics`` in ``views/pages.py``) for the model it
    describes.

    Raises:
        KeyError: a family without a page in ``views/pages.py``.
    """
    return [figure.metric(d) for figure in PAGES[d.family].family.metrics]


def metrics_row(d: ModelDescription) -> None:
    """The model's stored test-set figures in one row (folded away in lecture mode)."""
    model_panel.metrics_row(row_metrics(d))
