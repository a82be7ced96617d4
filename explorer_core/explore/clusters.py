"""What the Gaussian mixture VAE page computes (no Streamlit): a GMVAE loaded with its test set, q(y|x) of
every test image, the clusters matched to digits, a PCA plane of the latent space, fresh samples per cluster
and what the encoder makes of one image.

Terms (tutorial section 5.5): y in 0..C-1 is the cluster (the mixture component), q(y|x) the cluster
posterior, p(z|y) = N(mu(y), diag sigma(y)^2) a cluster's prior, p(x|z) the Bernoulli decoder. A cluster's
*matched digit* comes from Hungarian matching of the clusters x labels contingency table
(:func:`explorer_core.evaluation.cluster_accuracy`); the gallery's rows follow it, never a hand order.

The page caches :func:`load_cluster_bundle` per model and calls the rest per interaction.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer_core.artifacts import ArtifactError, LoadedModel, load_model
from explorer_core.data import load_mnist_splits, preprocess_for_evaluation
from explorer_core.evaluation.metrics import cluster_accuracy, cluster_posteriors, hungarian_match
from explorer_core.explore.latent import IMAGE_SIDE, Projection, fit_pca
from explorer_core.explore.latent import plane_ranges as plane_ranges  # the GMVAE page's bounds
from explorer_core.families import model_family
from explorer_core.imaging import png_bytes, tile

N_CLASSES = 10


# --------------------------------------------------------------------------------------- clusters


def gallery_order(matched_label: Sequence[int], usage: Sequence[float] | None = None) -> list[int]:
    """The clusters in gallery order: by matched digit (0, 1, ..., 9), then the unmatched clusters
    (``matched_label`` -1, when C > 10) by decreasing usage, ties by cluster index.

    Args:
        matched_label: the digit matched to each cluster [C] (-1: none), from Hungarian matching.
        usage: the fraction of test images assigned to each cluster [C] (default: all equal).
    """
    matched = [int(m) for m in matched_label]
    use = [0.0] * len(matched) if usage is None else [float(u) for u in usage]
    if len(use) != len(matched):
        raise ValueError(f"{len(matched)} matched labels but {len(use)} usages.")
    return sorted(range(len(matched)), key=lambda c: (matched[c] < 0, matched[c], -use[c], c))


def cluster_name(cluster: int, matched_label: Sequence[int]) -> str:
    """A cluster's short name with its matched digit, e.g. ``"y=3 → 7"`` (``"y=3 → –"`` when unmatched)."""
    digit = int(matched_label[cluster])
    return f"y={cluster} → {digit if digit >= 0 else '–'}"


