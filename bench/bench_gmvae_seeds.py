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
    write_result("gmvae_seeds", {"what": "every seed of the shipped GMVAE recipes", "recipes": recipes})


if __name__ == "__main__":
    main()
