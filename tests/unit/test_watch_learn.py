"""The live VAE of the "Watch it learn" page: E-steps touch only phi, M-steps only theta; fixed evaluation
noise; the tutorial's E/M pattern from scratch; the map's frame-to-frame alignment; export and reload."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

import explorer_core.explore.watch.measurement as watch_module
from explorer_core.artifacts import load_model
from explorer_core.data import MNISTUnavailable
from explorer_core.evaluation.metrics import iwae_bound
from explorer_core.explore.watch import (
    WatchConfig,
    WatchData,
    WatchError,
    WatchExperiment,
    load_watch_data,
)
from explorer_core.explore.watch.measurement import _orthogonal_align
from explorer_core.figures.watch import bound_chart, kl_dims_chart, terms_chart
from explorer_core.jobs import done_models, read_run

SMALL = WatchConfig(hidden=(32,), n_train=200, batch_size=20, n_eval=20, n_map=30, iwae_k=8, seed=3)


def synthetic_data(n_train: int = 200, n_eval: int = 20, n_map: int = 30, seed: int = 0) -> WatchData:
    """Binary 'images' with structure (two prototypes plus noise) so that a VAE has something to learn."""
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(2, 784, generator=g) > 0.7).float()

    def draw(n):
        labels = torch.randint(0, 2, (n,), generator=g)
        flips = (torch.rand(n, 784, generator=g) < 0.05).float()
        return (protos[labels] + flips) % 2, labels

    x_train, _ = draw(n_train)
    x_eval, y_eval = draw(n_eval)
    x_map, y_map = draw(n_map)
    return WatchData(x_train, x_eval, y_eval, x_map, y_map, x_test=x_eval.clone())


def params(parameters) -> list[torch.Tensor]:
    return [p.detach().clone() for p in parameters]


def identical(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture
def small() -> WatchExperiment:
    return WatchExperiment(SMALL, synthetic_data())


def test_e_phase_leaves_theta_bit_identical_and_moves_phi(small):
    theta, phi = params(small.model.generative_parameters()), params(small.model.inference_parameters())
    assert small.run("e_step", 30, steps_per_frame=10) == 30
    assert identical(theta, params(small.model.generative_parameters()))
    assert not identical(phi, params(small.model.inference_parameters()))


def test_m_phase_leaves_phi_bit_identical_and_moves_theta(small):
    theta, phi = params(small.model.generative_parameters()), params(small.model.inference_parameters())
    assert small.run("m_step", 30, steps_per_frame=10) == 30
    assert identical(phi, params(small.model.inference_parameters()))
    assert not identical(theta, params(small.model.generative_parameters()))


def test_evaluation_uses_fixed_noise(small):
    """Same parameters, same numbers: the curves move only when the parameters move."""
    a, b = small.measure(), small.measure()
    assert a == b
    assert math.isfinite(a.elbo) and math.isfinite(a.iwae)
    assert a.gap == pytest.approx(a.iwae - a.elbo)
    assert a.elbo == pytest.approx(a.reconstruction - a.kl)
    assert sum(a.kl_per_dim) == pytest.approx(a.kl, rel=1e-6)
    assert len(a.kl_per_dim) == SMALL.latent_dim


def test_frames_never_span_two_phases_and_history_matches(small):
    small.enqueue("e_step", 15)
    small.enqueue("m_step", 15)
    frame = small.frame(100)
    assert frame is not None and frame.steps_run == 15 and frame.phase == "e_step"
    while small.pending:
        small.frame(7)
    h = small.history
    assert small.steps == 30
    assert h.segments == [["e_step", 1, 15], ["m_step", 16, 30]]
    assert h.step == [0, 15, 22, 29, 30]
    assert h.phase == ["init", "e_step", "m_step", "m_step", "m_step"]
    assert len(h.elbo) == len(h.iwae) == len(h.gap) == len(h.kl) == 5


def test_changing_k_re_measures_and_lr_changes_apply(small):
    small.run("joint", 10)
    small.set_iwae_k(32)
    assert small.latest.metrics.k == 32 and small.history.k[-1] == 32
    small.set_learning_rates(3e-4, 1e-2)
    assert small.optimizers.inference.param_groups[0]["lr"] == 3e-4
    assert small.optimizers.generative.param_groups[0]["lr"] == 1e-2
    with pytest.raises(WatchError):
        small.set_learning_rates(lr_inference=-1.0)
    with pytest.raises(WatchError):
        small.set_iwae_k(0)


@pytest.mark.parametrize(
    "changes",
    [
        {"latent_dim": 0},
        {"hidden": (0,)},
        {"hidden": ()},
        {"likelihood": "gaussian"},
        {"n_train": 10},
        {"batch_size": 0},
        {"batch_size": 10**6},
        {"lr_inference": float("nan")},
        {"lr_generative": 100.0},
        {"iwae_k": 0},
        {"n_eval": 1},
        {"seed": -1},
    ],
)
def test_absurd_hyperparameters_give_clear_errors(changes):
    with pytest.raises(WatchError):
        replace(WatchConfig(), **changes)


def test_nan_stops_the_run_and_restores_the_frame_start(small, monkeypatch):
    small.run("joint", 5)
    before, steps = params(small.model.parameters()), small.steps
    nan = replace(small.latest.metrics, elbo=float("nan"))
    monkeypatch.setattr(small, "measure", lambda give_way=None: nan)
    small.enqueue("m_step", 10)
    assert small.frame(10) is None
    assert "NaN" in small.error and "smaller learning rates" in small.error
    assert not small.pending and small.steps == steps
    assert identical(before, params(small.model.parameters()))  # the frame's steps were undone


def test_pca_plane_is_aligned_from_frame_to_frame():
    ex = WatchExperiment(replace(SMALL, latent_dim=5), synthetic_data())
    previous = ex.latest.coords
    for _ in range(4):
        ex.run("joint", 5)
        frame = ex.latest
        # the plane's basis stays orthonormal and the coordinates are the projections on it
        np.testing.assert_allclose(frame.basis @ frame.basis.T, np.eye(2), atol=1e-5)
        mu = ex.latent_means()
        np.testing.assert_allclose((mu - frame.centre) @ frame.basis.T, frame.coords, atol=1e-4)
        # aligned: no worse a match to the previous frame than the raw principal axes or any sign flip
        aligned_err = np.linalg.norm(frame.coords - previous)
        for flip in (np.diag([-1, 1]), np.diag([1, -1]), np.diag([-1, -1])):
            assert aligned_err <= np.linalg.norm(frame.coords @ flip - previous) + 1e-4
        previous = frame.coords


def test_orthogonal_align_undoes_a_rotation_and_a_flip():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 2)).astype(np.float32)
    angle = 1.1
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ np.diag([1, -1])
    moved = points @ rotation.astype(np.float32)
    r = _orthogonal_align(moved, points)
    np.testing.assert_allclose(moved @ r, points, atol=1e-5)


def test_export_appears_as_a_done_run_and_loads(small, tmp_path):
    with pytest.raises(WatchError):
        small.export(tmp_path)  # nothing learnt yet
    small.run("joint", 20)
    path = small.export(tmp_path, name="watch-test")
    loaded = load_model(path)
    assert loaded.family == "vae" and loaded.model.config.latent_dim == SMALL.latent_dim
    assert loaded.meta["preprocessing"] == "binarized"
    assert "after 20 live steps" in loaded.meta["training"]["stopped"]
    assert json.loads(path.read_text())["watch"]["steps"] == 20
    for a, b in zip(loaded.model.state_dict().values(), small.model.state_dict().values(), strict=True):
        assert torch.equal(a, b.cpu())
    run = read_run(path.parent)
    assert run is not None and run.state == "done" and run.model_json == path
    models = done_models("vae", root=tmp_path)
    assert [m["run_id"] for m in models] == ["watch-test"]
    rows = [json.loads(line) for line in (path.parent / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 20 and rows[-1]["kind"] == "step"


def test_charts_build_from_the_history(small):
    small.run("e_step", 10, steps_per_frame=5)
    small.run("m_step", 10, steps_per_frame=5)
    h = small.history
    spec = bound_chart(h.step, h.elbo, h.iwae, h.segments, small.config.iwae_k)
    json.dumps(spec, allow_nan=False)  # plain JSON for the canvas
    top, gap = spec["panels"]
    assert [b["label"] for b in top["bands"]] == ["E", "M"]  # E and M shaded
    iwae, elbo = top["lines"]
    assert len(iwae["y"]) == len(h.step) == 5
    np.testing.assert_allclose(gap["lines"][0]["y"], np.subtract(iwae["y"], elbo["y"]), atol=2e-4)
    terms = terms_chart(h.step, h.reconstruction, h.kl, h.segments)
    json.dumps(terms, allow_nan=False)
    bars = kl_dims_chart([0.5, 0.001], [True, False])
    assert [line["x"][0] for line in bars["panels"][0]["lines"]] == [1.0, 2.0]
    assert bars["panels"][0]["lines"][1]["color"] != bars["panels"][0]["lines"][0]["color"]  # inactive
    m = small.latest.metrics  # the bars' colours follow the active-units rule the count uses
    assert len(m.active_dims) == len(m.kl_per_dim) and sum(m.active_dims) == m.active_units
    # a value that is not finite becomes a break in the line, not an invalid JSON number
    spec = bound_chart([0, 1], [float("nan"), -100.0], [-90.0, -95.0], [], 8)
    assert spec["panels"][0]["lines"][1]["y"][0] is None
    json.dumps(spec, allow_nan=False)


def test_views_have_the_documented_shapes(small):
    region = small.map_region()
    assert region[0][0] < 0 < region[0][1]
    assert small.manifold(region, 4).shape == (4 * 28, 4 * 28)
    assert small.reconstructions(5).shape == (2 * 28, 5 * 28)
    assert small.decode_means(np.zeros((3, 2), np.float32)).shape == (3, 28, 28)


def play_out(ex: WatchExperiment, max_frames: int = 500) -> list:
    """Collect frames from the background thread as the page does, until it is done."""
    frames = []
    for _ in range(max_frames):
        frame = ex.collect(timeout_s=2.0)
        if frame is not None:
            frames.append(frame)
        elif not ex.running:
            return frames
    raise AssertionError("the background thread did not finish")


def test_background_thread_runs_a_schedule_unmixed_and_freezes_theta_in_e(small):
    """A queued E, M, E, M schedule played by the thread: exactly those phases, no joint step between them,
    every curve point inside one phase, theta bit-identical over each E-phase and phi over each M-phase."""
    small.enqueue_schedule((("e_step", 12), ("m_step", 9), ("e_step", 7), ("m_step", 5)))
    theta = params(small.model.generative_parameters())
    small.start()
    frames = play_out(small)
    assert small.steps == 33 and small.queued_steps == 0 and small.error is None
    assert small.history.segments == [
        ["e_step", 1, 12],
        ["m_step", 13, 21],
        ["e_step", 22, 28],
        ["m_step", 29, 33],
    ]
    h = small.history
    assert h.step[-1] == 33 and frames[-1].step == 33
    # every phase's last step is evaluated, so each phase ends with a point of its own
    for _, _, last in h.segments:
        assert last in h.step
    for step, phase in zip(h.step[1:], h.phase[1:], strict=True):
        assert any(p == phase and a <= step <= b for p, a, b in h.segments), (step, phase)
    assert not identical(theta, params(small.model.generative_parameters()))  # the M-phases moved theta


def test_background_e_phase_is_bit_identical_in_theta(small):
    theta, phi = params(small.model.generative_parameters()), params(small.model.inference_parameters())
    small.enqueue("e_step", 25)
    small.start()
    play_out(small)
    assert small.steps == 25
    assert identical(theta, params(small.model.generative_parameters()))
    assert not identical(phi, params(small.model.inference_parameters()))
    # the view model (what the page draws) holds the live parameters once the thread is done
    for a, b in zip(small.view_model.parameters(), small.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_autoplay_steps_never_enter_the_queue_and_stop_hands_over(small):
    small.start(autoplay="joint")
    while small.steps < 6:
        small.collect(timeout_s=2.0)
    assert small.queued_steps == 0  # autoplay steps are not queued
    small.enqueue("e_step", 5)  # what the page's E-step button does while Play runs free
    small.start(autoplay=None)
    play_out(small)
    phases = [p for p, _, _ in small.history.segments]
    assert (
        phases == ["joint", "e_step"] and small.history.segments[-1][2] - small.history.segments[-1][1] == 4
    )
    small.start(autoplay="m_step")
    while small.latest.step <= small.history.segments[-1][2] - 1 or small.last_phase != "m_step":
        small.collect(timeout_s=2.0)
    small.stop()
    assert not small.running
    small.collect(0.0)  # the steps taken since the last frame were handed over at the stop
    assert small.latest.step == small.steps
    with pytest.raises(WatchError):
        small.start(autoplay="gaussian")


def test_collect_waits_for_the_steps_per_frame_asked_for(small):
    small.start(autoplay="joint")
    try:
        for _ in range(3):
            before = small.latest.step
            frame = small.collect(timeout_s=30.0, min_steps=7)
            assert frame is not None and frame.step - before >= 7
    finally:
        small.stop()


def test_collect_gives_way_before_and_within_each_evaluation_not_while_nothing_came(small, monkeypatch):
    """The page's budget waits for other pages' gestures there: after the wait for the parameters, before
    the evaluation, between its chunks of validation images and before the map's encoding; a collect that
    got nothing new does not call it."""
    monkeypatch.setattr(watch_module, "EVAL_CHUNK", 8)  # the 20 validation images in 3 chunks
    calls = []
    small.start(autoplay="joint")
    try:
        frame = small.collect(timeout_s=30.0, min_steps=3, give_way=lambda: calls.append(small.steps))
        assert frame is not None
    finally:
        small.stop()
    assert len(calls) >= 1 + 2 + 1  # before, between the 3 chunks, before the map
    small.collect(0.0)  # what the stop handed over
    calls.clear()
    assert small.collect(0.0, give_way=lambda: calls.append(1)) is None and calls == []


def test_the_measure_in_chunks_is_the_measure_of_one_pass(small, monkeypatch):
    """Every term is per image: the chunks change the numbers by float rounding at most."""
    monkeypatch.setattr(watch_module, "EVAL_CHUNK", 8)
    small.run("joint", 5)
    m = small.measure()
    with torch.no_grad():
        terms = small.view_model.importance_terms(small._x_eval, k=small.config.iwae_k, eps=small._eval_eps)
    assert m.elbo == pytest.approx(terms.elbo.elbo.mean().item(), rel=1e-5, abs=1e-3)
    assert m.iwae == pytest.approx(iwae_bound(terms.log_weights).mean().item(), rel=1e-5, abs=1e-3)
    assert m.kl == pytest.approx(terms.elbo.kl.mean().item(), rel=1e-5, abs=1e-4)
    assert m.kl_per_dim == pytest.approx(terms.kl_per_dim.mean(0).tolist(), rel=1e-5, abs=1e-4)


def test_nan_in_the_thread_stops_it_and_goes_back(small, monkeypatch):
    small.run("joint", 5)
    before, steps = params(small.model.parameters()), small.steps
    nan = replace(small.latest.metrics, iwae=float("nan"))
    monkeypatch.setattr(small, "measure", lambda give_way=None: nan)
    small.enqueue("m_step", 1000)
    small.start()
    play_out(small)
    assert "NaN" in small.error and small.queued_steps == 0 and not small.running
    assert small.steps == steps and identical(before, params(small.model.parameters()))


@pytest.fixture(scope="module")
def mnist_em_data():
    config = WatchConfig(hidden=(64,), n_train=2000, n_eval=100, n_map=100, iwae_k=64)
    try:
        return config, load_watch_data(config)
    except MNISTUnavailable as err:
        pytest.skip(f"MNIST is not available: {err}")


def test_em_schedule_from_scratch_shows_the_tutorial_pattern(mnist_em_data):
    """E-phases close the ELBO-IWAE gap; M-phases raise the IWAE bound (the tutorial's EM view of AEVB)."""
    config, data = mnist_em_data
    ex = WatchExperiment(config, data)
    for phase in ("e_step", "m_step", "e_step", "m_step"):
        before = ex.latest.metrics
        ex.run(phase, 100, steps_per_frame=100)
        after = ex.latest.metrics
        if phase == "e_step":
            assert after.gap < before.gap, (phase, before, after)
        else:
            assert after.iwae > before.iwae, (phase, before, after)


def test_beta_changes_the_training_objective_not_the_elbo_the_curves_show(small):
    from explorer_core.explore.watch import WatchError

    assert small.kl_weight == 1.0
    m0 = small.measure()
    assert 0 <= m0.active_units <= small.config.latent_dim
    small.set_kl_weight(8.0)
    assert small.kl_weight == 8.0
    # the measurement ignores beta: the same parameters give the same (true) ELBO
    assert small.measure().elbo == pytest.approx(m0.elbo, abs=1e-9)
    with pytest.raises(WatchError, match="beta"):
        small.set_kl_weight(-1)


def test_the_latest_maps_are_kept_for_the_gif(small):
    small.run("joint", 30, steps_per_frame=10)
    maps = small.recent_maps()
    assert [step for step, _ in maps] == [0, 10, 20, 30]
    assert all(coords.shape == (len(small.map_labels), 2) for _, coords in maps)
    small.set_iwae_k(4)  # a re-measure of the same step keeps one map of it
    assert [step for step, _ in small.recent_maps()] == [0, 10, 20, 30]


def _texts(path) -> list[str]:
    """Every string of a source file, docstrings included; an f-string with ``{}`` for its fields."""
    import ast

    texts = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr):
            texts.append("".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            texts.append(node.value)
    return texts


def test_watch_never_calls_the_iwae_bound_log_p_x():
    """Issue 33, item 4: the M-step text called log p(x) "the IWAE bound". The IWAE bound is a lower bound
    on log p(x): every sentence of the Watch page (its view, its experiment, its figures) that names both
    says so (or writes IWAE ≤ log p(x)), and none puts one in apposition to the other."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    files = [
        root / "views" / "watch.py",
        *sorted((root / "explorer_core" / "explore" / "watch").glob("*.py")),
    ]
    files.append(root / "explorer_core" / "figures" / "watch.py")
    lower = re.compile(r"lower bound on (?:it|log p\(x\))|≤ log p\(x\)|<= log p\(x\)")
    confused = re.compile(
        r"log p\(x\) \(the IWAE|IWAE bound \(log p\(x\)|IWAE bound,? (?:i\.e\.|that is,?)? ?log p\(x\)"
        r"|(?:estimate|value) of log p\(x\)|tightest estimate",
    )
    checked = 0
    for path in files:
        for text in _texts(path):
            flat = " ".join(text.split())
            assert not confused.search(flat), f"{path.name}: {flat}"
            for sentence in re.split(r"(?<=[.!?;])\s+(?=[A-Z*(])", flat):
                if "IWAE" in sentence and "log p(x)" in sentence:
                    checked += 1
                    assert lower.search(sentence), f"{path.name}: {sentence}"
    assert checked >= 5  # the intro, the note, the E- and M-step readings, the chart's legend at least


def test_fa_and_watch_share_one_stepped_experiment_skeleton():
    """Issue 37, item 4: both experiments queue through inference.stepper.SteppedExperiment; each raises its
    own error for a bad queue, and a new queue clears the last error."""
    from explorer_core.data import make_fa_dataset
    from explorer_core.explore.fa import FAExperiment
    from explorer_core.inference.stepper import SteppedExperiment

    fa = FAExperiment(make_fa_dataset(0, 100, 100))
    assert isinstance(fa, SteppedExperiment) and issubclass(WatchExperiment, SteppedExperiment)
    fa.error = "old"
    fa.enqueue("e_step", 3)
    assert fa.queued_steps == 3 and fa.error is None and fa.queue_room > 0
    with pytest.raises(ValueError):
        fa.enqueue("sideways", 1)
    fa.clear_queue()
    assert fa.queued_steps == 0
    assert WatchExperiment.queue_error is WatchError