@dataclass(frozen=True)
class ClusterBundle:
    """A GMVAE with everything its page shows, computed once per model.

    Attributes:
        loaded: the model (eval mode, on its device) and its JSON description.
        images: the MNIST test images as uint8 [N, 784] (for display).
        x: the same images binarized as the model was trained, float32 [N, 784] on the model's device.
        labels: the true digits, int64 [N] (numpy).
        probs: q(y|x) of every test image, float32 [N, C] (numpy).
        assignments: argmax_y q(y|x), int64 [N].
        mu: the posterior mean of z under the assigned cluster, E_q(z|x, y=ŷ)[z], float32 [N, L].
        projection: the PCA plane of ``mu``.
        coords: ``mu`` on that plane [N, 2]; prior_coords: the cluster prior means mu(y) on it [C, 2].
        prior_means: mu(y) [C, L]; prior_stds: sigma(y) [C, L].
        clusters: :func:`explorer_core.evaluation.cluster_accuracy` of ``assignments`` against ``labels``
            (``accuracy``, ``matched_label`` [C], ``contingency`` [C][10] counts, ``usage`` [C] fractions),
            recomputed here so that it always matches the loaded weights and the test set shown.
        order: the clusters in gallery order (see :func:`gallery_order`).
        seconds: wall time of the load, in seconds.
    """

    loaded: LoadedModel
    images: torch.Tensor
    x: torch.Tensor
    labels: np.ndarray
    probs: np.ndarray
    assignments: np.ndarray
    mu: np.ndarray
    projection: Projection
    coords: np.ndarray
    prior_means: np.ndarray
    prior_stds: np.ndarray
    prior_coords: np.ndarray
    clusters: dict[str, Any]
    order: list[int]
    seconds: float

    @property
    def model(self):
        """The torch module (a :class:`explorer_core.models.gmvae.GMVAE`)."""
        return self.loaded.model

    @property
    def n_clusters(self) -> int:
        """C."""
        return int(self.model.config.n_clusters)

    @property
    def preprocessing(self) -> str:
        """The preprocessing the model was trained with (``binarized`` when the JSON does not say)."""
        return str(self.loaded.meta.get("preprocessing", "binarized"))

    @property
    def matched_label(self) -> list[int]:
        """The digit matched to each cluster [C] (-1: none)."""
        return list(self.clusters["matched_label"])

    @property
    def usage(self) -> list[float]:
        """The fraction of test images assigned to each cluster [C]."""
        return list(self.clusters["usage"])

    def image(self, index: int) -> np.ndarray:
        """Test image ``index`` as floats [28, 28] in [0, 1]."""
        return self.images[index].reshape(IMAGE_SIDE, IMAGE_SIDE).float().numpy() / 255.0


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def assigned_encodings(
    model, x: torch.Tensor, assignments: torch.Tensor, batch_size: int = 2000
) -> np.ndarray:
    """E_q(z|x, y=ŷ)[z] for images x [N, 784] under their clusters ŷ [N] (ints), float32 [N, L] on the CPU."""
    out = [
        model.encode(x[s : s + batch_size], assignments[s : s + batch_size]).mean.float().cpu()
        for s in range(0, len(x), batch_size)
    ]
    return torch.cat(out).numpy() if out else np.zeros((0, model.config.latent_dim), np.float32)


def load_cluster_bundle(
    json_path: str | Path,
    device: torch.device | str = "cpu",
    n_test: int | None = None,
    mnist_directory: str | Path | None = None,
) -> ClusterBundle:
    """Load a GMVAE, binarize the MNIST test set for it, compute q(y|x) of every test image, match the
    clusters to digits and fit the PCA plane of the posterior means.

    Args:
        json_path: the model's JSON description.
        n_test: use only the first ``n_test`` test images (all 10,000 when ``None``).
        mnist_directory: see :func:`explorer_core.data.mnist_dir`.

    Raises:
        ArtifactError: the model files are missing, corrupt or do not fit (see :func:`load_model`), or the
            model is not a GMVAE.
        MNISTUnavailable: the MNIST files are missing or damaged.
    """
    start = time.perf_counter()
    loaded = load_model(json_path, device)
    if not model_family(loaded.family).has_clusters:
        raise ArtifactError(f"{Path(json_path).name}: a {loaded.family} model, not a GMVAE.")
    model = loaded.model
    splits = load_mnist_splits(n_validation=0, directory=mnist_directory)
    images, labels = splits.x_test, splits.y_test
    if n_test is not None:
        images, labels = images[:n_test], labels[:n_test]
    kind = str(loaded.meta.get("preprocessing", "binarized"))
    x = preprocess_for_evaluation(images, kind).to(_device(model))
    probs = cluster_posteriors(model, x)  # [N, C], CPU
    assignments = probs.argmax(-1)
    c = model.config.n_clusters
    clusters = cluster_accuracy(assignments, labels, c, N_CLASSES)
    mu = assigned_encodings(model, x, assignments.to(x.device))
    with torch.no_grad():
        prior = model.prior()
        prior_means = prior.mean.float().cpu().numpy()
        prior_stds = prior.stddev.float().cpu().numpy()
    projection = fit_pca(mu if len(mu) > 1 else prior_means)
    return ClusterBundle(
        loaded=loaded,
        images=images,
        x=x,
        labels=labels.cpu().numpy(),
        probs=probs.float().numpy(),
        assignments=assignments.cpu().numpy(),
        mu=mu,
        projection=projection,
        coords=projection(mu),
        prior_means=prior_means,
        prior_stds=prior_stds,
        prior_coords=projection(prior_means),
        clusters=clusters,
        order=gallery_order(clusters["matched_label"], clusters["usage"]),
        seconds=time.perf_counter() - start,
    )


