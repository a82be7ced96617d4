"""Factor analysis: data, closed forms (against Monte Carlo and Bayes' rule), EM against scikit-learn."""

import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import FactorAnalysis as SkFactorAnalysis

from explorer_core.data import make_fa_dataset
from explorer_core.evaluation.metrics import evaluate_fa
from explorer_core.inference.fa_em import fit_fa_em
from explorer_core.models.factor_analysis import FAConfig, FactorAnalysis, fa_marginal


@pytest.fixture(scope="module")
def data():
    return make_fa_dataset()


def exact_model(posterior: str = "full", seed: int = 3) -> FactorAnalysis:
    """A model in float64 whose q(z|x) is set to the exact posterior (possible for the full family)."""
    model = FactorAnalysis(FAConfig(posterior=posterior, seed=seed)).double()
    with torch.no_grad():
        W_over_phi = model.W / (model.sigma**2)[:, None]
        cov = torch.linalg.inv(torch.eye(2, dtype=torch.float64) + model.W.T @ W_over_phi)
        model.V.copy_(cov @ W_over_phi.T)
        chol = torch.linalg.cholesky(cov)
        model.chol_offdiag.copy_(torch.tril(chol, -1))
        model.pre_chol_diag.copy_(torch.log(torch.expm1(torch.diagonal(chol))))
    return model


def test_paper_data_reproduces_the_reference_evidence(data):
    true = fa_marginal(data.true_W, data.true_sigma)
    assert data.x_train.shape == data.x_test.shape == (1000, 3)
    assert true.log_prob(data.x_train.double()).mean().item() == pytest.approx(-3.9348, abs=5e-5)
    assert true.log_prob(data.x_test.double()).mean().item() == pytest.approx(-3.9705, abs=5e-5)
    assert data.is_paper_data


def test_new_data_sets_and_bad_sizes():
    other = make_fa_dataset(seed=1, n_train=50, n_test=20, noise_scale=2.0)
    assert other.x_train.shape == (50, 3) and other.x_test.shape == (20, 3)
    assert not other.is_paper_data
    assert torch.allclose(other.true_sigma, 2 * torch.tensor([0.4, 0.2, 0.3], dtype=torch.float64))
    with pytest.raises(ValueError, match="n_train"):
        make_fa_dataset(n_train=1)
    with pytest.raises(ValueError, match="noise_scale"):
        make_fa_dataset(noise_scale=0.0)


def test_evidence_matches_monte_carlo_integration(data):
    model = FactorAnalysis(FAConfig(seed=1)).double()
    x = data.x_test[:5].double()
    torch.manual_seed(0)
    z = model.prior().sample((400_000,))  # [S, 2]
    log_lik = model.decode(z[:, None, :]).log_prob(x)  # [S, 5]
    monte_carlo = torch.logsumexp(log_lik, 0) - math.log(len(z))
    assert torch.allclose(model.evidence(x), monte_carlo, rtol=0.003, atol=0.01)


def test_exact_posterior_is_bayes_rule(data):
    model = FactorAnalysis(FAConfig(seed=2)).double()
    x = data.x_test[:7].double()
    z = torch.randn(7, 2, dtype=torch.float64)
    bayes = model.decode(z).log_prob(x) + model.prior().log_prob(z) - model.evidence(x)
    assert torch.allclose(model.exact_posterior(x).log_prob(z), bayes, atol=1e-10)


def test_elbo_plus_gap_is_the_evidence(data):
    model = exact_model()
    with torch.no_grad():  # move q away from the exact posterior, so the gap is clearly positive
        model.V.add_(
            0.3 * torch.randn(model.V.shape, generator=torch.Generator().manual_seed(0), dtype=model.V.dtype)
        )
    x = data.x_test[:50].double()
    torch.manual_seed(0)
    n = 100_000
    with torch.no_grad():
        gap = model.gap(x)
        q = model.encode(x)
        reconstruction = model.decode(q.rsample((n,))).log_prob(x)  # [n, 50]
        elbo = model.elbo(x, n_samples=n)
        standard_error = reconstruction.std(0) / n**0.5
        assert (gap > 0.01).all()
        assert ((elbo + gap - model.evidence(x)).abs() < 5 * standard_error).all()


