"""Command line: ``python -m explorer_core <command>``.

Commands:
    fa        run the factor-analysis experiment headless and report the final test metrics
              (``--schedule paper-em`` is the tutorial's experiment 2,
              ``--schedule joint --steps N`` its experiment 1).
    data      ``data fetch mnist``: download and verify MNIST into the data directory.
    train     train a model family on MNIST (``--preset`` or flags) and write it to ``--out``.
    evaluate  test-set metrics of a pretrained model (by name) or a model file.
    select    choose one of several seeds of a recipe by validation ELBO and publish it with the table of
              every seed (``explorer_core.evaluation.selection``).
    screen    rank GMVAE screening restarts by the v3 rule (every cluster >= 5 % of the validation images,
              then the lowest validation conditional entropy at epoch 20; ``screen_restarts``).
    gaps      the inference gap of a VAE or CVAE on the first N test images, split into approximation and
              amortization gaps (Cremer, Li & Duvenaud 2018; ``explorer_core.inference.posterior``).
    publish   write a static site of one or more models that runs in the browser with no server
              (``explorer_core.publish``): ``publish vae-cb-l2 vrnn --out site``; ``fa`` and ``watch`` add
              replays of a recorded factor-analysis run and of a recorded Watch it learn run.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from explorer_core.data import make_fa_dataset
from explorer_core.device import limit_cpu_threads
from explorer_core.explore.fa import PAPER_EM_SCHEDULE, FAExperiment, FATrainingConfig
from explorer_core.inference.aevb import PHASES
from explorer_core.models.factor_analysis import POSTERIOR_FAMILIES


def _fa_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fa", help="run factor analysis with AEVB (tutorial section 5.2) and report metrics")
    p.add_argument(
        "--schedule",
        choices=["paper-em", *PHASES],
        default="paper-em",
        help="paper-em: E 1000, M 1000, E 1000, M 1000 steps; or one phase for --steps steps",
    )
    p.add_argument("--steps", type=int, default=1000, help="steps when the schedule is a single phase")
    p.add_argument("--posterior", choices=POSTERIOR_FAMILIES, default="full")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--k", type=int, default=1, help="samples per test point in the ELBO estimate")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial parameters and minibatches")
    p.add_argument("--data-seed", type=int, default=42)
    p.add_argument("--n", type=int, default=1000, help="points in each of the train and test sets")
    p.add_argument("--noise-scale", type=float, default=1.0)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=_run_fa)


def _run_fa(args: argparse.Namespace) -> int:
    limit_cpu_threads(1)  # the FA model is tiny: one thread beats several
    try:
        dataset = make_fa_dataset(args.data_seed, args.n, args.n, args.noise_scale)
        config = FATrainingConfig(args.posterior, args.lr, args.batch_size, args.k, args.seed)
        experiment = FAExperiment(dataset, config)
        if args.schedule == "paper-em":
            experiment.enqueue_schedule(PAPER_EM_SCHEDULE)
        else:
            experiment.enqueue(args.schedule, args.steps)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with tqdm(total=experiment.queued_steps, unit="step", file=sys.stderr, disable=None) as bar:
        while experiment.pending:
            done = experiment.run_pending(100)
            bar.update(done)
            if experiment.error:
                break
    final = experiment.latest
    result = {
        "schedule": args.schedule,
        "steps": experiment.steps,
        "posterior": args.posterior,
        "test_elbo": final.elbo,
        "test_evidence": final.evidence,
        "test_gap": final.gap,
        "mle_evidence": experiment.mle_evidence,
        "true_evidence": experiment.true_evidence,
        "seconds": round(experiment.seconds, 3),
        "error": experiment.error,
        "units": "nats per point, means over the test set",
    }
    _print_result(result, args.json, width=14)
    return 1 if experiment.error else 0


def _print_result(result: dict[str, Any], as_json: bool, width: int) -> None:
    """Print a command's result: one JSON line, or one ``key: value`` line per entry, keys right-aligned in
    ``width`` characters."""
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>{width}}: {value}")


def _data_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="data sets: fetch MNIST")
    p.add_argument("action", choices=["fetch"])
    p.add_argument("dataset", choices=["mnist"])
    p.add_argument("--dir", default=None, help="target directory (default: AEVB_DATA_DIR or the user cache)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per download attempt")
    p.set_defaults(func=_run_data)


def _run_data(args: argparse.Namespace) -> int:
    from explorer_core.data import MNISTUnavailable, fetch_mnist

    try:
        directory = fetch_mnist(args.dir, timeout=args.timeout, log=lambda m: print(m, file=sys.stderr))
    except MNISTUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(directory)
    return 0


def _train_parser(sub: argparse._SubParsersAction) -> None:
    from explorer_core.families import FAMILIES
    from explorer_core.training.trainer import PRESETS

    p = sub.add_parser("train", help="train a model on MNIST with AEVB")
    p.add_argument("family", nargs="?", choices=sorted(FAMILIES), help="not needed with --resume")
    p.add_argument("--preset", choices=sorted(PRESETS), help="a named recipe (flags below override it)")
    p.add_argument("--out", help="directory for NAME.safetensors and NAME.json (required unless --resume)")
    p.add_argument("--name", help="model name (default: the preset's name, else the family)")
    p.add_argument(
        "--run-dir",
        help="folder for the per-epoch checkpoint (default: runs/cli-NAME under AEVB_RUNS_DIR or the repo)",
    )
    p.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run checkpointed in DIR (its recipe; --epochs, --patience, --min-epochs and "
        "--max-minutes may be changed)",
    )
    p.add_argument("--min-epochs", type=int, help="early stopping never ends a run before this epoch")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--latent-dim", type=int)
    p.add_argument("--hidden", type=int, nargs="+")
    p.add_argument("--dropout", type=float)
    p.add_argument("--likelihood", choices=["continuous_bernoulli", "bernoulli"])
    p.add_argument("--preprocessing", choices=["dequantized", "binarized", "dynamic_binarized"])
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--patience", type=int)
    p.add_argument("--max-minutes", type=float, help="stop after the epoch that ends past this budget")
    p.add_argument("--lr-schedule", choices=["constant", "cosine"])
    p.add_argument("--iwae-k", type=int)
    p.add_argument("--tsne-points", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-grad-norm", type=float, help="clip the gradient norm before each step")
    g = p.add_argument_group("GMVAE", "only with the gmvae family")
    g.add_argument("--n-clusters", type=int)
    g.add_argument("--estimator", choices=["marginal", "gumbel"])
    g.add_argument("--temperature", type=float, help="Gumbel-softmax temperature (start of the annealing)")
    g.add_argument("--temperature-final", type=float, help="anneal geometrically to this temperature")
    g.add_argument("--straight-through", action="store_true", default=None)
    g = p.add_argument_group("VRNN", "only with the vrnn family")
    g.add_argument("--rnn-hidden", type=int)
    g.add_argument("--rnn-layers", type=int)
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from explorer_core.data import MNISTUnavailable
    from explorer_core.device import pick_device
    from explorer_core.families import FAMILIES
    from explorer_core.jobs import ConfigRejectedError, runs_root, validate_config
    from explorer_core.training.checkpoint import CheckpointError, read_checkpoint_description
    from explorer_core.training.recipes import TrainConfig, recipe_field_names
    from explorer_core.training.trainer import TrainingError, config_from_args, train

    # every family's recipe fields that have a flag; another family's flag is refused by config_from_args
    fields = set().union(*(recipe_field_names(spec.train_config_class) for spec in FAMILIES.values()))
    overrides = {k: getattr(args, k) for k in sorted(fields - {"family"}) if hasattr(args, k)}

    try:
        if args.resume:
            run_dir = Path(args.resume)
            described = read_checkpoint_description(run_dir)
            resumable = ("epochs", "patience", "min_epochs", "max_minutes")
            given = {k: overrides[k] for k in resumable if overrides.get(k) is not None}
            config = replace(TrainConfig.from_dict(described["recipe"]), **given)
            out = args.out or described.get("out_dir")
            name = args.name or described.get("name")
            if not out or not name:
                raise ValueError(
                    f"{run_dir}: the checkpoint does not say where the model goes; give --out/--name."
                )
        else:
            if args.family is None or args.out is None:
                raise ValueError("give a family and --out (or --resume DIR).")
            config = config_from_args(args.preset, args.family, overrides)
            name = args.name or args.preset or args.family
            out = args.out
            run_dir = Path(args.run_dir) if args.run_dir else runs_root() / f"cli-{name}"
            from explorer_core.training.checkpoint import JSON_NAME as CHECKPOINT_JSON

            if (run_dir / CHECKPOINT_JSON).exists():
                raise ValueError(
                    f"{run_dir} already holds a checkpoint: --resume {run_dir}, or another --run-dir."
                )
        # the same checks as the Training page: every value, and the memory estimate against what is free
        validate_config(config, str(pick_device()))
    except (ValueError, TypeError, CheckpointError, ConfigRejectedError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.threads:
        limit_cpu_threads(args.threads)
    if not args.resume:
        print(f"checkpoints: {run_dir} (continue with: train --resume {run_dir})", file=sys.stderr)
    bar = tqdm(total=None, unit="step", file=sys.stderr, disable=None, desc=name)

    def report(p) -> None:
        bar.total = p.total_steps
        bar.n = p.step
        if p.kind == "epoch":
            family_metrics = "".join(
                f", {k} {v:.4f}" for k, v in p.extra.items() if k not in ("best_epoch", "best_val_elbo")
            )
            bar.write(
                f"epoch {p.epoch}: train ELBO {p.train_elbo:.2f}, validation ELBO {p.val_elbo:.2f} "
                f"(best epoch {p.extra['best_epoch']}){family_metrics} [{p.seconds:.0f} s]",
                file=sys.stderr,
            )
        bar.set_postfix(epoch=p.epoch, elbo=f"{p.train_elbo:.1f}")

    stop_requested = []

    def request_stop(signum, frame) -> None:  # SIGTERM/SIGINT: finish this epoch, keep the best, evaluate
        if stop_requested:
            raise KeyboardInterrupt
        stop_requested.append(signum)
        bar.write("stop requested: ending after this epoch's validation (again to abort)", file=sys.stderr)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        path = train(
            config,
            out,
            name,
            progress=report,
            should_stop=lambda: bool(stop_requested),
            run_dir=run_dir,
            resume=bool(args.resume),
        )
    except (MNISTUnavailable, TrainingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    print(path)
    return 0


class _CommandError(Exception):
    """A command's one-line error (``message``) and exit status (``code``)."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def _test_set_of(model: str, n: int | None, check: Callable[[], None] = lambda: None):
    """What ``evaluate`` and ``gaps`` share: the model ``model`` (a name or a path) on the device, its
    preprocessing checked, then ``check()`` (the command's own argument checks, raising ValueError or
    ArtifactError), then the first ``n`` MNIST test images (all when None) preprocessed as the model was
    trained, and their labels, on the device.

    Returns:
        (loaded model, device, preprocessing, x [n, 784], labels [n]).

    Raises:
        _CommandError: a one-line message, code 2 for a bad model or argument, 1 when MNIST is missing.
    """
    from explorer_core.artifacts import ArtifactError, load_model
    from explorer_core.data import (
        PREPROCESSINGS,
        MNISTUnavailable,
        load_mnist_splits,
        preprocess_for_evaluation,
    )
    from explorer_core.device import DeviceError, pick_device

    try:
        device = pick_device()
        loaded = load_model(model, device)
        preprocessing = loaded.meta.get("preprocessing")
        if preprocessing not in PREPROCESSINGS:
            raise ArtifactError(
                f"{Path(loaded.meta['path']).name}: not a model file: preprocessing is missing or unknown "
                f"({preprocessing!r}; known: {', '.join(PREPROCESSINGS)})."
            )
        check()
    except (ArtifactError, DeviceError, ValueError, OSError) as err:
        raise _CommandError(" ".join(str(err).split()), 2) from err
    try:
        splits = load_mnist_splits(n_validation=0)
    except MNISTUnavailable as err:
        raise _CommandError(str(err), 1) from err
    n = len(splits.x_test) if n is None else max(1, min(n, len(splits.x_test)))
    # the whole test set first: a random binarization of it (fixed seed) must not depend on n
    x = preprocess_for_evaluation(splits.x_test.to(device), preprocessing)[:n]
    return loaded, device, preprocessing, x, splits.y_test[:n].to(device)


