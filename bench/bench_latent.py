"""VAE/CVAE pages: server time of one latent change (decode + map figure + its serialisation), p50/p95.

For every pretrained VAE and CVAE: 300 random moves of z on the map plane, each timed from the new (u, v) to a
serialised figure: the decoded image (for the CVAE, also the same z under all ten labels), and the latent map
with its moving marker, the chosen image's q(z|x) ellipses and samples, rebuilt as the page does.
"""

import time

import numpy as np
import plotly.io
import plotly.tools
from common import summary, write_result

from explorer_core.artifacts import PRETRAINED_DIR, list_models
from explorer_core.device import limit_cpu_threads
from explorer_core.explore.latent import (
    click_grid,
    decode_images,
    decode_under_labels,
    display_subset,
    load_bundle,
    reparameterise,
    slider_ranges,
    view_region,
)
from explorer_core.figures.common import Q_COLOUR, map_ellipse
from explorer_core.figures.latent import latent_map_figure

REPEAT = 300


def bench_model(json_path: str) -> dict:
    start = time.perf_counter()
    bundle = load_bundle(json_path)
    load_s = time.perf_counter() - start
    lm, model = bundle.latent_map, bundle.model
    label = 3 if bundle.conditional else None
    rep = reparameterise(model, bundle.x[0], label, 6)
    q_mean, q_cov = lm.project_gaussian(rep.mu, rep.sigma)
    region = view_region(slider_ranges(lm), None, 1)
    idx = display_subset(lm.labels, 3000)
    grid = click_grid(region, 40)
    rng = np.random.default_rng(0)
    parts = {"decode": [], "figure": [], "serialise": [], "total": []}
    for i in range(REPEAT + 5):
        uv = rng.uniform(-1, 1, 2).astype(np.float32)
        t0 = time.perf_counter()
        z = lm.plane_to_z(uv)
        decode_images(model, z, label, "lambda")
        if bundle.conditional:
            decode_under_labels(model, z, "lambda")
        t1 = time.perf_counter()
        fig = latent_map_figure(
            lm.coords[idx],
            lm.labels[idx],
            idx,
            region=region,
            marker=uv,
            grid=grid,
            ellipses=[map_ellipse(q_mean, q_cov, "q", Q_COLOUR)],
            samples=lm.z_to_plane(rep.z),
            highlight=lm.z_to_plane(rep.mu),
        )
        t2 = time.perf_counter()
        plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, True), validate=False)
        t3 = time.perf_counter()
        if i >= 5:
            for key, value in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                parts[key].append(value * 1e3)
    return {
        "latent_dim": lm.latent_dim,
        "first_load_s": round(load_s, 2),
        **{key: summary(np.array(values)) for key, values in parts.items()},
    }


def main() -> None:
    limit_cpu_threads(1)  # as the pages do
    rows = {}
    for meta in list_models(PRETRAINED_DIR):
        if meta.get("family") in ("vae", "cvae"):
            print(f"{meta['name']} ...", flush=True)
            rows[meta["name"]] = {"family": meta["family"], **bench_model(meta["path"])}
    write_result("latent", {"what": __doc__.strip(), "repeat": REPEAT, "models": rows})


if __name__ == "__main__":
    main()
