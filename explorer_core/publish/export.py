"""A loaded model as the plain arrays its published page runs in the browser (``site/nets.js``).

Every network is exported as its Linear layers in order, float32 little-endian, base64: ``{"w": [n_out *
n_in] row-major, "b": [n_out], "n_in", "n_out", "act"}`` with ``act`` ``"relu"`` or ``"none"``, so the
browser computes ``h = act(W h + b)`` layer by layer with float32 weights and float64 sums (JavaScript's
numbers), exactly what :func:`run_layers` computes here and what the tests compare with torch. A Gaussian
head (:func:`explorer_core.models.layers.gaussian_head`) is two such layers, ``mu`` and ``sigma`` (sigma =
softplus + :data:`explorer_core.models.layers.MIN_STD`).

What each kind of model exports (``kind`` in the payload):

* ``latent`` (VAE, CVAE): ``encoder`` (body) with heads ``encoder_mu``/``encoder_sigma``, ``decoder``; the
  CVAE's learned priors p(z|y) (``prior_mu``, ``prior_sigma`` [10, L]); the map: the app's plane (the PCA
  plane of the 10,000 test-set posterior means for L > 2, the latent axes for L = 2, as
  :func:`explorer_core.explore.latent.latent_map_from_encodings`), the plane coordinates of the first
  :data:`MAP_POINTS` test images and the pad's bounds (:func:`explorer_core.explore.latent.slider_ranges`).
* ``mixture`` (GMVAE): ``qy`` (logits of q(y|x)), ``qz`` (its first layer reads [x, one-hot(y)]: the model's
  ``W_x x + W_y y + b`` as one Linear), heads ``qz_mu``/``qz_sigma``, ``decoder``; p(z|y)'s means and standard
  deviations [C, L]; each cluster's matched digit and test usage (the model's JSON).
* ``sequence`` (VRNN): the LSTM's layers (``w_ih``, ``w_hh``, ``b_ih``, ``b_hh``, gates i, f, g, o as torch),
  ``prior``/``posterior`` bodies with their heads, ``decoder`` (28 Bernoulli logits per row).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from explorer_core.artifacts import LoadedModel
from explorer_core.explore.latent import build_latent_map, slider_ranges
from explorer_core.models.gmvae import GMVAE
from explorer_core.models.layers import MIN_STD
from explorer_core.models.vae import VAE
from explorer_core.models.vrnn import VRNN

#: test images whose posterior means the published map shows (the issue asks for at least 2,000)
MAP_POINTS = 2000


class ExportError(ValueError):
    """A model this publisher cannot export (a family without a published page)."""


def b64(array: np.ndarray | torch.Tensor, dtype: str = "<f4") -> str:
    """``array`` as little-endian ``dtype`` bytes (float32 by default), base64 (ASCII)."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def unb64(text: str, dtype: str = "<f4") -> np.ndarray:
    """The inverse of :func:`b64`: a flat array of ``dtype``."""
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


def linear(weight: torch.Tensor, bias: torch.Tensor | None, act: str) -> dict[str, Any]:
    """One layer as the browser reads it (see the module docstring): weight [n_out, n_in], bias [n_out]
    (zeros when ``None``), ``act`` ``"relu"`` or ``"none"``."""
    weight = weight.detach().float().cpu()
    if bias is None:
        bias = torch.zeros(weight.shape[0])
    return {
        "w": b64(weight),
        "b": b64(bias.detach().float().cpu()),
        "n_in": int(weight.shape[1]),
        "n_out": int(weight.shape[0]),
        "act": act,
    }


def layers_of(module: nn.Module, last_act: str = "relu") -> list[dict[str, Any]]:
    """Every Linear in ``module`` in order, ReLU after each but the last, which gets ``last_act`` (the
    project's :func:`explorer_core.models.layers.mlp` has a ReLU after every Linear; Dropout is a no-op in
    eval mode)."""
    found = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return [linear(m.weight, m.bias, "relu" if i < len(found) - 1 else last_act) for i, m in enumerate(found)]


def run_layers(layers: Sequence[dict[str, Any]], x: np.ndarray) -> np.ndarray:
    """What the browser computes for exported ``layers`` on inputs x [n, n_in]: float32 weights, float64
    sums. Returns [n, n_out] float64 (used by the tests as the reference of the JavaScript)."""
    h = np.asarray(x, dtype=np.float64)
    for layer in layers:
        w = unb64(layer["w"]).astype(np.float64).reshape(layer["n_out"], layer["n_in"])
        h = h @ w.T + unb64(layer["b"]).astype(np.float64)
        if layer["act"] == "relu":
            h = np.maximum(h, 0.0)
    return h


def head(mu: nn.Linear, sigma: nn.Linear) -> dict[str, Any]:
    """A Gaussian head: ``mu`` and ``sigma`` layers (the browser adds softplus + ``min_std`` to sigma)."""
    return {"mu": linear(mu.weight, mu.bias, "none"), "sigma": linear(sigma.weight, sigma.bias, "none")}


def _floats(values: np.ndarray, digits: int = 6) -> list[float]:
    """Small arrays as JSON numbers, rounded (stable text)."""
    return [round(float(v), digits) for v in np.asarray(values, dtype=np.float64).ravel()]


