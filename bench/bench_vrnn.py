"""VRNN page: server time of one generated row for a grid of 16 digits, p50/p95.

For every pretrained VRNN (and any model JSON given on the command line): 16 sequences generated row by row,
restarted after row 28, 300 rows timed. Each is timed as the page's fragment does it: one generation_step
for the 16 sequences, the grid image (rows so far, grey future rows, the current row marked) encoded as PNG,
and the prior-mean trajectory figure rebuilt and serialised as st.plotly_chart does. Wall-clock times, plus
the CPU time of the whole update (what it costs when the machine is shared).
"""

import argparse
import time
from pathlib import Path

import numpy as np
import plotly.io
import plotly.tools
from common import summary, write_result

from explorer_core.artifacts import PRETRAINED_DIR, list_models
from explorer_core.device import limit_cpu_threads
from explorer_core.explore.sequences import (
    advance,
    grid_shape,
    load_vrnn,
    sequence_grid,
    start_generation,
    state_rows,
)
from explorer_core.figures.vrnn import prior_trajectory_figure
from explorer_core.imaging import png_bytes

REPEAT = 300
N_DIGITS = 16
WARMUP = 10
BUDGET_MS = 50.0


def bench_model(json_path: str) -> dict:
    start = time.perf_counter()
    loaded = load_vrnn(json_path)
    load_s = time.perf_counter() - start
    model = loaded.model
    T = model.config.n_rows
    n_cols = grid_shape(N_DIGITS)[1]
    gen = start_generation(model, N_DIGITS, seed=0)
    parts = {"step": [], "grid_image": [], "figure": [], "serialise": [], "total": [], "total_cpu": []}
    for i in range(REPEAT + WARMUP):
        if gen.rows >= T:
            gen = start_generation(model, N_DIGITS, seed=i)
        c0, t0 = time.thread_time(), time.perf_counter()
        advance(model, gen, 1)
        t1 = time.perf_counter()
        image = sequence_grid(
            state_rows(gen.state, "means"), T, n_cols, current=gen.rows - 1, factor=1, pad=2
        )
        png_bytes(image)
        t2 = time.perf_counter()
        fig = prior_trajectory_figure(gen.state.prior_means.float().cpu().numpy(), T, "time")
        t3 = time.perf_counter()
        plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, True), validate=False)
        t4, c4 = time.perf_counter(), time.thread_time()
        if i >= WARMUP:
            for key, value in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, c4 - c0), strict=True):
                parts[key].append(value * 1e3)
    config = model.config
    return {
        "config": f"LSTM {config.rnn_layers}×{config.rnn_hidden}, MLP {list(config.hidden)}, "
        f"L = {config.latent_dim}",
        "test_elbo": (loaded.meta.get("test_metrics") or {}).get("elbo"),
        "test_kl": (loaded.meta.get("test_metrics") or {}).get("kl"),
        "first_load_s": round(load_s, 2),
        **{key: summary(np.array(values)) for key, values in parts.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="extra model JSON files (besides pretrained/ VRNNs)")
    args = parser.parse_args()
    limit_cpu_threads(1)  # as the page does
    metas = [m for m in list_models(PRETRAINED_DIR) if m.get("family") == "vrnn"]
    for path in args.models:
        metas.append({"name": Path(path).stem, "path": str(Path(path).resolve())})
    rows = {}
    for meta in metas:
        print(f"{meta['name']} ...", flush=True)
        rows[meta["name"]] = bench_model(meta["path"])
        print(f"  total p50 {rows[meta['name']]['total']['p50_ms']} ms", flush=True)
    if not rows:
        print("no VRNN model found in pretrained/ (pass a model JSON to benchmark one)")
    write_result(
        "vrnn",
        {
            "what": __doc__.strip(),
            "repeat": REPEAT,
            "digits": N_DIGITS,
            "budget_ms": BUDGET_MS,
            "models": rows,
        },
    )


if __name__ == "__main__":
    main()
