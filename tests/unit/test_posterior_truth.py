"""What the true-posterior panel of /vae and /cvae says agrees with what it computed (issue 33, items 1-2).

Two kinds of check. Pure ones sweep many made-up states through the page's rules (the worse-mode rule and
its sentence, the IWAE table's verdicts) and assert that the words follow the numbers exactly. Sweeps over
real test images of the shipped 2-D models (``vae-cb-l2``, ``cvae-cb-l2``) assert the inequalities the
page prints under: log p(x) by quadrature within its stated 0.01-nat tolerance, ELBO <= IWAE_k <= log p(x)
within the Monte Carlo errors the page shows, and the "worse mode" note exactly when its rule holds (and
only where the two fits of q* really end on different modes).

Cost: the page's own computation, about half a second per image on one core for the evidence and the IWAE
bounds, one to two seconds more per image for the q* fits. ``AEVB_TRUTH_IMAGES`` sets how many test images
of each model the IWAE sweep takes (default 40, so that the file runs in about a minute; the issue's sweep,
200 images per model, passed in 2.3 minutes per model on a loaded 2-core machine).
"""

from __future__ import annotations

import itertools
import math
import os
import random
import re

import pytest
import torch

from explorer_core.explore.posterior import QSTAR_STEPS, IWAERow, iwae_row, posterior_picture, qstar_frames
from explorer_core.inference import posterior as P
from explorer_core.inference.posterior import densities
from views.components import posterior_panel as panel

#: test images of each model in the IWAE sweep
N_IMAGES = int(os.environ.get("AEVB_TRUTH_IMAGES", "40"))
#: test images whose q* the sweep fits (vae-cb-l2: 7, 8 and 10 sit on a worse mode, 0-3 do not, 3 is the
#: issue's; cvae-cb-l2 33: q_phi 13 standard deviations from the posterior's only mode, a fit that must
#: converge). Of the first 40 test images, 5 of vae-cb-l2's and none of cvae-cb-l2's sit on a worse mode.
QSTAR_IMAGES = {"vae-cb-l2": (0, 1, 2, 3, 7, 8, 10), "cvae-cb-l2": (0, 1, 33)}
#: float32: log p(x|z) is a float32 sum of 784 terms near 2,000 nats
F32 = 1e-3


# --- the worse-mode rule and its sentence, over many states ---------------------------------------------
def _split(elbo_from_phi: float, elbo_from_mode: float, stderr: float = 0.0) -> P.GapSplit:
    state = P.QStarState(
        0, torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64), 0.0, "diagonal"
    )
    best = max(elbo_from_phi, elbo_from_mode)
    return P.GapSplit(
        2, best + 1.0, "quadrature", False, elbo_from_phi - 3.0, best, best + 0.1, state, state, 0.0,
        elbo_from_phi=elbo_from_phi, elbo_from_mode=elbo_from_mode, elbo_difference_stderr=stderr,
        q_star_from_mode=state,
    )  # fmt: skip


def test_the_worse_mode_rule_is_its_stated_tolerance():
    assert P.MODE_TOLERANCE_NATS == 0.5 and P.MODE_TOLERANCE_SES == 3.0
    rng = random.Random(0)
    for _ in range(5000):
        phi = rng.uniform(-3000.0, 3000.0)
        difference = rng.choice([0.0, 0.5, -0.5, 1e-6, 0.4999, 0.5001, 12.0]) + rng.gauss(0, 0.3)
        stderr = rng.choice([0.0, 0.0, 0.01, 0.2, 0.5, math.nan])
        mode = phi + difference
        tolerance = max(0.5, 3 * (0.0 if math.isnan(stderr) else stderr))
        assert P.worse_mode_tolerance(stderr) == tolerance
        assert P.phi_on_worse_mode(phi, mode, stderr) == (mode - phi > tolerance)
        assert _split(phi, mode, stderr).phi_on_worse_mode == (mode - phi > tolerance)
    # the edges: the tolerance itself is not "worse"; a micro-nat above the fit from q_phi never is
    assert not P.phi_on_worse_mode(1000.0, 1000.5) and P.phi_on_worse_mode(1000.0, 1000.5 + 1e-9)
    assert not P.phi_on_worse_mode(1622.556, 1622.556 + 1e-6)  # issue 33: test image 3
    assert not P.phi_on_worse_mode(1000.0, 1001.0, stderr=0.4) and P.phi_on_worse_mode(1000.0, 1001.3, 0.4)
    assert not P.phi_on_worse_mode(math.nan, 1000.0) and not P.phi_on_worse_mode(1000.0, math.nan)
    with pytest.raises(ValueError, match="stderr"):
        P.phi_on_worse_mode(0.0, 1.0, -0.1)


