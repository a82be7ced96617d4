"""The MNIST trainer on a tiny synthetic data set, the recipe checks, and evaluate's figures."""

import json

import pytest
import torch

from explorer_core.artifacts import load_model
from explorer_core.data import MNISTSplits
from explorer_core.evaluation.metrics import evaluate_vae
from explorer_core.inference.aevb import NonFiniteError
from explorer_core.models.vae import VAE, VAEConfig
from explorer_core.training import trainer as training
from explorer_core.training.recipes import TrainConfig
from explorer_core.training.trainer import PRESETS, TrainingError, config_from_args, train


def tiny_splits(n_train=300, n_val=100, n_test=100) -> MNISTSplits:
    g = torch.Generator().manual_seed(0)

    def images(n):
        return torch.randint(0, 256, (n, 784), generator=g, dtype=torch.uint8)

    def labels(n):
        return torch.randint(0, 10, (n,), generator=g)

    return MNISTSplits(
        images(n_train),
        labels(n_train),
        images(n_val),
        labels(n_val),
        images(n_test),
        labels(n_test),
        checksums={"synthetic": "0"},
    )


TINY = {"hidden": (32,), "latent_dim": 2, "epochs": 3, "batch_size": 50, "tsne_points": 0, "lr": 1e-3}


@pytest.mark.parametrize(
    ("family", "likelihood", "preprocessing"),
    [("vae", "continuous_bernoulli", "dequantized"), ("cvae", "bernoulli", "dynamic_binarized")],
)
def test_train_writes_a_loadable_model_with_its_recipe_and_metrics(
    tmp_path, family, likelihood, preprocessing
):
    config = TrainConfig(family, likelihood=likelihood, preprocessing=preprocessing, iwae_k=20, **TINY)
    seen = []
    path = train(
        config,
        tmp_path,
        "tiny",
        progress=seen.append,
        device=torch.device("cpu"),
        splits=tiny_splits(),
        log_every=2,
    )
    meta = json.loads(path.read_text())
    assert meta["recipe"]["family"] == family and meta["preprocessing"] == preprocessing
    assert meta["training"]["epochs_run"] == 3 and 1 <= meta["training"]["best_epoch"] <= 3
    best = max(h["val_elbo"] for h in meta["training"]["history"])
    assert meta["training"]["best_val_elbo"] == pytest.approx(best)
    assert meta["data"]["checksums_md5"] == {"synthetic": "0"}
    for key in ("elbo", "reconstruction", "kl", "active_units", "iwae_bound"):
        assert key in meta["test_metrics"]
    assert [p.epoch for p in seen if p.kind == "epoch"] == [1, 2, 3]
    assert any(p.kind == "step" for p in seen)
    assert load_model(path).family == family


def test_training_selects_by_validation_and_stops_early(tmp_path, monkeypatch):
    values = iter([5.0, 7.0, 6.0, 4.0, 3.0, 9.0])
    monkeypatch.setattr(training, "validation_elbo", lambda *a, **k: next(values))
    config = TrainConfig("vae", patience=2, **{**TINY, "epochs": 6})
    meta = json.loads(
        train(config, tmp_path, "t", device=torch.device("cpu"), splits=tiny_splits()).read_text()
    )
    assert meta["training"]["best_epoch"] == 2 and meta["training"]["epochs_run"] == 4
    assert "early stop" in meta["training"]["stopped"]


def test_a_nan_step_stops_training_with_a_clear_error(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise NonFiniteError("The ELBO became nan in a joint step; the step was not applied.")

    monkeypatch.setattr(training, "aevb_step", boom)
    with pytest.raises(TrainingError, match="epoch 1, step 1"):
        train(TrainConfig("vae", **TINY), tmp_path, "t", device=torch.device("cpu"), splits=tiny_splits())
    assert not list(tmp_path.glob("t.*"))  # nothing half-written


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"preprocessing": "binarized"}, "needs data preprocessed"),
        ({"likelihood": "bernoulli"}, "needs data preprocessed"),
        ({"epochs": 0}, "epochs"),
        ({"lr": 100.0}, "learning rate"),
        ({"family": "gan"}, "family"),
        ({"dropout": 2.0}, "dropout"),
    ],
)
def test_absurd_recipes_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_presets_and_overrides():
    assert PRESETS["vae-bernoulli-l20"].preprocessing == "dynamic_binarized"
    config = config_from_args("vae-cb-l2", "vae", {"epochs": 3, "lr": None})
    assert config.latent_dim == 2 and config.epochs == 3 and config.lr == 3e-4
    with pytest.raises(ValueError, match="for the cvae family"):
        config_from_args("cvae-cb-l20", "vae", {})


def test_evaluate_is_reproducible_and_reports_active_units():
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=4, hidden=(16,), dropout=0.0, likelihood="bernoulli"))
    x = (torch.rand(60, 784) > 0.5).float()
    a, b = evaluate_vae(model, x, iwae_k=30), evaluate_vae(model, x, iwae_k=30)
    assert a == b
    assert a["iwae_bound"] > a["elbo"] and a["nll_estimate"] == -a["iwae_bound"]
    assert 0 <= a["active_units"] <= 4 and a["n_images"] == 60
