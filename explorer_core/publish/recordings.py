"""The published site's recorded runs (issue 35): factor analysis and Watch it learn, replayed in the browser.

Training needs torch, which a browser does not have, so these two pages of the site replay a run recorded
here with the app's own code, step by step: :func:`record_fa` runs the factor-analysis page's experiment
(:class:`explorer_core.explore.fa.FAExperiment`, the tutorial's data and its experiment 2,
:data:`explorer_core.explore.fa.PAPER_EM_SCHEDULE`) and :func:`record_watch` the Watch page's
(:class:`explorer_core.explore.watch.WatchExperiment`: a 2-D VAE on a subset of MNIST, the page's E/M schedule
and then joint steps). On the command line they are the pseudo-models :data:`RECORDINGS` (``publish fa watch
vae-cb-l2 ...``); a model file of one of these names is not reachable by its bare name.

Deterministic: the seeds are fixed and torch runs on one thread while recording (:func:`one_thread`), so one
machine gives the same bytes every time. The cost is measured by ``bench/bench_publish.py``.

Payload of ``fa`` (``kind`` ``"fa_replay"``; arrays float32 little-endian base64 unless said)::

    steps                 gradient steps recorded (4,000); every array below has steps + 1 rows (row 0: the
                          initial model, row s: after step s)
    segments              [[phase, first_step, last_step]] maximal runs of one phase, steps 1-based
    elbo, evidence, gap   float64 [steps + 1], nats per test point: the app's K-sample ELBO estimate, the
                          exact evidence log p(x) and the exact gap KL(q(z|x) || p(z|x)) (evaluate_fa)
    params                [steps + 1, 18]: W [3, 2] row-major, sigma [3], V [2, 3] row-major, the Cholesky
                          factor of Sigma (L00, L10, L11): p(x|z) = N(W z, diag sigma^2), q(z|x) = N(V x,
                          L L^T)
    x_test                [n_test, 3] the test points; noise_z [n_test, 2], noise_eps [n_test, 3]: the fixed
                          noise of the model samples, x = W z + sigma * eps (FAExperiment.model_samples)
    ranges                the 3-D axes' fixed ranges (explorer_core.figures.fa.fa_axis_ranges)
    chart                 the app's curves chart of the whole run (explorer_core.figures.fa.fa_curves_chart,
                          every step), with the exact ELBO added
    true_evidence, mle_evidence, settings

Payload of ``watch`` (``kind`` ``"watch_replay"``)::

    frames                evaluations recorded; step int32 [frames], phase [frames]
    elbo, iwae, gap, reconstruction, kl   float64 [frames], nats per validation image (WatchMetrics)
    kl_per_dim            float64 [frames, L]; active_units [frames] (WatchMetrics)
    map                   n (validation images), labels uint8 [n], coords int16 [frames, n, 2] times
                          scale float32 [frames] (the posterior means on the latent plane, L = 2),
                          half float32 [frames] (the app's square map region, -half..half)
    keyframes             step int32 [k] and frame index [k]; manifold uint8 [k, g * g, 784] (E[x|z] on a
                          g x g grid of that frame's region), recon uint8 [k, 8, 784] (reconstructions of the
                          8 images in recon_images uint8 [8, 784])
    charts                the app's bound and terms charts of the whole run (explorer_core.figures.watch)
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer_core.publish.export import b64

#: the pseudo-model names of the recordings on the command line and in the site
FA_NAME = "fa"
WATCH_NAME = "watch"
#: gradient steps per recorded Watch frame (an evaluation): finer while the E/M schedule runs
WATCH_FRAME_STEPS = {"e_step": 25, "m_step": 25, "joint": 50}
#: joint steps after the Watch page's E/M schedule (250 steps each of E, M, E, M)
WATCH_JOINT_STEPS = 3000
#: steps after which the Watch recording keeps its pictures (the manifold, the reconstructions)
WATCH_KEYFRAMES = (0, 250, 500, 750, 1000, 1500, 2000, 2500, 3000, 4000)
#: images in the Watch recording's map (validation images; the issue asks for at least 1,000)
WATCH_MAP_POINTS = 2000
#: validation images of the Watch recording's curves
WATCH_EVAL_POINTS = 200
#: reconstructions kept per keyframe (the page shows 8)
WATCH_RECON = 8


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one CPU thread inside the block (the recording's bytes then do not depend on the cores
    free), the previous count restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _f64(values) -> str:
    return b64(np.asarray(values, dtype=np.float64), "<f8")


def _rounded_chart(spec: dict) -> dict:
    """A chart spec with plain floats (numpy scalars out), for JSON."""
    return json_ready(spec)


def json_ready(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as plain Python numbers and lists, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


# ------------------------------------------------------------------------------------------ factor analysis
def fa_parameters(model) -> np.ndarray:
    """The factor-analysis model's parameters as one float32 row [18]: W [3, 2] row-major, sigma [3], V [2, 3]
    row-major, and the Cholesky factor of Sigma as (L00, L10, L11) (see the module docstring)."""
    with torch.no_grad():
        tril = model.posterior_scale_tril
        row = torch.cat(
            [
                model.W.reshape(-1),
                model.sigma.reshape(-1),
                model.V.reshape(-1),
                torch.stack([tril[0, 0], tril[1, 0], tril[1, 1]]),
            ]
        )
    return row.float().numpy()


def record_fa(progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Record the factor-analysis page's run: the tutorial's data (seed 42, 1,000 + 1,000 points), the page's
    default settings (full-covariance posterior, Adam 1e-2, batch 32, K = 1, seed 0) and the tutorial's
    experiment 2 (E, M, E, M x 1,000 steps), measured after every step as the page measures it.

    Args:
        progress: called with (steps done, steps in all) every 500 steps.

    Returns:
        The payload (see the module docstring), JSON-ready.
    """
    from explorer_core.data import make_fa_dataset
    from explorer_core.explore.fa import PAPER_EM_SCHEDULE, FAExperiment, FATrainingConfig
    from explorer_core.figures.fa import fa_axis_ranges, fa_curves_chart

    with one_thread():
        dataset = make_fa_dataset()
        config = FATrainingConfig()
        ex = FAExperiment(dataset, config)
        params = [fa_parameters(ex.model)]
        ex.enqueue_schedule(PAPER_EM_SCHEDULE)
        total = ex.queued_steps
        while ex.pending:
            if ex.run_pending(1) != 1:
                raise RuntimeError(f"the factor-analysis recording stopped: {ex.error}")
            params.append(fa_parameters(ex.model))
            if progress is not None and ex.steps % 500 == 0:
                progress(ex.steps, total)
        n_test = len(dataset.x_test)
        g = torch.Generator().manual_seed(0)  # FAExperiment.model_samples's noise, in its order
        noise_z = torch.randn(n_test, ex.model.config.latent_dim, generator=g)
        noise_eps = torch.randn(n_test, ex.model.config.data_dim, generator=g)
    h = ex.history
    segments = [list(s) for s in h.phase_segments()]
    x_test = dataset.x_test.numpy()
    chart = fa_curves_chart(
        h.elbo, h.evidence, h.gap, segments, ex.true_evidence, ex.mle_evidence, max_points=len(h)
    )
    exact = np.asarray(h.evidence, dtype=np.float64) - np.asarray(h.gap, dtype=np.float64)
    upper = chart["panels"][0]
    upper["lines"][1]["opacity"] = 0.6  # the noisy K-sample estimate under the exact ELBO
    upper["lines"].append(
        {
            "x": upper["lines"][0]["x"],
            "y": [round(float(v), 5) for v in exact],
            "color": "#8c1c13",
            "width": 1.5,
            "dash": [5, 3],
        }
    )
    exact_entry = {"name": "exact ELBO = evidence − gap", "color": "#8c1c13", "dash": [5, 3], "width": 1.5}
    chart["legend"].insert(2, exact_entry)
    chart["legend"][1]["name"] = f"ELBO (estimate, K = {config.n_elbo_samples})"
    return {
        "kind": "fa_replay",
        "name": FA_NAME,
        "family": "fa",
        "label": "Factor analysis (recording)",
        "latent_dim": int(ex.model.config.latent_dim),
        "steps": int(ex.steps),
        "segments": segments,
        "elbo": _f64(h.elbo),
        "evidence": _f64(h.evidence),
        "gap": _f64(h.gap),
        "params": b64(np.stack(params)),
        "x_test": b64(x_test),
        "noise_z": b64(noise_z),
        "noise_eps": b64(noise_eps),
        "n_test": int(n_test),
        "ranges": json_ready(fa_axis_ranges(x_test)),
        "chart": _rounded_chart(chart),
        "true_evidence": round(float(ex.true_evidence), 6),
        "mle_evidence": round(float(ex.mle_evidence), 6),
        "settings": {
            "data": f"the tutorial's data set: seed {dataset.seed}, {len(dataset.x_train)} train and "
            f"{n_test} test points, drawn from W = [[-0.5, -1], [-1, -1], [2, 0.5]], sigma = (0.4, 0.2, 0.3)",
            "posterior": config.posterior,
            "lr": config.lr,
            "batch_size": config.batch_size,
            "n_elbo_samples": config.n_elbo_samples,
            "seed": config.seed,
            "schedule": [list(s) for s in PAPER_EM_SCHEDULE],
        },
    }