# --------------------------------------------------------------------------------------- sampling


@torch.no_grad()
def cluster_samples(
    model, cluster: int, n: int, seed: int = 0, spread: float = 1.0, means: bool = True
) -> np.ndarray:
    """n fresh images of one cluster: z ~ N(mu(y), (spread * sigma(y))^2), then the Bernoulli means lambda(z)
    (or binary draws when ``means`` is False), float32 [n, 28, 28] in [0, 1].

    Args:
        cluster: y in 0..C-1; spread: scales the prior's standard deviation (the sampling temperature;
            0 gives n copies of the decoded prior mean); seed: seeds the noise eps ~ N(0, I).

    Raises:
        ValueError: n < 1, spread < 0, or a cluster out of range.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    if spread < 0:
        raise ValueError(f"spread must be >= 0, got {spread}.")
    if not 0 <= int(cluster) < model.config.n_clusters:
        raise ValueError(f"cluster must be in 0..{model.config.n_clusters - 1}, got {cluster}.")
    generator = torch.Generator().manual_seed(int(seed))
    y = torch.full((n,), int(cluster), dtype=torch.long)
    images = model.sample(n, generator, y, spread=float(spread), means=means)
    return images.clamp(0, 1).reshape(n, IMAGE_SIDE, IMAGE_SIDE).float().cpu().numpy()


def cluster_sample_png(
    model, cluster: int, n: int, seed: int = 0, spread: float = 1.0, n_cols: int = 10, factor: int = 1
) -> bytes:
    """:func:`cluster_samples` tiled ``n_cols`` wide (1-pixel grey gaps) as PNG bytes, enlarged ``factor``
    times: what the page shows for a picked cluster.

    The page sends the PNG at its own size (``factor`` 1) and lets the browser enlarge it with crisp pixels
    (CSS ``image-rendering: pixelated``): encoding a twice-enlarged PNG costs about ten times as much."""
    images = cluster_samples(model, cluster, n, seed, spread)
    return png_bytes(tile(images, min(n_cols, n), pad=1, pad_value=0.5), factor)


@torch.no_grad()
def gallery(
    model, order: Sequence[int], n_per_cluster: int = 15, seed: int = 0, spread: float = 1.0
) -> np.ndarray:
    """One row of fresh samples per cluster, rows in ``order`` (e.g. :func:`gallery_order`), as one image
    [len(order) * 29 - 1, n_per_cluster * 29 - 1] in [0, 1] (1-pixel grey gaps).

    Every row draws its own noise (one generator seeded with ``seed`` for the whole gallery).

    Raises:
        ValueError: n_per_cluster < 1 or an empty order.
    """
    if n_per_cluster < 1 or not len(order):
        raise ValueError("the gallery needs at least one cluster and one sample per cluster.")
    generator = torch.Generator().manual_seed(int(seed))
    y = torch.as_tensor(list(order), dtype=torch.long).repeat_interleave(n_per_cluster)
    images = model.sample(len(y), generator, y, means=True, spread=float(spread)).clamp(0, 1)
    images = images.reshape(-1, IMAGE_SIDE, IMAGE_SIDE).float().cpu().numpy()
    return tile(images, n_per_cluster, pad=1, pad_value=0.5)


# ------------------------------------------------------------------------------------ one image


@dataclass(frozen=True)
class ImagePosterior:
    """What the encoder makes of one image.

    Attributes:
        probs: q(y|x) [C]; entropy: H(q(y|x)) in nats.
        reconstructions: the Bernoulli means of p(x|z) at z = E_q(z|x, y=c)[z], one per cluster c,
            [C, 28, 28] in [0, 1].
        z_mean: E_q(z|x, y=ŷ)[z] under the most probable cluster ŷ [L] (where the image sits in latent
            space, as the test encodings of :class:`ClusterBundle`).
        restyled: the image's place in its own cluster carried to every cluster c: the Bernoulli means of
            p(x|z_c) at z_c = mu(c) + sigma(c) * eps, eps = (z_mean - mu(ŷ)) / sigma(ŷ) (its standardised
            offset under p(z|ŷ)), [C, 28, 28] in [0, 1]: the GMVAE's counterpart of the CVAE's "same z under
            every label".
    """

    probs: np.ndarray
    entropy: float
    reconstructions: np.ndarray
    z_mean: np.ndarray
    restyled: np.ndarray

    @property
    def best(self) -> int:
        """argmax_y q(y|x)."""
        return int(np.argmax(self.probs))


@torch.no_grad()
def image_posterior(model, x: torch.Tensor | np.ndarray) -> ImagePosterior:
    """q(y|x) and the reconstruction under every cluster of one preprocessed image x [784] (binary)."""
    device = _device(model)
    xb = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float32)
    xb = xb.reshape(1, -1).to(device)
    qy = model.cluster_posterior(xb)
    qz = model.encode_all_clusters(xb)  # batch [C, 1], event [L]
    recon = model.decode(qz.mean).mean[:, 0]  # [C, 784], as GMVAE.reconstructions_per_cluster
    best = int(qy.probs[0].argmax())
    z_best = qz.mean[best, 0]
    own = model.prior(torch.tensor([best], device=device))
    eps = ((z_best - own.mean[0]) / own.stddev[0]).expand(model.config.n_clusters, -1)
    clusters = torch.arange(model.config.n_clusters, device=device)
    restyled = model.decode(model.prior_noise_to_z(eps, clusters)).mean  # [C, 784]
    side = (-1, IMAGE_SIDE, IMAGE_SIDE)
    return ImagePosterior(
        probs=qy.probs[0].float().cpu().numpy(),
        entropy=float(qy.entropy()[0]),
        reconstructions=recon.clamp(0, 1).reshape(side).float().cpu().numpy(),
        z_mean=z_best.float().cpu().numpy(),
        restyled=restyled.clamp(0, 1).reshape(side).float().cpu().numpy(),
    )


def stored_clusters(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The cluster figures stored in a model's JSON (``test_metrics``), in the shape of
    :func:`explorer_core.evaluation.cluster_accuracy` (``accuracy``, ``matched_label``, ``contingency``,
    ``usage``), with the matching recomputed from the stored contingency table (Hungarian matching) when the
    stored ``matched_label`` is missing; ``None`` when the JSON has no contingency table."""
    metrics = meta.get("test_metrics") or {}
    table = metrics.get("contingency")
    try:
        table = np.asarray(table, dtype=np.int64)
    except (TypeError, ValueError):
        return None
    if table.ndim != 2 or table.shape[0] < 1 or table.shape[1] != N_CLASSES:
        return None
    counts, matched = hungarian_match(table)
    total = max(int(table.sum()), 1)
    stored = metrics.get("matched_label")
    if isinstance(stored, list) and len(stored) == table.shape[0]:
        matched = np.asarray(stored, dtype=np.int64)
    return {
        "accuracy": float(metrics.get("cluster_accuracy", counts.sum() / total)),
        "matched_label": matched.tolist(),
        "contingency": table.tolist(),
        "usage": (table.sum(1) / total).tolist(),
    }


