"""The AEVB step: phase control (bit-identical freezing), NaN handling, learning-rate validation."""

import pytest
import torch

from explorer_core.data import make_fa_dataset
from explorer_core.inference.aevb import NonFiniteError, aevb_step, make_optimizers
from explorer_core.models.factor_analysis import FAConfig, FactorAnalysis


def snapshot(params):
    return [p.detach().clone() for p in params]


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture
def setup():
    model = FactorAnalysis(FAConfig(seed=0))
    return model, make_optimizers(model, lr=1e-2), make_fa_dataset().x_train[:32]


@pytest.mark.parametrize(
    ("phase", "phi_moves", "theta_moves"),
    [("e_step", True, False), ("m_step", False, True), ("joint", True, True)],
)
def test_phase_updates_exactly_its_parameters(setup, phase, phi_moves, theta_moves):
    model, opts, x = setup
    phi0, theta0 = snapshot(model.inference_parameters()), snapshot(model.generative_parameters())
    for _ in range(5):
        elbo = aevb_step(model, opts, x, phase=phase)
    assert isinstance(elbo, float)
    assert same(phi0, model.inference_parameters()) is not phi_moves
    assert same(theta0, model.generative_parameters()) is not theta_moves


def test_e_step_raises_the_minibatch_elbo_without_touching_the_evidence(setup):
    model, opts, x = setup
    with torch.no_grad():
        before_elbo, before_evidence = model.elbo(x, n_samples=2000).mean(), model.evidence(x).mean()
    for _ in range(50):
        aevb_step(model, opts, x, phase="e_step")
    with torch.no_grad():
        assert model.elbo(x, n_samples=2000).mean() > before_elbo
        assert torch.equal(model.evidence(x).mean(), before_evidence)


def test_frozen_optimizer_keeps_its_state(setup):
    model, opts, x = setup
    aevb_step(model, opts, x, phase="e_step")
    assert len(opts.generative.state) == 0  # Adam's moments of theta never advanced during the E-step
    assert len(opts.inference.state) == 3


def test_non_finite_loss_leaves_everything_as_it_was(setup):
    model, opts, x = setup
    aevb_step(model, opts, x)  # Adam state exists
    params = snapshot(model.parameters())
    adam = {k: v["exp_avg"].clone() for k, v in opts.inference.state.items()}
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="not applied"):
        aevb_step(model, opts, bad)
    assert same(params, model.parameters())
    assert all(torch.equal(opts.inference.state[k]["exp_avg"], v) for k, v in adam.items())
    aevb_step(model, opts, x)  # training goes on afterwards


@pytest.mark.parametrize("lr", [0.0, -1.0, float("nan"), float("inf"), 11.0])
def test_absurd_learning_rates_are_rejected(lr):
    with pytest.raises(ValueError, match="learning rate"):
        make_optimizers(FactorAnalysis(), lr=lr)


def test_unknown_phase_is_rejected(setup):
    model, opts, x = setup
    with pytest.raises(ValueError, match="phase"):
        aevb_step(model, opts, x, phase="both")


def test_gradient_clipping_bounds_the_update(setup):
    model, _, x = setup
    sgd = make_optimizers(model, lr=1e-2)
    sgd.inference = torch.optim.SGD(list(model.inference_parameters()), lr=1.0)
    sgd.generative = torch.optim.SGD(list(model.generative_parameters()), lr=1.0)
    before = torch.cat([p.detach().flatten() for p in model.parameters()])
    aevb_step(model, sgd, x, max_grad_norm=0.5)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm() <= 0.5 + 1e-5


def test_a_kl_weight_ascends_reconstruction_minus_beta_kl_and_reports_the_true_elbo():
    from explorer_core.models.vae import VAE, VAEConfig

    torch.manual_seed(0)
    x = torch.rand(16, 784)
    results = {}
    for beta in (1.0, 4.0):
        torch.manual_seed(0)
        model = VAE(VAEConfig(latent_dim=3, hidden=(16,), dropout=0.0))
        opts = make_optimizers(model, lr=1e-3)
        torch.manual_seed(1)
        reported = aevb_step(model, opts, x, kl_weight=beta)
        results[beta] = (reported, [p.detach().clone() for p in model.parameters()])
    # the value returned is the true ELBO (same noise, same parameters before the step): beta does not enter
    assert results[1.0][0] == pytest.approx(results[4.0][0], abs=1e-5)
    # the step itself differs: beta weighs the KL's gradient
    assert any(not torch.equal(a, b) for a, b in zip(results[1.0][1], results[4.0][1], strict=True))
    with pytest.raises(ValueError, match="kl_weight"):
        aevb_step(model, opts, x, kl_weight=-1.0)
