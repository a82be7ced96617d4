"""Training speed: our trainer against a loop written in the style of the reference notebooks, side by side
in one run on one machine, with the same architectures.

1. Throughput, images per second per family (VAE, CVAE, GMVAE marginal, GMVAE Gumbel, VRNN): each variant
   trains a freshly initialised model for a few warm-up steps, then for whole steps until MEASURE_S seconds
   have passed (batch fetching included). Variants:
   * ``reference``: a torch DataLoader over a TensorDataset (shuffle, batch 100), one sample per step,
     float32, one plain Adam over all parameters, ``loss = -elbo.mean()``, as the notebooks do.
   * ``ours``: ``explorer_core.inference.aevb.aevb_step`` (separate Adam for phi and theta, gradient-norm
     check, NaN guard) on data resident on the device, indexed by a random permutation, as ``training.train``
     does; batch 100. Then one flag at a time: ``batch 500``, ``DataLoader`` instead of resident data,
     ``bf16 autocast``, ``torch.compile`` (compile time reported apart, not in the rate).
2. Time to reach the reference's final test ELBO (1788.41 nats, VAE with the Continuous Bernoulli on
   dequantized MNIST; the tutorial, Yang 2022, section 5.3): ``explorer_core.training.trainer.train`` itself
   vs the
   reference-style loop, both on the 60,000 training images, the single-sample test ELBO (eval mode, fixed
   noise) measured after every epoch; the clock counts training only (the test evaluations are timed apart),
   up to a cap.
   When a run does not cross the threshold within its cap this says so; the figure is then the time each
   needs to reach the best test ELBO the reference-style loop reached within its cap (matched quality).

    python bench/bench_training_speed.py            # about 11 minutes on an idle 2-core CPU
    python bench/bench_training_speed.py --quick    # smoke run, a few minutes
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from common import write_result
from torch.utils.data import DataLoader, TensorDataset

from explorer_core.artifacts import build_model
from explorer_core.data import load_mnist_splits, preprocess, preprocess_for_evaluation
from explorer_core.device import pick_device
from explorer_core.families import FAMILIES
from explorer_core.inference.aevb import aevb_step, make_optimizers
from explorer_core.training.trainer import PRESETS, TrainingError, train, validation_elbo

#: family row -> the preset whose architecture and learning rate it trains
MODELS = {
    "vae": "vae-cb-l20",
    "cvae": "cvae-cb-l20",
    "gmvae-marginal": "gmvae-marginal",
    "gmvae-gumbel": "gmvae-gumbel",
    "vrnn": "vrnn",
}
REFERENCE_BATCH = 100
LARGE_BATCH = 500
THRESHOLD = 1788.41
#: torch.compile is measured on these rows only (compiling takes about a minute each on a 2-core CPU; the
#: VRNN's 28-row loop is unrolled into a much larger graph); --compile-all measures every row.
COMPILE_ROWS = ("vae", "gmvae-marginal")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batches(x: torch.Tensor, y: torch.Tensor | None, batch: int, loader: bool, seed: int = 0):
    """Endless minibatches: a DataLoader over a TensorDataset, or a permutation of resident data."""
    if loader:
        dataset = TensorDataset(x.cpu()) if y is None else TensorDataset(x.cpu(), y.cpu())
        torch.manual_seed(seed)
        while True:
            for b in DataLoader(dataset, batch_size=batch, shuffle=True):
                xb = b[0].to(x.device, non_blocking=True)
                yield xb, (None if y is None else b[1].to(x.device, non_blocking=True))
    order = torch.Generator().manual_seed(seed)
    while True:
        permutation = torch.randperm(len(x), generator=order).to(x.device)
        for start in range(0, len(x) - batch + 1, batch):
            index = permutation[start : start + batch]
            yield x[index], (None if y is None else y[index])


def reference_step(model, optimizer):
    """The notebooks' loop body: -elbo.mean(), backward, Adam step."""

    def step(xb, yb):
        loss = -model.elbo(xb, yb).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def ours_step(model, optimizers, autocast: bool, device: torch.device):
    def step(xb, yb):
        ctx = torch.autocast(device.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with ctx:
            aevb_step(model, optimizers, xb, yb)

    return step


def measure(step, source, device, seconds: float, warmup: int, min_steps: int) -> dict:
    """Warm-up steps (timed apart), then whole steps until ``seconds`` have passed."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        step(*next(source))
    sync(device)
    warm = time.perf_counter() - t0
    n, t0 = 0, time.perf_counter()
    batch = None
    while n < min_steps or time.perf_counter() - t0 < seconds:
        xb, yb = next(source)
        batch = len(xb)
        step(xb, yb)
        n += 1
    sync(device)
    elapsed = time.perf_counter() - t0
    return {
        "images_per_s": round(n * batch / elapsed, 1),
        "ms_per_step": round(elapsed / n * 1e3, 2),
        "steps": n,
        "batch": batch,
        "seconds": round(elapsed, 2),
        "warmup_steps": warmup,
        "warmup_seconds": round(warm, 2),
    }


def fresh_model(family: str, preset: str, device: torch.device):
    torch.manual_seed(0)
    return build_model(family, PRESETS[preset].model_config()).to(device).train()


def throughput(
    splits, device, seconds: float, quick: bool, compile_rows: tuple[str, ...], families: list[str]
) -> dict:
    rows = {}
    for row in families:
        preset = MODELS[row]
        config = PRESETS[preset]
        family = config.family
        conditional = FAMILIES[family].conditional
        noise = torch.Generator(device=device).manual_seed(0)
        x = preprocess(splits.x_train.to(device), config.preprocessing, generator=noise)
        y = splits.y_train.to(device) if conditional else None
        variants = {
            "reference": dict(kind="reference", batch=REFERENCE_BATCH, loader=True),
            "ours": dict(kind="ours", batch=REFERENCE_BATCH, loader=False),
            f"ours, batch {LARGE_BATCH}": dict(kind="ours", batch=LARGE_BATCH, loader=False),
            "ours, DataLoader": dict(kind="ours", batch=REFERENCE_BATCH, loader=True),
            "ours, bf16 autocast": dict(kind="ours", batch=REFERENCE_BATCH, loader=False, autocast=True),
        }
        if row in compile_rows:
            variants["ours, torch.compile"] = dict(
                kind="ours", batch=REFERENCE_BATCH, loader=False, compile=True
            )
        out = {"preset": preset, "lr": config.lr, "preprocessing": config.preprocessing, "variants": {}}
        for name, v in variants.items():
            model = fresh_model(family, preset, device)
            source = batches(x, y, v["batch"], v["loader"])
            warmup = 1 if quick else 3
            try:
                if v["kind"] == "reference":
                    step = reference_step(model, torch.optim.Adam(model.parameters(), lr=config.lr))
                else:
                    if v.get("compile"):
                        model.elbo = torch.compile(model.elbo)
                        warmup += 2  # the first calls compile (forward and backward graphs)
                    step = ours_step(
                        model, make_optimizers(model, config.lr), v.get("autocast", False), device
                    )
                result = measure(step, source, device, seconds, warmup, min_steps=2 if quick else 5)
            except Exception as err:  # report a failing variant (e.g. compile unavailable), keep going
                result = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}
            out["variants"][name] = result
            rate = result.get("images_per_s", "failed")
            print(f"{row:>15} | {name:<22} | {rate} images/s", flush=True)
        ref = out["variants"]["reference"].get("images_per_s")
        for result in out["variants"].values():
            if ref and "images_per_s" in result:
                result["vs_reference"] = round(result["images_per_s"] / ref, 2)
        rows[row] = out
    return rows


# ------------------------------------------------------------------------------ time to a test ELBO


def reference_run(splits, device, cap_s: float, threshold: float, max_epochs: int) -> dict:
    """The notebook-style VAE loop: dequantize once, DataLoader batch 100, Adam 3e-4, test ELBO per epoch."""
    config = PRESETS["vae-cb-l20"]
    torch.manual_seed(0)
    model = build_model("vae", config.model_config()).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    x = preprocess(splits.x_train, "dequantized")
    loader = DataLoader(TensorDataset(x), batch_size=REFERENCE_BATCH, shuffle=True)
    x_test = preprocess_for_evaluation(splits.x_test.to(device), "dequantized")
    curve, train_s, eval_s = [], 0.0, 0.0
    step = reference_step(model, optimizer)
    for epoch in range(1, max_epochs + 1):
        model.train()
        t0 = time.perf_counter()
        complete = True
        for (xb,) in loader:
            step(xb.to(device), None)
            if train_s + time.perf_counter() - t0 > cap_s:
                complete = False
                break
        sync(device)
        train_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        elbo = validation_elbo(model, x_test, None)
        eval_s += time.perf_counter() - t0
        curve.append(
            {"epoch": epoch, "train_s": round(train_s, 1), "test_elbo": round(elbo, 2), "complete": complete}
        )
        print(f"  reference-style epoch {epoch}: test ELBO {elbo:.2f} after {train_s:.0f} s", flush=True)
        if elbo >= threshold or train_s >= cap_s:
            break
    return {"curve": curve, "eval_seconds": round(eval_s, 1)}


def ours_run(splits, device, cap_s: float, threshold: float, batch: int, lr: float, max_epochs: int) -> dict:
    """``explorer_core.training.trainer.train`` on all 60,000 training images, the test ELBO after each
    epoch."""
    config = replace(
        PRESETS["vae-cb-l20"],
        n_validation=0,
        tsne_points=0,
        iwae_k=0,
        epochs=max_epochs,
        patience=None,
        batch_size=batch,
        lr=lr,
    )
    x_test = preprocess_for_evaluation(splits.x_test.to(device), "dequantized")
    curve: list[dict] = []
    clock = {"start": 0.0, "eval": 0.0, "stop": False}

    def train_seconds() -> float:
        return time.perf_counter() - clock["start"] - clock["eval"]

    def on_epoch(model, epoch: int) -> None:
        sync(device)
        t = train_seconds()
        t0 = time.perf_counter()
        elbo = validation_elbo(model, x_test, None)
        clock["eval"] += time.perf_counter() - t0
        curve.append(
            {"epoch": epoch, "train_s": round(t, 1), "test_elbo": round(elbo, 2), "complete": t < cap_s}
        )
        print(f"  ours epoch {epoch}: test ELBO {elbo:.2f} after {t:.0f} s", flush=True)
        clock["stop"] = elbo >= threshold or t >= cap_s

    with tempfile.TemporaryDirectory() as out:
        clock["start"] = time.perf_counter()
        try:
            train(
                config,
                Path(out),
                "speed",
                device=device,
                splits=splits,
                should_stop=lambda: clock["stop"] or train_seconds() >= cap_s,
                on_epoch=on_epoch,
            )
        except TrainingError as err:
            return {"curve": curve, "error": str(err), "eval_seconds": round(clock["eval"], 1)}
    return {
        "curve": curve,
        "eval_seconds": round(clock["eval"], 1),
        "batch": batch,
        "lr": lr,
    }


def first_crossing(curve: list[dict], level: float) -> float | None:
    """Training seconds at the end of the first epoch whose test ELBO is >= level (None: never)."""
    for point in curve:
        if point["test_elbo"] >= level:
            return point["train_s"]
    return None


def time_to_elbo(splits, device, cap_s: float, batch: int, lr: float, max_epochs: int) -> dict:
    print(f"time to test ELBO {THRESHOLD}: ours (batch {batch}, lr {lr:g}), cap {cap_s:.0f} s", flush=True)
    ours = ours_run(splits, device, cap_s, THRESHOLD, batch, lr, max_epochs)
    print(f"time to test ELBO {THRESHOLD}: reference-style loop, cap {cap_s:.0f} s", flush=True)
    ref = reference_run(splits, device, cap_s, THRESHOLD, max_epochs)
    result = {"threshold": THRESHOLD, "cap_s": cap_s, "ours": ours, "reference": ref}
    t_ours, t_ref = first_crossing(ours["curve"], THRESHOLD), first_crossing(ref["curve"], THRESHOLD)
    result["threshold_seconds"] = {"ours": t_ours, "reference": t_ref}
    result["threshold_ratio"] = round(t_ref / t_ours, 2) if t_ours and t_ref else None
    if ref["curve"]:
        # matched quality: the best test ELBO the reference-style loop reached, and when each run reached it
        level = max(p["test_elbo"] for p in ref["curve"])
        m_ours, m_ref = first_crossing(ours["curve"], level), first_crossing(ref["curve"], level)
        result["matched"] = {
            "test_elbo": level,
            "ours_s": m_ours,
            "reference_s": m_ref,
            "ratio": round(m_ref / m_ours, 2) if m_ours and m_ref else None,
        }
    return result


def compile_available(device: torch.device) -> tuple[bool, str]:
    """Whether torch.compile works here at all (a tiny function compiled and run)."""
    try:
        fn = torch.compile(lambda a: torch.nn.functional.softplus(a) * 2)
        fn(torch.ones(4, device=device))
        return True, "ok"
    except Exception as err:
        return False, f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: short measurements, short caps")
    parser.add_argument("--measure-s", type=float, help="seconds per throughput measurement")
    parser.add_argument("--cap-s", type=float, help="training seconds allowed to each time-to-ELBO run")
    parser.add_argument(
        "--ttt-batch", type=int, default=100, help="our trainer's batch in the time-to-ELBO run"
    )
    parser.add_argument("--ttt-lr", type=float, default=3e-4, help="our trainer's lr in the time-to-ELBO run")
    parser.add_argument("--skip-ttt", action="store_true", help="throughput only")
    parser.add_argument("--compile-all", action="store_true", help="torch.compile on every family")
    parser.add_argument("--families", nargs="*", choices=list(MODELS), help="throughput rows (default: all)")
    args = parser.parse_args()
    seconds = args.measure_s or (1.0 if args.quick else 4.0)
    cap = args.cap_s or (20.0 if args.quick else 180.0)
    device = pick_device()
    start = time.perf_counter()
    splits = load_mnist_splits(n_validation=0)
    compile_ok, compile_note = compile_available(device)
    print(f"device {device}, {torch.get_num_threads()} threads; torch.compile: {compile_note}", flush=True)
    compile_rows = () if not compile_ok else tuple(MODELS) if args.compile_all else COMPILE_ROWS
    if args.quick and compile_ok and not args.compile_all:
        compile_rows = ("vae",)
    rows = throughput(
        splits,
        device,
        seconds,
        args.quick,
        compile_rows,
        list(MODELS) if args.families is None else args.families,
    )
    ttt = None
    if not args.skip_ttt:
        ttt = time_to_elbo(
            splits, device, cap, args.ttt_batch, args.ttt_lr, max_epochs=2 if args.quick else 200
        )
    write_result(
        "training_speed",
        {
            "what": __doc__.strip().split("\n\n")[0],
            "mode": "quick" if args.quick else "full",
            "measure_s": seconds,
            "torch_compile": compile_note,
            "compile_rows": list(compile_rows),
            "bf16_note": "torch.autocast(device, dtype=torch.bfloat16) around aevb_step (forward and "
            "backward)",
            "throughput": rows,
            "time_to_elbo": ttt,
            "seconds": round(time.perf_counter() - start, 1),
        },
    )


if __name__ == "__main__":
    main()
