"""Resumable training: a run interrupted after an epoch and resumed equals the same run straight through."""

import json

import pytest
import torch
from safetensors.torch import load_file

from explorer_core.cli import main
from explorer_core.training.checkpoint import CheckpointError, load_checkpoint, read_checkpoint_description
from explorer_core.training.recipes import TrainConfig
from explorer_core.training.trainer import TrainingError, train
from tests.unit.test_training import TINY, tiny_splits

CASES = [
    # dropout (global RNG), dequantization noise, constant lr
    TrainConfig("vae", **{**TINY, "epochs": 4, "dropout": 0.1}),
    # dynamic binarization, cosine schedule, conditional
    TrainConfig(
        "cvae",
        **{**TINY, "epochs": 4},
        likelihood="bernoulli",
        preprocessing="dynamic_binarized",
        lr_schedule="cosine",
    ),
    # GMVAE with an annealed Gumbel temperature
    TrainConfig.for_family(
        "gmvae",
        **{**TINY, "epochs": 4},
        n_clusters=3,
        estimator="gumbel",
        temperature=1.0,
        temperature_final=0.5,
    ),
    TrainConfig.for_family("vrnn", **{**TINY, "epochs": 3}, rnn_hidden=8, rnn_layers=1),
]


def _weights(json_path):
    meta = json.loads(json_path.read_text())
    return load_file(str(json_path.with_name(meta["weights"]))), meta


@pytest.mark.parametrize("config", CASES, ids=lambda c: c.family)
def test_interrupted_and_resumed_equals_straight_through(tmp_path, config):
    cpu = torch.device("cpu")
    straight = train(config, tmp_path / "a", "m", device=cpu, splits=tiny_splits(), run_dir=tmp_path / "ra")
    # the same run, stopped on request after its second epoch, then resumed in a new call
    calls = {"epochs": 0}

    def on_epoch(model, epoch):
        calls["epochs"] = epoch

    stopped = train(
        config,
        tmp_path / "b",
        "m",
        device=cpu,
        splits=tiny_splits(),
        run_dir=tmp_path / "rb",
        on_epoch=on_epoch,
        should_stop=lambda: calls["epochs"] >= 2,
    )
    assert json.loads(stopped.read_text())["training"]["epochs_run"] == 2
    torch.manual_seed(1234)  # the resumed run must not depend on the caller's RNG
    resumed = train(
        config, tmp_path / "b", "m", device=cpu, splits=tiny_splits(), run_dir=tmp_path / "rb", resume=True
    )
    wa, ma = _weights(straight)
    wb, mb = _weights(resumed)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    assert [h["val_elbo"] for h in ma["training"]["history"]] == [
        h["val_elbo"] for h in mb["training"]["history"]
    ]
    assert mb["training"]["resumed"] is True
    assert ma["training"]["best_epoch"] == mb["training"]["best_epoch"]
    assert ma["test_metrics"]["elbo"] == mb["test_metrics"]["elbo"]
    # one checkpoint file per run folder: the last epoch's
    assert [p.name for p in (tmp_path / "rb").glob("checkpoint-*.safetensors")] == [
        f"checkpoint-{config.epochs}.safetensors"
    ]


def test_resume_refuses_another_recipe_and_a_corrupt_checkpoint(tmp_path):
    config = TrainConfig("vae", **{**TINY, "epochs": 2})
    cpu = torch.device("cpu")
    train(config, tmp_path, "m", device=cpu, splits=tiny_splits(), run_dir=tmp_path / "run")
    other = TrainConfig("vae", **{**TINY, "epochs": 2, "lr": 1e-2})
    with pytest.raises(TrainingError, match="another recipe"):
        train(other, tmp_path, "m", device=cpu, splits=tiny_splits(), run_dir=tmp_path / "run", resume=True)
    # more epochs are allowed: the run goes on from epoch 2 to 3
    longer = TrainConfig("vae", **{**TINY, "epochs": 3})
    path = train(
        longer, tmp_path, "m", device=cpu, splits=tiny_splits(), run_dir=tmp_path / "run", resume=True
    )
    assert json.loads(path.read_text())["training"]["epochs_run"] == 3
    weights = next((tmp_path / "run").glob("checkpoint-*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(tmp_path / "run")
    (tmp_path / "run" / "checkpoint.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        read_checkpoint_description(tmp_path / "run")
    with pytest.raises(TrainingError, match="cannot resume"):
        train(
            config, tmp_path, "m", device=cpu, splits=tiny_splits(), run_dir=tmp_path / "nothing", resume=True
        )


@pytest.mark.parametrize(("min_epochs", "expected"), [(0, 2), (4, 4)])
def test_min_epochs_holds_early_stopping_back(tmp_path, monkeypatch, min_epochs, expected):
    # validation that only gets worse: patience 1 stops after epoch 2, unless min_epochs holds it back
    values = iter([-100.0, -101.0, -102.0, -103.0, -104.0, -105.0])
    monkeypatch.setattr("explorer_core.training.trainer.validation_elbo", lambda *a, **k: next(values))
    config = TrainConfig("vae", **{**TINY, "epochs": 6}, patience=1, min_epochs=min_epochs)
    path = train(config, tmp_path, "m", device=torch.device("cpu"), splits=tiny_splits())
    training = json.loads(path.read_text())["training"]
    assert training["epochs_run"] == expected
    assert training["best_epoch"] == 1


def test_cli_resume_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert main(["train", "vae"]) == 2