@dataclass(frozen=True)
class RowPurity:
    """What one gallery row's cluster holds of the test set (its test images: those whose most probable
    cluster, argmax q(y|x), it is).

    Attributes:
        cluster: y; digit: its matched digit (-1: none); n_images: its test images.
        purity: the share of them that show ``digit``, in [0, 1] (0 for an unmatched or empty cluster).
        other_digit: the most frequent other digit (``None`` when it has no image of another digit);
            other_share: its share, in [0, 1].
    """

    cluster: int
    digit: int
    n_images: int
    purity: float
    other_digit: int | None
    other_share: float


def row_purities(clusters: dict[str, Any]) -> list[RowPurity]:
    """Each gallery row's purity, rows in gallery order (:func:`gallery_order`), from a clusters x digits
    table: what a row shows, computed rather than read off a screenshot.

    Args:
        clusters: as :func:`explorer_core.evaluation.cluster_accuracy` or :func:`stored_clusters` give it:
            ``contingency`` [C][10] counts of test images, ``matched_label`` [C] (-1: none), ``usage`` [C].

    Raises:
        ValueError: a contingency table that is not [C, 10] with C matched labels.
    """
    table = np.asarray(clusters["contingency"], dtype=np.int64)
    matched = [int(m) for m in clusters["matched_label"]]
    if table.ndim != 2 or table.shape != (len(matched), N_CLASSES):
        raise ValueError(f"a [{len(matched)}, {N_CLASSES}] contingency table is needed, got {table.shape}.")
    rows = []
    for c in gallery_order(matched, clusters.get("usage")):
        counts, digit = table[c], matched[c]
        n = int(counts.sum())
        own = int(counts[digit]) if digit >= 0 else 0
        others = counts.copy()
        if digit >= 0:
            others[digit] = -1
        other = int(np.argmax(others))
        has_other = others[other] > 0
        rows.append(
            RowPurity(
                cluster=c,
                digit=digit,
                n_images=n,
                purity=own / n if n else 0.0,
                other_digit=other if has_other else None,
                other_share=int(others[other]) / n if has_other else 0.0,
            )
        )
    return rows


