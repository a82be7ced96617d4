"""Latent-space exploration of the VAE and the CVAE: the map, decoding, the encoder view, interpolation.

Pure computation (torch in, numpy out) for the VAE and CVAE pages. The expensive part, the encodings of the
test set and their principal plane, is a :class:`LatentMap` computed once per model and cached by the page;
every interaction after that is a handful of decoder calls.

For latent_dim > 2 the map is the plane of the first two principal components of the test-set posterior
means, z = centre + u e1 + v e2, so every point of the map decodes; for latent_dim = 2 it is the latent space
itself (centre 0, e1 and e2 the axes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from explorer_core.imaging import tile

IMAGE_SIDE = 28
DECODE_VIEWS = ("mean", "lambda", "sample")


@dataclass(frozen=True)
class LatentMap:
    """Test-set encodings of one model and the plane the map shows.

    Attributes:
        mu, sigma: posterior means and standard deviations of q(z|x), [N, L] (float32).
        labels: digit labels [N].
        centre: [L]; basis: orthonormal rows e1, e2, [2, L].
        coords: (mu - centre) @ basis.T, [N, 2], the map coordinates (u, v) of each test image.
        explained: fraction of the variance of mu along e1 and e2 (1.0, 1.0 for a 2-D latent).
        tsne: optional stored t-SNE embedding [n, 2] of the first n test images (display only: t-SNE
            coordinates do not decode).
    """

    mu: np.ndarray
    sigma: np.ndarray
    labels: np.ndarray
    centre: np.ndarray
    basis: np.ndarray
    coords: np.ndarray
    explained: tuple[float, float]
    tsne: np.ndarray | None = None

    @property
    def latent_dim(self) -> int:
        """L."""
        return self.mu.shape[1]

    def plane_to_z(self, uv: np.ndarray) -> np.ndarray:
        """Map coordinates [n, 2] (or [2]) to latents [n, L] (or [L]): centre + u e1 + v e2."""
        return self.centre + np.asarray(uv, dtype=np.float32) @ self.basis

    def z_to_plane(self, z: np.ndarray) -> np.ndarray:
        """Orthogonal projection of latents [n, L] (or [L]) onto the map, [n, 2] (or [2])."""
        return (np.asarray(z, dtype=np.float32) - self.centre) @ self.basis.T

    def project_gaussian(self, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The marginal on the map plane of N(mean, diag std^2) in latent space: mean [2], cov [2, 2]."""
        cov = (self.basis * np.asarray(std, dtype=np.float64) ** 2) @ self.basis.T
        return self.z_to_plane(mean), cov

    def extent(self, quantile: float = 0.995, margin: float = 0.15) -> tuple[tuple[float, float], ...]:
        """Axis ranges ((u_lo, u_hi), (v_lo, v_hi)) that hold the bulk of the encodings."""
        lo = np.quantile(self.coords, 1 - quantile, axis=0)
        hi = np.quantile(self.coords, quantile, axis=0)
        pad = margin * (hi - lo)
        return tuple((float(a), float(b)) for a, b in zip(lo - pad, hi + pad, strict=True))


@torch.no_grad()
def build_latent_map(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    tsne: torch.Tensor | None = None,
    batch_size: int = 2000,
) -> LatentMap:
    """Encode the (preprocessed) test images and find the map plane.

    Args:
        model: a VAE or CVAE in eval mode; x: [N, 784] on its device.
        y: labels [N] (the CVAE encodes with them).
        tsne: a stored t-SNE embedding of the first n test images, or ``None``.
    """
    model.eval()
    mus, sigmas = [], []
    for start in range(0, len(x), batch_size):
        yb = y[start : start + batch_size] if model.conditional else None
        q = model.encode(x[start : start + batch_size], yb)
        mus.append(q.mean.float().cpu())
        sigmas.append(q.stddev.float().cpu())
    mu, sigma = torch.cat(mus).numpy(), torch.cat(sigmas).numpy()
    return latent_map_from_encodings(mu, sigma, y.cpu().numpy(), None if tsne is None else tsne.cpu().numpy())


