"""The home page's pictures: one small image per explorer, computed from the shipped models (no Streamlit).

``python -m explorer_core.cards`` writes them to ``pretrained/cards/<page>.png`` (a few seconds on a CPU);
the home page shows those files and, when one is missing, computes it once per process. Every picture is
drawn from real model output: the FA data against the maximum-likelihood model's samples, the VAE's decoded
latent plane, the CVAE's labels x styles, the GMVAE's clusters ordered by matched digit, a VRNN grid caught
half-way through its rows, the shipped models' validation curves, and a VAE's latent map of test digits.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from explorer_core.imaging import encode_png, tile
from explorer_core.paths import PRETRAINED_DIR

PRETRAINED = PRETRAINED_DIR
CARDS_DIR = PRETRAINED / "cards"
WIDTH, HEIGHT = 360, 220
BACKGROUND = (255, 255, 255)
#: Tableau 10, as the pages colour digits 0..9
DIGIT_RGB = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


class CardUnavailableError(RuntimeError):
    """A picture needs a model (or MNIST) that is not there."""


def _load(name: str, model_dir: Path):
    from explorer_core.artifacts import ArtifactError, load_model

    path = model_dir / f"{name}.json"
    if not path.exists():
        raise CardUnavailableError(f"{path.name} is missing")
    try:
        return load_model(path, "cpu")
    except ArtifactError as err:
        raise CardUnavailableError(str(err)) from err


def _fit(image: Image.Image, background=BACKGROUND) -> Image.Image:
    """Scale (crisp pixels) and centre an image on a WIDTH x HEIGHT card."""
    scale = min(WIDTH / image.width, HEIGHT / image.height)
    size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
    resized = image.resize(size, Image.NEAREST)
    card = Image.new("RGB", (WIDTH, HEIGHT), background)
    card.paste(resized, ((WIDTH - size[0]) // 2, (HEIGHT - size[1]) // 2))
    return card


def _grey(images: np.ndarray, n_cols: int, pad: int = 1, pad_value: float = 0.35) -> Image.Image:
    grid = tile(np.asarray(images, dtype=np.float32), n_cols, pad=pad, pad_value=pad_value)
    return Image.fromarray((np.clip(grid, 0, 1) * 255).astype(np.uint8), "L").convert("RGB")


def _scatter(
    draw: ImageDraw.ImageDraw, xy: np.ndarray, colours, box: tuple[int, int, int, int], r: float = 1.6
) -> None:
    """Dots at unit-square positions ``xy`` [n, 2] inside ``box``; points outside the square are left out."""
    x0, y0, x1, y1 = box
    for (x, y), c in zip(xy, colours, strict=True):
        if not (0 <= x <= 1 and 0 <= y <= 1):
            continue
        px, py = x0 + x * (x1 - x0), y1 - y * (y1 - y0)
        draw.ellipse((px - r, py - r, px + r, py + r), fill=c)


def _normalise(points: np.ndarray, ref: np.ndarray | None = None, q: float = 0.0) -> np.ndarray:
    """``points`` scaled so that the ``q`` .. 1-``q`` quantiles of ``ref`` (default: the points) span the
    unit square, with a 5 % margin."""
    ref = points if ref is None else ref
    lo, hi = np.quantile(ref, q, axis=0), np.quantile(ref, 1 - q, axis=0)
    pad = 0.05 * np.maximum(hi - lo, 1e-9)
    return (points - lo + pad) / (hi - lo + 2 * pad)


def fa_card(model_dir: Path = PRETRAINED) -> Image.Image:
    """The tutorial's 3-D data (blue) against samples of the maximum-likelihood FA (orange), seen from the
    page's default camera."""
    from explorer_core.data import make_fa_dataset
    from explorer_core.inference.fa_em import fit_fa_em

    ds = make_fa_dataset()
    x = ds.x_test.numpy().astype(np.float64)
    mle = fit_fa_em(ds.x_train.double())
    w, sigma = mle.W.numpy(), mle.sigma.numpy()
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(len(x), w.shape[1])) @ w.T + rng.normal(size=(len(x), 3)) * sigma
    az, el = np.arctan2(-1.55, 1.55), np.arctan2(0.85, np.hypot(1.55, 1.55))
    right = np.array([-np.sin(az), np.cos(az), 0.0])
    up = np.array([-np.sin(el) * np.cos(az), -np.sin(el) * np.sin(az), np.cos(el)])

    def project(p):
        return np.stack([p @ right, p @ up], 1)

    ref = np.concatenate([project(x), project(samples)])
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    box = (20, 12, WIDTH - 20, HEIGHT - 12)
    _scatter(draw, _normalise(project(samples), ref), [(255, 127, 14)] * len(x), box)
    _scatter(draw, _normalise(project(x), ref), [(31, 119, 180)] * len(x), box)
    return image


