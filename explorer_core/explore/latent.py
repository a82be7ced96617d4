"""Latent-space exploration of the VAE and the CVAE: the map, decoding, the encoder view, interpolation.

Pure computation (torch in, numpy out) for the VAE and CVAE pages. The expensive part, the encodings of the
test set and their principal plane, is a :class:`LatentMap` computed once per model and cached by the page;
every interaction after that is a handful of decoder calls.

For latent_dim > 2 the map is the plane of the first two principal components of the test-set posterior
means, z = centre + u e1 + v e2, so every point of the map decodes; for latent_dim = 2 it is the latent space
itself (centre 0, e1 and e2 the axes).

It also holds what the pages need around that (formerly ``latent_views``): loading a model with its test set
and latent map in one piece (:func:`load_bundle`, with the encodings cached on disk by the weights' sha256),
the visible region of the map, drawings as inputs, and the CVAE's label views. No Streamlit here: the pages
cache :func:`load_bundle` per model and call the rest per interaction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from explorer_core.artifacts import LoadedModel, load_model, load_views
from explorer_core.atomic import replace_atomically
from explorer_core.data import load_mnist_splits, preprocess_for_evaluation, test_inputs
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


@dataclass(frozen=True)
class Projection:
    """An orthogonal projection onto the plane of the first two principal components.

    Attributes:
        centre: the mean of the fitted points [L]; basis: orthonormal rows e1, e2 [2, L].
        explained: fraction of the fitted points' variance along e1 and e2.
    """

    centre: np.ndarray
    basis: np.ndarray
    explained: tuple[float, float]

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Plane coordinates of latents [n, L] (or [L]): (z - centre) @ basis.T, [n, 2] (or [2])."""
        return ((np.asarray(z, dtype=np.float32) - self.centre) @ self.basis.T).astype(np.float32)


def fit_pca(points: np.ndarray) -> Projection:
    """The 2-D PCA plane of ``points`` [n, L] (n >= 1). For L = 1 the second axis is zero; for L = 2 the plane
    is the latent space itself, rotated onto its principal axes.

    Raises:
        ValueError: ``points`` is not a non-empty [n, L] array.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or len(points) == 0 or points.shape[1] == 0:
        raise ValueError(f"points must be a non-empty [n, L] array, got shape {points.shape}.")
    centre = points.mean(0)
    _, s, vt = np.linalg.svd(points - centre, full_matrices=False)  # vt [min(n, L), L]
    basis = np.zeros((2, points.shape[1]))
    k = min(2, len(vt))
    basis[:k] = vt[:k]
    variance = np.zeros(2)
    total = float(np.sum(s**2))
    if total > 0:
        variance[: min(2, len(s))] = (s[:2] ** 2) / total
    return Projection(
        centre.astype(np.float32), basis.astype(np.float32), (float(variance[0]), float(variance[1]))
    )


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
        plane = fit_pca(mu)
        centre, basis, explained = plane.centre, plane.basis, plane.explained
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
@torch.inference_mode()
def decode_images(
    model,
    z: np.ndarray,
    y: np.ndarray | int | None = None,
    view: str = "mean",
    seed: int = 0,
) -> np.ndarray:
    """Decode latents [n, L] to images [n, 28, 28] in [0, 1] (in inference mode: no autograd record).

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
    uv = manifold_points(u_range, v_range, n)
    return tile(decode_images(model, latent_map.plane_to_z(uv), y, view), n, pad=0)


def manifold_points(u_range: tuple[float, float], v_range: tuple[float, float], n: int) -> np.ndarray:
    """The points of an n x n manifold grid over the plane region, [n*n, 2], row by row from the top (v
    grows upwards, as on the map), in the order :func:`explorer_core.imaging.tile` lays their images out."""
    u = np.linspace(*u_range, n)
    v = np.linspace(*v_range, n)[::-1]
    return np.stack(np.meshgrid(u, v), -1).reshape(-1, 2)


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


N_CLASSES = 10
#: Where the test-set encodings of each model are cached (keyed by the weights' sha256), so a fresh server
#: does not encode the 10,000 test images again: ``AEVB_CACHE_DIR``, default ``~/.cache/aevb-explorer``.
CACHE_ENV = "AEVB_CACHE_DIR"


def cache_dir() -> Path:
    """The folder of the on-disk caches (``AEVB_CACHE_DIR`` or ``~/.cache/aevb-explorer``)/``latent``."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "aevb-explorer"
    return Path(root).expanduser() / "latent"


def encodings_cache_path(weights_sha256: str, n: int, preprocessing: str) -> Path:
    """The cache file of a model's test-set encodings (per weights digest, test-set size, preprocessing)."""
    return cache_dir() / f"enc-{weights_sha256[:32]}-{n}-{preprocessing}.npz"


