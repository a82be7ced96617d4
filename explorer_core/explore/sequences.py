"""What the variational RNN page needs beyond :mod:`explorer_core.models.vrnn`: loading a VRNN and the test
set, a row-by-row generation that can be stepped, the grid image with blank future rows and marks, completions
of a digit's top rows, and the per-row ELBO terms of one image.

Pure computation (no Streamlit): the page caches the loads per model and calls the rest per interaction.
Images are white ink on black, values in [0, 1]; a digit is T = 28 rows of 28 pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from explorer_core.artifacts import ArtifactError, LoadedModel, load_model
from explorer_core.data import load_mnist_splits, preprocess_for_evaluation
from explorer_core.imaging import png_bytes, tile, upscale
from explorer_core.models.vrnn import VRNN, GenerationState

#: Colours of the grid image (RGB, 0..255).
FUTURE_RGB = (88, 88, 96)  # a row not generated yet
GUTTER_RGB = (255, 255, 255)  # between the digits (the page's background)
CURRENT_RGB = (255, 127, 14)  # the marks beside the row generated last
KEPT_INK_RGB = (140, 200, 255)  # ink of a row that was given, not generated (completion)
KEPT_PAPER_RGB = (10, 30, 70)  # background of such a row
KEPT_LINE_RGB = (31, 119, 180)  # the line under the last given row


# ------------------------------------------------------------------------------------------------- loading


def load_vrnn(json_path: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Load a VRNN (eval mode, on ``device``) from its JSON description.

    Raises:
        ArtifactError: missing, corrupt or mismatched files (see :func:`explorer_core.artifacts.load_model`),
            or a model of another family.
    """
    loaded = load_model(json_path, device)
    if not isinstance(loaded.model, VRNN):
        raise ArtifactError(f"{Path(json_path).name} describes a {loaded.family}, not a VRNN.")
    return loaded


@dataclass(frozen=True)
class TestSet:
    """The MNIST test set as a VRNN sees it.

    Attributes:
        images: uint8 pixels [N, 784] (for display).
        x: the same images preprocessed (deterministic; ``binarized`` for the VRNN), float32 [N, 784] on the
            model's device.
        labels: int64 [N] digits.
        preprocessing: the preprocessing applied.
        seconds: wall time of the load.
    """

    images: torch.Tensor
    x: torch.Tensor
    labels: torch.Tensor
    preprocessing: str
    seconds: float

    def __len__(self) -> int:
        return len(self.images)

    def image(self, index: int) -> np.ndarray:
        """What the model sees of test image ``index``: [28, 28] floats in [0, 1]."""
        return self.x[index].reshape(28, 28).float().cpu().numpy()


