"""VAE and CVAE: shapes, finite ELBO, closed-form KL vs Monte Carlo, the CB mean, IWAE, parameter split."""

import math

import pytest
import torch
from torch.distributions import ContinuousBernoulli, kl_divergence

from explorer_core.models.vae import CVAE, VAE, VAEConfig

SMALL = {"latent_dim": 3, "hidden": (16, 8), "dropout": 0.1}


def make(cls, likelihood="continuous_bernoulli", **kw):
    torch.manual_seed(0)
    return cls(VAEConfig(**{**SMALL, "likelihood": likelihood, **kw})).eval()


def batch(n=5, binary=False):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 784, generator=g)
    return ((x > 0.5).float() if binary else x), torch.arange(n) % 10


@pytest.mark.parametrize("cls", [VAE, CVAE])
@pytest.mark.parametrize("likelihood", ["continuous_bernoulli", "bernoulli"])
def test_shapes_and_finite_elbo(cls, likelihood):
    model = make(cls, likelihood)
    x, y = batch(binary=likelihood == "bernoulli")
    terms = model.elbo_terms(x, y, n_samples=4)
    assert terms.elbo.shape == terms.reconstruction.shape == terms.kl.shape == (5,)
    assert torch.isfinite(terms.elbo).all() and (terms.kl >= 0).all()
    torch.testing.assert_close(terms.elbo, terms.reconstruction - terms.kl)
    q = model.encode(x, y)
    assert q.batch_shape == (5,) and q.event_shape == (3,)
    assert model.decode(q.rsample((2,)), y.expand(2, 5)).batch_shape == (2, 5)
    assert model.log_weights(x, y, k=7).shape == (7, 5)
    assert model.sample(4, torch.Generator().manual_seed(0)).shape == (4, 784)


def test_cvae_needs_valid_labels():
    model = make(CVAE)
    x, _ = batch()
    with pytest.raises(ValueError, match="labels"):
        model.elbo(x)
    with pytest.raises(ValueError, match="labels"):
        model.elbo(x, torch.full((5,), 10))


@pytest.mark.parametrize("cls", [VAE, CVAE])
def test_closed_form_kl_matches_monte_carlo(cls):
    model = make(cls)
    x, y = batch(3)
    with torch.no_grad():
        q, prior = model.encode(x, y), model.prior(y)
        torch.manual_seed(2)
        z = q.sample((200_000,))
        monte_carlo = (q.log_prob(z) - prior.log_prob(z)).mean(0)
        torch.testing.assert_close(kl_divergence(q, prior), monte_carlo, atol=0.02, rtol=0.01)


def test_cvae_prior_depends_on_the_label():
    model = make(CVAE)
    with torch.no_grad():
        means = model.prior(torch.arange(10)).mean
    assert means.shape == (10, 3) and torch.unique(means, dim=0).shape[0] == 10


def test_continuous_bernoulli_mean_is_torchs_and_the_formula():
    model = make(VAE)
    with torch.no_grad():
        z = torch.randn(4, 3)
        lam = torch.sigmoid(model.decoder_logits(z))
        mean = model.decode(z).mean
    torch.testing.assert_close(mean, ContinuousBernoulli(probs=lam).mean, atol=1e-5, rtol=1e-5)
    lam64 = torch.tensor([0.1, 0.3, 0.7, 0.95], dtype=torch.float64)
    formula = lam64 / (2 * lam64 - 1) + 1 / (2 * torch.atanh(1 - 2 * lam64))
    torch.testing.assert_close(ContinuousBernoulli(probs=lam64).mean, formula)
    assert ContinuousBernoulli(probs=torch.tensor(0.5)).mean.item() == pytest.approx(0.5, abs=1e-4)


def test_iwae_bound_sits_above_the_elbo():
    model = make(VAE, "bernoulli", dropout=0.0)
    x, _ = batch(8, binary=True)
    with torch.no_grad():
        torch.manual_seed(3)
        elbo = model.elbo(x, n_samples=2000).mean()
        log_w = model.log_weights(x, k=2000)
        iwae = (torch.logsumexp(log_w, 0) - math.log(2000)).mean()
    assert iwae > elbo


@pytest.mark.parametrize("cls", [VAE, CVAE])
def test_inference_and_generative_parameters_partition_the_model(cls):
    model = make(cls)
    phi = {id(p) for p in model.inference_parameters()}
    theta = {id(p) for p in model.generative_parameters()}
    assert phi and theta and not phi & theta
    assert phi | theta == {id(p) for p in model.parameters()}
    if cls is CVAE:
        assert id(model.prior_mu.weight) in theta


def test_config_validation():
    with pytest.raises(ValueError, match="likelihood"):
        VAEConfig(likelihood="gaussian")
    with pytest.raises(ValueError, match="dropout"):
        VAEConfig(dropout=1.0)
    with pytest.raises(ValueError, match="latent_dim"):
        VAEConfig(latent_dim=0)


@pytest.mark.parametrize("cls", [VAE, CVAE])
def test_importance_terms_are_the_bounds_of_one_set_of_samples(cls):
    """One decoder pass gives what log_weights and elbo_terms give for the same noise."""
    model = make(cls)
    x, y = batch()
    eps = torch.randn(7, len(x), SMALL["latent_dim"], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        terms = model.importance_terms(x, y, k=7, eps=eps)
        elbo = model.elbo_terms(x, y, n_samples=7, eps=eps)
        log_w = model.log_weights(x, y, k=7, eps=eps)
    assert terms.log_weights.shape == (7, len(x)) and terms.kl_per_dim.shape == (len(x), SMALL["latent_dim"])
    torch.testing.assert_close(terms.log_weights, log_w)
    torch.testing.assert_close(terms.elbo.elbo, elbo.elbo)
    torch.testing.assert_close(terms.elbo.kl, elbo.kl)
    torch.testing.assert_close(terms.kl_per_dim.sum(-1), elbo.kl)
    with pytest.raises(ValueError, match="eps must have shape"):
        model.elbo_terms(x, y, n_samples=2, eps=eps)
