"""The VRNN (tutorial section 5.6): shapes, a reparameterised posterior, generation and completion."""

import pytest
import torch

from explorer_core.artifacts import load_model
from explorer_core.evaluation.metrics import evaluate_vrnn
from explorer_core.models.vrnn import VRNN, VRNNConfig
from explorer_core.training.recipes import TrainConfig
from explorer_core.training.trainer import train
from tests.unit.test_training import tiny_splits

SMALL = VRNNConfig(hidden=(32,), rnn_hidden=16, rnn_layers=2)


def binary(n: int, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, 784, generator=torch.Generator().manual_seed(seed)) > 0.5).float()


def test_shapes_and_a_finite_elbo_at_batch_size_one():
    torch.manual_seed(0)
    model = VRNN(SMALL)
    terms = model.row_terms(binary(3))
    assert terms.reconstruction.shape == (3, 28) and terms.kl.shape == (3, 28)
    assert terms.z.shape == (3, 28, 2) and terms.prior_mean.shape == (3, 28, 2)
    assert torch.all(terms.kl >= 0)
    one = model.elbo(binary(1))
    assert one.shape == (1,) and torch.isfinite(one).all()
    assert model.elbo(binary(4), n_samples=3).shape == (4,)
    with pytest.raises(ValueError, match="shape"):
        model.elbo(torch.zeros(2, 28, 28))


def test_the_reconstruction_term_sends_gradient_to_the_posterior():
    """z_t is a reparameterised sample: the posterior's parameters get gradient from log p(x|z) alone (the
    reference's .sample() gave them none)."""
    torch.manual_seed(0)
    model = VRNN(SMALL)
    model.row_terms(binary(4)).reconstruction.sum().backward()
    for p in model.inference_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_inference_and_generative_parameters_split_the_model():
    model = VRNN(SMALL)
    phi = {id(p) for p in model.inference_parameters()}
    theta = {id(p) for p in model.generative_parameters()}
    assert not phi & theta
    assert phi | theta == {id(p) for p in model.parameters()}


def test_generation_row_by_row_at_batch_size_one():
    torch.manual_seed(0)
    model = VRNN(SMALL).eval()
    state = model.start_generation(1)
    g = torch.Generator().manual_seed(0)
    for t in range(28):
        state = model.generation_step(state, g)
        assert state.rows == t + 1 and state.means.shape == (1, t + 1, 28)
    assert set(state.samples.unique().tolist()) <= {0.0, 1.0}
    assert state.prior_means.shape == (1, 28, 2)
    with pytest.raises(ValueError, match="already"):
        model.generation_step(state, g)
    again = model.sample(1, torch.Generator().manual_seed(0), means=True)
    assert torch.allclose(again, state.means.reshape(1, -1), rtol=1e-5, atol=1e-6)  # same seed, same digit


def test_completion_keeps_the_given_rows_exactly():
    torch.manual_seed(0)
    model = VRNN(SMALL).eval()
    x = binary(1).expand(5, 784)
    state = model.start_completion(x, keep_rows=12, generator=torch.Generator().manual_seed(1))
    assert state.rows == 12 and state.kept == 12
    while state.rows < 28:
        state = model.generation_step(state, torch.Generator().manual_seed(state.rows))
    rows = model.rows_of(x)
    assert torch.equal(state.samples[:, :12], rows[:, :12])
    assert torch.equal(state.means[:, :12], rows[:, :12])
    with pytest.raises(ValueError):
        model.start_completion(x, keep_rows=29)


def test_training_a_tiny_vrnn_with_clipping_and_its_per_row_evaluation(tmp_path):
    config = TrainConfig.for_family(
        "vrnn", hidden=(32,), rnn_hidden=16, rnn_layers=1, epochs=1, batch_size=50, max_grad_norm=1.0
    )
    path = train(config, tmp_path, "tiny", splits=tiny_splits(), device=torch.device("cpu"))
    loaded = load_model(path)
    test = loaded.meta["test_metrics"]
    assert len(test["per_row_kl"]) == 28 and len(test["per_row_reconstruction"]) == 28
    assert sum(test["per_row_kl"]) == pytest.approx(test["kl"], abs=0.01)
    assert test["elbo"] == pytest.approx(test["reconstruction"] - test["kl"], rel=1e-5, abs=1e-4)
    again = evaluate_vrnn(loaded.model, (tiny_splits().x_test >= 128).float())
    assert again["elbo"] == pytest.approx(test["elbo"], abs=1e-3)


def test_encode_gives_each_rows_posterior_with_its_own_scale():
    torch.manual_seed(0)
    model = VRNN(SMALL).eval()
    x = binary(3)
    torch.manual_seed(1)
    q = model.encode(x)
    torch.manual_seed(1)
    terms = model.row_terms(x)  # the same path: the same reparameterised draws
    assert q.batch_shape == (3,) and q.event_shape == (model.config.n_rows, SMALL.latent_dim)
    torch.testing.assert_close(q.mean, terms.posterior_mean)
    torch.testing.assert_close(q.stddev, terms.posterior_std)
    assert not torch.allclose(q.stddev, torch.ones_like(q.stddev))  # the learned scales, not a made-up 1
