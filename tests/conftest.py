"""Shared test set-up: computation tests run on the CPU with one thread, like the FA page."""

import os

import torch

os.environ.setdefault("AEVB_DEVICE", "cpu")
torch.set_num_threads(1)

# Training runs of the developer's own app (``runs/``) must not leak into the tests' model pickers.
if "AEVB_RUNS_DIR" not in os.environ:
    import tempfile

    os.environ["AEVB_RUNS_DIR"] = tempfile.mkdtemp(prefix="aevb-test-runs-")