def latent_map_from_encodings(
    mu: np.ndarray, sigma: np.ndarray, labels: np.ndarray, tsne: np.ndarray | None = None
) -> LatentMap:
    """The map of given encodings: posterior means and standard deviations [N, L], labels [N], an optional
    stored t-SNE [n, 2]. For L = 2 the plane is the latent space; otherwise the PCA plane of ``mu``."""
    mu = np.asarray(mu, dtype=np.float32)
    sigma = np.asarray(sigma, dtype=np.float32)
    L = mu.shape[1]
    if L == 2:
        centre, basis, explained = np.zeros(2, np.float32), np.eye(2, dtype=np.float32), (1.0, 1.0)
    else:
        centre = mu.mean(0)
        _, s, vt = np.linalg.svd(mu - centre, full_matrices=False)
        basis = vt[:2].astype(np.float32)
        variance = s**2 / np.sum(s**2)
        explained = (float(variance[0]), float(variance[1]))
    coords = (mu - centre) @ basis.T
    return LatentMap(
        mu=mu,
        sigma=sigma,
        labels=np.asarray(labels),
        centre=centre.astype(np.float32),
        basis=basis,
        coords=coords.astype(np.float32),
        explained=explained,
        tsne=None if tsne is None else np.asarray(tsne),
    )


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def decode_images(
    model,
    z: np.ndarray,
    y: np.ndarray | int | None = None,
    view: str = "mean",
    seed: int = 0,
) -> np.ndarray:
    """Decode latents [n, L] to images [n, 28, 28] in [0, 1].

    Args:
        y: labels for the CVAE: one int for all, or [n].
        view: ``"mean"`` (E[x|z]; for the Continuous Bernoulli this differs from lambda), ``"lambda"``
            (the distribution's parameter, what the tutorial's figures show) or ``"sample"`` (a draw).
        seed: seeds the draw for ``"sample"``.

    Raises:
        ValueError: unknown view.
    """
    if view not in DECODE_VIEWS:
        raise ValueError(f"view must be one of {DECODE_VIEWS}, got {view!r}.")
    device = _device(model)
    z_t = torch.as_tensor(np.atleast_2d(z), dtype=torch.float32, device=device)
    y_t = None
    if model.conditional:
        y_arr = np.broadcast_to(np.asarray(0 if y is None else y), (len(z_t),))
        y_t = torch.as_tensor(np.array(y_arr), dtype=torch.long, device=device)
    p = model.decode(z_t, y_t)
    if view == "lambda":
        images = torch.sigmoid(model.decoder_logits(z_t, y_t))
    elif view == "mean":
        images = p.mean
    else:
        torch.manual_seed(seed)
        images = p.sample()
    return images.clamp(0, 1).reshape(-1, IMAGE_SIDE, IMAGE_SIDE).float().cpu().numpy()


def manifold(
    model,
    latent_map: LatentMap,
    u_range: tuple[float, float],
    v_range: tuple[float, float],
    n: int = 15,
    y: int | None = None,
    view: str = "mean",
) -> np.ndarray:
    """Decodings over an n x n grid of the map region, [n*28 + gaps, n*28 + gaps]; v grows upwards."""
    u = np.linspace(*u_range, n)
    v = np.linspace(*v_range, n)[::-1]
    uv = np.stack(np.meshgrid(u, v), -1).reshape(-1, 2)
    return tile(decode_images(model, latent_map.plane_to_z(uv), y, view), n, pad=0)


