"""The inference gap of every shipped VAE and CVAE, split into approximation and amortization gaps.

For each pretrained model whose q(z|x) is one Gaussian (the VAEs and CVAEs; the others are skipped) and the
first N MNIST test images (default 1000): log p(x), ELBO(q_phi), the optimal diagonal and full-covariance
Gaussians q* fitted per image, and the mean gaps in nats per image with their standard errors, computed by
``explorer_core.inference.posterior.test_set_gaps`` (the same code as ``python -m explorer_core gaps``).
For L = 2 log p(x) is quadrature on a grid; for L > 2 it is IWAE with k = 5000, a lower bound (the
approximation gap is then an estimate, not a bound), and the images go 25 at a time through the decoder.
Cremer, Li & Duvenaud (2018) define the gaps (their table 1).

    python bench/bench_gaps.py                       # every VAE/CVAE, 1000 test images each (long)
    python bench/bench_gaps.py --n 20 --models vae-cb-l2
    python bench/bench_gaps.py --quick               # 20 images of vae-cb-l2
"""

import argparse
import json
import time

from common import write_result

from explorer_core.artifacts import PRETRAINED_DIR, ArtifactError, load_model
from explorer_core.data import load_mnist_splits, preprocess_for_evaluation
from explorer_core.device import limit_cpu_threads
from explorer_core.inference.posterior import PosteriorError, check_model, test_set_gaps

FULL_N = 1000
QUICK_N = 20
QUICK_MODELS = ("vae-cb-l2",)

#: Cremer, Li & Duvenaud (2018) report MNIST gaps in their table 2; their figures were not found in the
#: reference material available when this benchmark was written, so none are typed here.
PAPER = {
    "source": "Cremer, Li & Duvenaud 2018, Inference Suboptimality in Variational Autoencoders (ICML), "
    "table 2",
    "figures": None,
    "note": "their MNIST figures were not found in the reference material searched; not reproduced here",
    "differences": "ours: L = 2 (log p(x) exact by quadrature) or L = 20 (IWAE-5000, a lower bound), "
    "Continuous Bernoulli on dequantized MNIST (densities, so nats are not comparable with binarized "
    "MNIST's) or Bernoulli on binarized, encoder and decoder 500-500; theirs (not verified against the "
    "paper here): Bernoulli likelihood on binarized MNIST, a larger latent space, log p(x) from IWAE "
    "k = 5000 and AIS",
}


def shipped_models() -> list[str]:
    """Names of the pretrained models with one Gaussian q(z|x) (VAEs and CVAEs)."""
    names = []
    for path in sorted(PRETRAINED_DIR.glob("*.json")):
        if path.name.endswith(".views.json"):
            continue
        try:
            meta = json.loads(path.read_text())
            if "family" not in meta or "sha256" not in meta:
                continue
            loaded = load_model(path)
        except (ArtifactError, OSError, ValueError):
            continue
        try:
            check_model(loaded.model)
        except PosteriorError:
            continue
        names.append(loaded.name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help=f"test images per model (default {FULL_N})")
    parser.add_argument("--models", nargs="+", help="names in pretrained/ (default: every VAE and CVAE)")
    parser.add_argument(
        "--n-large",
        type=int,
        default=None,
        help="test images per model with L > 2 (IWAE-5000 and a batched q* fit, about 2.6 s per image on one "
        "core; default: --n)",
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_N} images of {', '.join(QUICK_MODELS)}")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        limit_cpu_threads(args.threads)
    n = args.n or (QUICK_N if args.quick else FULL_N)
    names = args.models or (list(QUICK_MODELS) if args.quick else shipped_models())
    splits = load_mnist_splits(n_validation=0)
    models = {}
    for name in names:
        loaded = load_model(name)
        preprocessing = loaded.meta["preprocessing"]
        n_model = args.n_large if args.n_large and check_model(loaded.model) > 2 else n
        x = preprocess_for_evaluation(splits.x_test[:n_model], preprocessing)
        start = time.perf_counter()
        gaps = test_set_gaps(loaded.model, x, splits.y_test[:n_model], seed=0)
        models[name] = {
            "family": loaded.family,
            "preprocessing": preprocessing,
            "likelihood": loaded.meta["config"].get("likelihood"),
            "n": n_model,
            **gaps,
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(
            f"{name}: approximation {gaps['approximation_gap']:.3f}, amortization "
            f"{gaps['amortization_gap']:.3f} nats per image ({models[name]['seconds']} s)"
        )
    smallest = min(m["n"] for m in models.values())
    mode = "quick" if args.quick or n < FULL_N else "full" if smallest >= FULL_N else "partial"
    write_result(
        "gaps",
        {
            "what": "mean inference, approximation and amortization gaps over the first n MNIST test "
            "images (n per model in its row; nats per image; python -m explorer_core gaps)",
            "mode": mode,
            "n": n,
            "models": models,
            "paper": PAPER,
        },
    )


if __name__ == "__main__":
    main()
