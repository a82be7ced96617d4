"""Shared test set-up: computation tests run on the CPU with one thread, like the FA page."""

import atexit
import os
import shutil
import tempfile

import torch

# under CI a skip (MNIST or a shipped model missing) is a failure: tests/ci_skips.py
pytest_plugins = ["tests.ci_skips", "pytester"]

os.environ.setdefault("AEVB_DEVICE", "cpu")
# the server's memory budget (explorer_core.memory_budget) is one per process; AppTest sessions are many and
# are dropped only when garbage-collected, so page tests get a budget no suite reaches (its own tests use
# their own budgets)
os.environ.setdefault("AEVB_SERVER_MEMORY_MB", str(1 << 20))
torch.set_num_threads(1)

# Training runs of the developer's own app (``runs/``) must not leak into the tests' model pickers.
if "AEVB_RUNS_DIR" not in os.environ:
    os.environ["AEVB_RUNS_DIR"] = tempfile.mkdtemp(prefix="aevb-test-runs-")
    atexit.register(shutil.rmtree, os.environ["AEVB_RUNS_DIR"], ignore_errors=True)

# The on-disk cache of test-set encodings (explorer_core.explore.latent.cache_dir) stays out of the user's
# home.
if "AEVB_CACHE_DIR" not in os.environ:
    os.environ["AEVB_CACHE_DIR"] = tempfile.mkdtemp(prefix="aevb-test-cache-")
    atexit.register(shutil.rmtree, os.environ["AEVB_CACHE_DIR"], ignore_errors=True)
