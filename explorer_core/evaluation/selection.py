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
