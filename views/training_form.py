"""What the Training page's form offers for a model family, with its labels and widget keys: its entries in
the family list (:class:`TrainingChoice`, one per variant of the family's runs) and its own number boxes
(:class:`NumberBox`). Each family's are in its entry of ``views/pages.py``; the core's record
(:mod:`explorer_core.families`) knows the recipes, not the form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from explorer_core.training.recipes import TrainConfig


@dataclass(frozen=True)
class TrainingChoice:
    """One entry of the Training page's family list (the GMVAE has one per estimator).

    Attributes:
        key: the entry's id (widget keys use it), e.g. ``"gmvae-gumbel"``.
        label: what the list shows, e.g. ``"GMVAE (Gumbel)"``.
        run_slug: the variant of the family it trains
            (:meth:`explorer_core.families.ModelFamily.variant`), which fixes some recipe fields and names
            its runs.
    """

    key: str
    label: str
    run_slug: str


@dataclass(frozen=True)
class NumberBox:
    """A family's own hyperparameter on the Training page's form: a field of its recipe class and its number
    box.

    Attributes:
        name: the field of the family's recipe class.
        label: the box's label.
        key: the widget key's prefix (``<key>_<choice>_<preset>``).
        step: the box's step; a float step makes a float box, an int step an int box.
        only_with: the box is shown only when the recipe has these values (e.g. ``estimator="gumbel"``).
        fallback: the field whose value the box shows while this one is None.
    """

    name: str
    label: str
    key: str
    step: float | int
    only_with: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    fallback: str | None = None

    def shown_for(self, config: TrainConfig) -> bool:
        """Whether the box belongs on the form of ``config``."""
        return all(getattr(config, name) == value for name, value in self.only_with.items())

    def value_for(self, config: TrainConfig) -> float | int:
        """The box's starting value: the field of ``config`` (or its fallback's), a float for a float step."""
        value = getattr(config, self.name)
        if value is None and self.fallback is not None:
            value = getattr(config, self.fallback)
        return float(value) if isinstance(self.step, float) else value


_GUMBEL = MappingProxyType({"estimator": "gumbel"})
#: the VAE's and the CVAE's own box
LATENT_FORM = (NumberBox("dropout", "Dropout", "tr_drop", 0.05),)
#: the GMVAE's own boxes (the temperatures with the Gumbel estimator only)
GMVAE_FORM = (
    NumberBox("n_clusters", "Clusters C", "tr_clusters", 1),
    NumberBox("temperature", "Temperature (start)", "tr_temp", 0.1, _GUMBEL),
    NumberBox("temperature_final", "Temperature (end)", "tr_temp_end", 0.1, _GUMBEL, fallback="temperature"),
)
#: the VRNN's own boxes
VRNN_FORM = (
    NumberBox("rnn_hidden", "LSTM units", "tr_rnn", 1),
    NumberBox("rnn_layers", "LSTM layers", "tr_layers", 1),
)
