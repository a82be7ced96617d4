"""Every seed of the shipped GMVAE recipes: the table the selection rule chose from (issue: initialisation).

Reads the ``selection`` record of each pretrained GMVAE (written by ``python -m explorer_core select``: seed,
epochs, validation ELBO (the criterion), test ELBO and test cluster accuracy of every seed trained, and the
mean and spread of accuracy) into ``bench/results/gmvae_seeds.json``. Test figures were computed by the
trainer's final evaluation (``FAMILIES[family].evaluate``) on the 10,000 MNIST test images, the same code
as ``evaluate``.
"""

import json

from common import write_result

from explorer_core.artifacts import PRETRAINED_DIR
from explorer_core.evaluation.selection import screen_restarts


def main() -> None:
    recipes = {}
    for path in sorted(PRETRAINED_DIR.glob("gmvae-*.json")):
        meta = json.loads(path.read_text())
        selection = meta.get("selection")
        if not isinstance(selection, dict) or "candidates" not in selection:
            continue
        key = meta["recipe"].get("estimator", "marginal")
        entry = recipes.setdefault(key, {"rule": selection["rule"], "published": {}, **selection})
        entry["published"][meta["name"]] = {"seed": meta["recipe"]["seed"], "role": selection.get("role")}
    write_result(
        "gmvae_seeds",
        {"what": "every seed of the shipped GMVAE recipes", "recipes": recipes, "v3": v3_table()},
    )


def v3_table() -> dict:
    """Recipe v3 (issue 36): every screening restart in ``pretrained/seeds/`` ranked by the screening rule
    (``screen_restarts``: epoch-20 conditional entropy, smallest cluster usage, validation ELBO, test
    accuracy), and every long run (epochs, final conditional entropy, validation and test ELBO, test
    accuracy). Empty lists until restarts have finished."""
    seeds = PRETRAINED_DIR / "seeds"
    table: dict = {"screening": None, "long_runs": []}
    screened = sorted(seeds.glob("gmvae-marginal-v3-screen-s*.json"))
    if screened:
        try:
            table["screening"] = screen_restarts(screened)
        except ValueError as err:
            table["screening"] = {"error": str(err)}
    for path in sorted(seeds.glob("gmvae-marginal-v3-s*.json")):
        if "-screen-" in path.name:
            continue
        meta = json.loads(path.read_text())
        training, test = meta["training"], meta.get("test_metrics") or {}
        last = training["history"][-1]
        table["long_runs"].append(
            {
                "seed": meta["recipe"]["seed"],
                "epochs": training["epochs_run"],
                "conditional_entropy": last.get("conditional_entropy"),
                "val_elbo": last.get("val_elbo"),
                "test_elbo": test.get("elbo"),
                "test_cluster_accuracy": test.get("cluster_accuracy"),
            }
        )
    return table


if __name__ == "__main__":
    main()
