"""What the FA page says about a phase follows from what the phase did (issue 33, item 3): the words
(rose / fell / stayed) agree with the signs of the measured changes beyond PHASE_CHANGE_TOLERANCE, over many
phase sequences, seeds and settings; and the learning-curve chart's default y range shows the gap."""

from __future__ import annotations

import re

import numpy as np
import pytest

from explorer_core.data import make_fa_dataset
from explorer_core.explore.fa import (
    PHASE_CHANGE_TOLERANCE,
    FAExperiment,
    FATrainingConfig,
    PhaseChange,
    change_words,
    describe_phase_change,
    last_phase_change,
    relation_words,
    trend,
)
from explorer_core.figures.fa import fa_curves_chart
from explorer_core.inference.fa_em import fit_fa_em

TOL = PHASE_CHANGE_TOLERANCE
NUMBER = r"(-?\d+\.\d{4})"
CLAUSE = re.compile(
    rf"the (exact ELBO|evidence log p\(x\)|gap) (?:(rose|fell) by {NUMBER} \({NUMBER} → {NUMBER}\)"
    rf"|(stayed) at {NUMBER} \(to within ([\d.e-]+)\))"
)
WORD = {1: "rose", -1: "fell", 0: "stayed"}


def clauses(sentence: str) -> dict[str, tuple[str, float | None, float | None, float]]:
    """The sentence's claims: quantity -> (word, amount, before, after)."""
    found = {}
    for m in CLAUSE.finditer(sentence):
        name = m.group(1)
        if m.group(2):
            found[name] = (m.group(2), float(m.group(3)), float(m.group(4)), float(m.group(5)))
        else:
            assert float(m.group(8)) == TOL  # the tolerance is stated as the one applied
            found[name] = (m.group(6), None, None, float(m.group(7)))
    return found


def check_sentence(sentence: str, phase: str, first: int, last: int, evidence, gap) -> dict[str, int]:
    """Assert that ``sentence`` says what the history did from step first - 1 to step last; returns the
    measured direction of each quantity."""
    assert sentence.startswith("Last phase: **")
    steps = last - first + 1
    assert f"× {steps} (" in sentence
    assert (f"step {first};" if steps == 1 else f"steps {first}–{last};") in sentence
    before = {"evidence log p(x)": evidence[first - 1], "gap": gap[first - 1]}
    after = {"evidence log p(x)": evidence[last], "gap": gap[last]}
    before["exact ELBO"] = evidence[first - 1] - gap[first - 1]
    after["exact ELBO"] = evidence[last] - gap[last]
    said = clauses(sentence)
    assert set(said) == set(before), sentence
    directions = {}
    for name, (word, amount, was, now) in said.items():
        delta = after[name] - before[name]
        direction = 1 if delta > TOL else -1 if delta < -TOL else 0
        directions[name] = direction
        assert word == WORD[direction], f"{name}: said {word!r} for a change of {delta:+.6f}\n{sentence}"
        assert now == pytest.approx(after[name], abs=5.1e-5)
        if direction:
            assert amount == pytest.approx(abs(delta), abs=5.1e-5) and amount >= TOL
            assert was == pytest.approx(before[name], abs=5.1e-5)
    # what the gap's change means, from the sign alone
    gap_words = {1: "away from|further apart", -1: "towards|closer together", 0: "as far"}
    assert re.search(gap_words[directions["gap"]], sentence), sentence
    assert ("tightened" in sentence) == (directions["gap"] < 0)
    assert ("loosened" in sentence) == (directions["gap"] > 0)
    return directions


# --- the rule on its own ------------------------------------------------------------------------------------
def test_trend_reads_a_change_within_the_tolerance_as_none():
    assert PHASE_CHANGE_TOLERANCE == 1e-4
    assert trend(0.0) == 0 and trend(0.99e-4) == 0 and trend(-0.99e-4) == 0
    assert trend(1.01e-4) == 1 and trend(-1.01e-4) == -1
    assert trend(0.5, tolerance=1.0) == 0 and trend(0.5, tolerance=0.0) == 1
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            trend(bad)
    with pytest.raises(ValueError):
        trend(1.0, tolerance=-1e-4)


def test_change_and_relation_words():
    assert change_words(-6.6083, -5.7707) == "rose by 0.8376 (-6.6083 → -5.7707)"
    assert change_words(2.1756, 0.2639) == "fell by 1.9117 (2.1756 → 0.2639)"
    assert change_words(-6.6083, -6.60835) == "stayed at -6.6083 (to within 0.0001)"
    assert relation_words(-3.98, -3.97) == "0.0100 below"
    assert relation_words(-3.96, -3.97) == "0.0100 above"
    assert relation_words(-3.97002, -3.97) == "level with"


@pytest.mark.parametrize(
    ("phase", "evidence", "gap", "meaning"),
    [
        # an M-phase whose gap falls (the issue's case: the text once said "the gap grows")
        ("m_step", (-6.6083, -5.7707), (2.1756, 0.2639), "towards it: the bound tightened"),
        ("m_step", (-5.7707, -5.3806), (0.1120, 0.1717), "away from it: the bound loosened"),
        ("e_step", (-6.6083, -6.6083), (34.8339, 2.1756), "towards the exact posterior p(z|x): the bound"),
        ("e_step", (-6.6083, -6.6083), (0.0100, 0.0400), "away from the exact posterior p(z|x): the bound"),
        ("e_step", (-6.6083, -6.6083), (0.0100, 0.01005), "as far from the exact posterior"),
        ("joint", (-5.5524, -5.2034), (0.1717, 0.1307), "ended closer together: the bound tightened"),
    ],
)
def test_the_sentence_follows_the_measured_changes(phase, evidence, gap, meaning):
    elbo = tuple(e - g for e, g in zip(evidence, gap, strict=True))
    change = PhaseChange(phase, 101, 200, elbo, evidence, gap)
    sentence = describe_phase_change(change)
    assert meaning in sentence
    check_sentence(sentence, phase, 101, 200, [0.0] * 100 + [evidence[0]] + [0.0] * 99 + [evidence[1]],
                   [0.0] * 100 + [gap[0]] + [0.0] * 99 + [gap[1]])  # fmt: skip
    assert "grows" not in sentence and "shrinks" not in sentence


