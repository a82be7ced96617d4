"""The GMVAE (tutorial section 5.5): both estimators, the -log C constant, cluster accuracy, and training."""

import math

import pytest
import torch
from torch.distributions import kl_divergence

from explorer_core.artifacts import load_model
from explorer_core.evaluation.metrics import cluster_accuracy, evaluate_gmvae
from explorer_core.models.gmvae import GMVAE, GMVAEConfig
from explorer_core.training.recipes import TrainConfig
from explorer_core.training.trainer import config_from_args, train
from tests.unit.test_training import tiny_splits

SMALL = {"hidden": (32,), "latent_dim": 4}


def binary(n: int, d: int = 784, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(seed)) > 0.5).float()


def test_vectorised_marginal_elbo_equals_a_per_example_loop():
    torch.manual_seed(0)
    model = GMVAE(GMVAEConfig(**SMALL)).eval()
    x = binary(5)
    torch.manual_seed(1)
    vectorised = model.marginal_elbo_terms(x).elbo.detach()
    torch.manual_seed(1)
    eps = torch.randn(1, 10, 5, 4)  # the same draws, in the same order, as the vectorised rsample
    qy = model.cluster_posterior(x)
    for b in range(5):
        total = qy.entropy()[b] - math.log(10)
        for c in range(10):
            y = torch.tensor([c])
            q = model.encode(x[b : b + 1], y)
            z = q.mean + q.stddev * eps[0, c, b]
            term = model.decode(z).log_prob(x[b : b + 1]) - kl_divergence(q, model.prior(y))
            total = total + qy.probs[b, c] * term
        assert float(vectorised[b]) == pytest.approx(float(total.detach()), abs=1e-3)


def test_the_marginal_elbo_includes_minus_log_c():
    """With q(y|x) uniform, KL(q(y|x) || p(y)) is 0; the ELBO's y-term is H - log C = 0, so the reported
    value equals the reference's (which omits -log C) minus log C exactly."""
    torch.manual_seed(0)
    model = GMVAE(GMVAEConfig(**SMALL)).eval()
    x = binary(50)
    metrics = evaluate_gmvae(model, x, torch.arange(50) % 10)
    assert metrics["elbo_without_log_c"] - metrics["elbo"] == pytest.approx(math.log(10), abs=1e-4)  # float32
    qy = model.cluster_posterior(x)
    kl_y = kl_divergence(qy, model.cluster_prior())
    assert torch.allclose(kl_y, math.log(10) - qy.entropy(), atol=1e-5)


