"""The true posterior beside q(z|x) (explorer_core.inference.posterior): closed forms on a linear-Gaussian
"VAE" (factor analysis with a 2-D latent), then the shipped 2-D VAE on a few test images.

Closed forms (Bishop PRML eq. 12.42-12.43; Murphy 2012, section 12.1.2): with p(z) = N(0, I) and
p(x|z) = N(W z + b, diag psi), the evidence is p(x) = N(x; b, W W^T + diag psi) and the posterior is
N(S W^T Psi^-1 (x - b), S) with S = (I + W^T Psi^-1 W)^-1.
"""

import itertools
import math

import pytest
import torch
from torch import nn
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from explorer_core.inference import posterior as P
from explorer_core.inference.posterior import gaps
from explorer_core.models.base import ELBOTerms, LatentVariableModel


class LinearGaussian(LatentVariableModel):
    """Factor analysis written as a VAE: p(z) = N(0, I_L), p(x|z) = N(W z + b, diag psi), and a deliberately
    imperfect amortized q(z|x) = N(A x + c, diag s^2) (a diagonal Gaussian, like the VAE's)."""

    def __init__(self, latent_dim: int = 2, data_dim: int = 6, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn(data_dim, latent_dim, generator=g) * 0.8)
        self.b = nn.Parameter(torch.randn(data_dim, generator=g) * 0.3)
        self.psi = torch.rand(data_dim, generator=g) * 0.5 + 0.3
        self.A = nn.Parameter(torch.randn(latent_dim, data_dim, generator=g) * 0.2)
        self.c = nn.Parameter(torch.randn(latent_dim, generator=g) * 0.1)
        self.s = torch.full((latent_dim,), 0.35)

    # the exact answers
    def evidence(self, x: torch.Tensor) -> torch.Tensor:
        cov = self.W @ self.W.T + torch.diag(self.psi)
        return MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x)

    def exact_posterior(self, x: torch.Tensor) -> MultivariateNormal:
        precision = torch.eye(self.W.shape[1]) + self.W.T @ torch.diag(1 / self.psi) @ self.W
        cov = torch.linalg.inv(precision)
        mean = cov @ self.W.T @ ((x - self.b) / self.psi)
        return MultivariateNormal(mean, covariance_matrix=cov)

    # the model protocol
    def encode(self, x, y=None):
        return Independent(Normal(x @ self.A.T + self.c, self.s.expand(x.shape[0], -1)), 1)

    def decode(self, z, y=None):
        return Independent(Normal(z @ self.W.T + self.b, self.psi.sqrt()), 1)

    def prior(self, y=None):
        L = self.W.shape[1]
        return Independent(Normal(torch.zeros(L), torch.ones(L)), 1)

    def elbo_terms(self, x, y=None, n_samples=1):
        q = self.encode(x)
        rec = self.decode(q.rsample((n_samples,))).log_prob(x).mean(0)
        kl = kl_divergence(q, self.prior())
        return ELBOTerms(rec - kl, rec, kl)

    def sample(self, n, generator=None, y=None, means=False):
        z = torch.randn(n, self.W.shape[1], generator=generator)
        noise = 0 if means else torch.randn(n, self.W.shape[0], generator=generator) * self.psi.sqrt()
        return self.decode(z).mean + noise

    def inference_parameters(self):
        yield from (self.A, self.c)

    def generative_parameters(self):
        yield from (self.W, self.b)


@pytest.fixture(scope="module")
def linear():
    model = LinearGaussian().eval()
    with torch.no_grad():
        x = model.sample(3, torch.Generator().manual_seed(5))
    return model, x


def _q_phi(model, x):
    q = model.encode(x[None])
    return MultivariateNormal(q.mean[0], covariance_matrix=torch.diag(q.variance[0]))


