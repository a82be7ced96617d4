"""Command line: ``python -m explorer_core <command>``.

Commands:
    fa      run the factor-analysis experiment headless and report the final test metrics
            (``--schedule paper-em`` is the tutorial's experiment 2,
            ``--schedule joint --steps N`` its experiment 1).
"""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from explorer_core.aevb import PHASES
from explorer_core.data import make_fa_dataset
from explorer_core.device import limit_cpu_threads
from explorer_core.fa_experiment import PAPER_EM_SCHEDULE, FAExperiment, FATrainingConfig
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
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>14}: {value}")
    return 1 if experiment.error else 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m explorer_core",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _fa_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)