def _evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="test-set metrics of a trained model")
    p.add_argument("model", help="a name in pretrained/ or a path to a model's .json or .safetensors")
    p.add_argument(
        "--iwae-k", type=int, default=None, help="importance samples (default: the model's recipe)"
    )
    p.add_argument("--limit", type=int, default=None, help="evaluate on the first N test images only")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    import time

    from explorer_core.artifacts import ArtifactError
    from explorer_core.families import model_family

    def check() -> None:
        if args.limit is not None and args.limit < 1:
            raise ArtifactError(f"--limit must be at least 1, got {args.limit}.")
        if args.iwae_k is not None and not 0 <= args.iwae_k <= 100_000:
            raise ArtifactError(f"--iwae-k must be between 0 and 100000, got {args.iwae_k}.")

    try:
        loaded, device, preprocessing, x, labels = _test_set_of(args.model, args.limit, check)
    except _CommandError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    n = len(x)
    iwae_k = args.iwae_k if args.iwae_k is not None else (loaded.meta.get("recipe") or {}).get("iwae_k", 0)
    start = time.perf_counter()
    with tqdm(total=n, unit="image", file=sys.stderr, disable=None if iwae_k else True, desc="IWAE") as bar:
        metrics = model_family(loaded.family).evaluate(
            loaded.model, x, labels, iwae_k=iwae_k, progress=lambda d, t: bar.update(d - bar.n)
        )
    result = {
        "model": loaded.name,
        "family": loaded.family,
        "preprocessing": preprocessing,
        **metrics,
        "seconds": round(time.perf_counter() - start, 1),
        "device": str(device),
        "units": "nats per image",
    }
    _print_result(result, args.json, width=16)
    return 0