@torch.no_grad()
def test_quadrature_matches_the_closed_forms(linear):
    model, xs = linear
    for x in xs:
        grid = P.grid_posterior(model, x)
        exact = model.exact_posterior(x)
        assert abs(grid.log_evidence - float(model.evidence(x))) < 1e-3
        torch.testing.assert_close(grid.mean, exact.mean.double(), atol=1e-4, rtol=0)
        torch.testing.assert_close(grid.cov, exact.covariance_matrix.double(), atol=1e-4, rtol=1e-3)
        kl = float(kl_divergence(_q_phi(model, x), exact))
        assert kl > 0.05  # q_phi is off, so the check is not trivial
        assert abs(grid.kl_q - kl) < 1e-3
        assert abs(grid.elbo_q - (float(model.evidence(x)) - kl)) < 1e-3
        assert abs(grid.q_mass - 1) < 1e-4 and grid.edge_nats >= P.TAIL_NATS
        # the grid's density is the exact posterior's wherever it holds mass (nodes far below the peak take
        # the coarse grid's values)
        dens = grid.log_density.reshape(-1)
        mass = dens >= dens.max() - P.TAIL_NATS
        assert mass.sum() > 500
        torch.testing.assert_close(
            dens[mass], exact.log_prob(grid.points[mass].float()).double(), atol=2e-3, rtol=0
        )


@torch.no_grad()
def test_the_grid_states_its_quadrature_error_and_refines_to_meet_it(linear):
    model, xs = linear
    for x in xs:
        grid = P.grid_posterior(model, x)
        exact = float(model.evidence(x))
        # the stated error: how far log p(x) moved from twice the spacing; below the tolerance, and at least
        # the error it states (a smooth posterior: the finer grid is far better than the move)
        assert 0 <= grid.evidence_error < P.EVIDENCE_TOLERANCE and grid.refinements == 0
        assert abs(grid.log_evidence - exact) <= grid.evidence_error + 1e-6
    # a tolerance no grid meets: the spacing is halved (old nodes kept) as often as allowed, and said so
    x = xs[0]
    coarse = P.grid_posterior(model, x)
    fine = P.grid_posterior(model, x, evidence_tolerance=1e-15, max_refinements=1)
    assert fine.refinements == 1
    assert (len(fine.z1), len(fine.z2)) == (2 * len(coarse.z1) - 1, 2 * len(coarse.z2) - 1)
    torch.testing.assert_close(fine.z1[::2], coarse.z1)
    torch.testing.assert_close(fine.log_joint[::2, ::2], coarse.log_joint)
    assert fine.evidence_error == pytest.approx(abs(fine.log_evidence - coarse.log_evidence), abs=1e-12)
    assert abs(fine.log_evidence - float(model.evidence(x))) < 1e-3
    assert fine.decoder_calls < coarse.decoder_calls + 3 * coarse.log_joint.numel() + 10


@torch.no_grad()
def test_the_grid_elbo_charges_mass_off_the_grid(linear):
    """A q spread far past the grid cannot buy entropy there: its off-grid mass is charged the grid's lowest
    log p(x, z) (a fit from q_phi on test image 8 of vae-cb-l2 once grew 21 sd wide, grid ELBO 1017.6, its
    own -6499)."""
    model, xs = linear
    x = xs[0]
    grid = P.grid_posterior(model, x)
    exact = model.exact_posterior(x)
    mean, cov = exact.mean.double(), exact.covariance_matrix.double()
    on = float(grid.elbo(mean, cov))
    assert on == pytest.approx(float(model.evidence(x)), abs=1e-3)  # q = p: ELBO = log p(x)
    wide = cov * 1e6  # entropy + 13.8 nats, nearly all of its mass off the grid
    assert float(grid.elbo(mean, wide)) < on - 10
    assert grid.floor_log_joint < on - P.TAIL_NATS
    far = float(grid.elbo(mean + 1e3, cov))
    assert far == pytest.approx(
        grid.floor_log_joint + float(MultivariateNormal(mean, cov).entropy()), abs=1e-6
    )


