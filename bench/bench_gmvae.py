"""GMVAE page: server time of sampling N = 100 images for a picked cluster, p50/p95.

For every pretrained GMVAE (or the model JSONs named on the command line): 300 random (cluster, seed) picks,
each timed from the pick to the PNG bytes the page sends (z ~ p(z|y) with spread 1, the decoder's Bernoulli
means, a 10 x 10 tile, PNG encoding at 1 px per pixel, which the browser enlarges), as `views/gmvae.py`
does; and, for reference, the cluster chart (3,000 test encodings and the cluster means) built and
serialised as the page rebuilds it on every rerun of its panel.
`--architecture` adds an untrained GMVAE of the tutorial's size (C = 10, L = 64, MLPs 512-512), whose timings
are those of a trained one (the cost does not depend on the weights' values).

Usage: `python bench_gmvae.py [--architecture] [model.json ...]`
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import plotly.io
import plotly.tools
import torch
from common import summary, write_result

from explorer_core.artifacts import PRETRAINED_DIR, list_models, save_model
from explorer_core.device import limit_cpu_threads
from explorer_core.explore.clusters import cluster_name, cluster_sample_png, load_cluster_bundle
from explorer_core.explore.latent import display_subset
from explorer_core.figures.gmvae import cluster_map_figure
from explorer_core.models.gmvae import GMVAE, GMVAEConfig

REPEAT = 300
N_SAMPLES = 100


def bench_model(json_path: str) -> dict:
    start = time.perf_counter()
    bundle = load_cluster_bundle(json_path)
    load_s = time.perf_counter() - start
    model, c = bundle.model, bundle.n_clusters
    names = [cluster_name(k, bundle.matched_label) for k in range(c)]
    idx = display_subset(bundle.labels, 3000)
    rng = np.random.default_rng(0)
    parts = {"sample_png": [], "chart": []}
    for i in range(REPEAT + 5):
        cluster, seed = int(rng.integers(c)), int(rng.integers(2**31))
        t0 = time.perf_counter()
        cluster_sample_png(model, cluster, N_SAMPLES, seed, 1.0, n_cols=10, factor=1)
        t1 = time.perf_counter()
        fig = cluster_map_figure(
            bundle.coords[idx],
            bundle.labels[idx],
            idx,
            bundle.prior_coords,
            names,
            bundle.matched_label,
            bundle.usage,
            picked=cluster,
            highlight=bundle.coords[0],
        )
        plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, True), validate=False)
        t2 = time.perf_counter()
        if i >= 5:
            parts["sample_png"].append((t1 - t0) * 1e3)
            parts["chart"].append((t2 - t1) * 1e3)
    config = model.config
    return {
        "n_clusters": c,
        "latent_dim": config.latent_dim,
        "hidden": list(config.hidden),
        "estimator": config.estimator,
        "first_load_s": round(load_s, 2),
        **{key: summary(np.array(values)) for key, values in parts.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="model JSONs (default: every GMVAE in pretrained/)")
    parser.add_argument("--architecture", action="store_true", help="add an untrained tutorial-size GMVAE")
    args = parser.parse_args()
    limit_cpu_threads(1)  # as the page does
    if args.models:
        targets = [(Path(p).stem, p) for p in args.models]
    else:
        targets = [(m["name"], m["path"]) for m in list_models(PRETRAINED_DIR, "gmvae")]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.architecture:
            torch.manual_seed(0)
            path = save_model(GMVAE(GMVAEConfig()), "gmvae", Path(tmp), "untrained-tutorial-size", {})
            targets.append(("untrained-tutorial-size", str(path)))
        for name, path in targets:
            print(f"{name} ...", flush=True)
            rows[name] = bench_model(path)
    write_result(
        "gmvae",
        {"what": __doc__.split("Usage:")[0].strip(), "repeat": REPEAT, "n": N_SAMPLES, "models": rows},
    )


if __name__ == "__main__":
    main()
