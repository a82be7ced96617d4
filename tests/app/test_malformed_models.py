"""Every page renders with a folder full of malformed model files and a runs folder full of damaged runs.

The malformed files are generated field by field from the shipped JSONs (every field missing, of a wrong
type, absurd; see tests/unit/test_untrusted_files.py) plus special files (a symlink to /dev/zero, a FIFO, a
200 MB file, non-UTF-8, a list, NaN). They sit in a folder named by ``AEVB_MODEL_DIRS``; the damaged runs
in ``AEVB_RUNS_DIR``. Each MNIST page must render without an exception, list the shipped models in its picker,
and show the unusable files as one warning with one line each; the Training page must list the damaged runs
and still show the valid one.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer_core.artifacts import PRETRAINED_DIR
from tests.unit.test_untrusted_files import (
    ABSURD,
    BASES,
    GOOD_CONFIG,
    GOOD_STATUS,
    WRONG_TYPES,
    make_run,
    paths_of,
    special_files,
    with_value,
)

TIMEOUT = 300
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = {
    "vae": ("vae.py", "vae_model", "vae-cb-l2"),
    "cvae": ("cvae.py", "cvae_model", "cvae-cb-l2"),
    "gmvae": ("gmvae.py", "gmvae_model", "gmvae-marginal"),
    "vrnn": ("vrnn.py", "vrnn_model", "vrnn"),
}


def one_variant_per_field(doc: dict):
    """For every field one malformed value, cycling through missing, the wrong types and the absurd values."""
    kinds = itertools.cycle([None, *WRONG_TYPES, *ABSURD])
    for path in paths_of(doc):
        value = next(kinds)
        yield with_value(doc, path, value, delete=value is None)


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    folder = tmp_path_factory.mktemp("bad-models")
    count = 0
    for family, name in BASES.items():
        base = json.loads((PRETRAINED_DIR / f"{name}.json").read_text())
        for doc in one_variant_per_field(base):
            (folder / f"bad-{family}-{count:04d}.json").write_text(json.dumps(doc))
            count += 1
    special_files(folder)
    return folder, count


@pytest.fixture
def bad_runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    make_run(
        root, "vae-20260101-000000-good", {**GOOD_STATUS, "state": "failed", "error": "E: ok"}, GOOD_CONFIG
    )
    for i, doc in enumerate(one_variant_per_field(GOOD_STATUS)):
        make_run(root, f"bad-status-{i:03d}", doc, GOOD_CONFIG)
    for i, doc in enumerate(one_variant_per_field(GOOD_CONFIG)):
        make_run(root, f"bad-config-{i:03d}", GOOD_STATUS, doc)
    make_run(root, "bad-top", [1, 2], "x", b"\xff\xfe")
    return root


@pytest.fixture
def env(bad_models, bad_runs, monkeypatch):
    monkeypatch.setenv("AEVB_MODEL_DIRS", str(bad_models[0]))
    monkeypatch.setenv("AEVB_RUNS_DIR", str(bad_runs))
    return bad_models[0]


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page(str(ROOT / "views" / page)).run()
    return at


@pytest.mark.parametrize("family", sorted(PAGES))
def test_every_mnist_page_renders_with_malformed_model_files(env, family):
    page, key, default = PAGES[family]
    at = open_page(page)
    assert not at.exception, at.exception
    picker = at.sidebar.selectbox(key=key)
    assert any(default in str(option) for option in picker.options)  # the shipped models are listed
    warning = [w.value for w in at.sidebar.warning if "cannot be used" in w.value]
    assert len(warning) == 1
    lines = [line for line in warning[0].split("\n") if line.startswith("•")]
    assert len(lines) >= 10 and all("not a model file" in line for line in lines)
    assert any("zero.json" in line and "not a regular file" in line for line in lines)
    assert any("huge.json" in line and "too large" in line for line in lines)
    assert "Traceback" not in warning[0]


def test_the_training_page_renders_with_damaged_runs(env):
    at = open_page("training.py")
    assert not at.exception, at.exception
    assert any("cannot be read" in w.value for w in at.warning)
    messages = [t.value for t in at.text]
    assert any("created must be a number" in m or "state must be one of" in m for m in messages)
    assert any("bad-top/status.json" in m for m in messages)
    assert any("E: ok" in e.value for e in at.error)  # the valid run is still shown