@torch.no_grad()
def test_grid_elbo_is_the_closed_form_elbo_for_any_gaussian(linear):
    model, xs = linear
    x = xs[0]
    grid = P.grid_posterior(model, x)
    exact = model.exact_posterior(x)
    mean = exact.mean + torch.tensor([0.1, -0.05])
    cov = torch.tensor([[0.05, 0.01], [0.01, 0.08]])
    closed = float(model.evidence(x)) - float(kl_divergence(MultivariateNormal(mean, cov), exact))
    assert abs(float(grid.elbo(mean, cov)) - closed) < 1e-3
    assert abs(P.gaussian_elbo(model, x, None, mean, cov) - closed) < 1e-3
    # a q far narrower than the grid's cells: the q-aligned quadrature still holds
    narrow = cov * 1e-4
    closed = float(model.evidence(x)) - float(kl_divergence(MultivariateNormal(mean, narrow), exact))
    assert abs(P.gaussian_elbo(model, x, None, mean, narrow) - closed) < 1e-3


def test_optimal_gaussians_reach_their_closed_forms(linear):
    """q*_full is the exact posterior (approximation gap 0); q*_diag has the posterior's mean and variances
    1 / Lambda_ii (the diagonal of the posterior precision), so its gap is
    0.5 log(prod Lambda_ii / det Lambda) (Bishop PRML section 10.1.2)."""
    model, xs = linear
    x = xs[1]
    grid = P.grid_posterior(model, x)
    split = P.gap_split(model, x, grid=grid)
    exact = model.exact_posterior(x)
    precision = torch.linalg.inv(exact.covariance_matrix).double().detach()
    diag_gap = 0.5 * float(precision.diagonal().log().sum() - torch.logdet(precision))
    assert split.evidence_method == "quadrature" and not split.evidence_is_lower_bound
    assert abs(split.approximation_gap_full) < 1e-3
    assert abs(split.approximation_gap - diag_gap) < 2e-3
    torch.testing.assert_close(split.q_star.mean, exact.mean.double(), atol=2e-3, rtol=0)
    torch.testing.assert_close(split.q_star.cov.diagonal(), 1 / precision.diagonal(), atol=1e-3, rtol=1e-2)
    torch.testing.assert_close(split.q_star_full.cov, exact.covariance_matrix.double(), atol=1e-3, rtol=1e-2)
    assert split.amortization_gap > 0
    assert math.isclose(split.inference_gap, split.approximation_gap + split.amortization_gap, abs_tol=1e-9)


def test_the_fit_yields_states_from_q_phi_to_the_best(linear):
    model, xs = linear
    x = xs[2]
    grid = P.grid_posterior(model, x)
    states = list(P.fit_optimal_gaussian(model, x, grid=grid, covariance="full", steps=40, every=10))
    assert [s.step for s in states] == [0, 10, 20, 30, 40, 40] and states[-1].done
    assert not any(s.done for s in states[:-1])
    assert states[0].elbo == pytest.approx(grid.elbo_q, abs=1e-3)  # grid vs q-aligned quadrature
    torch.testing.assert_close(states[0].mean, grid.q_mean)
    assert states[-1].elbo >= max(s.elbo for s in states[:-1])
    assert states[-1].cov.shape == (2, 2)


def test_a_diagonal_fit_already_made_is_not_made_again(linear, monkeypatch):
    model, xs = linear
    x = xs[1]
    grid = P.grid_posterior(model, x)
    *_, animated = P.fit_optimal_gaussian(model, x, grid=grid, covariance="diagonal", steps=150, every=5)
    made = []
    original = P.optimal_gaussian
    monkeypatch.setattr(gaps, "optimal_gaussian", lambda *a, **k: made.append(k) or original(*a, **k))
    split = P.gap_split(model, x, grid=grid, diagonal_from_phi=animated)
    starts = [k for k in made if k["steps"] != P.CONTINUATION_STEPS]  # the rest: continuations to converge
    assert len(starts) == 3  # diagonal from the mode, full from q_phi and from the mode
    assert not any(k["covariance"] == "diagonal" and k.get("init") is None for k in made)
    assert split.q_star_from_phi.step >= animated.step and split.elbo_from_phi >= split.elbo_amortized - 1e-3
    assert split.elbo_optimal >= animated.elbo - 1e-6