def load_test_set(
    preprocessing: str = "binarized",
    device: torch.device | str = "cpu",
    n_test: int | None = None,
    mnist_directory: str | Path | None = None,
) -> TestSet:
    """The MNIST test images preprocessed as for evaluation (:func:`preprocess_for_evaluation`).

    Raises:
        MNISTUnavailable: the MNIST files are missing or damaged.
    """
    start = time.perf_counter()
    splits = load_mnist_splits(n_validation=0, directory=mnist_directory)
    images, labels = splits.x_test, splits.y_test
    if n_test is not None:
        images, labels = images[:n_test], labels[:n_test]
    x = preprocess_for_evaluation(images, preprocessing).to(device)
    return TestSet(images, x, labels, preprocessing, time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------- generation


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's parameters."""
    return next(model.parameters()).device


@dataclass
class Generation:
    """A row-by-row generation of ``n`` digits that can be stepped (kept in the page's session).

    Attributes:
        state: the model's :class:`GenerationState` (rows done, means, samples, prior means).
        generator: the CPU ``torch.Generator`` all draws come from (seeded with ``seed``), so a run with the
            same seed gives the same digits.
        seed: the seed it started from.
        model_key: what identifies the model it belongs to (a new model means a new generation).
    """

    state: GenerationState
    generator: torch.Generator
    seed: int
    model_key: str = ""

    @property
    def rows(self) -> int:
        """Rows generated so far, 0..T."""
        return int(self.state.rows)

    @property
    def n(self) -> int:
        """Number of digits."""
        return int(self.state.h.shape[0])


def start_generation(model: VRNN, n: int, seed: int, model_key: str = "") -> Generation:
    """A fresh generation of ``n`` digits, no row yet, its draws seeded with ``seed``."""
    with torch.inference_mode():
        state = model.start_generation(int(n))
    return Generation(state, torch.Generator().manual_seed(int(seed)), int(seed), model_key)


def advance(model: VRNN, generation: Generation, n_rows: int = 1) -> Generation:
    """Generate up to ``n_rows`` more rows of every digit (fewer when T is reached); modifies and returns
    ``generation``. Each row: z_t ~ p(z_t|h_t), x_t ~ p(x_t|h_t, z_t), the sampled row fed back."""
    with torch.inference_mode():
        for _ in range(int(n_rows)):
            if generation.state.rows >= model.config.n_rows:
                break
            generation.state = model.generation_step(generation.state, generation.generator)
    return generation


def state_rows(state: GenerationState, show: str = "means") -> np.ndarray:
    """The rows done so far as floats [n, rows, row_dim] in [0, 1]: the Bernoulli means (``show="means"``)
    or the sampled binary rows that were fed back (``show="samples"``).

    Raises:
        ValueError: unknown ``show``.
    """
    if show not in ("means", "samples"):
        raise ValueError(f"show must be 'means' or 'samples', got {show!r}.")
    rows = state.means if show == "means" else state.samples
    return rows.float().cpu().numpy()


# --------------------------------------------------------------------------------------------- the image


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, columns) of the grid of n digits: as square as possible, columns >= rows."""
    n = max(1, int(n))
    cols = int(np.ceil(np.sqrt(n)))
    return int(np.ceil(n / cols)), cols


def sequence_grid(
    rows: np.ndarray,
    n_rows: int = 28,
    n_cols: int | None = None,
    kept: int = 0,
    current: int | None = None,
    factor: int = 4,
    pad: int = 2,
) -> np.ndarray:
    """The RGB image of n partly generated digits in a grid, enlarged ``factor`` times (crisp pixels).

    Args:
        rows: the rows done, [n, r, row_dim] in [0, 1] (white ink on black), 0 <= r <= ``n_rows``.
        n_rows: T, the rows of a whole digit; rows r..T-1 are drawn grey (not generated yet).
        n_cols: digits per grid row (default: :func:`grid_shape`).
        kept: rows 0..kept-1 were given (completion): drawn tinted blue with a line under the last.
        current: the row to mark (0-based) with orange ticks in the gutters left and right of each digit,
            usually the row generated last; ``None`` marks nothing.
        factor: enlargement, screen pixels per image pixel.
        pad: the gutter between digits, in image pixels (the ticks are drawn in it).

    Returns:
        uint8 [H, W, 3] with H = factor * (grid rows * (n_rows + pad) + pad), likewise W.

    Raises:
        ValueError: ``rows`` is not [n, r, w] with r <= n_rows.
    """
    rows = np.asarray(rows, dtype=np.float32)
    if rows.ndim != 3 or rows.shape[1] > n_rows:
        raise ValueError(f"rows must be [n, r <= {n_rows}, width], got {list(rows.shape)}.")
    if rows.shape[0] == 0:
        rows = np.zeros((1, 0, rows.shape[2]), dtype=np.float32)
    n, done, width = rows.shape
    n_cols = n_cols or grid_shape(n)[1]
    kept = int(np.clip(kept, 0, done))
    f = max(1, int(factor))

    # every digit at image resolution, RGB: future rows grey, kept rows tinted
    digits = np.empty((n, n_rows, width, 3), dtype=np.uint8)
    digits[:] = FUTURE_RGB
    if done:
        ink = np.clip(rows, 0.0, 1.0)[..., None]
        digits[:, :done] = np.round(ink * 255.0)
        if kept:
            paper, kept_ink = np.asarray(KEPT_PAPER_RGB, np.float32), np.asarray(KEPT_INK_RGB, np.float32)
            digits[:, :kept] = np.round(paper + ink[:, :kept] * (kept_ink - paper))
    # side by side with gutters between and around them (empty cells are background), then enlarged
    image = upscale(tile(digits, n_cols, pad=pad, pad_value=GUTTER_RGB, border=True, dtype=np.uint8), f)

    # marks, drawn at screen resolution so they can be thinner than an image pixel
    line = max(1, f // 2)
    gutter = pad * f
    for i in range(n):
        r, c = divmod(i, n_cols)
        top, left = (r * (n_rows + pad) + pad) * f, (c * (width + pad) + pad) * f
        if kept and kept < n_rows:
            y = top + kept * f
            image[y - (line + 1) // 2 : y + line // 2, left : left + width * f] = KEPT_LINE_RGB
        if current is not None and 0 <= current < n_rows and pad:
            y0, right = top + current * f, left + width * f
            image[y0 : y0 + f, left - gutter : left - max(1, gutter // 4)] = CURRENT_RGB
            image[y0 : y0 + f, right + max(1, gutter // 4) : right + gutter] = CURRENT_RGB
    return image


#: kept for views/vrnn.py and bench/bench_vrnn.py until they use :func:`explorer_core.imaging.png_bytes`
png_bytes_rgb = png_bytes


# --------------------------------------------------------------------------------------------- completion


def completions(model: VRNN, x: torch.Tensor, keep_rows: int, m: int, seed: int = 0) -> GenerationState:
    """M completions of one image: its top ``keep_rows`` rows kept exactly (z_t ~ q(z_t|h_t, x_t) along
    them), the remaining rows generated (z_t ~ p(z_t|h_t), the sampled row fed back).

    Args:
        x: one image [784] (or [1, 784]), binary, on any device.
        keep_rows: k, 0..T.
        m: how many completions, generated together as a batch.
        seed: seeds every draw (same seed, same completions).

    Returns:
        The finished state: ``means`` and ``samples`` [m, T, row_dim] (rows < k are x's rows, exactly), and
        ``kept = k``.

    Raises:
        ValueError: keep_rows outside 0..T or x of the wrong size.
    """
    generator = torch.Generator().manual_seed(int(seed))
    x = x.reshape(1, -1).to(model_device(model), torch.float32).expand(int(m), -1)
    with torch.inference_mode():
        state = model.start_completion(x, int(keep_rows), generator)
        while state.rows < model.config.n_rows:
            state = model.generation_step(state, generator)
    return state


# ----------------------------------------------------------------------------------------- per-row terms


@dataclass(frozen=True)
class RowTermsSummary:
    """The VRNN's per-row ELBO terms for one image, averaged over ``n_samples`` posterior paths.

    Attributes:
        reconstruction: E_q[log p(x_t|h_t, z_t)] per row, [T], nats (<= 0).
        kl: KL(q(z_t|h_t, x_t) || p(z_t|h_t)) per row, [T], nats (>= 0).
        n_samples: passes averaged.
    """

    reconstruction: np.ndarray
    kl: np.ndarray
    n_samples: int

    @property
    def elbo(self) -> float:
        """The ELBO estimate of the image, nats: sum over rows of reconstruction - KL."""
        return float(self.reconstruction.sum() - self.kl.sum())


def row_terms_of(model: VRNN, x: torch.Tensor, n_samples: int = 16, seed: int = 0) -> RowTermsSummary:
    """Per-row reconstruction and KL of one image x [784] (binary), averaged over ``n_samples``
    reparameterised passes (teacher forcing, :meth:`VRNN.row_terms`); seeded, so reproducible."""
    xs = x.reshape(1, -1).to(model_device(model), torch.float32).expand(int(n_samples), -1)
    with torch.random.fork_rng(devices=[]), torch.inference_mode():
        torch.manual_seed(int(seed))
        terms = model.row_terms(xs)
    return RowTermsSummary(
        terms.reconstruction.mean(0).double().cpu().numpy(),
        terms.kl.mean(0).double().cpu().numpy(),
        int(n_samples),
    )
