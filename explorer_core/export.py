"""Files for slides: the curves a page shows as CSV, animations as GIF, and names that say what a file is.

Plain data in, ``bytes`` out (no Streamlit): a page hands these to ``st.download_button`` (as a callable, so
nothing is built until the lecturer clicks). CSV by the standard library's ``csv`` module, GIF by Pillow.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import math
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from explorer_core.shared_cache import OnceCache

#: the longest animation written (frames), so that a GIF of a long history stays a few MB at most
MAX_GIF_FRAMES = 300


class ExportCache(OnceCache[bytes]):
    """Built exports kept by their content, shared by every session of the server (issue 34): Streamlit calls
    a download's build function again for every request of the file, so a GIF asked for thirty times was
    built thirty times. Here a key that names the content (the model and the seed and N; a digest of the
    frames) is built once and then served from memory; identical requests that arrive together wait for the
    one build. Bounded in entries and bytes, least recently used first out
    (:class:`explorer_core.shared_cache.OnceCache` of ``bytes``).

    Args:
        max_entries: exports kept at most (>= 1).
        max_bytes: their total size at most; an export larger than this is built and served but not kept.

    Raises:
        ValueError: (on construction) a bound below 1.
    """

    def __init__(self, max_entries: int = 32, max_bytes: int = 64 * 2**20):
        super().__init__(max_entries, max_bytes, size=len)

    def get_or_build(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """The export named ``key``: from memory, or ``bytes(build())`` (once, whoever else asks meanwhile).

        Raises:
            whatever ``build`` raises (nothing is kept then; the next request builds again).
        """
        return super().get_or_build(key, lambda: bytes(build()))


#: the server's one export cache (every page's GIFs)
EXPORTS = ExportCache()


def frames_digest(frames: Sequence[tuple[int, np.ndarray]], labels: np.ndarray) -> str:
    """A digest of a latent map animation's content (``(step, coords)`` frames and the labels): the key under
    which :data:`EXPORTS` keeps its GIF, so the same frames are never encoded twice."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    for step, coords in frames:
        h.update(int(step).to_bytes(8, "little", signed=True))
        h.update(np.ascontiguousarray(coords, dtype=np.float64).tobytes())
    return h.hexdigest()


def export_name(page: str, what: str, ext: str, model: str | None = None, step: int | None = None) -> str:
    """A file name that says what the file is, e.g. ``aevb-fa-elbo-curves-step4000.csv`` or
    ``aevb-vrnn-generation-vrnn-seed3.gif``: lower case, ``[a-z0-9.-]`` only.

    Args:
        page: the page (``"fa"``, ``"watch"``, ``"vrnn"``...); what: the content (``"elbo-curves"``...);
        ext: the extension without the dot; model: the model's name, if any; step: the gradient step, if any.
    """
    parts = [
        "aevb",
        page,
        what,
        *([model] if model else []),
        *([f"step{int(step)}"] if step is not None else []),
    ]
    stem = "-".join(re.sub(r"[^a-z0-9.]+", "-", str(p).lower()).strip("-.") for p in parts)
    return f"{stem}.{re.sub(r'[^a-z0-9]', '', ext.lower())}"