@torch.no_grad()
def test_higher_dimensional_latent_uses_iwae_and_says_it_is_a_bound():
    model = LinearGaussian(latent_dim=3, data_dim=8, seed=1).eval()
    with torch.no_grad():
        x = model.sample(1, torch.Generator().manual_seed(2))[0]
    with pytest.raises(P.PosteriorError, match="2-dimensional"):
        P.grid_posterior(model, x)
    split = P.gap_split(model, x, generator=torch.Generator().manual_seed(0), steps=150)
    evidence = float(model.evidence(x))
    assert split.evidence_method == "iwae-5000" and split.evidence_is_lower_bound
    assert split.log_evidence <= evidence + 0.01 and split.log_evidence > evidence - 0.05
    assert split.elbo_optimal >= split.elbo_amortized and split.elbo_optimal_full >= split.elbo_optimal
    assert abs(split.approximation_gap_full) < 0.01  # the full Gaussian family holds the exact posterior


@torch.no_grad()
def test_iwae_bounds_on_the_linear_model(linear):
    model, xs = linear
    x = xs[0]
    evidence = float(model.evidence(x))
    bounds = P.iwae_bounds(model, x, generator=torch.Generator().manual_seed(0))
    assert [b.k for b in bounds] == [1, 10, 100, 1000] and [b.replicates for b in bounds] == [
        8000,
        800,
        80,
        8,
    ]
    assert P.IWAE_REPEATS == 8
    for b in bounds:
        assert b.estimate <= evidence + 3 * b.stderr + 1e-3
    assert abs(bounds[-1].estimate - evidence) < 3 * bounds[-1].stderr + 0.01
    assert bounds[-1].estimate > bounds[0].estimate


def test_errors(linear):
    model, xs = linear
    with pytest.raises(P.PosteriorError, match="one image"):
        P.grid_posterior(model, xs)
    with pytest.raises(P.PosteriorError, match="NaN"):
        P.grid_posterior(model, torch.full((6,), math.nan))
    with pytest.raises(P.PosteriorError, match="covariance"):
        next(P.fit_optimal_gaussian(model, xs[0], covariance="banana"))
    with pytest.raises(P.PosteriorError, match="at least 1"):
        P.iwae_bounds(model, xs[0], ks=[0])


# --- the shipped 2-D VAE ---------------------------------------------------------------------------------
def _shipped(name: str):
    from explorer_core.artifacts import ArtifactError, load_model

    try:
        return load_model(name).model
    except ArtifactError as err:  # pragma: no cover - a checkout without pretrained/
        pytest.skip(str(err))


def _test_images(n: int, preprocessing: str = "dequantized"):
    """The first n MNIST test images; without MNIST on this machine, n images drawn from the model itself
    (so that the checks still run anywhere)."""
    from explorer_core.data import MNISTUnavailable, load_mnist_splits, preprocess_for_evaluation

    try:
        splits = load_mnist_splits(n_validation=0)
    except MNISTUnavailable:
        return None, None
    return preprocess_for_evaluation(splits.x_test[:n], preprocessing), splits.y_test[:n]


@pytest.fixture(scope="module")
def vae_cb_l2():
    torch.manual_seed(0)
    model = _shipped("vae-cb-l2")
    x, _ = _test_images(4)
    if x is None:
        with torch.no_grad():
            x = model.sample(4, torch.Generator().manual_seed(0)).clamp(1e-4, 1 - 1e-4)
    return model, x