def brute_force_log_evidence(model: GMVAE, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = log sum_y p(y) integral p(z|y) p(x|z) dz by quadrature over a fine grid (L = 1)."""
    z = torch.linspace(-12, 12, 24001, dtype=torch.float64).unsqueeze(-1)  # [G, 1]
    dz = float(z[1] - z[0])
    log_px_z = model.decode(z.unsqueeze(1)).log_prob(x)  # [G, batch]
    clusters = torch.arange(model.config.n_clusters)
    log_pz_y = model.prior(clusters.unsqueeze(1).unsqueeze(1)).log_prob(z.unsqueeze(1))  # [C, G, 1]
    log_joint = log_pz_y + log_px_z.unsqueeze(0) - math.log(model.config.n_clusters)  # [C, G, batch]
    return torch.logsumexp(log_joint.reshape(-1, x.shape[0]), 0) + math.log(dz)


def test_the_elbo_is_below_the_brute_force_evidence():
    torch.manual_seed(0)
    model = GMVAE(GMVAEConfig(n_clusters=3, latent_dim=1, hidden=(8,), data_dim=6)).double().eval()
    x = binary(4, d=6).double()
    with torch.no_grad():
        evidence = brute_force_log_evidence(model, x)
        # a Monte Carlo check of the quadrature: log mean p(x|z) over (y, z) drawn from the prior
        y = torch.randint(0, 3, (200_000,))
        z = model.prior(y).sample()
        mc = torch.logsumexp(model.decode(z.unsqueeze(1)).log_prob(x), 0) - math.log(len(y))
        elbo = torch.stack([model.marginal_elbo_terms(x).elbo for _ in range(4000)]).mean(0)
        iwae = torch.logsumexp(model.log_weights(x, k=2000), 0) - math.log(2000)
    assert torch.allclose(mc, evidence, atol=0.01)
    assert torch.all(elbo < evidence)
    assert torch.all(iwae > elbo)  # the IWAE bound is tighter than the ELBO


@pytest.mark.parametrize("straight_through", [False, True])
def test_the_gumbel_path_gives_finite_gradients_for_every_parameter(straight_through):
    torch.manual_seed(0)
    model = GMVAE(
        GMVAEConfig(**SMALL, estimator="gumbel", temperature=0.5, straight_through=straight_through)
    )
    model.train()
    loss = -model.elbo(binary(16)).mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_the_gumbel_model_is_evaluated_with_the_exact_marginal_bound():
    torch.manual_seed(0)
    model = GMVAE(GMVAEConfig(**SMALL, estimator="gumbel")).eval()
    x = binary(8)
    torch.manual_seed(3)
    a = model.evaluation_elbo_terms(x).elbo
    torch.manual_seed(3)
    b = model.marginal_elbo_terms(x).elbo
    assert torch.equal(a, b)


def test_cluster_accuracy_on_a_hand_made_contingency_table():
    # cluster 0: label 2 (3 images) and label 0 (1); cluster 1: label 0 (2); cluster 2: label 1 (2)
    assignments = [0, 0, 0, 0, 1, 1, 2, 2]
    labels = [2, 2, 2, 0, 0, 0, 1, 1]
    result = cluster_accuracy(assignments, labels, n_clusters=3, n_classes=3)
    assert result["matched_label"] == [2, 0, 1]
    assert result["accuracy"] == pytest.approx(7 / 8)
    assert result["contingency"] == [[1, 0, 3], [2, 0, 0], [0, 2, 0]]
    assert result["usage"] == pytest.approx([0.5, 0.25, 0.25])
    # a greedy per-cluster argmax would map clusters 0 and 1 both to a label; Hungarian matching cannot
    assert len(set(result["matched_label"])) == 3
    with pytest.raises(ValueError):
        cluster_accuracy([0, 3], [0, 1], n_clusters=3, n_classes=3)


def test_sampling_a_cluster_uses_its_prior_and_the_spread():
    torch.manual_seed(0)
    model = GMVAE(GMVAEConfig(**SMALL)).eval()
    y = torch.full((6,), 4)
    eps = torch.randn(6, 4)
    z_cold = model.prior_noise_to_z(eps, y, spread=0.0)
    assert torch.allclose(z_cold, model.prior(y).mean)
    images = model.sample(6, torch.Generator().manual_seed(0), y=y)
    assert images.shape == (6, 784) and float(images.min()) >= 0 and float(images.max()) <= 1
    per_cluster = model.reconstructions_per_cluster(binary(3))
    assert per_cluster.shape == (10, 3, 784)


@pytest.mark.parametrize("estimator", ["marginal", "gumbel"])
def test_training_a_tiny_gmvae_logs_cluster_accuracy_and_reloads(tmp_path, estimator):
    config = TrainConfig.for_family(
        "gmvae",
        hidden=(32,),
        latent_dim=4,
        epochs=2,
        batch_size=50,
        estimator=estimator,
        temperature=1.0,
        temperature_final=0.5,
    )
    path = train(config, tmp_path, "tiny", splits=tiny_splits(), device=torch.device("cpu"))
    loaded = load_model(path)
    meta = loaded.meta
    assert meta["family"] == "gmvae" and meta["preprocessing"] == "binarized"
    history = meta["training"]["history"]
    assert all(0 <= h["cluster_accuracy"] <= 1 for h in history)
    assert [h["temperature"] for h in history] == pytest.approx([1.0, 0.5])
    test = meta["test_metrics"]
    assert {"elbo", "conditional_entropy", "cluster_accuracy", "cluster_usage", "contingency"} <= set(test)
    assert sum(test["cluster_usage"]) == pytest.approx(1.0)


def test_family_defaults_and_presets():
    config = config_from_args("gmvae-gumbel", "gmvae", {"epochs": 2})
    assert config.estimator == "gumbel" and config.epochs == 2 and config.latent_dim == 64
    assert config_from_args(None, "gmvae", {}).preprocessing == "binarized"
    quick = config_from_args("quick", "gmvae", {})
    assert quick.family == "gmvae" and quick.likelihood == "bernoulli"
    with pytest.raises(ValueError, match="Bernoulli"):
        TrainConfig.for_family("gmvae", likelihood="continuous_bernoulli", preprocessing="dequantized")
    with pytest.raises(ValueError, match="estimator"):
        TrainConfig.for_family("gmvae", estimator="reinforce")