def _numbers(text: str) -> list[float]:
    return [float(t) for t in re.findall(r"[-+]?\d+\.\d+", text)]


def test_the_closing_note_says_what_the_rule_says():
    rng = random.Random(1)
    for _ in range(2000):
        phi = rng.uniform(500.0, 2500.0)
        mode = phi + rng.choice([0.0, 0.3, 0.5, 0.51, 2.0, 55.0, -0.2]) + rng.gauss(0, 0.05)
        split = _split(phi, mode)
        note = panel.mode_note(split)
        worse = mode - phi > 0.5
        assert ("sits on a worse mode" in note) == worse, (phi, mode, note)
        assert ("not on a worse mode" in note) == (not worse), (phi, mode, note)
        numbers = _numbers(note)
        if worse:  # "... reaches ELBO {phi}, a fit from the top mode {mode}, {difference} nats more"
            assert numbers[:3] == pytest.approx([phi, mode, mode - phi], abs=0.006)
        else:  # "... reaches ELBO {mode}, {difference:+} nats from the fit from q_phi ({phi}): the same ..."
            assert numbers[:3] == pytest.approx([mode, mode - phi, phi], abs=0.006)
            assert "within the 0.5-nat tolerance" in note
    # no fit from the mode (L > 2): nothing is said about modes
    assert panel.mode_note(_split(math.nan, math.nan)) == ""


# --- the IWAE table's verdicts, over many states -----------------------------------------------------------
def _bound(k: int, mean: float, stderr: float, repeats: int = 8) -> P.IWAEBound:
    return P.IWAEBound(k, mean, stderr, repeats)


def test_iwae_rows_are_judged_against_the_evidence_and_its_errors():
    assert P.MC_ERROR_SES == 3.0
    rng = random.Random(2)
    for _ in range(5000):
        evidence = rng.uniform(500.0, 2500.0)
        grid_error = rng.choice([0.0, 0.003, 0.009])
        stderr = rng.choice([0.001, 0.01, 0.06, 0.5])
        mean = evidence + rng.gauss(0, 4 * stderr) + rng.choice([0.0, -0.05, 0.05])
        row = iwae_row(_bound(1000, mean, stderr), evidence, grid_error)
        allowance = 3 * stderr + grid_error + P.FLOAT32_RELATIVE * evidence
        assert row.allowance == pytest.approx(allowance)
        expected = "below" if mean <= evidence else "at" if mean - evidence <= allowance else "above"
        assert row.verdict == expected
        # what is printed never passes log p(x) unless it is flagged as a contradiction
        assert row.shown <= evidence or row.verdict == "above"
        assert row.gap == pytest.approx(evidence - row.shown)
        assert row.shown == (evidence if row.verdict == "at" else mean)


class _Grid:
    refinements = 0


class _Picture:
    """What :func:`views.components.posterior_panel.iwae_table` reads of a picture."""

    def __init__(self, evidence: float, rows: list[IWAERow], error: float = 0.003):
        self.log_evidence, self.iwae, self.evidence_error, self.grid = evidence, rows, error, _Grid()


def _table_rows(table: str) -> list[list[str]]:
    lines = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| k ")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def check_table(table: str, picture) -> None:
    """The IWAE table as printed: a bound above log p(x) only when flagged ‡; one within its error of it
    shown as "= log p(x) †" with the footnote giving the mean and the error; 'log p(x) − bound' >= 0
    unless flagged."""
    evidence = picture.log_evidence
    for cells, row in zip(_table_rows(table), picture.iwae, strict=True):
        k, repeats, bound, gap = cells
        assert k == f"{row.k:,}" and repeats == f"{row.repeats:,}"
        if row.verdict == "at":
            assert bound == "= log p(x) †" and gap.startswith("0 within error")
            assert f"k = {row.k:,}: the mean of the repeats, {row.mean:.3f} ± {row.stderr:.3f}" in table
            continue
        printed, *error = _numbers(bound)
        assert printed == pytest.approx(row.mean, abs=5e-4)
        if math.isfinite(row.stderr):
            assert error == pytest.approx([row.stderr], abs=5e-4)
        assert ("‡" in bound) == (row.verdict == "above") == ("‡" in gap)
        if "‡" not in bound:
            assert printed <= round(evidence, 3) + 5e-4 and float(gap) >= 0


