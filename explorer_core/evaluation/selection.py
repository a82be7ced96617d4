"""Choosing one model among several seeds of a recipe, by a rule declared before any test figure is read.

The rule (:data:`RULE`): the highest *validation ELBO*, i.e. the best epoch's mean ELBO on the 10,000 images
held out from the end of the MNIST training set (for the GMVAE the marginal estimator with its -log C, a true
lower bound on log p(x), nats per image). Labels are never used, and test figures are only reported.

:func:`select_by_validation_elbo` applies the rule and returns a table of every seed with its test figures,
which the shipped model's JSON keeps (``selection``) so the README, the benchmarks and the GMVAE page's
"initialisation matters" panel show every seed that was trained, not just the chosen one.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from explorer_core.training.recipes import TrainConfig
from explorer_core.untrusted import read_json_object

RULE = (
    "highest validation ELBO (best epoch, 10,000 held-out training images; for the GMVAE the marginal "
    "estimator including -log C), declared before any test figure was read; labels never used"
)


def candidate_row(meta: dict[str, Any], source: str) -> dict[str, Any]:
    """One table row from a trained model's JSON description ``meta``.

    Returns seed, epochs run, best epoch, validation ELBO (the criterion, nats per image), test ELBO,
    test cluster accuracy (None for families without clusters), and why training stopped.

    Raises:
        ValueError: ``meta`` lacks the recipe, training or test figures.
    """
    try:
        recipe, training, test = meta["recipe"], meta["training"], meta["test_metrics"]
        val = float(training["best_val_elbo"])
        row = {
            "source": source,
            "seed": int(recipe["seed"]),
            "estimator": recipe.get("estimator"),
            "epochs_run": int(training["epochs_run"]),
            "best_epoch": int(training["best_epoch"]),
            "val_elbo": val,
            "test_elbo": float(test["elbo"]),
            "test_cluster_accuracy": test.get("cluster_accuracy"),
            "stopped": training.get("stopped"),
        }
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{source}: not a trained model's description ({err!r}).") from err
    if not math.isfinite(val):
        raise ValueError(f"{source}: validation ELBO is not finite.")
    return row


def select_by_validation_elbo(paths: list[Path]) -> tuple[Path, dict[str, Any]]:
    """Apply :data:`RULE` to the model JSONs at ``paths``; returns the chosen path and the ``selection``
    record (rule, chosen seed, one row per candidate sorted by seed, and the mean and population standard
    deviation of test cluster accuracy over the seeds when the family has clusters).

    Raises:
        ValueError: no candidates, an unreadable candidate, or candidates of different recipes (apart from
            the seed and the run's length: epochs, patience, min_epochs, max_minutes).
    """
    if not paths:
        raise ValueError("no candidates to choose from.")
    rows, metas = [], {}
    for path in paths:
        meta = read_json_object(path, what="model description")  # a regular file, size-capped
        rows.append(candidate_row(meta, Path(path).name))
        metas[Path(path).name] = meta
    # the seed and the run's length and budget may differ; the model, data and optimisation may not
    budget = ("seed", "epochs", "patience", "min_epochs", "max_minutes")
    recipes = set()
    for source, m in metas.items():
        try:  # as its family's recipe class reads it (a recipe from before the per-family fields too)
            recipe = TrainConfig.from_dict(m["recipe"]).to_dict()
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: not a valid recipe: {err}") from err
        recipes.add(json.dumps({k: v for k, v in recipe.items() if k not in budget}, sort_keys=True))
    if len(recipes) > 1:
        raise ValueError("the candidates were trained with different recipes; compare seeds of one recipe.")
    rows.sort(key=lambda r: r["seed"])
    best = max(rows, key=lambda r: r["val_elbo"])
    chosen = next(Path(p) for p in paths if Path(p).name == best["source"])
    record: dict[str, Any] = {"rule": RULE, "chosen_seed": best["seed"], "candidates": rows}
    accuracies = [r["test_cluster_accuracy"] for r in rows if r["test_cluster_accuracy"] is not None]
    if accuracies:
        record["test_cluster_accuracy_mean"] = statistics.fmean(accuracies)
        record["test_cluster_accuracy_std"] = statistics.pstdev(accuracies)
        record["test_cluster_accuracy_range"] = [min(accuracies), max(accuracies)]
    return chosen, record


#: the v3 screening rule of the GMVAE (issue 36), declared before the first restart started
SCREENING_RULE = (
    "among the restarts whose every cluster takes at least 5 % of the validation images (argmax of "
    "q(y|x)) at the screening epoch (20), the lowest validation conditional entropy E_x H(q(y|x)) at "
    "that epoch; labels and test figures never used"
)
SCREENING_EPOCH = 20
MIN_CLUSTER_USAGE = 0.05


def screening_row(meta: dict[str, Any], source: str, epoch: int = SCREENING_EPOCH) -> dict[str, Any]:
    """One restart's screening figures from its model JSON ``meta``: seed, the validation conditional entropy
    (nats) and smallest cluster usage (share of validation images, argmax of q(y|x)) of its history row at
    ``epoch``, the validation ELBO there (nats per image), and its test figures (reported, never used).

    Raises:
        ValueError: no history row for ``epoch``, or the row lacks the entropy or the usage.
    """
    try:
        recipe, training = meta["recipe"], meta["training"]
        row = next(r for r in training["history"] if int(r["epoch"]) == epoch)
        test = meta.get("test_metrics") or {}
        return {
            "source": source,
            "seed": int(recipe["seed"]),
            "epoch": epoch,
            "conditional_entropy": float(row["conditional_entropy"]),
            "min_cluster_usage": float(row["min_cluster_usage"]),
            "val_elbo": float(row["val_elbo"]),
            "test_elbo": test.get("elbo"),
            "test_cluster_accuracy": test.get("cluster_accuracy"),
            "test_cluster_usage": test.get("cluster_usage"),
        }
    except StopIteration:
        raise ValueError(f"{source}: no history row for epoch {epoch}.") from None
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{source}: not a screened restart's description ({err!r}).") from err


def screen_restarts(
    paths: list[Path], epoch: int = SCREENING_EPOCH, min_usage: float = MIN_CLUSTER_USAGE
) -> dict[str, Any]:
    """Apply :data:`SCREENING_RULE` to the model JSONs of the screening restarts at ``paths``.

    Returns a record: the rule, ``kept`` (seeds ranked best first among the eligible ones: lowest conditional
    entropy), ``skipped`` (seeds with a cluster under ``min_usage``) and one row per restart (sorted by seed,
    each with ``eligible`` and ``rank``).

    Raises:
        ValueError: no candidates, an unreadable candidate, or no eligible restart.
    """
    if not paths:
        raise ValueError("no restarts to screen.")
    rows = []
    for path in paths:
        meta = read_json_object(path, what="model description")
        rows.append(screening_row(meta, Path(path).name, epoch))
    rows.sort(key=lambda r: r["seed"])
    eligible = [r for r in rows if r["min_cluster_usage"] >= min_usage]
    if not eligible:
        raise ValueError(
            f"no restart uses every cluster for at least {min_usage:.0%} of the validation images."
        )
    ranked = sorted(eligible, key=lambda r: (r["conditional_entropy"], r["seed"]))
    for r in rows:
        r["eligible"] = r in eligible
        r["rank"] = ranked.index(r) + 1 if r in eligible else None
    return {
        "rule": SCREENING_RULE,
        "epoch": epoch,
        "min_cluster_usage": min_usage,
        "kept": [r["seed"] for r in ranked],
        "skipped": [r["seed"] for r in rows if not r["eligible"]],
        "restarts": rows,
    }


def v3_screening_table(seeds_dir: Path) -> dict[str, Any] | None:
    """The v3 screening record (:func:`screen_restarts`) of the restarts whose JSONs are in ``seeds_dir``
    (``gmvae-marginal-v3-screen-s*.json``), for the GMVAE page and the benchmarks; None when there are none.
    A record with ``error`` instead of ``restarts`` when they cannot be screened (none eligible, a bad
    file)."""
    paths = sorted(Path(seeds_dir).glob("gmvae-marginal-v3-screen-s*.json"))
    if not paths:
        return None
    try:
        return screen_restarts(paths)
    except (OSError, ValueError) as err:
        return {"rule": SCREENING_RULE, "error": str(err)}