#: The most the encodings cache may hold, in MiB (``AEVB_LATENT_CACHE_MB``; default
#: :data:`DEFAULT_CACHE_MB`). Each model opened writes one file of up to ~5 MB, and in class mode visitors can
#: export and open models, so after each write the least recently used files are deleted down to this bound.
CACHE_LIMIT_ENV = "AEVB_LATENT_CACHE_MB"
DEFAULT_CACHE_MB = 200.0
#: Files of the cache folder that the bound counts and may delete: the encodings and temporary files of
#: interrupted writes (``.enc-…tmp-…``, see :func:`explorer_core.atomic.replace_atomically`).
_CACHE_PATTERNS = ("enc-*.npz", ".enc-*.tmp-*")
#: Temporary files younger than this (seconds) may be a write in progress and are left alone.
_TMP_GRACE_S = 600.0


def cache_limit_bytes() -> int:
    """The size bound of the encodings cache in bytes, from ``AEVB_LATENT_CACHE_MB`` (MiB, a number >= 0;
    0 keeps only the file just written). A missing, malformed, negative or non-finite value gives the default
    (:data:`DEFAULT_CACHE_MB`). Never raises."""
    raw = os.environ.get(CACHE_LIMIT_ENV, "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_CACHE_MB
    except ValueError:
        mb = DEFAULT_CACHE_MB
    if not np.isfinite(mb) or mb < 0:
        mb = DEFAULT_CACHE_MB
    return int(mb * 1024 * 1024)


def prune_cache(directory: str | Path, limit_bytes: int, keep: str | Path | None = None) -> list[Path]:
    """Delete the least recently used cache files of ``directory`` (oldest mtime first; reads touch their
    file) until the files the cache owns (``enc-*.npz`` and temporary files of writes interrupted more than
    ten minutes ago) total at most
    ``limit_bytes`` bytes. ``keep`` (the file just written) is never deleted, even when it alone exceeds the
    bound. Other files in the folder are neither counted nor touched.

    Returns the deleted paths. Never raises: files that vanish or cannot be deleted (another process pruning
    at the same time, a read-only folder) are skipped.
    """
    directory = Path(directory)
    keep_path = Path(keep).resolve() if keep is not None else None
    entries: list[tuple[float, int, Path]] = []
    seen: set[Path] = set()
    now = time.time()
    for pattern in _CACHE_PATTERNS:
        try:
            candidates = list(directory.glob(pattern))
        except OSError:
            continue
        for p in candidates:
            if p in seen:
                continue
            seen.add(p)
            try:
                st = p.stat()
            except OSError:
                continue
            if not p.is_file():
                continue
            if pattern != _CACHE_PATTERNS[0] and now - st.st_mtime < _TMP_GRACE_S:
                continue  # a write in progress (another thread or process): not ours to delete yet
            entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    deleted: list[Path] = []
    for _, size, p in sorted(entries, key=lambda e: (e[0], str(e[2]))):
        if total <= limit_bytes:
            break
        if keep_path is not None and p.resolve() == keep_path:
            continue
        try:
            p.unlink()
        except FileNotFoundError:
            pass  # pruned by someone else: it no longer counts either way
        except OSError:
            continue
        total -= size
        deleted.append(p)
    return deleted


def _touch(path: Path) -> None:
    """Mark a cache file as just used (its mtime, which :func:`prune_cache` orders by); errors are ignored."""
    with contextlib.suppress(OSError):
        os.utime(path)


def cached_encodings(model, x: torch.Tensor, y: torch.Tensor, key: str | None) -> LatentMap:
    """:func:`build_latent_map` of ``x`` [N, 784] with ``y`` [N], its encodings (mu and sigma [N, L],
    float32) read from / written to the npz file ``key`` (a path; ``None``: no cache). A cache
    file that cannot be read or does not fit is recomputed; one that cannot be written is skipped.

    The cache folder (the folder of ``key``) is bounded: a read marks its file as used, and after each write
    the least recently used files are deleted until the cache holds at most :func:`cache_limit_bytes`
    (see :func:`prune_cache`)."""
    labels = y.cpu().numpy()
    if key is not None:
        path = Path(key)
        try:
            with np.load(path) as f:
                mu, sigma, cached_labels = f["mu"], f["sigma"], f["labels"]
            if len(mu) == len(x) == len(sigma) and np.array_equal(cached_labels, labels):
                _touch(path)
                return latent_map_from_encodings(mu, sigma, labels)
        except (OSError, KeyError, ValueError):
            pass
    latent_map = build_latent_map(model, x, y)
    if key is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            arrays = {"mu": latent_map.mu, "sigma": latent_map.sigma, "labels": labels}
            replace_atomically(path, lambda tmp: np.savez(tmp, **arrays))
        except OSError:
            pass
        else:
            prune_cache(path.parent, cache_limit_bytes(), keep=path)
    return latent_map


@dataclass(frozen=True)
class LatentBundle:
    """A loaded model with everything its page shows, computed once per model.

    Attributes:
        loaded: the model (eval mode, on its device) and its JSON description.
        images: the MNIST test images as uint8 [N, 784] (for display).
        x: the same images preprocessed as the model was trained (deterministic), float32 [N, 784] on the
            model's device.
        y: their labels, int64 [N] on the model's device.
        latent_map: encodings of x, the map plane, the stored t-SNE (when the model has one).
        seconds: wall time of the load, in seconds.
    """

    loaded: LoadedModel
    images: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    latent_map: LatentMap
    seconds: float

    @property
    def model(self):
        """The torch module."""
        return self.loaded.model

    @property
    def preprocessing(self) -> str:
        """The preprocessing the model was trained with (``dequantized`` when the JSON does not say)."""
        return str(self.loaded.meta.get("preprocessing", "dequantized"))

    @property
    def conditional(self) -> bool:
        """True for the CVAE."""
        return bool(self.model.conditional)

    def image(self, index: int) -> np.ndarray:
        """Test image ``index`` as floats [28, 28] in [0, 1]."""
        return self.images[index].reshape(IMAGE_SIDE, IMAGE_SIDE).float().numpy() / 255.0


def load_bundle(
    json_path: str | Path,
    device: torch.device | str = "cpu",
    n_test: int | None = None,
    mnist_directory: str | Path | None = None,
    cache: bool = True,
) -> LatentBundle:
    """Load a VAE or CVAE, preprocess the MNIST test set for it and build its latent map.

    Args:
        json_path: the model's JSON description.
        n_test: use only the first ``n_test`` test images (all 10,000 when ``None``).
        mnist_directory: see :func:`explorer_core.data.mnist_dir`.
        cache: read / write the test-set encodings in :func:`cache_dir`, keyed by the weights' sha256 (a
            fresh server then skips encoding the test set; see :func:`cached_encodings`).

    Raises:
        ArtifactError: the model files are missing, corrupt or do not fit (see :func:`load_model`).
        MNISTUnavailable: the MNIST files are missing or damaged.
    """
    start = time.perf_counter()
    loaded = load_model(json_path, device)
    splits = load_mnist_splits(n_validation=0, directory=mnist_directory)
    images, labels = splits.x_test, splits.y_test
    model_device = next(loaded.model.parameters()).device
    kind = str(loaded.meta.get("preprocessing", "dequantized"))
    if n_test is None:
        x = test_inputs(kind, mnist_directory)[0].to(model_device)  # preprocessed once per process
    else:
        images, labels = images[:n_test], labels[:n_test]
        x = preprocess_for_evaluation(images, kind).to(model_device)
    y = labels.to(model_device)
    views = load_views(loaded)
    tsne = views.get("tsne")
    index = views.get("tsne_index")
    if tsne is not None and index is not None:
        # the map stores the t-SNE of the first n test images; anything else is not shown
        n = min(len(tsne), len(images))
        if not torch.equal(index[:n].long().cpu(), torch.arange(n)):
            tsne = None
        else:
            tsne = tsne[:n]
    digest = loaded.meta.get("sha256")
    key = str(encodings_cache_path(digest, len(x), kind)) if isinstance(digest, str) and cache else None
    latent_map = cached_encodings(loaded.model, x, y, key)
    if tsne is not None:
        latent_map = dataclasses.replace(latent_map, tsne=tsne.cpu().numpy())
    return LatentBundle(loaded, images, x, y, latent_map, time.perf_counter() - start)


def display_subset(labels: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_points`` of the points: a fixed uniform random subset."""
    n = len(labels)
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_points, replace=False))


def plane_ranges(
    points: np.ndarray, quantile: float = 0.999, margin: float = 0.3
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis ranges ((u_lo, u_hi), (v_lo, v_hi)) around plane points [n, 2]: the ``quantile`` bulk with a
    ``margin`` (a fraction of the extent, at least 1e-3) on each side, rounded outwards to 0.1. The one
    rule of a latent plane's bounds: the VAE's and CVAE's sliders and pad (:func:`slider_ranges`), the
    GMVAE's plane (:mod:`explorer_core.explore.clusters`)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    lo, hi = np.quantile(pts, 1 - quantile, axis=0), np.quantile(pts, quantile, axis=0)
    pad = margin * np.maximum(hi - lo, 1e-3)
    lo, hi = np.floor((lo - pad) * 10) / 10, np.ceil((hi + pad) * 10) / 10
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def slider_ranges(latent_map: LatentMap) -> tuple[tuple[float, float], tuple[float, float]]:
    """Ranges of the (u, v) sliders: :func:`plane_ranges` of the map's encodings (99.9 % of them, 30 %
    margin, rounded outwards to 0.1)."""
    return plane_ranges(latent_map.coords)


def view_region(
    ranges: tuple[tuple[float, float], tuple[float, float]],
    centre: tuple[float, float] | None,
    zoom: float,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The part of ``ranges`` shown at ``zoom`` (1: all of it) around ``centre``, kept inside ``ranges``.

    Raises:
        ValueError: zoom < 1.
    """
    if zoom < 1:
        raise ValueError(f"zoom must be >= 1, got {zoom}.")
    out = []
    for i, (lo, hi) in enumerate(ranges):
        half = (hi - lo) / (2 * zoom)
        c = (lo + hi) / 2 if centre is None or zoom == 1 else float(np.clip(centre[i], lo + half, hi - half))
        out.append((c - half, c + half))
    return tuple(out)


def click_grid(region: tuple[tuple[float, float], tuple[float, float]], n: int) -> np.ndarray:
    """An n x n grid of points [n*n, 2] covering ``region`` (an invisible click target on the map)."""
    u = np.linspace(*region[0], n)
    v = np.linspace(*region[1], n)
    return np.stack(np.meshgrid(u, v), -1).reshape(-1, 2).astype(np.float32)


@dataclass(frozen=True)
class Drawing:
    """A drawing made ready for a model: ``pixels`` uint8 [784] (MNIST-like), ``x`` preprocessed [784]."""

    pixels: np.ndarray
    x: torch.Tensor

    @property
    def image(self) -> np.ndarray:
        """The 28 x 28 version in [0, 1], as the model sees it."""
        return self.pixels.reshape(IMAGE_SIDE, IMAGE_SIDE).astype(np.float32) / 255.0


def drawing_input(rgba: np.ndarray | None, preprocessing: str) -> Drawing | None:
    """A canvas drawing (white on black, [H, W, 4] uint8) as MNIST pixels and as model input.

    The pixels are made as MNIST was (:func:`canvas_to_mnist`), then preprocessed like the test set
    (:func:`explorer_core.data.preprocess_for_evaluation`). ``None`` for an empty drawing.
    """
    if rgba is None:
        return None
    pixels = canvas_to_mnist(np.asarray(rgba))
    if pixels is None:
        return None
    x = preprocess_for_evaluation(torch.from_numpy(pixels.copy()), preprocessing)
    return Drawing(pixels, x)


def prior_projections(model, latent_map: LatentMap) -> list[tuple[np.ndarray, np.ndarray]]:
    """The CVAE's learned priors p(z|y), y = 0..9, as (mean [2], cov [2, 2]) on the map plane."""
    device = next(model.parameters()).device
    with torch.no_grad():
        prior = model.prior(torch.arange(N_CLASSES, device=device))
        means, stds = prior.mean.float().cpu().numpy(), prior.stddev.float().cpu().numpy()
    return [latent_map.project_gaussian(m, s) for m, s in zip(means, stds, strict=True)]


def decode_under_labels(model, z: np.ndarray, view: str = "lambda", seed: int = 0) -> np.ndarray:
    """One z [L] decoded by the CVAE under each label 0..9 (style kept, class changed), [10, 28, 28]."""
    zs = np.repeat(np.asarray(z, dtype=np.float32)[None], N_CLASSES, axis=0)
    return decode_images(model, zs, np.arange(N_CLASSES), view, seed)


def class_conditional_samples(
    model, n_per_class: int = 15, seed: int = 0, view: str = "lambda"
) -> np.ndarray:
    """The paper's grid of class-conditional samples: row y holds decodings of z ~ p(z|y), [10*28, n*28].

    Column k uses the same noise eps_k in every row (z = mu(y) + sigma(y) * eps_k), so a column shows one
    draw of the style under the ten labels.

    Raises:
        ValueError: n_per_class < 1.
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}.")
    device = next(model.parameters()).device
    y = torch.arange(N_CLASSES, device=device).repeat_interleave(n_per_class)
    eps = torch.randn(
        n_per_class, model.config.latent_dim, generator=torch.Generator().manual_seed(int(seed))
    )
    eps = eps.repeat(N_CLASSES, 1)
    with torch.no_grad():
        z = model.prior_noise_to_z(eps, y).float().cpu().numpy()
    images = decode_images(model, z, y.cpu().numpy(), view, seed)
    return tile(images, n_per_class, pad=1)
