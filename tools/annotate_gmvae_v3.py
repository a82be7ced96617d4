"""Add the v3 recipe note (issue 36) to screened or long-run GMVAE JSONs copied into pretrained/seeds/.

usage: .venv/bin/python tools/annotate_gmvae_v3.py pretrained/seeds/gmvae-marginal-v3-*.json
"""

import json
import sys
from pathlib import Path

NOTE = (
    "gmvae-marginal-v3 (issue 36), declared 2026-12-07 before the first restart started: training images "
    "binarized afresh for every minibatch (x ~ Bernoulli(pixel/255)); validation and test keep the fixed "
    "threshold; screening: seeds 0-7 to epoch 20, kept = lowest validation conditional entropy at epoch "
    "20 among restarts whose every cluster takes >= 5 % of the validation images; long run: the kept "
    "restart resumed to 200 epochs, the last epoch is the model; labels used only in the report"
)
WHERE = (
    "this project's CPU machine (2 cores), 2026-12-07, two restarts at once, one torch thread each, "
    "beside the session's other work: about 60-90 s per epoch"
)
WEIGHTS = "no: a screening restart's weights stay in its run folder (~/aevb-runs/gmvae-v3), not in git"

for p in sys.argv[1:]:
    d = json.loads(Path(p).read_text())
    d.setdefault("recipe_note", NOTE)
    d.setdefault("trained_where", WHERE)
    d.setdefault("weights_kept", WEIGHTS)
    Path(p).write_text(json.dumps(d, indent=1) + "\n")