# ------------------------------------------------------------------------------------------- Watch it learn
def watch_config():
    """The Watch recording's :class:`explorer_core.explore.watch.WatchConfig`: the page's defaults (L = 2,
    hidden 256-256, Bernoulli, 10,000 training images, batch 100, Adam 1e-3 for phi and theta, k = 16, seed 0)
    with :data:`WATCH_EVAL_POINTS` curve images and :data:`WATCH_MAP_POINTS` map images."""
    from explorer_core.explore.watch import WatchConfig

    return WatchConfig(latent_dim=2, n_eval=WATCH_EVAL_POINTS, n_map=WATCH_MAP_POINTS, seed=0)


def watch_schedule() -> list[tuple[str, int]]:
    """The Watch recording's phases: the page's E/M schedule, then :data:`WATCH_JOINT_STEPS` joint steps."""
    from explorer_core.explore.watch import EM_SCHEDULE

    return [*EM_SCHEDULE, ("joint", WATCH_JOINT_STEPS)]


def _u8(images: np.ndarray) -> np.ndarray:
    """Images in [0, 1] as uint8 (rounded)."""
    return np.clip(np.rint(np.asarray(images, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def _quantized(coords: np.ndarray) -> tuple[np.ndarray, float]:
    """Coordinates [n, 2] as int16 and the float32 scale that multiplies them back (their largest magnitude
    over 32,767)."""
    top = float(np.max(np.abs(coords))) if coords.size else 0.0
    scale = np.float32(max(top, 1e-12) / 32767.0)
    return np.clip(np.rint(coords / scale), -32767, 32767).astype("<i2"), float(scale)


def record_watch(
    mnist_directory: str | Path | None = None, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Record a Watch it learn run (:func:`watch_config`, :func:`watch_schedule`), evaluated every
    :data:`WATCH_FRAME_STEPS` steps of its phase as the page's frames are: the curves, the map of
    :data:`WATCH_MAP_POINTS` validation images' posterior means, and at :data:`WATCH_KEYFRAMES` the manifold
    (the page's 12 x 12 grid over its map region) and the reconstructions of :data:`WATCH_RECON` images.

    Raises:
        MNISTUnavailable: the MNIST files are missing.
        RuntimeError: the run stopped on a NaN (it does not with these settings).
    """
    from explorer_core.explore.watch import WatchExperiment, load_watch_data
    from explorer_core.figures.watch import bound_chart, terms_chart

    manifold_n = 12  # views/watch.py's MANIFOLD_N
    config = watch_config()
    with one_thread():
        data = load_watch_data(config, mnist_directory)
        data = dataclasses.replace(data, x_test=None)  # the test set is only for the page's export
        ex = WatchExperiment(config, data)
        schedule = watch_schedule()
        for phase, n in schedule:
            ex.enqueue(phase, n)
        total = ex.queued_steps
        region = None
        coords, scales, halves, kl_dims, active = [], [], [], [], []
        keyframes: dict[str, list] = {"step": [], "frame": [], "manifold": [], "recon": []}

        def keep(frame) -> None:
            nonlocal region
            region = ex.map_region(region)
            q, scale = _quantized(frame.coords)
            coords.append(q)
            scales.append(scale)
            halves.append(region[0][1])
            kl_dims.append(frame.metrics.kl_per_dim)
            active.append(frame.metrics.active_units)
            if frame.step in WATCH_KEYFRAMES:
                keyframes["step"].append(frame.step)
                keyframes["frame"].append(len(coords) - 1)
                keyframes["manifold"].append(_u8(ex.manifold(region, manifold_n)))
                keyframes["recon"].append(_u8(ex.reconstructions(WATCH_RECON)[28:]))

        keep(ex.latest)
        while ex.pending:
            phase, _ = ex.pending.head()
            frame = ex.frame(WATCH_FRAME_STEPS[phase])
            if frame is None:
                raise RuntimeError(f"the Watch recording stopped: {ex.error}")
            keep(frame)
            if progress is not None and frame.step % 500 == 0:
                progress(frame.step, total)
        recon_images = _u8(ex.reconstructions(WATCH_RECON)[:28])
    h = ex.history
    segments = [list(s) for s in h.segments]
    g = manifold_n

    def tiles(picture: np.ndarray, rows: int, cols: int) -> np.ndarray:
        """A tiled picture [rows * 28, cols * 28] as its images [rows * cols, 784], row by row."""
        return picture.reshape(rows, 28, cols, 28).transpose(0, 2, 1, 3).reshape(rows * cols, 784)

    return {
        "kind": "watch_replay",
        "name": WATCH_NAME,
        "family": "vae",
        "label": "Watch it learn (recording)",
        "latent_dim": int(config.latent_dim),
        "frames": len(h),
        "step": b64(np.asarray(h.step, dtype=np.int32), "<i4"),
        "phase": list(h.phase),
        "segments": segments,
        "steps": int(h.step[-1]),
        "elbo": _f64(h.elbo),
        "iwae": _f64(h.iwae),
        "gap": _f64(h.gap),
        "reconstruction": _f64(h.reconstruction),
        "kl": _f64(h.kl),
        "kl_per_dim": _f64(kl_dims),
        "active_units": [int(a) for a in active],
        "k": int(config.iwae_k),
        "map": {
            "n": len(data.y_map),
            "labels": b64(data.y_map.numpy().astype(np.uint8), "u1"),
            "coords": b64(np.stack(coords), "<i2"),
            "scale": b64(np.asarray(scales, dtype=np.float32)),
            "half": b64(np.asarray(halves, dtype=np.float32)),
        },
        "keyframes": {
            "step": [int(s) for s in keyframes["step"]],
            "frame": [int(f) for f in keyframes["frame"]],
            "grid": g,
            "manifold": b64(np.stack([tiles(m, g, g) for m in keyframes["manifold"]]), "u1"),
            "recon": b64(np.stack([tiles(r, 1, WATCH_RECON) for r in keyframes["recon"]]), "u1"),
        },
        "recon_images": b64(tiles(recon_images, 1, WATCH_RECON), "u1"),
        "charts": {
            "bounds": _rounded_chart(bound_chart(h.step, h.elbo, h.iwae, segments, config.iwae_k)),
            "terms": _rounded_chart(terms_chart(h.step, h.reconstruction, h.kl, segments)),
        },
        "settings": {
            "latent_dim": config.latent_dim,
            "hidden": list(config.hidden),
            "likelihood": config.likelihood,
            "n_train": config.n_train,
            "batch_size": config.batch_size,
            "lr_inference": config.lr_inference,
            "lr_generative": config.lr_generative,
            "iwae_k": config.iwae_k,
            "n_eval": config.n_eval,
            "n_map": config.n_map,
            "seed": config.seed,
            "schedule": [list(s) for s in schedule],
        },
    }


#: the recordings a site can hold, by their pseudo-model name: name -> recorder (mnist_directory) -> payload
RECORDINGS: dict[str, Callable[[str | Path | None], dict[str, Any]]] = {
    FA_NAME: lambda mnist_directory=None: record_fa(),
    WATCH_NAME: lambda mnist_directory=None: record_watch(mnist_directory),
}