def lift(projection: Projection, uv: np.ndarray) -> np.ndarray:
    """The plane point uv [2] (PC 1, PC 2) lifted back to the latent space: z = centre + u e1 + v e2, float32
    [L]. Its component off the plane is the centre's: the lift of a point's projection is not the point.

    Raises:
        ValueError: ``uv`` is not two numbers.
    """
    z = projection.centre + np.asarray(uv, dtype=np.float32).reshape(2) @ projection.basis
    return np.asarray(z, dtype=np.float32)


def decode_latent(model, z: np.ndarray) -> np.ndarray:
    """The Bernoulli means lambda(z) of p(x|z) at one latent z [L], float32 [28, 28] in [0, 1].

    Raises:
        RuntimeError: z is not of the model's length L (torch's shape error).
    """
    device = _device(model)
    with torch.inference_mode():
        z_t = torch.as_tensor(np.asarray(z, dtype=np.float32).reshape(1, -1), device=device)
        image = model.decode(z_t).mean
    return image.reshape(IMAGE_SIDE, IMAGE_SIDE).float().cpu().numpy()


def decode_plane(model, projection: Projection, uv: np.ndarray) -> np.ndarray:
    """The Bernoulli means lambda(z) [28, 28] at the plane point uv [2]: z = centre + u e1 + v e2
    (:func:`lift`)."""
    return decode_latent(model, lift(projection, uv))


#: how far (in plane units, along either axis) the pad's z may sit from the picked cluster's disc and still
#: decode that cluster's mean mu(y) itself: the URL carries z with 3 decimals (an error of at most 5e-4) and
#: the pad rounds a move to 4; any farther point is a move away from the disc
AT_MEAN_TOLERANCE = 1e-3
#: the longest caption format the latent pad's browser side takes (``views/components/latent_pad.py``
#: truncates ``caption_format`` to it); a longer one would make the browser's caption differ from the server's
CAPTION_FORMAT_MAX = 24
#: the pad's ``view`` while it shows mu(y): none of the browser decoder's tables, so the server decodes
PRIOR_MEAN_VIEW = "prior_mean"


