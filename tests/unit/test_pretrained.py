"""The shipped models: each loads, and `evaluate` reproduces the test ELBO recorded in its JSON."""

import pytest
import torch

from explorer_core.artifacts import PRETRAINED_DIR, list_models, load_model
from explorer_core.data import MNISTUnavailable, load_mnist_splits, preprocess_for_evaluation
from explorer_core.families import model_family

SHIPPED = [m["name"] for m in list_models(PRETRAINED_DIR)]


@pytest.fixture(scope="module")
def mnist():
    try:
        return load_mnist_splits(n_validation=0)
    except MNISTUnavailable as err:
        pytest.skip(str(err))


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_evaluate_reproduces_the_recorded_test_elbo(name, mnist):
    loaded = load_model(name)
    x = preprocess_for_evaluation(mnist.x_test, loaded.meta["preprocessing"])
    with torch.inference_mode():
        metrics = model_family(loaded.family).evaluate(loaded.model, x, mnist.y_test)
    recorded = loaded.meta["test_metrics"]
    assert metrics["elbo"] == pytest.approx(recorded["elbo"], abs=0.05)
    assert metrics["kl"] == pytest.approx(recorded["kl"], abs=0.05)
    for key in ("active_units", "cluster_accuracy", "matched_label"):
        assert metrics.get(key) == recorded.get(key)
