"""The CI hook (tests/ci_skips.py): under CI=true a skip for a missing set-up step fails with its reason."""

from __future__ import annotations

import pytest

SKIPPING = """
import pytest

def test_needs_mnist():
    pytest.skip("MNIST is not available: no file t10k-images-idx3-ubyte")

def test_needs_a_gpu():
    pytest.skip("not on this machine: no CUDA device")

@pytest.mark.xfail(reason="known")
def test_known_failure():
    assert False
"""


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None) -> pytest.RunResult:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makepyfile(test_skipping=SKIPPING)
    return pytester.runpytest_inprocess("-p", "tests.ci_skips", "-rfs")


def test_under_ci_a_missing_set_up_step_fails_with_its_reason(pytester, monkeypatch):
    result = run(pytester, monkeypatch, "true")
    result.assert_outcomes(failed=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(
        ["*skipped under CI (CI=true), so a set-up step is missing: MNIST is not available*"]
    )


def test_outside_ci_the_same_tests_skip(pytester, monkeypatch):
    result = run(pytester, monkeypatch, None)
    result.assert_outcomes(skipped=2, xfailed=1)


def test_ci_false_is_not_ci(pytester, monkeypatch):
    run(pytester, monkeypatch, "false").assert_outcomes(skipped=2, xfailed=1)