def _select_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("select", help="choose among seeds by validation ELBO and publish the chosen model")
    p.add_argument("candidates", nargs="+", help="model JSONs of one recipe, one per seed")
    p.add_argument("--out", required=True, help="directory to publish into (e.g. pretrained)")
    p.add_argument("--name", required=True, help="name of the published model")
    p.add_argument("--contrast-seed", type=int, help="also publish this seed, for contrast")
    p.add_argument("--contrast-name", help="name of the contrasting seed's model")
    p.set_defaults(func=_run_select)


def _run_select(args: argparse.Namespace) -> int:
    from pathlib import Path

    from explorer_core.artifacts import ArtifactError, load_model, save_model
    from explorer_core.evaluation.selection import select_by_validation_elbo

    try:
        chosen, record = select_by_validation_elbo([Path(p) for p in args.candidates])
        published = [(chosen, args.name, "chosen by the rule")]
        if args.contrast_seed is not None:
            if not args.contrast_name:
                raise ValueError("--contrast-seed needs --contrast-name.")
            source = next(
                (r["source"] for r in record["candidates"] if r["seed"] == args.contrast_seed), None
            )
            if source is None:
                raise ValueError(f"no candidate with seed {args.contrast_seed}.")
            path = next(Path(p) for p in args.candidates if Path(p).name == source)
            published.append((path, args.contrast_name, "a contrasting seed, not chosen by the rule"))
        for path, name, role in published:
            loaded = load_model(path)
            keep = {
                k: v
                for k, v in loaded.meta.items()
                if k not in ("name", "family", "config", "weights", "sha256", "views", "selection", "path")
            }
            out = save_model(
                loaded.model,
                loaded.family,
                Path(args.out),
                name,
                {**keep, "selection": {**record, "role": role}},
            )
            print(out)
    except (ArtifactError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _screen_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "screen",
        help="rank GMVAE screening restarts by the v3 rule (usage >= 5 %, lowest entropy at epoch 20)",
    )
    p.add_argument("candidates", nargs="+", help="model JSONs of the screening restarts, one per seed")
    p.add_argument("--json", action="store_true", help="print the whole record as JSON")
    p.set_defaults(func=_run_screen)


