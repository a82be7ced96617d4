"""GMVAE recipe v3 (issue 36): fresh binarization of every training minibatch, the last epoch kept, and the
screening rule (every cluster used by at least 5 % of the validation images, then the lowest validation
conditional entropy at epoch 20)."""

from __future__ import annotations

import json

import pytest
import torch

from explorer_core.cli import main
from explorer_core.data import preprocess_for_evaluation
from explorer_core.evaluation.metrics import cluster_metrics
from explorer_core.evaluation.selection import SCREENING_RULE, screen_restarts
from explorer_core.models.gmvae import GMVAE, GMVAEConfig
from explorer_core.training.recipes import TrainConfig
from explorer_core.training.trainer import PRESETS, train, training_inputs
from tests.unit.test_training import TINY, tiny_splits


def v3(**changes) -> TrainConfig:
    return TrainConfig.for_family("gmvae", **{"fresh_binarization": True, "keep_epoch": "last", **changes})


def test_the_fresh_binarization_differs_between_minibatches_and_keeps_the_mean():
    x = torch.arange(256, dtype=torch.uint8).repeat(40, 1)[:, : 784 // 2].repeat(1, 2)[:, :784]  # [40, 784]
    x = x.repeat(50, 1)  # 2,000 copies of every intensity, one row block per "minibatch"
    generator = torch.Generator().manual_seed(0)
    first, second = training_inputs(x, v3(), generator), training_inputs(x, v3(), generator)
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(first, second)  # a new draw every epoch, so every minibatch sees a new one
    p = x.float() / 255
    # the mean over many draws is the pixel intensity (Bernoulli(p)): 4,000 draws per value, SE <= 0.008
    means = torch.stack([first, second]).mean(0)
    per_value = torch.zeros(256).index_add_(0, x.flatten().long(), means.flatten()) / torch.bincount(
        x.flatten().long(), minlength=256
    )
    assert torch.allclose(per_value, torch.arange(256) / 255, atol=0.04)
    assert torch.all((first == 0) | (p > 0)) and torch.all((first == 1) | (p < 1))


def test_without_fresh_binarization_training_inputs_are_the_fixed_threshold():
    x = torch.randint(0, 256, (10, 784), dtype=torch.uint8)
    config = TrainConfig.for_family("gmvae")
    out = training_inputs(x, config, torch.Generator().manual_seed(0))
    assert torch.equal(out, preprocess_for_evaluation(x, "binarized"))


def test_the_v3_presets_and_their_checks():
    marginal, gumbel = PRESETS["gmvae-marginal-v3"], PRESETS["gmvae-gumbel-v3"]
    assert marginal.fresh_binarization and marginal.keep_epoch == "last" and marginal.patience is None
    assert marginal.epochs == 200 and marginal.preprocessing == "binarized" and marginal.latent_dim == 64
    assert gumbel.estimator == "gumbel" and gumbel.fresh_binarization
    with pytest.raises(ValueError, match="keep_epoch must be one of"):
        v3(keep_epoch="median")
    with pytest.raises(ValueError, match="fresh_binarization needs preprocessing 'binarized'"):
        TrainConfig.for_family("vae", fresh_binarization=True)


def tiny_train(config: TrainConfig, tmp_path, run: str, resume: bool = False):
    """``train`` on the tiny splits, on the CPU, checkpointing into ``tmp_path/run-<run>``."""
    return train(
        config,
        tmp_path / run,
        "m",
        device=torch.device("cpu"),
        splits=tiny_splits(),
        run_dir=tmp_path / f"run-{run}",
        resume=resume,
    )


def test_keep_last_saves_the_last_epoch_and_a_resumed_run_ends_the_same(tmp_path):
    config = v3(**{**TINY, "epochs": 3}, n_clusters=3)
    path = tiny_train(config, tmp_path, "a")
    meta = json.loads(path.read_text())
    assert meta["recipe"]["keep_epoch"] == "last" and meta["recipe"]["fresh_binarization"] is True
    history = meta["training"]["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert all(0 <= h["min_cluster_usage"] <= 1 / 3 for h in history)
    # the saved weights are the last epoch's: its validation conditional entropy is re-measured from them
    from explorer_core.artifacts import load_model

    model = load_model(path).model
    x_val = preprocess_for_evaluation(tiny_splits().x_val, "binarized")
    again = cluster_metrics(model, x_val, tiny_splits().y_val)
    assert again["conditional_entropy"] == pytest.approx(history[-1]["conditional_entropy"], abs=1e-5)
    # two epochs, then resumed to three, gives the same last epoch bit for bit
    short = TrainConfig.from_dict({**config.to_dict(), "epochs": 2})
    tiny_train(short, tmp_path, "b")
    resumed = tiny_train(config, tmp_path, "b", resume=True)
    assert json.loads(resumed.read_text())["training"]["history"] == history


def test_min_cluster_usage_is_the_smallest_share_of_argmax_assignments():
    torch.manual_seed(0)
    model = GMVAE(GMVAEConfig(n_clusters=4, latent_dim=2, hidden=(16,)))
    x = torch.rand(200, 784).round()
    labels = torch.randint(0, 4, (200,))
    probs = model.cluster_posterior(x).probs
    counts = torch.bincount(probs.argmax(-1), minlength=4)
    assert cluster_metrics(model, x, labels)["min_cluster_usage"] == pytest.approx(int(counts.min()) / 200)


def restart(tmp_path, seed: int, entropy: float, usage: float, epochs: int = 20):
    history = [
        {
            "epoch": e,
            "train_elbo": -90.0,
            "val_elbo": -88.0 - seed,
            "conditional_entropy": entropy + (20 - e),
            "min_cluster_usage": usage,
            "cluster_accuracy": 0.5,
        }
        for e in range(1, epochs + 1)
    ]
    meta = {
        "recipe": {"seed": seed},
        "training": {"history": history},
        "test_metrics": {"cluster_accuracy": 0.9 - 0.1 * seed, "elbo": -87.0},
    }
    path = tmp_path / f"gmvae-marginal-v3-screen-s{seed}.json"
    path.write_text(json.dumps(meta))
    return path


def test_the_screening_rule_skips_a_restart_with_an_unused_cluster(tmp_path):
    paths = [
        restart(tmp_path, 0, 0.30, 0.06),
        restart(tmp_path, 1, 0.10, 0.02),  # the lowest entropy, but one cluster takes 2 %: skipped
        restart(tmp_path, 2, 0.20, 0.05),  # at the 5 % line: eligible
        restart(tmp_path, 3, 0.25, 0.09),
    ]
    record = screen_restarts(paths)
    assert record["rule"] == SCREENING_RULE
    assert record["kept"] == [2, 3, 0] and record["skipped"] == [1]
    assert [r["rank"] for r in record["restarts"]] == [3, None, 1, 2]
    # test accuracy is reported, never used: seed 0 is the most accurate and ranks last
    assert record["restarts"][0]["test_cluster_accuracy"] == pytest.approx(0.9)


def test_the_screening_rule_reads_epoch_20_and_refuses_short_or_useless_runs(tmp_path):
    with pytest.raises(ValueError, match="no history row for epoch 20"):
        screen_restarts([restart(tmp_path, 0, 0.3, 0.1, epochs=5)])
    with pytest.raises(ValueError, match="no restart uses every cluster"):
        screen_restarts([restart(tmp_path, 1, 0.3, 0.01)])
    with pytest.raises(ValueError, match="no restarts"):
        screen_restarts([])


def test_the_screen_command_prints_the_ranking(tmp_path, capsys):
    paths = [restart(tmp_path, 0, 0.30, 0.06), restart(tmp_path, 1, 0.10, 0.02)]
    assert main(["screen", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    assert "kept (best first): [0]; skipped: [1]" in out
    assert main(["screen", str(tmp_path / "missing.json")]) == 2


def test_the_split_first_layer_of_q_z_equals_one_linear_on_x_and_y_concatenated():
    """q(z|x,y)'s first layer is W_x x + W_y y + b (x's part once per image, not once per cluster): the same
    function, and so the same marginal ELBO on a fixed batch and fixed noise, as one Linear on
    [x, onehot(y)]."""
    torch.manual_seed(0)
    model = GMVAE(GMVAEConfig(n_clusters=10, latent_dim=8, hidden=(32, 32))).eval()
    x = (torch.rand(6, 784, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    joint = torch.nn.Linear(784 + 10, 32)
    with torch.no_grad():
        joint.weight.copy_(torch.cat([model.qz_x.weight, model.qz_y.weight], dim=1))
        joint.bias.copy_(model.qz_x.bias)
    eye = torch.eye(10)
    concatenated = torch.cat([x.unsqueeze(0).expand(10, -1, -1), eye.unsqueeze(1).expand(-1, 6, -1)], dim=-1)
    from explorer_core.models.layers import gaussian_head

    reference = gaussian_head(model.qz_body(joint(concatenated)), model.qz_mu, model.qz_sigma)
    split = model.encode_all_clusters(x)
    assert torch.allclose(split.mean, reference.mean, atol=1e-5)
    assert torch.allclose(split.stddev, reference.stddev, atol=1e-5)
    torch.manual_seed(2)
    elbo = model.marginal_elbo_terms(x).elbo
    original = model.encode_all_clusters
    model.encode_all_clusters = lambda _x: reference
    torch.manual_seed(2)
    elbo_joint = model.marginal_elbo_terms(x).elbo
    model.encode_all_clusters = original
    assert torch.allclose(elbo, elbo_joint, atol=1e-3, rtol=1e-6)
