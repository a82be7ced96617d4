"""A model's decoder on one latent plane, as plain float32 arrays the latent pad runs in the browser.

Why: a latent move that waits for the server costs a Streamlit rerun and a browser re-render per move
(BENCHMARKS.md): with a class on one small server the picture would not follow the hand. The decoder of the
MNIST models is a small MLP (about 650,000 weights), so the pad decodes the z under the pointer itself, at the
screen's rate, and tells the server where it stopped. The server stays the source of the weights (exported
here from the loaded model, once per model and plane) and of every number: the pixel values come from tables
that ``torch.distributions`` computes.

What the browser computes for a plane point (u, v) and a label k, exactly what :meth:`PlaneDecoder.logits`
computes here with numpy (tests compare both with the model's own ``decode``):

    h_0 = relu(first_w @ [u, v] + first_b[k])          first_w [H_0, 2], first_b [K, H_0]
    h_i = relu(w_i @ h_{i-1} + b_i)                    for the hidden layers
    logits = w_n @ h_{n-1} + b_n                       [784]
    pixel = interp(logits; table)                      table: the pixel value at LUT_SIZE logits

The first layer has the plane and the label folded in (``first_w = W_0 @ D basis^T``, ``first_b[k] = b_0 + W_0
@ decoder_input(centre, k)``), since z = centre + u e1 + v e2 is affine in (u, v) and the label enters the
decoder's input as a one-hot (the CVAE, Sohn et al. 2015) or not at all.

The tables: ``lambda`` is sigmoid(logit), the pixel distributions' parameter (what the tutorial's figures
show); ``mean`` is E[x|z] of the family's pixel likelihood (``pixel_likelihood(logits).mean``: for the
Continuous Bernoulli of Loaiza-Ganem & Cunningham 2019 it differs from lambda). Linear interpolation between
LUT_SIZE points over [-LUT_LOGIT_MAX, LUT_LOGIT_MAX] (logits beyond are clamped) is within 5e-4 of the
distribution's own value (measured on the shipped models), an eighth of one 8-bit grey level.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from explorer_core.models.base import MLPDecoder

#: the logit range the pixel tables cover, and their size
LUT_LOGIT_MAX = 256.0
LUT_SIZE = 8193
#: the decodings the tables give (``decode_images`` views other than the random ``sample``)
TABLE_VIEWS = ("lambda", "mean")


@dataclass(frozen=True)
class PlaneDecoder:
    """The decoder restricted to a plane of the latent space, for labels ``labels``.

    Attributes:
        first_w: [H_0, 2] float32, the first layer's weights on (u, v).
        first_b: [K, H_0] float32, its bias for each of the K labels.
        layers: the following Linear layers, (w [out, in], b [out]) float32 each; ReLU after each but the
            last, which gives the 784 logits.
        labels: the K labels (``None``: a family without labels, K = 1).
        tables: ``{"lambda": [LUT_SIZE], "mean": [LUT_SIZE]}`` float32, pixel value per logit.
    """

    first_w: np.ndarray
    first_b: np.ndarray
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    labels: tuple[int | None, ...]
    tables: dict[str, np.ndarray]

    def logits(self, uv: np.ndarray, k: int = 0) -> np.ndarray:
        """The decoder logits [n, 784] (float32) at plane points uv [n, 2] under the k-th label, with the
        browser's arithmetic (float32 weights; the sums in float64, as JavaScript's numbers)."""
        h = np.asarray(uv, dtype=np.float64).reshape(-1, 2) @ self.first_w.T.astype(np.float64)
        h = np.maximum(h + self.first_b[k].astype(np.float64), 0.0)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T.astype(np.float64) + b.astype(np.float64)
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h.astype(np.float32)

    def pixels(self, uv: np.ndarray, view: str, k: int = 0) -> np.ndarray:
        """The decoded images [n, 28, 28] in [0, 1] of plane points uv [n, 2] for ``view`` (``lambda`` or
        ``mean``), by the tables as the browser does.

        Raises:
            KeyError: a view without a table (``sample`` is random: the server draws it).
        """
        return table_lookup(self.tables[view], self.logits(uv, k)).reshape(-1, 28, 28)

    def version(self) -> str:
        """A short key of these arrays (the pad asks for them again only when it changes)."""
        digest = hashlib.sha1()
        for array in (self.first_w, self.first_b, *(a for layer in self.layers for a in layer)):
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(repr(self.labels).encode())
        return digest.hexdigest()[:16]


def pixel_tables(model: MLPDecoder) -> dict[str, np.ndarray]:
    """The pixel value as a function of the decoder logit, at LUT_SIZE logits evenly spaced over
    [-LUT_LOGIT_MAX, LUT_LOGIT_MAX]: ``lambda`` (sigmoid) and ``mean`` (the pixel likelihood's mean), each
    [LUT_SIZE] float32 in [0, 1]."""
    grid = torch.linspace(-LUT_LOGIT_MAX, LUT_LOGIT_MAX, LUT_SIZE, dtype=torch.float64)
    with torch.inference_mode():
        # in float64: the Continuous Bernoulli's mean near lambda = 0.5 loses ~3e-3 to cancellation in float32
        mean = model.pixel_likelihood(grid[None]).mean[0]
        tables = {"lambda": torch.sigmoid(grid), "mean": mean}
    return {k: v.clamp(0, 1).float().numpy() for k, v in tables.items()}


def table_lookup(table: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Pixel values for logits (any shape) by linear interpolation in ``table`` [LUT_SIZE], as the browser
    does; logits beyond the table's range take its end values."""
    grid = np.linspace(-LUT_LOGIT_MAX, LUT_LOGIT_MAX, LUT_SIZE)
    return np.interp(np.asarray(logits, dtype=np.float64), grid, table.astype(np.float64)).astype(np.float32)


def plane_decoder(
    model: MLPDecoder, centre: np.ndarray, basis: np.ndarray, labels: Sequence[int | None] = (None,)
) -> PlaneDecoder:
    """Export ``model``'s decoder on the plane z = centre + u e1 + v e2.

    Args:
        model: a model with the :class:`explorer_core.models.base.MLPDecoder` capability (eval mode).
        centre: [L]; basis: [2, L] (rows e1, e2; for a 2-D latent, centre 0 and the identity).
        labels: the labels to fold into the first layer's bias (``(None,)`` for a family without labels).

    Raises:
        TypeError: the model has no MLP decoder.
        ValueError: shapes that do not match the model's latent dimension.
    """
    if not isinstance(model, MLPDecoder):
        raise TypeError(f"{type(model).__name__} has no MLP decoder to export.")
    layers = model.decoder_layers()
    first = layers[0]
    device = first.weight.device
    centre_t = torch.as_tensor(np.asarray(centre, dtype=np.float64), device=device).reshape(1, -1)
    basis_t = torch.as_tensor(np.asarray(basis, dtype=np.float64), device=device)
    if basis_t.shape != (2, centre_t.shape[1]):
        raise ValueError(f"basis must be [2, {centre_t.shape[1]}], got {list(basis_t.shape)}.")
    w0, b0 = first.weight.detach().double(), first.bias.detach().double()
    with torch.inference_mode():
        zero = torch.zeros(1, dtype=torch.long, device=device)
        # the decoder input is affine in z: its change along e1, e2 (the label's one-hot cancels out)
        base = model.decoder_input(centre_t, None if labels[0] is None else zero + labels[0])
        steps = torch.stack(
            [
                model.decoder_input(centre_t + basis_t[i], None if labels[0] is None else zero + labels[0])[0]
                - base[0]
                for i in range(2)
            ]
        )  # [2, D_in]
        first_w = (steps @ w0.T).T  # [H_0, 2]
        first_b = torch.stack(
            [
                model.decoder_input(centre_t, None if y is None else zero + int(y))[0] @ w0.T + b0
                for y in labels
            ]
        )  # [K, H_0]
    rest = tuple(
        (layer.weight.detach().float().cpu().numpy(), layer.bias.detach().float().cpu().numpy())
        for layer in layers[1:]
    )
    return PlaneDecoder(
        first_w=first_w.float().cpu().numpy(),
        first_b=first_b.float().cpu().numpy(),
        layers=rest,
        labels=tuple(None if y is None else int(y) for y in labels),
        tables=pixel_tables(model),
    )


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def browser_payload(decoder: PlaneDecoder) -> dict:
    """JSON-ready arrays for the pad: float32 little-endian, base64 (``first_w`` [H_0 * 2], ``first_b``
    [K * H_0], ``layers`` [{w [out * in], b [out], n_in, n_out}], ``tables`` {view: [LUT_SIZE]}), with the
    sizes to read them and ``lut_max`` (the tables span [-lut_max, lut_max])."""
    return {
        "version": decoder.version(),
        "h0": int(decoder.first_w.shape[0]),
        "k": int(decoder.first_b.shape[0]),
        "first_w": _b64(decoder.first_w),
        "first_b": _b64(decoder.first_b),
        "layers": [
            {"w": _b64(w), "b": _b64(b), "n_in": int(w.shape[1]), "n_out": int(w.shape[0])}
            for w, b in decoder.layers
        ],
        "tables": {view: _b64(t) for view, t in decoder.tables.items()},
        "lut_max": LUT_LOGIT_MAX,
        "lut_size": LUT_SIZE,
    }