def test_real_model_gaps_and_iwae(vae_cb_l2):
    model, xs = vae_cb_l2
    generator = torch.Generator().manual_seed(0)
    for x in xs:
        grid = P.grid_posterior(model, x)
        assert grid.edge_nats >= P.TAIL_NATS
        assert grid.kl_q >= -1e-3
        split = P.gap_split(model, x, grid=grid)
        assert split.elbo_optimal >= split.elbo_amortized
        assert split.elbo_optimal_full >= split.elbo_optimal
        assert split.approximation_gap >= -1e-3 and split.approximation_gap_full >= -1e-3
        bounds = P.iwae_bounds(model, x, generator=generator)
        estimates = [b.estimate for b in bounds]
        # the bound rises with k (each step up to its Monte Carlo error) ...
        for lower, upper in itertools.pairwise(bounds):
            assert upper.estimate >= lower.estimate - 3 * (upper.stderr + lower.stderr)
        assert estimates[-1] > estimates[0]
        # ... and stays below the quadrature evidence, within its Monte Carlo error
        for b in bounds:
            err = b.stderr if math.isfinite(b.stderr) else 0.0
            assert b.estimate <= grid.log_evidence + 3 * err + 1e-3


def test_real_model_refining_the_grid_changes_little(vae_cb_l2):
    model, xs = vae_cb_l2
    for x in xs[:2]:
        coarse = P.grid_posterior(model, x)
        fine = P.grid_posterior(model, x, resolution=2 * P.DEFAULT_RESOLUTION)
        assert abs(fine.log_evidence - coarse.log_evidence) < 0.01
        assert abs(fine.kl_q - coarse.kl_q) < 0.01
        torch.testing.assert_close(fine.mean, coarse.mean, atol=1e-3, rtol=0)


def test_cvae_conditions_on_the_label():
    model = _shipped("cvae-cb-l2")
    x, y = _test_images(1)
    if x is None:
        y = torch.tensor([3])
        with torch.no_grad():
            x = model.sample(1, torch.Generator().manual_seed(0), y=y).clamp(1e-4, 1 - 1e-4)
    with pytest.raises(P.PosteriorError, match="label"):
        P.grid_posterior(model, x[0])
    right = P.grid_posterior(model, x[0], int(y[0]))
    wrong = P.grid_posterior(model, x[0], (int(y[0]) + 1) % 10)
    assert right.log_evidence > wrong.log_evidence  # the image is likelier under its own label


class Folded(LinearGaussian):
    """p(x|z) = N((z1^2, z2), 0.05^2 I): the posterior of x = (1, 0.3) has two equal modes at z1 = +-1 with a
    valley of ~200 nats between them, and q(z|x) sits on one of them only."""

    def __init__(self):
        super().__init__(latent_dim=2, data_dim=2)

    def encode(self, x, y=None):
        return Independent(
            Normal(torch.stack([x[:, 0].sqrt(), x[:, 1]], -1), torch.full((x.shape[0], 2), 0.04)), 1
        )

    def decode(self, z, y=None):
        return Independent(Normal(torch.stack([z[..., 0] ** 2, z[..., 1]], -1), 0.05), 1)


@torch.no_grad()
def test_the_prior_scan_finds_the_mode_q_phi_missed():
    model = Folded()
    x = torch.tensor([1.0, 0.3])
    grid = P.grid_posterior(model, x)
    # brute force: a fine grid over the whole prior box, float64
    z1 = torch.linspace(-4, 4, 4001, dtype=torch.float64)
    z2 = torch.linspace(-1, 1.6, 1301, dtype=torch.float64)
    zz1, zz2 = torch.meshgrid(z1, z2, indexing="xy")
    z = torch.stack([zz1.reshape(-1), zz2.reshape(-1)], -1)
    lp = Normal(torch.stack([z[:, 0] ** 2, z[:, 1]], -1), 0.05).log_prob(x.double()).sum(-1)
    lp = lp + Normal(0.0, 1.0).log_prob(z).sum(-1)
    exact = float(torch.logsumexp(lp, 0)) + math.log(float((z1[1] - z1[0]) * (z2[1] - z2[0])))
    assert abs(grid.log_evidence - exact) < 1e-3
    assert grid.z1[0] < -1 < 1 < grid.z1[-1]  # both modes on the grid
    assert abs(float(grid.mean[0])) < 0.02  # the posterior's mean lies between the two modes
    split = P.gap_split(model, x, grid=grid)
    # a Gaussian can hold one mode of two equal ones: the approximation gap is then about log 2
    assert split.approximation_gap == pytest.approx(math.log(2), abs=0.05)