@dataclass(frozen=True)
class PadTarget:
    """What the GMVAE page's latent pad decodes with its z at the plane point ``uv``, and what it says.

    Attributes:
        uv: the pad's z on the PCA plane (PC 1, PC 2), as float32 values.
        z: the latent decoded, float32 [L]: the prior mean mu(y) [L] of ``cluster`` itself, or (``cluster``
            None) the plane point lifted to the latent space, centre + u e1 + v e2 (:func:`lift`).
        cluster: the cluster whose mean is decoded; ``None``: the plane point is.
        title: the heading above the decoded image; caption_format: the caption under it, with ``{u}`` and
            ``{v}`` for z on the plane (none when mu(y) is decoded), at most :data:`CAPTION_FORMAT_MAX`
            characters when the browser decodes (``cluster`` None).
        view: the pad's view: ``"lambda"`` (the browser may decode the plane point itself) or
            :data:`PRIOR_MEAN_VIEW` (the server decodes mu(y), which is off the plane).
    """

    uv: tuple[float, float]
    z: np.ndarray
    cluster: int | None
    title: str
    caption_format: str
    view: str

    @property
    def caption(self) -> str:
        """The caption as the pad shows it (z with two decimals, as the pad formats it)."""
        return self.caption_format.format(u=f"{self.uv[0]:.2f}", v=f"{self.uv[1]:.2f}")


def at_prior_mean(
    uv: Sequence[float], prior_coords: np.ndarray, cluster: int, tolerance: float = AT_MEAN_TOLERANCE
) -> bool:
    """Whether the plane point uv [2] is the disc centre of ``cluster``, prior_coords [C, 2] (mu(y) on the
    plane), within ``tolerance`` plane units along each axis.

    Raises:
        ValueError: ``cluster`` out of range.
    """
    coords = np.asarray(prior_coords, dtype=np.float64).reshape(-1, 2)
    if not 0 <= int(cluster) < len(coords):
        raise ValueError(f"cluster must be in 0..{len(coords) - 1}, got {cluster}.")
    gap = np.abs(np.asarray(uv, dtype=np.float64).reshape(2) - coords[int(cluster)])
    return bool(np.all(gap <= tolerance))


def pad_target(
    projection: Projection,
    prior_means: np.ndarray,
    prior_coords: np.ndarray,
    cluster: int,
    uv: Sequence[float],
    matched_label: Sequence[int] | None = None,
    tolerance: float = AT_MEAN_TOLERANCE,
) -> PadTarget:
    """What the pad decodes at uv [2] with ``cluster`` picked: with z on that cluster's disc
    (:func:`at_prior_mean`), its prior mean mu(y) itself (all L coordinates: its disc is only mu(y)'s shadow
    on the plane, whose lift decodes to another image); elsewhere the plane point lifted to the latent space.
    The title and caption are made from what is decoded, never the other way round.

    Args:
        projection: the PCA plane (centre [L], basis [2, L]); prior_means: mu(y) [C, L]; prior_coords: mu(y)
            on the plane [C, 2]; cluster: the picked cluster y; uv: the pad's z (PC 1, PC 2);
            matched_label: each cluster's matched digit [C] (-1: none), for its name (default: no digit).

    Raises:
        ValueError: ``cluster`` out of range, or prior_means and prior_coords of different C.
    """
    means = np.asarray(prior_means, dtype=np.float32)
    if means.ndim != 2 or len(means) != len(np.asarray(prior_coords).reshape(-1, 2)):
        raise ValueError(f"prior_means [C, L] and prior_coords [C, 2] disagree: {means.shape}.")
    point = np.asarray(uv, dtype=np.float32).reshape(2)
    u, v = float(point[0]), float(point[1])
    latent_dim = means.shape[1]
    if at_prior_mean(point, prior_coords, cluster, tolerance):
        name = f"y={int(cluster)}" if matched_label is None else cluster_name(int(cluster), matched_label)
        return PadTarget(
            uv=(u, v),
            z=means[int(cluster)].copy(),
            cluster=int(cluster),
            title="Decoded μ(y) (λ(μ(y)))",
            caption_format=f"decoder mean at μ(y) of cluster {name} (all {latent_dim} coordinates)",
            view=PRIOR_MEAN_VIEW,
        )
    caption = f"plane ({{u}}, {{v}}) → {latent_dim}-D"
    if len(caption) > CAPTION_FORMAT_MAX:
        caption = "plane ({u}, {v})"
    return PadTarget(
        uv=(u, v),
        z=lift(projection, point),
        cluster=None,
        title=f"Decoded z: the PCA-plane point lifted to {latent_dim}-D (λ(z))",
        caption_format=caption,
        view="lambda",
    )