def test_no_step_and_bad_input():
    assert describe_phase_change(None) == "No step yet: θ and φ are random."
    with pytest.raises(ValueError, match="unknown phase"):
        describe_phase_change(PhaseChange("sideways", 1, 1, (0.0, 0.0), (0.0, 0.0), (0.0, 0.0)))
    with pytest.raises(ValueError):
        describe_phase_change(PhaseChange("e_step", 1, 1, (0.0, float("nan")), (0.0, 0.0), (0.0, 0.0)))


# --- the rule against real runs -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_data():
    data = make_fa_dataset(seed=7, n_train=200, n_test=200)
    return data, fit_fa_em(data.x_train)


def random_schedule(rng: np.random.Generator) -> list[tuple[str, int]]:
    """3 to 5 phases of 1..60 steps; a phase may repeat (then it continues the same segment)."""
    phases = rng.choice(["e_step", "m_step", "joint"], size=int(rng.integers(3, 6)), p=[0.4, 0.4, 0.2])
    return [(str(phase), int(rng.choice([1, 2, 7, 25, 60]))) for phase in phases]


SWEEP = [  # (seed, posterior family, learning rate, batch size): settings where the gap can also rise
    (0, "full", 1e-2, 32),
    (1, "full", 3e-1, 8),
    (2, "diagonal", 3e-2, 16),
    (3, "fixed", 1e-1, 32),
    (4, "full", 1.0, 4),
    (5, "diagonal", 3e-1, 64),
    (6, "full", 3e-3, 1),
    (7, "fixed", 1e-2, 200),
    (8, "full", 1e-1, 16),
    (9, "diagonal", 1e-2, 32),
]


def test_phase_sentences_agree_with_the_numbers_over_many_runs(small_data):
    data, mle = small_data
    seen: set[tuple[str, str, int]] = set()
    for seed, family, lr, batch in SWEEP:
        rng = np.random.default_rng(seed)
        config = FATrainingConfig(posterior=family, lr=lr, batch_size=batch, seed=seed)
        fa = FAExperiment(data, config, mle=mle)
        assert describe_phase_change(last_phase_change(fa.history)).startswith("No step yet")
        for phase, n in random_schedule(rng):
            fa.run(phase, n)
            if fa.error:  # a NaN stopped the run: nothing more to say about it
                break
            h = fa.history
            segment_phase, first, last = h.phase_segments()[-1]
            assert (segment_phase, last) == (phase, fa.steps)
            sentence = describe_phase_change(last_phase_change(h))
            directions = check_sentence(sentence, phase, first, last, h.evidence, h.gap)
            if phase == "e_step":  # θ frozen: the evidence cannot move, and the text says so
                assert directions["evidence log p(x)"] == 0
                assert directions["exact ELBO"] == -directions["gap"]
            seen |= {(phase, name, d) for name, d in directions.items()}
            check_default_range(h, fa.true_evidence, fa.mle_evidence)
    # the sweep met the cases that matter: a gap that fell and one that rose in M-phases, a gap that rose in
    # an E-phase (a large step), and evidence that stayed in an E-phase and rose in an M-phase
    for case in [("m_step", "gap", -1), ("m_step", "gap", 1), ("e_step", "gap", -1), ("e_step", "gap", 1),
                 ("e_step", "evidence log p(x)", 0), ("m_step", "evidence log p(x)", 1)]:  # fmt: skip
        assert case in seen, case


def check_default_range(h, true_evidence: float, mle_evidence: float) -> None:
    """The default y range holds the latest ELBO and evidence and the reference lines."""
    chart = fa_curves_chart(h.elbo, h.evidence, h.gap, h.phase_segments(), true_evidence, mle_evidence)
    lo, hi = chart["panels"][0]["y"]["range"]
    for value in (h.elbo[-1], h.evidence[-1], true_evidence, mle_evidence):
        assert lo <= value <= hi


def test_the_issue_state_e100_then_m100():
    """E-step × 100 then M-step × 100 on the tutorial's data: the text says what the chart shows."""
    fa = FAExperiment(make_fa_dataset())
    fa.run("e_step", 100)
    fa.run("m_step", 100)
    h = fa.history
    sentence = describe_phase_change(last_phase_change(h))
    directions = check_sentence(sentence, "m_step", 101, 200, h.evidence, h.gap)
    assert h.gap[200] < h.gap[100]  # the gap fell during that M-phase ...
    assert directions["gap"] == -1 and "gap fell by" in sentence and "grow" not in sentence  # ... as it says
    chart = fa_curves_chart(h.elbo, h.evidence, h.gap, h.phase_segments(), fa.true_evidence, fa.mle_evidence)
    upper = chart["panels"][0]
    lo, hi = upper["y"]["range"]
    assert lo <= min(h.elbo[-1], h.evidence[-1]) and max(h.elbo[-1], h.evidence[-1]) <= hi
    assert h.gap[-1] / (hi - lo) > 0.04  # about 12 px of a 230 px panel (before: 0.6 %, 1-2 px)
    assert lo > h.elbo[0] and f"step 0: ELBO {h.elbo[0]:.2f} ↓" in upper["title"]  # clipped, marked
