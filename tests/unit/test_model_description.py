"""The typed model description (``explorer_core.artifacts.describe``) and the one metrics row built from it
(``views.components.model_metrics``): every field typed once, a missing or damaged figure is ``None`` (a
dash in the row), never an exception."""

from __future__ import annotations

import pytest
import torch

from explorer_core.artifacts import ModelDescription, describe, list_models, load_model, save_model
from explorer_core.evaluation.metrics import ACTIVE_UNIT_VARIANCE
from explorer_core.models.gmvae import GMVAE, GMVAEConfig
from explorer_core.models.vae import VAE, VAEConfig
from views.components.model_metrics import row_metrics
from views.pages import FAMILY_PAGES


@pytest.fixture
def vae_json(tmp_path):
    torch.manual_seed(0)
    meta = {
        "preprocessing": "dequantized",
        "test_metrics": {"elbo": -543.2, "reconstruction": -540.0, "kl": 3.2, "active_units": 2},
        "training": {"epochs_run": 3, "best_epoch": 2, "wall_seconds": 12.5},
    }
    return save_model(VAE(VAEConfig(latent_dim=2, hidden=(16,), dropout=0.0)), "vae", tmp_path, "tiny", meta)


def test_a_saved_model_is_described_with_typed_fields(vae_json):
    (meta,) = list_models(vae_json.parent, "vae")
    d = describe(meta)
    assert isinstance(d, ModelDescription)
    assert (d.name, d.family, d.path) == ("tiny", "vae", str(vae_json))
    assert (d.latent_dim, d.hidden, d.preprocessing) == (2, (16,), "dequantized")
    assert d.test.elbo == -543.2 and d.test.active_units == 2 and d.test.cluster_accuracy is None
    assert d.training.epochs_run == 3 and d.training.wall_seconds == 12.5
    assert d.n_clusters is None and d.selection is None and d.run_id is None
    # the loaded model carries the same description, built once
    loaded = load_model(vae_json)
    assert loaded.description == d and loaded.description is loaded.description


def test_missing_and_damaged_figures_are_none():
    d = describe(
        {
            "family": "gmvae",
            "path": "/models/x.json",
            "config": {"n_clusters": 10, "latent_dim": 4, "estimator": "gumbel", "temperature": 0.5},
            "test_metrics": {"elbo": True, "kl": "3", "per_row_kl": [1.0, "x"], "active_units": 2.5},
            "training": None,
            "selection": {"candidates": [{"seed": 1, "test_elbo": -90.0}, "junk"], "chosen_seed": 1},
        }
    )
    assert d.name == "x" and d.preprocessing == "binarized"  # the defaults of a JSON that does not say
    assert d.test.elbo is None and d.test.kl is None and d.test.active_units is None
    assert d.test.per_row_kl == ()
    assert d.training.epochs_run is None
    assert (d.n_clusters, d.estimator, d.temperature, d.straight_through) == (10, "gumbel", 0.5, False)
    assert d.selection is not None and len(d.selection.candidates) == 1
    assert d.selection.candidates[0].test_elbo == -90.0 and d.selection.rule is None


def test_an_error_entry_is_not_a_description():
    with pytest.raises(KeyError):
        describe({"name": "broken", "error": "broken.json: not a model file: ..."})


def test_every_family_with_a_page_has_one_metrics_row(tmp_path):
    torch.manual_seed(0)
    meta = {"test_metrics": {"elbo": -97.531, "cluster_accuracy": 0.8351, "conditional_entropy": 0.1}}
    path = save_model(GMVAE(GMVAEConfig(hidden=(16,), latent_dim=4)), "gmvae", tmp_path, "g", meta)
    shown = {m.label: (m.shown(), m.help) for m in row_metrics(describe(list_models(path.parent)[0]))}
    assert shown["Test ELBO"][0] == "-97.53" and "(C = 10)" in shown["Test ELBO"][1]
    assert shown["Cluster accuracy"][0] == "83.51%"
    assert shown["ELBO without −log C"][0] == "–"  # not stored: a dash
    assert shown["Clusters C · L"][0] == "10 · 4"
    assert all(FAMILY_PAGES[name].family.metrics for name in ("vae", "cvae", "gmvae", "vrnn"))


def test_the_active_units_figure_states_the_evaluation_rule(vae_json):
    d = describe(list_models(vae_json.parent)[0])
    units = next(m for m in row_metrics(d) if m.label == "Active units")
    assert units.shown() == "2" and f"> {ACTIVE_UNIT_VARIANCE:g}" in units.help