def _cell(value: Any) -> Any:
    """A CSV cell: None and non-finite floats as empty cells, floats with 6 significant digits beyond need."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    return value


def history_snapshot(history: Any) -> Any:
    """A copy of a page's history dataclass (``FAHistory``, ``WatchHistory``) with its lists copied, so a
    file built from it later (a download button's callable, run when clicked, in another thread) sees the
    steps of the moment it was shown while the live history goes on growing. Shallow: O(steps), no I/O."""
    return dataclasses.replace(
        history, **{f.name: list(getattr(history, f.name)) for f in dataclasses.fields(history) if f.init}
    )


def columns_csv(columns: Mapping[str, Sequence[Any]]) -> bytes:
    """A CSV file (UTF-8, a header row) of equal-length columns, in the mapping's order.

    Raises:
        ValueError: no columns, or columns of different lengths.
    """
    if not columns:
        raise ValueError("no columns to write.")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"columns of different lengths: {lengths}.")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(columns))
    for row in zip(*columns.values(), strict=True):
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue().encode("utf-8")


def fa_curves_csv(history: Any) -> bytes:
    """The factor-analysis page's curves: one row per step (step 0 is the initial model) with the phase of the
    step (``init``, ``e_step``, ``m_step``, ``joint``), the test ELBO, the exact evidence log p(x) and the
    exact gap KL(q(z|x) || p(z|x)), nats per point (``explorer_core.explore.fa.FAHistory``)."""
    return columns_csv(
        {
            "step": list(range(len(history.phase))),
            "phase": history.phase,
            "elbo_nats_per_point": history.elbo,
            "evidence_nats_per_point": history.evidence,
            "gap_nats_per_point": history.gap,
        }
    )


def watch_curves_csv(history: Any) -> bytes:
    """The Watch page's curves: one row per evaluation with its step, phase, validation ELBO, IWAE bound,
    their gap, reconstruction, KL (nats per image), the training ELBO of the last batch and the IWAE k
    (``explorer_core.explore.watch.WatchHistory``)."""
    return columns_csv(
        {
            "step": history.step,
            "phase": history.phase,
            "elbo_nats_per_image": history.elbo,
            "iwae_nats_per_image": history.iwae,
            "gap_nats_per_image": history.gap,
            "reconstruction_nats_per_image": history.reconstruction,
            "kl_nats_per_image": history.kl,
            "train_elbo_nats_per_image": history.train_elbo,
            "iwae_k": history.k,
        }
    )


def rows_csv(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """A CSV of dict rows (a training run's ``metrics.jsonl``): the columns are every key in order of first
    appearance; a key a row lacks is an empty cell.

    Raises:
        ValueError: no rows.
    """
    if not rows:
        raise ValueError("no rows to write.")
    names: dict[str, None] = {}
    for row in rows:
        names |= dict.fromkeys(row)
    return columns_csv({name: [row.get(name) for row in rows] for name in names})


def animated_gif(frames: Sequence[np.ndarray], frame_ms: int = 150, last_frame_ms: int = 1500) -> bytes:
    """An animated GIF (looping) of RGB or grey uint8 frames [H, W(, 3)] of one size; the last frame is held
    ``last_frame_ms``. Frames beyond :data:`MAX_GIF_FRAMES` are dropped evenly (the first and last kept).

    Raises:
        ValueError: no frames, or frames of different shapes.
    """
    if not len(frames):
        raise ValueError("no frames to animate.")
    shapes = {np.asarray(f).shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"frames of different shapes: {sorted(shapes)}.")
    if len(frames) > MAX_GIF_FRAMES:
        keep = np.unique(np.linspace(0, len(frames) - 1, MAX_GIF_FRAMES).round().astype(int))
        frames = [frames[i] for i in keep]
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    durations = [int(frame_ms)] * (len(images) - 1) + [int(last_frame_ms)]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=durations,
        loop=0,
        optimize=False,
    )
    return buffer.getvalue()


def vrnn_generation_gif(model: Any, n: int, seed: int, factor: int = 4, frame_ms: int = 150) -> bytes:
    """A GIF of a VRNN generating ``n`` digits row by row from ``seed`` (the VRNN page's ▶ Play with the same
    seed shows the same digits): one frame per row (28 for MNIST), the row just generated marked, Bernoulli
    means shown.

    Args:
        model: a trained ``explorer_core.models.vrnn.VRNN``; n: digits (1..64); seed: the generation's seed;
        factor: screen pixels per image pixel (1..8).

    Raises:
        ValueError: ``n`` or ``factor`` out of range.
    """
    from explorer_core.explore.sequences import advance, sequence_grid, start_generation, state_rows

    if not 1 <= int(n) <= 64 or not 1 <= int(factor) <= 8:
        raise ValueError(f"n must be in 1..64 and factor in 1..8, got {n} and {factor}.")
    total = model.config.n_rows
    generation = start_generation(model, int(n), int(seed))
    frames = []
    while generation.rows < total:
        advance(model, generation, 1)
        rows = state_rows(generation.state)
        frames.append(sequence_grid(rows, n_rows=total, current=generation.rows - 1, factor=int(factor)))
    return animated_gif(frames, frame_ms=frame_ms)


def latent_map_gif(
    frames: Sequence[tuple[int, np.ndarray]],
    labels: np.ndarray,
    colours: Sequence[str],
    size: int = 480,
    frame_ms: int = 150,
) -> bytes:
    """A GIF of a latent map forming: one frame per ``(step, coords)``, each image's point coloured by its
    label, the step written in the corner. One square region holds every frame (99 % of the points of each,
    20 % margin), so the map's spread over training is visible.

    Args:
        frames: ``(gradient steps taken, coordinates [n, 2] on the map's plane)``, oldest first.
        labels: int [n], the digit of each point; colours: one ``#rrggbb`` per label value.
        size: the GIF's side in pixels (120..2000).

    Raises:
        ValueError: no frames, a size out of range, or coordinates that do not match the labels.
    """
    from PIL import ImageDraw

    if not len(frames):
        raise ValueError("no frames to animate.")
    if not 120 <= int(size) <= 2000:
        raise ValueError(f"size must be in 120..2000 pixels, got {size}.")
    labels = np.asarray(labels, dtype=np.int64)
    half = 1.0
    for _, coords in frames:
        c = np.asarray(coords, dtype=np.float64)
        if c.shape != (len(labels), 2):
            raise ValueError(f"coordinates of shape {c.shape} for {len(labels)} labels.")
        finite = c[np.isfinite(c).all(1)]
        if len(finite):
            half = max(half, float(np.quantile(np.abs(finite), 0.995)) * 1.2)
    rgb = [tuple(int(h[i : i + 2], 16) for i in (1, 3, 5)) for h in colours]
    size, radius = int(size), max(1.5, int(size) / 240)
    images = []
    for step, coords in frames:
        image = Image.new("RGB", (size, size), (251, 251, 251))
        draw = ImageDraw.Draw(image)
        draw.line([(size / 2, 0), (size / 2, size)], fill=(225, 225, 225))
        draw.line([(0, size / 2), (size, size / 2)], fill=(225, 225, 225))
        px = (np.asarray(coords, dtype=np.float64) / half + 1) * size / 2
        for (x, y), label in zip(px, labels, strict=True):
            if np.isfinite(x) and np.isfinite(y):
                y = size - y  # the plane's v grows upwards
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=rgb[label % len(rgb)])
        draw.text((8, 6), f"step {int(step):,}", fill=(40, 40, 40), font_size=max(12, size // 24))
        images.append(np.asarray(image))
    return animated_gif(images, frame_ms=frame_ms)


def cached_latent_map_gif(
    frames: Sequence[tuple[int, np.ndarray]],
    labels: np.ndarray,
    colours: Sequence[str],
    run: Callable[[Callable[[], bytes]], bytes] | None = None,
) -> bytes:
    """:func:`latent_map_gif` kept in :data:`EXPORTS` by its content (:func:`frames_digest`): the same frames
    asked for again, by any session, are served without encoding them again. ``run(build)``: how a build
    runs (the page passes one that waits for the compute budget; default: at once). Raises as
    :func:`latent_map_gif`."""
    key = ("latent-map-gif", frames_digest(frames, labels), tuple(colours))
    build = lambda: latent_map_gif(frames, labels, colours)  # noqa: E731
    return EXPORTS.get_or_build(key, build if run is None else lambda: run(build))