def interpolate(
    model, z_a: np.ndarray, z_b: np.ndarray, steps: int = 10, y: int | None = None, view: str = "mean"
) -> np.ndarray:
    """Decodings along the straight latent line from z_a to z_b (both [L]), [steps, 28, 28]."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return decode_images(model, (1 - t) * z_a + t * z_b, y, view)


@dataclass(frozen=True)
class Reparameterisation:
    """The encoder view of one image: q(z|x), reparameterised samples and the ELBO's two terms.

    mu, sigma: [L]; eps, z: [n, L] with z = mu + sigma * eps; decodings: [n, 28, 28] (means of p(x|z));
    reconstruction, kl, elbo: single numbers in nats per image, the estimate with the n samples.
    """

    mu: np.ndarray
    sigma: np.ndarray
    eps: np.ndarray
    z: np.ndarray
    decodings: np.ndarray
    reconstruction: float
    kl: float
    elbo: float


@torch.no_grad()
def reparameterise(
    model, x: torch.Tensor, y: int | None = None, n: int = 6, seed: int = 0
) -> Reparameterisation:
    """Encode one preprocessed image x [784] and draw n reparameterised samples z = mu + sigma * eps.

    The ELBO split uses the same n samples: reconstruction = mean_k log p(x|z_k), kl = KL(q(z|x) || p(z))
    in closed form (Kingma & Welling 2014, eq. 10).
    """
    device = _device(model)
    xb = x.reshape(1, -1).to(device)
    yb = torch.tensor([0 if y is None else y], device=device) if model.conditional else None
    q = model.encode(xb, yb)
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(n, 1, q.mean.shape[-1], generator=g).to(device)
    z = q.mean + q.stddev * eps  # [n, 1, L], the reparameterisation itself
    y_n = None if yb is None else yb.expand(n, 1)
    p = model.decode(z, y_n)
    reconstruction = float(p.log_prob(xb).mean())
    kl = float(torch.distributions.kl_divergence(q, model.prior(yb)).sum())
    return Reparameterisation(
        mu=q.mean[0].cpu().numpy(),
        sigma=q.stddev[0].cpu().numpy(),
        eps=eps[:, 0].cpu().numpy(),
        z=z[:, 0].cpu().numpy(),
        decodings=p.mean.clamp(0, 1).reshape(n, IMAGE_SIDE, IMAGE_SIDE).cpu().numpy(),
        reconstruction=reconstruction,
        kl=kl,
        elbo=reconstruction - kl,
    )


def canvas_to_mnist(rgba: np.ndarray, threshold: float = 0.05) -> np.ndarray | None:
    """A drawing (white strokes on black, [H, W, 4] or [H, W] uint8) to a uint8 MNIST-like image [784].

    As MNIST was made: the digit's bounding box is scaled to fit 20 x 20 pixels (aspect kept, antialiased)
    and placed in a 28 x 28 frame with its centre of mass at the centre. Returns ``None`` for an empty
    drawing (nothing above ``threshold`` of full intensity).
    """
    arr = np.asarray(rgba, dtype=np.float32)
    if arr.ndim == 3:
        grey = arr[..., :3].mean(-1) * (arr[..., 3] / 255.0 if arr.shape[-1] == 4 else 1.0)
    else:
        grey = arr
    grey = grey / 255.0
    ys, xs = np.nonzero(grey > threshold)
    if len(ys) == 0:
        return None
    crop = grey[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = np.asarray(
        Image.fromarray((crop * 255).astype(np.uint8)).resize((new_w, new_h), Image.LANCZOS), dtype=np.float32
    )
    frame = np.zeros((IMAGE_SIDE, IMAGE_SIDE), np.float32)
    top, left = (IMAGE_SIDE - new_h) // 2, (IMAGE_SIDE - new_w) // 2
    frame[top : top + new_h, left : left + new_w] = small
    total = frame.sum()
    if total > 0:
        rows, cols = np.indices(frame.shape)
        dy = int(np.clip(round(IMAGE_SIDE / 2 - 0.5 - (rows * frame).sum() / total), -4, 4))
        dx = int(np.clip(round(IMAGE_SIDE / 2 - 0.5 - (cols * frame).sum() / total), -4, 4))
        frame = np.roll(frame, (dy, dx), axis=(0, 1))
    return np.clip(frame, 0, 255).astype(np.uint8).reshape(-1)
