"""bench/report.py renders BENCHMARKS.md and the README's benchmark block with missing or partial results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
MACHINE = {
    "cpu": "test CPU",
    "cores": 2,
    "load_average_1min": 0.1,
    "torch": "2.13.0+cpu",
    "device": "cpu",
    "torch_threads": 2,
    "python": "3.11.7",
    "date": "2026-01-01 00:00 UTC",
}
README = "# x\n\n## Benchmarks\n\n<!-- benchmarks:start -->\nold\n<!-- benchmarks:end -->\n\n## After\n"


@pytest.fixture
def report(tmp_path, monkeypatch):
    """bench/report.py with its results folder and repository root moved to a temporary folder."""
    monkeypatch.syspath_prepend(str(BENCH))
    sys.modules.pop("report", None)
    import report as module

    results = tmp_path / "bench" / "results"
    results.mkdir(parents=True)
    (tmp_path / "README.md").write_text(README)
    monkeypatch.setattr(module, "RESULTS", results)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    return module, results, tmp_path


def _write(results: Path, name: str, data: dict) -> None:
    (results / f"{name}.json").write_text(json.dumps({"machine": MACHINE, **data}))


def test_no_results_at_all(report):
    module, _, root = report
    module.main()
    text = (root / "BENCHMARKS.md").read_text()
    assert "Not measured yet: run `make bench-quality`" in text
    assert "No GPU was available to this run" in text
    readme = (root / "README.md").read_text()
    assert "- Not measured yet: run `make bench`." in readme and "old" not in readme
    assert readme.endswith("## After\n")


def test_partial_results(report):
    module, results, root = report
    _write(
        results,
        "quality",
        {
            "mode": "full",
            "test_images": 10_000,
            "models": {
                "vae-cb-l20": {
                    "family": "vae",
                    "preprocessing": "dequantized",
                    "elbo": 1800.0,
                    "kl": 30.0,
                    "method": "single-sample ELBO (CB density)",
                    "target": "elbo >= 1788.41 (reference)",
                    "met": "yes",
                    "cached": True,
                },
                "vrnn": {
                    "family": "vrnn",
                    "preprocessing": "binarized",
                    "elbo": -80.0,
                    "kl": 0.5,
                    "method": "single-sample ELBO",
                    "target": "elbo >= -78.3 and kl > 1 (reference)",
                    "met": "no",
                    "cached": False,
                },
            },
            "missing": ["gmvae-marginal"],
            "errors": {},
            "anchors": [
                {"family": "vae", "source": "ref", "data": "dequantized", "method": "ELBO", "elbo": 1788.41}
            ],
        },
    )
    variants = {
        "reference": {"images_per_s": 1000.0},
        "ours": {"images_per_s": 1100.0, "vs_reference": 1.1},
        "ours, torch.compile": {"error": "RuntimeError: no compiler"},
    }
    _write(
        results,
        "training_speed",
        {
            "what": "Training speed.",
            "mode": "full",
            "measure_s": 4.0,
            "torch_compile": "ok",
            "throughput": {"vae": {"preset": "vae-cb-l20", "variants": variants}},
            "time_to_elbo": {
                "threshold": 1788.41,
                "cap_s": 200.0,
                "ours": {
                    "curve": [{"epoch": 1, "train_s": 30.0, "test_elbo": 1650.0}],
                    "batch": 100,
                    "lr": 3e-4,
                },
                "reference": {"curve": [{"epoch": 1, "train_s": 35.0, "test_elbo": 1640.0}]},
                "threshold_seconds": {"ours": None, "reference": None},
                "threshold_ratio": None,
                "matched": {"test_elbo": 1640.0, "ours_s": 30.0, "reference_s": 35.0, "ratio": 1.17},
            },
        },
    )
    module.main()
    text = (root / "BENCHMARKS.md").read_text()
    assert "| vae-cb-l20 |" in text and "1800.00" in text and "*1788.41*" in text
    assert "Not in `pretrained/` at this run (not measured): gmvae-marginal" in text
    assert "not reached within 200 s" in text and "x1.17" in text
    assert "failed: RuntimeError: no compiler" in text
    assert "## The app in a browser" not in text  # app.json missing: its section is left out
    readme = (root / "README.md").read_text()
    assert "`vae-cb-l20` test ELBO 1800.00" in readme and "`vrnn` test ELBO -80.00, KL 0.50" in readme
    assert "not met" in readme