# ------------------------------------------------------------------------------------------ per kind
@torch.inference_mode()
def export_latent(loaded: LoadedModel, x: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """The VAE's or CVAE's payload (see the module docstring).

    Args:
        loaded: the model (eval mode, CPU).
        x: the MNIST test images preprocessed as the model was trained, float32 [N, 784] (the app encodes all
            10,000 to find its plane); labels: their digits, int64 [N].
    """
    model = loaded.model
    latent_map = build_latent_map(model, x, labels)
    bounds = slider_ranges(latent_map)
    n = min(MAP_POINTS, len(x))
    payload: dict[str, Any] = {
        "kind": "latent",
        "conditional": bool(model.conditional),
        "latent_dim": int(model.config.latent_dim),
        "n_classes": int(model.config.n_classes),
        "likelihood": model.config.likelihood,
        "nets": {
            "encoder": layers_of(model.encoder),
            "encoder_head": head(model.encoder_mu, model.encoder_sigma),
            "decoder": [*layers_of(model.decoder), *layers_of(model.decoder_out, "none")],
        },
        "map": {
            "centre": b64(latent_map.centre),
            "basis": b64(latent_map.basis),
            "explained": _floats(latent_map.explained, 4),
            "u": b64(latent_map.coords[:n, 0]),
            "v": b64(latent_map.coords[:n, 1]),
            "labels": b64(latent_map.labels[:n].astype(np.uint8), "u1"),
            "n": n,
            "bounds": [list(b) for b in bounds],
        },
    }
    if model.conditional:
        prior = model.prior(torch.arange(model.config.n_classes))
        payload["prior"] = {"mu": b64(prior.mean), "sigma": b64(prior.stddev)}
    return payload


@torch.inference_mode()
def export_mixture(loaded: LoadedModel) -> dict[str, Any]:
    """The GMVAE's payload (see the module docstring)."""
    model = loaded.model
    c = model.config
    prior = model.prior()  # batch [C]
    metrics = loaded.meta.get("test_metrics") or {}
    matched = metrics.get("matched_label") or [-1] * c.n_clusters
    usage = metrics.get("cluster_usage") or []
    first = torch.cat([model.qz_x.weight, model.qz_y.weight], dim=1)  # [H, 784 + C]
    return {
        "kind": "mixture",
        "latent_dim": int(c.latent_dim),
        "n_clusters": int(c.n_clusters),
        "likelihood": c.likelihood,
        "nets": {
            "qy": layers_of(model.qy, "none"),
            "qz": [linear(first, model.qz_x.bias, "relu"), *layers_of(model.qz_body)],
            "qz_head": head(model.qz_mu, model.qz_sigma),
            "decoder": layers_of(model.decoder, "none"),
        },
        "prior": {"mu": b64(prior.mean), "sigma": b64(prior.stddev)},
        "matched_label": [int(v) for v in matched][: c.n_clusters],
        "usage": _floats(usage, 4)[: c.n_clusters],
    }


@torch.inference_mode()
def export_sequence(loaded: LoadedModel) -> dict[str, Any]:
    """The VRNN's payload (see the module docstring)."""
    model = loaded.model
    c = model.config
    rnn = model.rnn
    lstm = [
        {
            "w_ih": b64(getattr(rnn, f"weight_ih_l{k}")),
            "w_hh": b64(getattr(rnn, f"weight_hh_l{k}")),
            "b_ih": b64(getattr(rnn, f"bias_ih_l{k}")),
            "b_hh": b64(getattr(rnn, f"bias_hh_l{k}")),
            "n_in": int(getattr(rnn, f"weight_ih_l{k}").shape[1]),
            "n_hidden": int(c.rnn_hidden),
        }
        for k in range(c.rnn_layers)
    ]
    return {
        "kind": "sequence",
        "latent_dim": int(c.latent_dim),
        "n_rows": int(c.n_rows),
        "row_dim": int(c.row_dim),
        "rnn_hidden": int(c.rnn_hidden),
        "likelihood": c.likelihood,
        "nets": {
            "lstm": lstm,
            "prior": layers_of(model.prior_net),
            "prior_head": head(model.prior_mu, model.prior_sigma),
            "posterior": layers_of(model.posterior_net),
            "posterior_head": head(model.posterior_mu, model.posterior_sigma),
            "decoder": layers_of(model.decoder_net, "none"),
        },
    }


def kind_of(model: nn.Module) -> str:
    """The published page a model gets: ``latent`` (VAE, CVAE), ``mixture`` (GMVAE), ``sequence`` (VRNN).

    Raises:
        ExportError: a model of another kind.
    """
    for cls, kind in ((VAE, "latent"), (GMVAE, "mixture"), (VRNN, "sequence")):
        if isinstance(model, cls):
            return kind
    raise ExportError(f"a {type(model).__name__} has no published page.")


def export_model(loaded: LoadedModel, x: torch.Tensor | None, labels: torch.Tensor | None) -> dict[str, Any]:
    """The payload of one loaded model (CPU, eval mode): its networks and tables (see the module docstring)
    and what the page says about it (name, family, test ELBO).

    Args:
        x, labels: the preprocessed test set and its labels (only the VAE and the CVAE read them).

    Raises:
        ExportError: a family without a published page, or a VAE/CVAE without its test set.
    """
    kind = kind_of(loaded.model)
    if kind == "latent":
        if x is None or labels is None:
            raise ExportError("the VAE and the CVAE need the MNIST test set for their map.")
        payload = export_latent(loaded, x, labels)
    elif kind == "mixture":
        payload = export_mixture(loaded)
    else:
        payload = export_sequence(loaded)
    metrics = loaded.meta.get("test_metrics") or {}
    elbo = metrics.get("elbo")
    return {
        "name": loaded.name,
        "family": loaded.family,
        "preprocessing": str(loaded.meta.get("preprocessing", "binarized")),
        "min_std": MIN_STD,
        "test_elbo": None if elbo is None else round(float(elbo), 2),
        **payload,
    }