def test_log_weights_with_noise_are_the_old_log_weights():
    from explorer_core.models.vae import VAE, VAEConfig

    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=3, hidden=(16, 8))).eval()
    x = torch.rand(2, 784)
    eps = torch.randn(5, 2, 3)
    with torch.no_grad():
        q = model.encode(x)
        z = q.mean + q.stddev * eps
        expected = model.decode(z).log_prob(x) + model.prior().log_prob(z) - q.log_prob(z)
        torch.testing.assert_close(model.log_weights(x, k=5, eps=eps), expected)
        assert model.log_weights(x, k=5).shape == (5, 2)
        with pytest.raises(ValueError, match="eps must have shape"):
            model.log_weights(x, k=4, eps=eps)


def test_ellipse_is_the_n_sigma_contour():
    mean, cov = torch.tensor([0.5, -1.0]), torch.tensor([[0.04, 0.01], [0.01, 0.09]])
    points = P.ellipse(mean, cov, 2.0, n=50)
    assert points.shape == (51, 2)
    torch.testing.assert_close(points[0], points[-1])
    d = points - mean.double()
    mahalanobis = (d @ torch.linalg.inv(cov.double()) * d).sum(-1)
    torch.testing.assert_close(mahalanobis, torch.full((51,), 4.0, dtype=torch.float64))
    with pytest.raises(P.PosteriorError, match="ellipse"):
        P.ellipse(torch.zeros(3), torch.eye(3))


def test_gaps_command(capsys):
    import json

    from explorer_core.cli import main

    _shipped("vae-cb-l2")
    x, _ = _test_images(1)
    if x is None:
        pytest.skip("MNIST is not on this machine; run `python -m explorer_core data fetch mnist`")
    assert main(["gaps", "vae-cb-l2", "--n", "2", "--steps", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 2 and out["latent_dim"] == 2 and out["evidence_method"] == "quadrature"
    assert out["units"].startswith("nats per image")
    assert out["inference_gap"] == pytest.approx(out["approximation_gap"] + out["amortization_gap"])
    assert out["amortization_gap"] >= 0 and out["approximation_gap"] >= -1e-3
    assert main(["gaps", "vae-cb-l2", "--n", "0"]) == 2
    assert "--n must be at least 1" in capsys.readouterr().err
    assert main(["gaps", "gmvae-marginal", "--n", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: gmvae-marginal") and "VAE or a CVAE" in err and "Traceback" not in err


@torch.no_grad()
def test_test_set_gaps_batches_the_monte_carlo_path():
    model = LinearGaussian(latent_dim=3, data_dim=8, seed=1).eval()
    x = model.sample(6, torch.Generator().manual_seed(2))
    exact = model.evidence(x)
    rows = gaps._gap_split_batch(model, x, None, generator=torch.Generator().manual_seed(0))
    for row, evidence in zip(rows, exact, strict=True):
        assert row["evidence_is_lower_bound"] and row["evidence_method"] == "iwae-5000"
        assert abs(row["log_evidence"] - float(evidence)) < 0.05
        assert row["elbo_optimal_full"] >= row["elbo_optimal"] >= row["elbo_amortized"]
        assert row["approximation_gap_full"] < 0.1
    summary = P.test_set_gaps(model, x, seed=0, batch_size=4)
    assert summary["n"] == 6 and summary["latent_dim"] == 3 and summary["evidence_is_lower_bound"]
    assert summary["inference_gap"] == pytest.approx(
        summary["approximation_gap"] + summary["amortization_gap"]
    )