def test_exact_q_makes_the_bound_tight(data):
    model = exact_model()
    x = data.x_test[:20].double()
    torch.manual_seed(0)
    with torch.no_grad():
        assert model.gap(x).abs().max() < 1e-9
        torch.testing.assert_close(model.elbo(x, n_samples=100_000), model.evidence(x), atol=0.01, rtol=0)


@pytest.mark.parametrize("family", ["full", "diagonal", "fixed"])
def test_posterior_families(family):
    model = FactorAnalysis(FAConfig(posterior=family, fixed_posterior_std=0.1))
    L = model.posterior_scale_tril.detach()
    assert torch.equal(L, torch.tril(L))
    if family != "full":
        assert torch.equal(L, torch.diag(torch.diagonal(L)))
    names = {id(p) for p in model.inference_parameters()}
    assert id(model.V) in names
    assert len(names) == {"full": 3, "diagonal": 2, "fixed": 1}[family]
    if family == "fixed":
        assert torch.allclose(torch.diagonal(L), torch.full((2,), 0.1))
    assert {id(p) for p in model.generative_parameters()} == {id(model.W), id(model.pre_sigma)}
    assert len(list(model.parameters())) == len(names) + 2


def test_unknown_family_is_rejected():
    with pytest.raises(ValueError, match="posterior must be one of"):
        FAConfig(posterior="mixture")


def test_em_matches_scikit_learn(data):
    x = data.x_train.double().numpy()
    x = x - x.mean(0)  # scikit-learn fits a mean; on centred data the two models coincide
    ours = fit_fa_em(torch.from_numpy(x))
    sk = SkFactorAnalysis(n_components=2, tol=1e-12, max_iter=100_000).fit(x)
    assert ours.train_log_likelihood == pytest.approx(sk.score(x), abs=1e-6)
    ours_cov = (ours.W @ ours.W.T + torch.diag(ours.sigma**2)).numpy()
    np.testing.assert_allclose(ours_cov, sk.get_covariance(), atol=1e-5)
    test = data.x_test.double().numpy() - x.mean(0)
    np.testing.assert_allclose(
        ours.evidence(torch.from_numpy(test)).numpy(), sk.score_samples(test), atol=1e-5
    )


def test_mle_beats_the_true_model_on_the_training_set(data):
    mle = fit_fa_em(data.x_train)
    true_train = fa_marginal(data.true_W, data.true_sigma).log_prob(data.x_train.double()).mean().item()
    assert mle.train_log_likelihood > true_train
    assert mle.evidence(data.x_test).mean().item() == pytest.approx(-3.9721, abs=5e-4)


def test_em_rejects_bad_data():
    with pytest.raises(ValueError, match="NaN"):
        fit_fa_em(torch.tensor([[0.0, 1.0, float("nan")], [1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match="N >= 2"):
        fit_fa_em(torch.zeros(1, 3))


def test_evaluate_reports_consistent_terms(data):
    model = FactorAnalysis()
    metrics = evaluate_fa(model, data.x_test, n_samples=4)
    assert metrics.elbo == pytest.approx(metrics.reconstruction - metrics.kl, abs=1e-4)
    assert metrics.elbo < metrics.evidence and metrics.gap > 0
    assert metrics.exact_elbo == pytest.approx(metrics.evidence - metrics.gap)


def test_samples_follow_the_model_covariance():
    model = FactorAnalysis(FAConfig(seed=6)).double()
    with torch.no_grad():
        x = model.sample(200_000, generator=torch.Generator().manual_seed(0))
        again = model.sample(200_000, generator=torch.Generator().manual_seed(0))
        assert torch.equal(x, again)  # fixed noise: the same generator seed gives the same points
        cov = model.marginal().covariance_matrix
    assert torch.allclose(torch.cov(x.T), cov, atol=0.05 * cov.abs().max().item())
