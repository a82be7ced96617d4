"""Training recipes: each family's own class, chosen through the registry; a flat recipe written before the
split (run and model JSON files, checkpoints) is refused with the field named (issue 22: the shipped JSONs
were rewritten once and the shim went)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from explorer_core.cli import main
from explorer_core.evaluation.selection import select_by_validation_elbo
from explorer_core.families import FAMILIES
from explorer_core.jobs import ConfigRejectedError, validate_config
from explorer_core.jobs.store import read_run_config
from explorer_core.training.recipes import (
    GMVAETrainConfig,
    TrainConfig,
    VRNNTrainConfig,
    recipe_field_names,
)
from explorer_core.training.trainer import PRESETS, config_from_args, train
from explorer_core.untrusted import UntrustedFileError
from tests.unit.test_training import TINY, tiny_splits

ROOT = Path(__file__).resolve().parents[2]
#: the shared part of a recipe as the flat class wrote it (its VAE defaults)
_OLD_SHARED = {
    "latent_dim": 20,
    "hidden": [500, 500],
    "dropout": 0.1,
    "likelihood": "continuous_bernoulli",
    "preprocessing": "dequantized",
    "epochs": 46,
    "batch_size": 100,
    "lr": 0.0003,
    "n_validation": 10000,
    "n_samples": 1,
    "patience": None,
    "min_epochs": 0,
    "max_minutes": None,
    "max_grad_norm": None,
    "lr_schedule": "constant",
    "iwae_k": 0,
    "tsne_points": 3000,
    "seed": 0,
}
#: the family-specific part as the flat class wrote it for every family (its defaults)
_OLD_TAIL = {
    "n_clusters": 10,
    "estimator": "marginal",
    "temperature": 1.0,
    "temperature_final": None,
    "straight_through": False,
    "rnn_hidden": 256,
    "rnn_layers": 2,
}
#: one recipe per family as the flat class wrote it (``to_dict()``), with each family's own values
OLD_FLAT = {
    "vae": {"family": "vae", **_OLD_SHARED, **_OLD_TAIL},
    "cvae": {"family": "cvae", **_OLD_SHARED, "latent_dim": 2, **_OLD_TAIL},
    "gmvae": {
        "family": "gmvae",
        **_OLD_SHARED,
        "latent_dim": 64,
        "hidden": [512, 512],
        "dropout": 0.0,
        "likelihood": "bernoulli",
        "preprocessing": "binarized",
        "lr": 0.001,
        "tsne_points": 0,
        **_OLD_TAIL,
        "n_clusters": 8,
        "estimator": "gumbel",
        "temperature": 2.0,
        "temperature_final": 0.5,
    },
    "vrnn": {
        "family": "vrnn",
        **_OLD_SHARED,
        "latent_dim": 2,
        "dropout": 0.0,
        "likelihood": "bernoulli",
        "preprocessing": "binarized",
        "lr": 0.001,
        "max_grad_norm": 10.0,
        "tsne_points": 0,
        **_OLD_TAIL,
        "rnn_hidden": 64,
        "rnn_layers": 1,
    },
}
OWN_VALUES = {
    "vae": {},
    "cvae": {},
    "gmvae": {"n_clusters": 8, "estimator": "gumbel", "temperature": 2.0, "temperature_final": 0.5},
    "vrnn": {"rnn_hidden": 64, "rnn_layers": 1},
}


def test_each_family_names_its_recipe_class_and_a_vae_recipe_has_no_cluster_fields():
    classes = {name: spec.train_config_class for name, spec in FAMILIES.items()}
    assert classes == {
        "vae": TrainConfig,
        "cvae": TrainConfig,
        "gmvae": GMVAETrainConfig,
        "vrnn": VRNNTrainConfig,
    }
    vae = TrainConfig.for_family("vae")
    assert not hasattr(vae, "n_clusters") and not hasattr(vae, "rnn_hidden")
    assert set(vae.to_dict()) == recipe_field_names(TrainConfig)
    # every flat field is exactly one family's own, with the flat default as its default
    own = {
        f.name: f.default
        for cls in (GMVAETrainConfig, VRNNTrainConfig)
        for f in dataclasses.fields(cls)
        if f.name not in recipe_field_names(TrainConfig)
    }
    assert own == _OLD_TAIL
    for name, spec in FAMILIES.items():
        config = TrainConfig.for_family(name)
        assert type(config) is spec.train_config_class
        assert set(config.to_dict()) == recipe_field_names(spec.train_config_class)
        again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
        assert again == config and type(again) is type(config)
    assert type(PRESETS["gmvae-gumbel"]) is GMVAETrainConfig and type(PRESETS["vrnn"]) is VRNNTrainConfig


@pytest.mark.parametrize("name", list(OLD_FLAT))
def test_a_flat_recipe_of_every_family_is_refused_with_the_field_named(name, tmp_path):
    old = OLD_FLAT[name]
    with pytest.raises(ValueError, match=f"is not a setting of a {name} recipe"):
        TrainConfig.from_dict(old)
    own = {k: v for k, v in old.items() if k in recipe_field_names(FAMILIES[name].train_config_class)}
    config = TrainConfig.from_dict(own)  # the same recipe without another family's fields
    for field, value in OWN_VALUES[name].items():
        assert getattr(config, field) == value
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": old, "options": {"preset": "quick"}}))
    with pytest.raises(UntrustedFileError, match="is not a setting of a"):
        read_run_config(run)
    with pytest.raises(ConfigRejectedError, match="is not a setting of a"):
        validate_config(dict(old))


@pytest.mark.parametrize("path", sorted((ROOT / "pretrained").glob("*.json")), ids=lambda p: p.stem)
def test_the_shipped_models_recipes_load_as_their_family_s_class(path):
    meta = json.loads(path.read_text())
    config = TrainConfig.from_dict(meta["recipe"])
    assert type(config) is FAMILIES[meta["family"]].train_config_class


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ({"family": "vae", "n_clusters": 5}, ValueError, "n_clusters is not a setting of a vae recipe"),
        ({"family": "gmvae", "rnn_layers": 3}, ValueError, "rnn_layers is not a setting of a gmvae recipe"),
        ({"family": "vrnn", "straight_through": True}, ValueError, "straight_through is not a setting"),
        ({"family": "cvae", "temperature_final": 0.5}, ValueError, "temperature_final is not a setting"),
        ({"family": "vae", "depth": 3}, TypeError, "unexpected keyword argument 'depth'"),
        ({"family": "gan"}, ValueError, "family must be one of"),
    ],
)
def test_another_family_s_values_and_unknown_keys_are_refused(data, error, message):
    with pytest.raises(error, match=message):
        TrainConfig.from_dict(data)


def test_a_recipe_is_its_family_s_class_and_the_family_s_checks_move_with_its_fields():
    with pytest.raises(ValueError, match="a gmvae recipe is a GMVAETrainConfig, not a TrainConfig"):
        TrainConfig("gmvae", likelihood="bernoulli", preprocessing="binarized", dropout=0.0)
    with pytest.raises(ValueError, match="a vae recipe is a TrainConfig, not a VRNNTrainConfig"):
        VRNNTrainConfig("vae")
    with pytest.raises(TypeError, match="n_clusters"):
        TrainConfig.for_family("vae", n_clusters=3)
    with pytest.raises(ValueError, match="temperature_final must be in"):
        TrainConfig.for_family("gmvae", temperature_final=1000.0)
    with pytest.raises(ValueError, match="rnn_layers"):
        TrainConfig.for_family("vrnn", rnn_layers=0)
    with pytest.raises(ValueError, match="n_clusters: not a setting of a vae recipe"):
        config_from_args("quick", "vae", {"n_clusters": 5, "rnn_hidden": None})
    assert config_from_args("quick", "gmvae", {"n_clusters": 5, "rnn_hidden": None}).n_clusters == 5


def test_a_job_refuses_another_family_s_value():
    with pytest.raises(ConfigRejectedError, match="n_clusters is not a setting of a vae recipe"):
        validate_config({**TrainConfig.for_family("vae", **TINY).to_dict(), "n_clusters": 3})


def test_the_cli_refuses_another_family_s_flag(tmp_path, capsys):
    assert main(["train", "vae", "--out", str(tmp_path), "--n-clusters", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "n_clusters: not a setting of a vae recipe" in err


def test_seeds_of_one_recipe_compare_across_the_split(tmp_path):
    config = TrainConfig.for_family("gmvae", **{**TINY, "epochs": 1}, n_clusters=3)
    paths = []
    for seed in (0, 1):
        paths.append(
            train(
                dataclasses.replace(config, seed=seed),
                tmp_path,
                f"s{seed}",
                device=torch.device("cpu"),
                splits=tiny_splits(),
            )
        )
    _, record = select_by_validation_elbo(paths)
    assert [row["seed"] for row in record["candidates"]] == [0, 1]
    meta = json.loads(paths[0].read_text())
    meta["recipe"]["rnn_layers"] = 2  # another family's field: not the same recipe, and not a valid one
    paths[0].write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="rnn_layers is not a setting of a gmvae recipe"):
        select_by_validation_elbo(paths)