def vae_card(model_dir: Path = PRETRAINED) -> Image.Image:
    """vae-cb-l2: its decoder over an 11 x 11 grid of the 2-D latent plane (z1, z2 in [-2.2, 2.2])."""
    from explorer_core.explore.latent import decode_images

    model = _load("vae-cb-l2", model_dir).model
    u = np.linspace(-2.2, 2.2, 11)
    zz = np.stack(np.meshgrid(u, u[::-1]), -1).reshape(-1, 2)
    with torch.no_grad():
        images = decode_images(model, zz.astype(np.float32), view="lambda")
    return _fit(_grey(images, 11, pad=0))


def cvae_card(model_dir: Path = PRETRAINED) -> Image.Image:
    """cvae-cb-l20: four styles (z ~ p(z|y) with shared noise) in rows, the ten labels in columns."""
    from explorer_core.explore.latent import decode_images

    model = _load("cvae-cb-l20", model_dir).model
    n_styles = 4
    eps = torch.randn(n_styles, model.config.latent_dim, generator=torch.Generator().manual_seed(3))
    eps = eps.repeat_interleave(10, 0)
    y = torch.arange(10).repeat(n_styles)
    with torch.no_grad():
        z = model.prior_noise_to_z(eps, y).float().numpy()
        images = decode_images(model, z, y.numpy(), "lambda")
    return _fit(_grey(images, 10))


def gmvae_card(model_dir: Path = PRETRAINED) -> Image.Image:
    """gmvae-marginal: four samples of each cluster (columns), clusters ordered by their matched digit."""
    from explorer_core.explore.clusters import cluster_samples, gallery_order, stored_clusters

    loaded = _load("gmvae-marginal", model_dir)
    model = loaded.model
    clusters = stored_clusters(loaded.meta)
    order = gallery_order(clusters["matched_label"]) if clusters else list(range(model.config.n_clusters))
    with torch.no_grad():
        columns = [cluster_samples(model, c, 4, seed=1) for c in order]
    images = np.stack(columns, 1).reshape(-1, 28, 28)  # row k holds sample k of every cluster
    return _fit(_grey(images, len(order)))


def vrnn_card(model_dir: Path = PRETRAINED) -> Image.Image:
    """vrnn: ten digits caught after 18 of their 28 rows (grey: rows not generated yet)."""
    from explorer_core.explore.sequences import advance, sequence_grid, start_generation, state_rows

    model = _load("vrnn", model_dir).model
    with torch.no_grad():
        gen = advance(model, start_generation(model, 10, seed=4), 18)
    grid = sequence_grid(state_rows(gen.state, "means"), 28, 5, current=17, factor=1, pad=2)
    return _fit(Image.fromarray(np.asarray(grid, dtype=np.uint8)[..., :3], "RGB"))


