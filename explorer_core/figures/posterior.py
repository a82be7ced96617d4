"""The true posterior beside q(z|x) as a live-chart spec (``views/components/live_chart``): the posterior's
highest-density contours (green), q_phi(z|x)'s 1σ and 2σ ellipses (red, dashed) and, while the per-image
E-step runs, q*(z|x)'s (orange). Plain numpy in, a JSON-ready dict out; no Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from explorer_core.figures.common import (
    EXACT_COLOUR,
    MODEL_COLOUR,
    Q_COLOUR,
    ellipse_points,
    finite_list,
    latent_plane_chart,
)

#: the colour of the optimal Gaussian q*(z|x)
QSTAR_COLOUR = MODEL_COLOUR


def _line(xy: np.ndarray, colour: str, width: float, dash: Sequence[float] = ()) -> dict:
    return {
        "x": finite_list(xy[:, 0], 4),
        "y": finite_list(xy[:, 1], 4),
        "color": colour,
        "dash": list(dash),
        "width": width,
    }


def posterior_chart(
    contours: Sequence[Sequence[np.ndarray]],
    q_mean: np.ndarray,
    q_cov: np.ndarray,
    qstar: tuple[np.ndarray, np.ndarray] | None = None,
    title: str = "",
    height: int = 380,
) -> dict:
    """The posterior p(z|x) against q_phi(z|x) (and q*), on equal axes that hold everything drawn.

    Args:
        contours: per mass, polylines [n, 2] in z of the posterior's highest-density regions (the first: the
            inner one, drawn thicker).
        q_mean, q_cov: q_phi's mean [2] and covariance [2, 2].
        qstar: q*'s mean [2] and covariance [2, 2], or None.
    """
    lines, extent = [], []
    for i, polylines in enumerate(contours):
        for xy in polylines:
            extent.append(xy)
            lines.append(_line(xy, EXACT_COLOUR, 2.5 if i == 0 else 1.4))
    markers = []
    gaussians = [(q_mean, q_cov, Q_COLOUR, [7, 4])]
    if qstar is not None:
        gaussians.append((qstar[0], qstar[1], QSTAR_COLOUR, []))
    for mean, cov, colour, dash in gaussians:
        for n_sigma in (1, 2):
            xy = ellipse_points(np.asarray(mean), np.asarray(cov), n_sigma, n_points=72)
            extent.append(xy)
            lines.append(_line(xy, colour, 2.5 if n_sigma == 1 else 1.2, dash))
        markers.append({"x": finite_list([mean[0]]), "y": finite_list([mean[1]]), "color": colour, "size": 4})
    legend = [
        {"name": "true posterior p(z|x) (39 %, 86 % of its mass)", "color": EXACT_COLOUR, "width": 2.5},
        {"name": "amortized q(z|x) 1σ, 2σ", "color": Q_COLOUR, "dash": [7, 4], "width": 2.5},
    ]
    if qstar is not None:
        legend.append({"name": "optimal Gaussian q*(z|x)", "color": QSTAR_COLOUR, "width": 2.5})
    return latent_plane_chart(lines, markers, extent, title, height, legend)