def test_the_printed_table_follows_the_verdicts():
    rng = random.Random(3)
    for _ in range(300):
        evidence = rng.uniform(500.0, 2500.0)
        rows = []
        for k, se in ((1, 0.01), (10, 0.03), (100, 0.08), (1000, rng.choice([0.02, 0.2]))):
            mean = evidence - rng.expovariate(k**0.5 / 2.0) + rng.gauss(0, se)  # bias ~ 2 / sqrt(k) nats
            rows.append(iwae_row(_bound(k, mean, se), evidence, 3e-3))
        picture = _Picture(evidence, rows)
        check_table(panel.iwae_table(picture), picture)
    # the case: test image 0 of vae-cb-l2, a k = 1000 mean 0.07 above log p(x) within its error
    rows = [iwae_row(_bound(1000, 1753.49, 0.06), 1753.42, 0.003)]
    table = panel.iwae_table(_Picture(1753.42, rows))
    assert (
        rows[0].verdict == "at"
        and "| 1,000 | 8 | = log p(x) † |" in table
        and "1753.49" not in table.split("†")[0]
    )
    # and one beyond its error: printed as it is, flagged, and explained
    rows = [iwae_row(_bound(1000, 1753.49, 0.01), 1753.42, 0.003)]
    table = panel.iwae_table(_Picture(1753.42, rows))
    assert rows[0].verdict == "above" and "‡" in table and "missed some of the posterior's mass" in table


# --- the shipped 2-D models over test images --------------------------------------------------------------
_PICTURES: dict[tuple[str, int], object] = {}


@pytest.fixture(scope="module", params=["vae-cb-l2", "cvae-cb-l2"])
def shipped(request):
    from explorer_core.artifacts import ArtifactError, load_model
    from explorer_core.data import MNISTUnavailable, test_inputs

    try:
        loaded = load_model(request.param)
    except ArtifactError as err:  # pragma: no cover - a checkout without pretrained/
        pytest.skip(str(err))
    try:
        x, labels = test_inputs(str(loaded.meta.get("preprocessing", "dequantized")))
    except MNISTUnavailable as err:  # pragma: no cover
        pytest.skip(f"MNIST is not on this machine ({err}); run `python -m explorer_core data fetch mnist`")
    conditional = bool(getattr(loaded.model, "conditional", False))
    return request.param, loaded.model, x, labels, conditional


def _picture(shipped, i: int):
    """The page's computation for test image i (as ``views.components.posterior_panel`` calls it), kept."""
    name, model, x, labels, conditional = shipped
    if (name, i) not in _PICTURES:
        _PICTURES[name, i] = posterior_picture(model, x[i], int(labels[i]) if conditional else None)
    return _PICTURES[name, i]


def test_iwae_means_and_the_elbo_respect_the_quadrature_evidence(shipped):
    """Over N_IMAGES test images: log p(x) within its tolerance; ELBO <= IWAE_k <= log p(x) within the
    errors the page shows (3 standard errors + the grid's error + float32); the table prints no bound above
    log p(x); and the bounds rise with k within their errors."""
    name = shipped[0]
    verdicts = {"below": 0, "at": 0, "above": 0}
    for i in range(N_IMAGES):
        picture = _picture(shipped, i)
        evidence = picture.log_evidence
        assert 0 <= picture.evidence_error < P.EVIDENCE_TOLERANCE, (name, i, picture.evidence_error)
        assert picture.kl_q >= -F32, (name, i)
        for row in picture.iwae:
            verdicts[row.verdict] += 1
            # IWAE_k <= log p(x): no mean above it by more than the errors shown
            assert row.mean - evidence <= row.allowance, (name, i, row)
            assert row.verdict != "above" and row.shown <= evidence
            # ELBO <= IWAE_k (k = 1: equal in expectation), within the same errors
            below = P.bound_allowance(row.stderr, 0.0, evidence) + F32
            assert picture.elbo_q - row.mean <= below, (name, i, row)
        for lower, upper in itertools.pairwise(picture.iwae):
            assert lower.mean - upper.mean <= 3 * math.hypot(lower.stderr, upper.stderr) + F32, (name, i)
        check_table(panel.iwae_table(picture), picture)
    assert verdicts["below"] > 0


