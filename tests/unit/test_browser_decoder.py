"""The decoder exported for the browser (explore.browser_decoder) decodes what the model decodes."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

from explorer_core.explore.browser_decoder import (
    LUT_LOGIT_MAX,
    LUT_SIZE,
    browser_payload,
    pixel_tables,
    plane_decoder,
    table_lookup,
)
from explorer_core.explore.latent import decode_images
from explorer_core.models.base import MLPDecoder
from explorer_core.models.gmvae import GMVAE, GMVAEConfig
from explorer_core.models.vae import CVAE, VAE, VAEConfig
from explorer_core.models.vrnn import VRNN, VRNNConfig

#: one 8-bit grey level is 1/255 ~ 0.0039; the tables interpolate well inside it
PIXEL_ATOL = 1e-3


def _plane(latent_dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(latent_dim, 2)))
    return rng.normal(size=latent_dim).astype(np.float32), q.T.astype(np.float32)


def _uv(n: int = 6, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(n, 2)) * 2).astype(np.float32)


@pytest.mark.parametrize("likelihood", ["continuous_bernoulli", "bernoulli"])
@pytest.mark.parametrize("latent_dim", [2, 5])
def test_vae_plane_decoder_matches_the_model(likelihood: str, latent_dim: int) -> None:
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=latent_dim, hidden=(32, 16), dropout=0.1, likelihood=likelihood)).eval()
    centre, basis = _plane(latent_dim)
    decoder = plane_decoder(model, centre, basis)
    uv = _uv()
    z = centre + uv @ basis
    with torch.inference_mode():
        logits = model.decoder_logits(torch.as_tensor(z)).numpy()
    np.testing.assert_allclose(decoder.logits(uv), logits, rtol=1e-4, atol=1e-4)
    lam = decode_images(model, z, None, "lambda")
    np.testing.assert_allclose(decoder.pixels(uv, "lambda"), lam, atol=PIXEL_ATOL)
    # the mean against the model's own in float64: torch's float32 Continuous Bernoulli mean loses up to 3e-3
    # to cancellation near lambda = 0.5 (where a fresh model's pixels are); the tables are made in float64
    with torch.inference_mode():
        model.double()
        mean = model.pixel_likelihood(model.decoder_logits(torch.as_tensor(z, dtype=torch.float64))).mean
    np.testing.assert_allclose(decoder.pixels(uv, "mean"), mean.numpy().reshape(-1, 28, 28), atol=PIXEL_ATOL)


def test_cvae_plane_decoder_folds_every_label_into_the_first_bias() -> None:
    torch.manual_seed(1)
    model = CVAE(VAEConfig(latent_dim=3, hidden=(24,), dropout=0.0)).eval()
    centre, basis = _plane(3, seed=2)
    decoder = plane_decoder(model, centre, basis, tuple(range(10)))
    assert decoder.first_b.shape == (10, 24) and decoder.first_w.shape == (24, 2)
    uv = _uv(4)
    z = centre + uv @ basis
    for k in (0, 3, 9):
        np.testing.assert_allclose(
            decoder.pixels(uv, "lambda", k), decode_images(model, z, k, "lambda"), atol=PIXEL_ATOL
        )
    # the labels change the decoding (else folding them in would test nothing)
    assert np.abs(decoder.pixels(uv, "lambda", 0) - decoder.pixels(uv, "lambda", 9)).max() > 1e-3


def test_gmvae_plane_decoder_matches_its_bernoulli_means() -> None:
    torch.manual_seed(2)
    model = GMVAE(GMVAEConfig(n_clusters=4, latent_dim=6, hidden=(32, 32))).eval()
    centre, basis = _plane(6, seed=3)
    decoder = plane_decoder(model, centre, basis)
    uv = _uv(5)
    with torch.inference_mode():
        mean = model.decode(torch.as_tensor(centre + uv @ basis)).mean.numpy().reshape(-1, 28, 28)
    np.testing.assert_allclose(decoder.pixels(uv, "lambda"), mean, atol=PIXEL_ATOL)


def test_tables_come_from_the_pixel_likelihood() -> None:
    model = VAE(VAEConfig(latent_dim=2, hidden=(8,), likelihood="continuous_bernoulli"))
    tables = pixel_tables(model)
    assert {k: v.shape for k, v in tables.items()} == {"lambda": (LUT_SIZE,), "mean": (LUT_SIZE,)}
    logits = np.array([-300.0, -7.3, -0.01, 0.0, 0.4, 12.0, 300.0], dtype=np.float32)
    with torch.inference_mode():
        mean = torch.distributions.ContinuousBernoulli(
            logits=torch.as_tensor(logits, dtype=torch.float64)
        ).mean
    inside = np.abs(logits) <= LUT_LOGIT_MAX
    np.testing.assert_allclose(
        table_lookup(tables["mean"], logits)[inside], mean.numpy()[inside], atol=PIXEL_ATOL
    )
    sigmoid = 1 / (1 + np.exp(-np.clip(logits, -60, 60)))
    np.testing.assert_allclose(table_lookup(tables["lambda"], logits), sigmoid, atol=1e-4)
    # the Continuous Bernoulli's mean is pulled towards 0.5: not the sigmoid
    assert abs(float(table_lookup(tables["mean"], np.float32(2.0))) - 1 / (1 + np.exp(-2.0))) > 0.05


def test_payload_is_little_endian_float32_base64_of_the_arrays() -> None:
    torch.manual_seed(3)
    model = VAE(VAEConfig(latent_dim=2, hidden=(16, 8), dropout=0.0)).eval()
    decoder = plane_decoder(model, np.zeros(2, np.float32), np.eye(2, dtype=np.float32))
    payload = browser_payload(decoder)
    read = lambda s: np.frombuffer(base64.b64decode(s), dtype="<f4")  # noqa: E731
    np.testing.assert_array_equal(read(payload["first_w"]), decoder.first_w.ravel())
    np.testing.assert_array_equal(read(payload["first_b"]), decoder.first_b.ravel())
    assert [(layer["n_in"], layer["n_out"]) for layer in payload["layers"]] == [(8, 16), (16, 784)]
    np.testing.assert_array_equal(read(payload["layers"][1]["w"]), decoder.layers[1][0].ravel())
    assert payload["h0"] == 8 and payload["k"] == 1 and payload["lut_size"] == LUT_SIZE
    assert payload["version"] == decoder.version()
    # another model, another version
    other = plane_decoder(VAE(VAEConfig(latent_dim=2, hidden=(16, 8))).eval(), np.zeros(2), np.eye(2))
    assert other.version() != decoder.version()


def test_models_without_an_mlp_decoder_are_refused() -> None:
    model = VRNN(VRNNConfig())
    assert not isinstance(model, MLPDecoder)
    with pytest.raises(TypeError, match="no MLP decoder"):
        plane_decoder(model, np.zeros(2), np.eye(2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="basis"):
        plane_decoder(VAE(VAEConfig(latent_dim=3, hidden=(8,))), np.zeros(3), np.eye(2))
