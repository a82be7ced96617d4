"""Shipped models on the MNIST test set: `python -m explorer_core evaluate <name> --json` on every model in
pretrained/, beside the published anchors (the tutorial, Yang 2022, arXiv 2208.07818, sections 5.3-5.6,
and the papers it cites).

Each model is evaluated in a subprocess by the same command a user runs. An earlier output is reused from
bench/results/evaluate-cache.json only when the model's weights still have the sha256 its JSON records (and
that the cached run saw) and the evaluation arguments are the same; otherwise the model is evaluated again.

    python bench/bench_quality.py            # the full test set, the IWAE k of each model's recipe
    python bench/bench_quality.py --quick    # smoke run: 300 test images, IWAE k = 10, no cache
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from common import RESULTS, ROOT, write_result

from explorer_core.artifacts import PRETRAINED_DIR, list_models, sha256_of

CACHE = RESULTS / "evaluate-cache.json"
FAMILIES = ("vae", "cvae", "gmvae", "vrnn")
#: Models the benchmark expects (others found in pretrained/ are measured too); missing ones are listed.
EXPECTED = (
    "vae-cb-l20",
    "cvae-cb-l20",
    "vae-cb-l2",
    "cvae-cb-l2",
    "vae-bernoulli-l20",
    "gmvae-marginal",
    "gmvae-gumbel",
    "vrnn",
)
#: Per model: the target (metric, comparison, value) all must meet, and where the value comes from.
TARGETS = {
    "vae-cb-l20": ([("elbo", ">=", 1788.41)], "reference notebook VAE, final test ELBO"),
    "cvae-cb-l20": ([("elbo", ">=", 1820.10)], "reference notebook CVAE, final test ELBO"),
    "vae-bernoulli-l20": ([("nll_estimate", "<=", 90.0)], "pythae VAE 89.78; Burda et al. 86.76"),
    "gmvae-marginal": ([("cluster_accuracy", ">=", 0.84)], "reference notebook GMVAE accuracy 0.8351"),
    "vrnn": ([("elbo", ">=", -78.3), ("kl", ">", 1.0)], "reference notebook VRNN best test ELBO -78.29"),
}
#: The published figures each family is shown beside (the tutorial's sections 5.3-5.6 and the papers it
#: cites); quoted, not measured here.
ANCHORS = [
    {
        "family": "vae",
        "source": "reference notebook VAE (tutorial 5.3), final epoch 46",
        "data": "dequantized",
        "method": "single-sample test ELBO, Continuous Bernoulli density",
        "elbo": 1788.41,
    },
    {
        "family": "vae",
        "source": "Burda et al. 2015, VAE (k = 1 training), 1 stochastic layer",
        "data": "dynamic_binarized",
        "method": "IWAE-5000 NLL",
        "nll_estimate": 86.76,
        "iwae_k": 5000,
    },
    {
        "family": "vae",
        "source": "pythae, standard VAE on binary MNIST",
        "data": "dynamic_binarized",
        "method": "IWAE NLL",
        "nll_estimate": 89.78,
    },
    {
        "family": "cvae",
        "source": "reference notebook CVAE (tutorial 5.4), final epoch 69",
        "data": "dequantized",
        "method": "single-sample test ELBO, Continuous Bernoulli density",
        "elbo": 1820.10,
    },
    {
        "family": "gmvae",
        "source": "reference notebook GMVAE (tutorial 5.5, marginalisation), 78 epochs",
        "data": "binarized",
        "method": "Hungarian cluster accuracy; ELBO with -log C",
        "cluster_accuracy": 0.8351,
        "conditional_entropy": 0.106,
        "elbo": -83.1,
    },
    {
        "family": "gmvae",
        "source": "VaDE (Jiang et al. 2017)",
        "data": "MNIST (continuous)",
        "method": "Hungarian cluster accuracy",
        "cluster_accuracy": 0.9446,
    },
    {
        "family": "gmvae",
        "source": "Rui Shu's GMVAE, K = 10, 1000 epochs (about)",
        "data": "binarized",
        "method": "Hungarian cluster accuracy",
        "cluster_accuracy": 0.87,
    },
    {
        "family": "vrnn",
        "source": "reference notebook VRNN (tutorial 5.6), best of 7 epochs",
        "data": "binarized",
        "method": "single-sample test ELBO",
        "elbo": -78.29,
    },
]
#: Fields of `evaluate --json` kept in quality.json (large ones, such as the contingency table, stay in the
#: cache).
KEEP = (
    "elbo",
    "elbo_without_log_c",
    "reconstruction",
    "kl",
    "active_units",
    "iwae_k",
    "iwae_bound",
    "nll_estimate",
    "conditional_entropy",
    "cluster_accuracy",
    "cluster_usage",
    "n_images",
    "seconds",
    "device",
    "preprocessing",
)
QUICK_LIMIT, QUICK_IWAE_K = 300, 10


def method_of(family: str, meta: dict, result: dict) -> str:
    """How the figures of one model were computed, in words."""
    if family == "gmvae":
        return (
            "marginalised ELBO (all C clusters, one reparameterised z each) with -log C; "
            "Hungarian cluster accuracy of argmax q(y|x); mean H(q(y|x))"
        )
    if family == "vrnn":
        return "single-sample ELBO over 28 rows; total KL summed over rows"
    text = "single-sample ELBO"
    if result.get("nll_estimate") is not None:
        text += f"; IWAE-{result['iwae_k']} bound, NLL = -bound"
    if meta.get("config", {}).get("likelihood") == "continuous_bernoulli":
        text += " (CB density)"
    return text


def check_targets(name: str, result: dict) -> tuple[str, str | None]:
    """``("yes" | "no" | "reported", text of the target)``."""
    if name not in TARGETS:
        return "reported", None
    checks, source = TARGETS[name]
    ok = True
    for key, sense, bound in checks:
        value = result.get(key)
        if value is None:
            ok = False
            continue
        ok &= {">=": value >= bound, "<=": value <= bound, ">": value > bound}[sense]
    text = " and ".join(f"{key} {sense} {bound:g}" for key, sense, bound in checks) + f" ({source})"
    return ("yes" if ok else "no"), text


def evaluate_args(meta: dict, quick: bool) -> list[str]:
    """Extra `evaluate` flags: none in full runs (the recipe's IWAE k); a smoke run's limit and small k."""
    if not quick:
        return []
    iwae = ["--iwae-k", str(QUICK_IWAE_K)] if meta.get("recipe", {}).get("iwae_k") else []
    return ["--limit", str(QUICK_LIMIT), *iwae]


def evaluate(name: str, extra: list[str], timeout_s: float) -> dict:
    """Run `python -m explorer_core evaluate NAME --json` and parse its last line."""
    cmd = [sys.executable, "-m", "explorer_core", "evaluate", name, "--json", *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: a few test images, small IWAE k")
    parser.add_argument("--no-cache", action="store_true", help="evaluate every model again")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per model at most")
    args = parser.parse_args()
    use_cache = not (args.quick or args.no_cache)
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    models, missing, errors = {}, [], {}
    found = {m["name"]: m for m in list_models(PRETRAINED_DIR) if m.get("family") in FAMILIES}
    missing = [name for name in EXPECTED if name not in found]
    start_all = time.perf_counter()
    for name, meta in found.items():
        extra = evaluate_args(meta, args.quick)
        weights = PRETRAINED_DIR / str(meta.get("weights", f"{name}.safetensors"))
        sha = meta.get("sha256")
        actual = sha256_of(weights) if weights.is_file() else None
        entry = cache.get(name)
        cached = bool(
            use_cache
            and entry
            and sha is not None
            and entry.get("sha256") == sha
            and actual == sha
            and entry.get("args") == extra
        )
        if cached:
            result = entry["result"]
            print(f"{name}: cached evaluate output (weights sha256 {sha[:12]}… unchanged)", flush=True)
        else:
            print(f"{name}: python -m explorer_core evaluate {name} --json {' '.join(extra)}", flush=True)
            t0 = time.perf_counter()
            try:
                result = evaluate(name, extra, args.timeout)
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as err:
                errors[name] = str(err)
                print(f"  failed: {err}", flush=True)
                continue
            result["wall_seconds"] = round(time.perf_counter() - t0, 1)
            if not args.quick:
                cache[name] = {"sha256": sha, "args": extra, "result": result}
                CACHE.parent.mkdir(parents=True, exist_ok=True)
                CACHE.write_text(json.dumps(cache, indent=1) + "\n")
        met, target = check_targets(name, result)
        models[name] = {
            "family": meta["family"],
            **{k: result[k] for k in KEEP if k in result},
            "method": method_of(meta["family"], meta, result),
            "target": target,
            "met": met,
            "cached": cached,
            "evaluate_wall_seconds": result.get("wall_seconds"),
            "sha256": sha,
        }
    write_result(
        "quality",
        {
            "what": "Shipped models on the MNIST test set via `python -m explorer_core evaluate NAME --json`",
            "mode": "quick" if args.quick else "full",
            "test_images": QUICK_LIMIT if args.quick else 10_000,
            "models": models,
            "missing": missing,
            "errors": errors,
            "anchors": ANCHORS,
            "seconds": round(time.perf_counter() - start_all, 1),
        },
    )


if __name__ == "__main__":
    main()