def test_the_stated_grid_error_holds_against_a_finer_grid(shipped):
    """The error the page states for log p(x) (its move at the last halving of the spacing) bounds its
    distance to a grid with half that spacing again, on the first two images and the worst-refined one."""
    name, model, x, labels, conditional = shipped
    indices = {0, 1, max(range(min(N_IMAGES, 20)), key=lambda i: _picture(shipped, i).grid.refinements)}
    for i in sorted(indices):
        picture = _picture(shipped, i)
        y = int(labels[i]) if conditional else None
        finer = P.grid_posterior(
            model, x[i], y, evidence_tolerance=0.0, max_refinements=picture.grid.refinements + 1
        )
        assert finer.refinements == picture.grid.refinements + 1
        assert abs(finer.log_evidence - picture.log_evidence) <= picture.evidence_error + F32, (name, i)


def _valley(model, x, y, a, b) -> float:
    """How far (nats) log p(x, z) dips between the points a and b [2] below the lower of the two: > 0 when
    a straight path from one to the other crosses a valley (they sit on different modes)."""
    t = torch.linspace(0, 1, 41, dtype=torch.float64)[:, None]
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    xx, yy = densities._one_image(model, x, y)
    with torch.no_grad():
        values = P.log_joint(model, xx, a + t * (b - a), yy).double()
    return float(torch.minimum(values[0], values[-1]) - values.min())


def test_the_worse_mode_note_appears_exactly_when_its_rule_holds(shipped):
    """Real q* fits: the animation ends on a frame from the top mode, and the note says "worse mode",
    exactly when the fit from the top mode beats the (converged) fit from q_phi by more than 0.5 nats; when
    it does, log p(x, z) dips by more than a nat between the two fits (they sit on different modes); when it
    does not, they reach the same ELBO within the tolerance and the note says so. Every number in the note
    is the state's."""
    name, model, x, labels, conditional = shipped
    seen = []
    for i in QSTAR_IMAGES[name]:
        y = int(labels[i]) if conditional else None
        frames, split = qstar_frames(model, x[i], _picture(shipped, i), y)
        difference = split.elbo_from_mode - split.elbo_from_phi
        worse = difference > P.MODE_TOLERANCE_NATS
        seen.append(worse)
        assert split.phi_on_worse_mode == worse == frames[-1].from_mode, (name, i, difference)
        from_phi = frames[-2] if worse else frames[-1]
        assert from_phi.elbo == split.elbo_from_phi and not from_phi.from_mode
        assert from_phi.step == split.q_star_from_phi.step >= QSTAR_STEPS  # converged, maybe continued
        if worse:  # the last frame is the fit from the mode, the best q*, on another mode: a valley between
            assert frames[-1].elbo == split.elbo_from_mode == split.elbo_optimal
            assert _valley(model, x[i], y, from_phi.mean, split.q_star_from_mode.mean) > 1.0, (name, i)
        else:
            assert abs(difference) <= P.MODE_TOLERANCE_NATS
        note = panel.mode_note(split)
        assert ("sits on a worse mode" in note) == worse and ("not on a worse mode" in note) == (not worse)
        assert f"{split.elbo_from_phi:.2f}" in note and f"{split.elbo_from_mode:.2f}" in note
        # the split's inequalities: q* is at least as good as q_phi and as either fit
        assert split.elbo_optimal >= max(split.elbo_amortized, split.elbo_from_phi, split.elbo_from_mode)
        assert split.approximation_gap >= -(F32 + _picture(shipped, i).evidence_error)
        assert split.amortization_gap >= 0
    if name == "vae-cb-l2":  # both answers occur in the sweep
        assert any(seen) and not all(seen)