def training_card(model_dir: Path = PRETRAINED) -> Image.Image:
    """The shipped VAE and CVAE runs (L = 20): validation ELBO per epoch (their JSON training histories)."""
    names = ["vae-cb-l20", "cvae-cb-l20"]
    curves = []
    for name in names:
        path = model_dir / f"{name}.json"
        if path.exists():
            history = json.loads(path.read_text()).get("training", {}).get("history", [])
            values = [h["val_elbo"] for h in history if isinstance(h.get("val_elbo"), int | float)]
            if len(values) > 1:
                curves.append(np.asarray(values, dtype=np.float64))
    if not curves:
        raise CardUnavailableError("no training history in the shipped models")
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = 34, 14, WIDTH - 12, HEIGHT - 26
    lo = min(np.quantile(c, 0.1) for c in curves)
    hi = max(c.max() for c in curves)
    draw.rectangle((x0, y0, x1, y1), outline=(200, 200, 200))
    n_max = max(len(c) for c in curves)
    for k, c in enumerate(curves):
        t = np.arange(len(c)) / max(n_max - 1, 1)
        v = np.clip((c - lo) / max(hi - lo, 1e-9), 0, 1)
        pts = [(x0 + a * (x1 - x0), y1 - b * (y1 - y0)) for a, b in zip(t, v, strict=True)]
        draw.line(pts, fill=DIGIT_RGB[k], width=3)
    draw.text((x0, y1 + 6), "epochs", fill=(90, 90, 90))
    draw.text((x0 + 4, y0 + 4), "validation ELBO", fill=(90, 90, 90))
    return image


def watch_card(model_dir: Path = PRETRAINED, n: int = 3000) -> Image.Image:
    """vae-cb-l2's latent map: the first ``n`` MNIST test digits encoded, coloured by digit."""
    from explorer_core.data import MNISTUnavailable, load_mnist_splits, preprocess_for_evaluation

    loaded = _load("vae-cb-l2", model_dir)
    try:
        splits = load_mnist_splits(n_validation=0)
    except (MNISTUnavailable, OSError) as err:
        raise CardUnavailableError(f"MNIST is needed: {err}") from err
    x = preprocess_for_evaluation(splits.x_test[:n], loaded.meta.get("preprocessing", "dequantized"))
    with torch.no_grad():
        z = loaded.model.encode(x.float()).mean.numpy()
    labels = splits.y_test[:n].numpy()
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    _scatter(
        draw,
        _normalise(z[:, :2], q=0.005),
        [DIGIT_RGB[int(c)] for c in labels],
        (60, 8, WIDTH - 60, HEIGHT - 8),
    )
    return image


#: page key -> what draws its card
CARDS: dict[str, Callable[[Path], Image.Image]] = {
    "factor_analysis": fa_card,
    "vae": vae_card,
    "cvae": cvae_card,
    "gmvae": gmvae_card,
    "vrnn": vrnn_card,
    "training": training_card,
    "watch": watch_card,
}


def card_png(page: str, model_dir: Path = PRETRAINED) -> bytes:
    """The card of ``page`` as PNG bytes.

    Raises:
        KeyError: unknown page. CardUnavailableError: a model (or MNIST) it needs is missing.
    """
    return encode_png(CARDS[page](Path(model_dir)), optimize=True)


def write_cards(out: Path = CARDS_DIR, model_dir: Path = PRETRAINED) -> dict[str, str]:
    """Write every card that can be drawn to ``out/<page>.png``; returns page -> path or the reason."""
    out.mkdir(parents=True, exist_ok=True)
    done = {}
    for page in CARDS:
        try:
            (out / f"{page}.png").write_bytes(card_png(page, model_dir))
            done[page] = str(out / f"{page}.png")
        except CardUnavailableError as err:
            done[page] = f"skipped: {err}"
    return done


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Draw the home page's cards from the shipped models.")
    parser.add_argument("--out", type=Path, default=CARDS_DIR)
    parser.add_argument("--models", type=Path, default=PRETRAINED)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for page, result in write_cards(args.out, args.models).items():
        print(f"{page}: {result}")


if __name__ == "__main__":
    main()