def _run_screen(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from explorer_core.evaluation.selection import screen_restarts

    try:
        record = screen_restarts([Path(p) for p in args.candidates])
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(record, indent=1))
        return 0
    print(f"rule: {record['rule']}")
    print("seed  H(q(y|x))  min usage  val ELBO  eligible  rank")
    for r in record["restarts"]:
        rank = r["rank"] if r["rank"] is not None else "-"
        print(
            f"{r['seed']:>4}  {r['conditional_entropy']:9.4f}  {r['min_cluster_usage']:9.4f}  "
            f"{r['val_elbo']:8.2f}  {'yes' if r['eligible'] else 'no':>8}  {rank:>4}"
        )
    print(f"kept (best first): {record['kept']}; skipped: {record['skipped']}")
    return 0


def _gaps_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gaps",
        help="mean approximation and amortization gaps (nats per image) of a VAE or CVAE on the test set",
    )
    p.add_argument("model", help="a name in pretrained/ or a path to a model's .json or .safetensors")
    p.add_argument("--n", type=int, default=1000, help="the first N test images (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Monte Carlo noise (IWAE, L > 2 fits)")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps of each q* fit")
    p.add_argument(
        "--threads", type=int, help="torch CPU threads (default: torch's; 1 is faster on a busy machine)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run_gaps)


def _run_gaps(args: argparse.Namespace) -> int:
    import time

    from explorer_core.artifacts import ArtifactError
    from explorer_core.inference.posterior import PosteriorError, test_set_gaps

    def check() -> None:
        if args.n < 1:
            raise ArtifactError(f"--n must be at least 1, got {args.n}.")
        if args.steps is not None and not 1 <= args.steps <= 100_000:
            raise ArtifactError(f"--steps must be between 1 and 100000, got {args.steps}.")
        if args.threads is not None and args.threads < 1:
            raise ArtifactError(f"--threads must be at least 1, got {args.threads}.")

    try:
        loaded, device, preprocessing, x, labels = _test_set_of(args.model, args.n, check)
    except _CommandError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    if args.threads:
        limit_cpu_threads(args.threads)
    n = len(x)
    start = time.perf_counter()
    try:
        with tqdm(total=n, unit="image", file=sys.stderr, disable=None, desc="gaps") as bar:
            gaps = test_set_gaps(
                loaded.model,
                x,
                labels,
                seed=args.seed,
                steps=args.steps,
                progress=lambda d, t: bar.update(d - bar.n),
            )
    except PosteriorError as err:
        print(f"error: {loaded.name}: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    result = {
        "model": loaded.name,
        "family": loaded.family,
        "preprocessing": preprocessing,
        **gaps,
        "seconds": round(time.perf_counter() - start, 1),
        "device": str(device),
        "units": "nats per image (means over the images, with standard errors)",
    }
    if gaps["evidence_is_lower_bound"]:
        result["note"] = (
            f"log p(x) is {gaps['evidence_method']}, a lower bound (it pulls the approximation gaps down; "
            "a q* fit short of its optimum pushes them up)"
        )
    _print_result(result, args.json, width=30)
    return 0


def _publish_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "publish", help="write a static site of models that runs in the browser with no server (issue 35)"
    )
    p.add_argument(
        "models",
        nargs="+",
        help="names in pretrained/ or paths to model .json files; 'fa' and 'watch': replays of a "
        "factor-analysis run and of a Watch it learn run, recorded now (about 15 and 35 s of one CPU core)",
    )
    p.add_argument(
        "--out", required=True, help="the site's folder (created; files of the same names replaced)"
    )
    p.add_argument("--zip", action="store_true", help="write OUT as one zip file instead of a folder")
    p.set_defaults(func=_run_publish)


def _run_publish(args: argparse.Namespace) -> int:
    from explorer_core.atomic import replace_atomically
    from explorer_core.publish import PublishError, build_site, site_zip
    from explorer_core.publish.site import write_site

    try:
        files = build_site(args.models)
        if args.zip:
            data = site_zip(files)
            out = Path(args.out)
            try:
                replace_atomically(out, lambda tmp: tmp.write_bytes(data))
            except OSError as err:
                raise PublishError(" ".join(str(err).split())) from err
            print(
                f"{out}: a zip of {len(files)} files, {len(data) / 1e6:.1f} MB; unpack it and open index.html"
            )
        else:
            write_site(files, args.out)
            size = sum(len(v) for v in files.values())
            print(
                f"{args.out}: {len(files)} files, {size / 1e6:.1f} MB; open {Path(args.out) / 'index.html'}"
            )
    except PublishError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m explorer_core",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _fa_parser(sub)
    _data_parser(sub)
    _train_parser(sub)
    _evaluate_parser(sub)
    _select_parser(sub)
    _screen_parser(sub)
    _gaps_parser(sub)
    _publish_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)
