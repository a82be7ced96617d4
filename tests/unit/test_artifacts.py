"""Saving and loading models: round trip, and every way a file can be bad gives an ArtifactError."""

import hashlib
import json

import pytest
import torch

from explorer_core.artifacts import ArtifactError, list_models, load_model, load_views, save_model
from explorer_core.models.vae import CVAE, VAEConfig


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = CVAE(VAEConfig(latent_dim=2, hidden=(16,), dropout=0.0)).eval()
    views = {"tsne": torch.randn(10, 2), "tsne_index": torch.arange(10)}
    path = save_model(model, "cvae", tmp_path, "tiny", {"preprocessing": "dequantized"}, views=views)
    return model, path


def test_round_trip(saved, tmp_path):
    model, path = saved
    loaded = load_model(path)
    assert loaded.family == "cvae" and loaded.name == "tiny" and not loaded.model.training
    x, y = torch.rand(3, 784), torch.tensor([1, 2, 3])
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.encode(x, y).mean, model.encode(x, y).mean)
    assert load_views(loaded)["tsne"].shape == (10, 2)
    assert load_model(path.with_suffix(".safetensors")).name == "tiny"
    assert [m["name"] for m in list_models(tmp_path, "cvae")] == ["tiny"]
    assert list_models(tmp_path, "vae") == []
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_corrupt_weights_are_refused(saved):
    _, path = saved
    weights = path.with_suffix(".safetensors")
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="corrupt or was replaced"):
        load_model(path)


def test_truncated_weights_with_matching_hash_still_fail_cleanly(saved):
    _, path = saved
    weights = path.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:100])
    meta = json.loads(path.read_text())
    meta["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="does not fit"):
        load_model(path)


def test_mismatched_architecture_is_refused(saved):
    _, path = saved
    meta = json.loads(path.read_text())
    meta["config"]["latent_dim"] = 5
    path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="does not fit"):
        load_model(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(family="flow"), "not a model file: family must be one of"),
        (lambda m: m.pop("weights"), "not a model file: weights is missing"),
        (lambda m: m.update(weights="missing.safetensors"), "missing"),
        (lambda m: m.update(weights="../tiny.safetensors"), "not a plain file name"),
        (lambda m: m["config"].update(likelihood="gaussian"), "config.likelihood must be one of"),
    ],
)
def test_bad_descriptions(saved, edit, message):
    _, path = saved
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=message):
        load_model(path)


def test_unknown_name(tmp_path):
    with pytest.raises(ArtifactError, match="no model"):
        load_model(tmp_path / "nothing.json")
    (tmp_path / "broken.json").write_text("{not json")
    assert "error" in list_models(tmp_path)[0]
