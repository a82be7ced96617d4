"""What the VAE and CVAE pages need beyond :mod:`explorer_core.latent`: loading a model with its test set and
latent map in one piece, the visible region of the map, drawings as inputs, the CVAE's label views.

Pure computation (no Streamlit): the pages cache :func:`load_bundle` per model and call the rest per
interaction.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from explorer_core.artifacts import LoadedModel, load_model, load_views
from explorer_core.data import load_mnist_splits, preprocess_for_evaluation
from explorer_core.imaging import tile
from explorer_core.latent import (
    IMAGE_SIDE,
    LatentMap,
    build_latent_map,
    canvas_to_mnist,
    decode_images,
    latent_map_from_encodings,
)

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


def cached_encodings(model, x: torch.Tensor, y: torch.Tensor, key: str | None) -> LatentMap:
    """:func:`explorer_core.latent.build_latent_map` of ``x`` [N, 784] with ``y`` [N], its encodings (mu and
    sigma [N, L], float32) read from / written to the npz file ``key`` (a path; ``None``: no cache). A cache
    file that cannot be read or does not fit is recomputed; one that cannot be written is skipped."""
    labels = y.cpu().numpy()
    if key is not None:
        path = Path(key)
        try:
            with np.load(path) as f:
                mu, sigma, cached_labels = f["mu"], f["sigma"], f["labels"]
            if len(mu) == len(x) == len(sigma) and np.array_equal(cached_labels, labels):
                return latent_map_from_encodings(mu, sigma, labels)
        except (OSError, KeyError, ValueError):
            pass
    latent_map = build_latent_map(model, x, y)
    if key is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
            np.savez(tmp, mu=latent_map.mu, sigma=latent_map.sigma, labels=labels)
            os.replace(tmp, path)
        except OSError:
            pass
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
    if n_test is not None:
        images, labels = images[:n_test], labels[:n_test]
    model_device = next(loaded.model.parameters()).device
    kind = str(loaded.meta.get("preprocessing", "dequantized"))
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


def slider_ranges(latent_map: LatentMap) -> tuple[tuple[float, float], tuple[float, float]]:
    """Ranges of the (u, v) sliders: the map's extent (99.9 % of the encodings, 30 % margin), rounded."""
    ranges = latent_map.extent(quantile=0.999, margin=0.3)
    return tuple((float(np.floor(lo * 10) / 10), float(np.ceil(hi * 10) / 10)) for lo, hi in ranges)


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

    The pixels are made as MNIST was (:func:`explorer_core.latent.canvas_to_mnist`), then preprocessed like
    the test set (:func:`explorer_core.data.preprocess_for_evaluation`). ``None`` for an empty drawing.
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
