"""Choosing a seed by validation ELBO, never by labels, and publishing it with the table of every seed."""

import json

import pytest
import torch

from explorer_core.artifacts import load_model
from explorer_core.cli import main
from explorer_core.evaluation.selection import RULE, select_by_validation_elbo
from explorer_core.training.recipes import TrainConfig
from explorer_core.training.trainer import train
from tests.unit.test_training import TINY, tiny_splits


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds")
    paths = []
    for seed in (0, 1, 2):
        config = TrainConfig.for_family("gmvae", **{**TINY, "epochs": 2}, n_clusters=3, seed=seed)
        paths.append(train(config, out, f"s{seed}", device=torch.device("cpu"), splits=tiny_splits()))
    return paths


def test_the_rule_picks_the_best_validation_elbo_whatever_the_accuracy(seeds, tmp_path):
    metas = [json.loads(p.read_text()) for p in seeds]
    vals = [m["training"]["best_val_elbo"] for m in metas]
    chosen, record = select_by_validation_elbo(seeds)
    assert chosen == seeds[vals.index(max(vals))]
    assert record["rule"] == RULE and record["chosen_seed"] == vals.index(max(vals))
    assert [r["seed"] for r in record["candidates"]] == [0, 1, 2]
    accuracies = [m["test_metrics"]["cluster_accuracy"] for m in metas]
    assert record["test_cluster_accuracy_mean"] == pytest.approx(sum(accuracies) / 3)
    # make another seed the most accurate on the test set: the choice must not change
    worst = seeds[vals.index(min(vals))]
    meta = json.loads(worst.read_text())
    meta["test_metrics"]["cluster_accuracy"] = 1.0
    edited = tmp_path / worst.name
    edited.write_text(json.dumps(meta))
    others = [p for p in seeds if p != worst]
    chosen_again, _ = select_by_validation_elbo([*others, edited])
    assert chosen_again.name == chosen.name


def test_candidates_of_different_recipes_are_refused(seeds, tmp_path):
    meta = json.loads(seeds[0].read_text())
    meta["recipe"]["lr"] = 0.5
    other = tmp_path / "other.json"
    other.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="different recipes"):
        select_by_validation_elbo([seeds[1], other])
    with pytest.raises(ValueError, match="no candidates"):
        select_by_validation_elbo([])


def test_cli_publishes_the_chosen_seed_and_a_contrast_with_the_table(seeds, tmp_path, capsys):
    args = ["select", *map(str, seeds), "--out", str(tmp_path), "--name", "best"]
    assert main([*args, "--contrast-seed", "2", "--contrast-name", "contrast"]) == 0
    best = load_model(tmp_path / "best.json")
    contrast = load_model(tmp_path / "contrast.json")
    assert best.meta["selection"]["role"] == "chosen by the rule"
    assert len(best.meta["selection"]["candidates"]) == 3
    assert contrast.meta["recipe"]["seed"] == 2
    assert main([*args, "--contrast-seed", "7", "--contrast-name", "x"]) == 2
    assert capsys.readouterr().err.strip().startswith("error:")


def test_select_reads_seeds_from_two_folders_and_publishes_without_a_machine_path(seeds, tmp_path):
    # seeds trained on different machines arrive in different folders (pretrained/seeds/ and a runs folder)
    other = tmp_path / "elsewhere"
    other.mkdir()
    for suffix in (".json", ".safetensors"):
        moved = seeds[1].with_suffix(suffix)
        (other / moved.name).write_bytes(moved.read_bytes())
    candidates = [seeds[0], other / seeds[1].name, seeds[2]]
    _, record = select_by_validation_elbo(candidates)
    assert [r["seed"] for r in record["candidates"]] == [0, 1, 2]
    assert main(["select", *map(str, candidates), "--out", str(tmp_path / "pub"), "--name", "best"]) == 0
    published = json.loads((tmp_path / "pub" / "best.json").read_text())
    assert "path" not in published  # the publishing machine's folders stay out of the shipped JSON
    assert published["recipe"]["seed"] == record["chosen_seed"]


def test_a_seed_folder_missing_a_file_is_reported_not_crashed_on(seeds, tmp_path, capsys):
    folder = tmp_path / "incomplete"
    folder.mkdir()
    # a seed whose weights never arrived: its row can be read, publishing it is a one-line error
    meta_only = folder / seeds[0].name
    meta_only.write_text(seeds[0].read_text())
    lone = [meta_only]
    assert main(["select", *map(str, lone), "--out", str(tmp_path / "pub"), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
    # a seed whose JSON is missing altogether
    missing = folder / "s9.json"
    assert main(["select", str(seeds[1]), str(missing), "--out", str(tmp_path / "pub"), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "s9.json" in err
