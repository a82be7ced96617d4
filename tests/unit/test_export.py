"""Files for slides: CSV of the curves a page shows, GIF animations, names that say what they are."""

import csv
import io

import numpy as np
import pytest
from PIL import Image

from explorer_core import export
from explorer_core.explore.fa import FAHistory


def read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_export_names_say_what_the_file_is_and_are_safe():
    assert export.export_name("fa", "elbo-curves", "csv", step=4000) == "aevb-fa-elbo-curves-step4000.csv"
    assert (
        export.export_name("vrnn", "generation", "GIF", model="VRNN seed/3")
        == "aevb-vrnn-generation-vrnn-seed-3.gif"
    )
    assert "/" not in export.export_name("x", "../../etc/passwd", "png")


def test_fa_curves_csv_has_a_row_per_step_with_its_phase():
    history = FAHistory(
        phase=["init", "e_step", "e_step", "m_step"],
        elbo=[-43.0, -5.0, -4.5, -4.2],
        evidence=[-4.3, -4.3, -4.3, -4.1],
        gap=[38.7, 0.7, 0.2, 0.1],
    )
    rows = read_csv(export.fa_curves_csv(history))
    assert [r["step"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["phase"] for r in rows] == ["init", "e_step", "e_step", "m_step"]
    assert float(rows[0]["elbo_nats_per_point"]) == -43.0 and float(rows[3]["gap_nats_per_point"]) == 0.1


def test_rows_csv_takes_every_key_and_leaves_missing_and_nan_cells_empty():
    rows = read_csv(export.rows_csv([{"step": 1, "elbo": -100.5}, {"step": 2, "val_elbo": float("nan")}]))
    assert list(rows[0]) == ["step", "elbo", "val_elbo"]
    assert rows[1] == {"step": "2", "elbo": "", "val_elbo": ""}
    with pytest.raises(ValueError):
        export.rows_csv([])
    with pytest.raises(ValueError, match="different lengths"):
        export.columns_csv({"a": [1, 2], "b": [1]})


def test_animated_gif_has_every_frame_in_order_and_is_bounded():
    frames = [np.full((8, 12, 3), 20 * i, dtype=np.uint8) for i in range(5)]
    gif = Image.open(io.BytesIO(export.animated_gif(frames, frame_ms=100, last_frame_ms=900)))
    assert gif.n_frames == 5 and gif.size == (12, 8)
    seen = []
    for i in range(gif.n_frames):
        gif.seek(i)
        seen.append(int(np.asarray(gif.convert("L"))[0, 0]))
    assert seen == sorted(seen) and seen[0] < seen[-1]
    many = [np.zeros((2, 2), dtype=np.uint8)] * (export.MAX_GIF_FRAMES + 50)
    assert Image.open(io.BytesIO(export.animated_gif(many))).n_frames <= export.MAX_GIF_FRAMES
    with pytest.raises(ValueError):
        export.animated_gif([np.zeros((2, 2)), np.zeros((3, 3))])


def test_vrnn_generation_gif_shows_the_rows_appear_and_repeats_with_its_seed():
    import torch

    from explorer_core.models.vrnn import VRNN, VRNNConfig

    torch.manual_seed(0)
    model = VRNN(VRNNConfig(hidden=(16,), rnn_hidden=8, rnn_layers=1)).eval()
    first = export.vrnn_generation_gif(model, n=4, seed=3, factor=1)
    assert first == export.vrnn_generation_gif(model, n=4, seed=3, factor=1)
    assert first != export.vrnn_generation_gif(model, n=4, seed=4, factor=1)
    gif = Image.open(io.BytesIO(first))
    assert gif.n_frames == 28  # one frame per row
    with pytest.raises(ValueError):
        export.vrnn_generation_gif(model, n=0, seed=0)


def test_a_history_snapshot_keeps_the_steps_shown_while_the_live_history_grows():
    history = FAHistory(phase=["init"], elbo=[-43.0], evidence=[-6.6], gap=[36.4])
    frozen = export.history_snapshot(history)
    history.phase.append("e_step")
    history.elbo.append(-5.0)  # a frame appends field by field: the snapshot never sees a half-appended step
    assert len(read_csv(export.fa_curves_csv(frozen))) == 1


def test_the_latent_map_gif_has_a_frame_per_map_and_one_region():
    from explorer_core.figures.common import DIGIT_COLOURS

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 200)
    frames = [(10 * i, rng.normal(size=(200, 2)) * (1 + i)) for i in range(5)]
    gif = Image.open(io.BytesIO(export.latent_map_gif(frames, labels, DIGIT_COLOURS, size=240)))
    assert gif.n_frames == 5 and gif.size == (240, 240)
    # the first (narrow) map fills less of the one region than the last (wide) one: the spread is visible
    first = np.asarray(gif.convert("RGB"))
    gif.seek(4)
    last = np.asarray(gif.convert("RGB"))

    def spread(a):
        ys, xs = np.nonzero((np.abs(a.astype(int) - 251).sum(-1) > 120)[40:, :])
        return xs.std() + ys.std()

    assert spread(first) < spread(last)
    with pytest.raises(ValueError, match="no frames"):
        export.latent_map_gif([], labels, DIGIT_COLOURS)
    with pytest.raises(ValueError, match="coordinates of shape"):
        export.latent_map_gif([(0, np.zeros((3, 2)))], labels, DIGIT_COLOURS)


def test_a_second_request_for_an_export_is_served_without_building_again():
    cache = export.ExportCache(max_entries=2, max_bytes=100)
    calls = []

    def build(tag: bytes):
        def run():
            calls.append(tag)
            return tag * 10

        return run

    assert cache.get_or_build(("gif", 1), build(b"a")) == b"a" * 10
    assert cache.get_or_build(("gif", 1), build(b"x")) == b"a" * 10  # by its key: not rebuilt
    assert calls == [b"a"] and cache.builds == 1
    cache.get_or_build(("gif", 2), build(b"b"))
    cache.get_or_build(("gif", 3), build(b"c"))  # two entries at most: the least recently used goes
    assert len(cache) == 2 and cache.size_bytes == 20
    cache.get_or_build(("gif", 1), build(b"a"))
    assert calls == [b"a", b"b", b"c", b"a"]
    big = cache.get_or_build("big", lambda: b"z" * 101)  # over the byte bound: served, not kept
    assert len(big) == 101 and "big" not in cache._items and cache.size_bytes <= 100
    with pytest.raises(ValueError, match="bounds must be"):
        export.ExportCache(max_entries=0)


def test_identical_requests_arriving_together_build_once():
    import threading
    import time

    cache = export.ExportCache()
    started = threading.Barrier(4)
    results = []

    def slow():
        time.sleep(0.2)
        return b"gif"

    def request():
        started.wait()
        results.append(cache.get_or_build("same", slow))

    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [b"gif"] * 4 and cache.builds == 1


def test_a_failed_build_is_not_kept_and_the_next_request_builds_again():
    cache = export.ExportCache()

    def broken():
        raise RuntimeError("no frames")

    with pytest.raises(RuntimeError):
        cache.get_or_build("k", broken)
    assert len(cache) == 0 and cache.get_or_build("k", lambda: b"ok") == b"ok"


def test_the_map_gif_is_kept_by_its_frames_content(monkeypatch):
    monkeypatch.setattr(export, "EXPORTS", export.ExportCache())
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 50)
    frames = [(s, rng.normal(size=(50, 2))) for s in (10, 20)]
    colours = ["#000000"] * 10
    first = export.cached_latent_map_gif(frames, labels, colours)
    again = export.cached_latent_map_gif([(s, c.copy()) for s, c in frames], labels.copy(), colours)
    assert again == first and export.EXPORTS.builds == 1  # equal content, other arrays: served again
    moved = [(10, frames[0][1]), (20, frames[1][1] + 1e-3)]
    export.cached_latent_map_gif(moved, labels, colours)  # other content: built
    assert export.EXPORTS.builds == 2


def test_a_shared_cache_builds_each_key_once_and_stays_within_its_bounds():
    """OnceCache (issue 34): one build per key (also for requests that arrive together), bounded in
    entries and bytes, nothing kept from a failed build."""
    import threading

    import numpy as np

    from explorer_core.shared_cache import OnceCache, approx_nbytes

    cache = OnceCache(max_entries=3, max_bytes=10_000, size=approx_nbytes)
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(5)
        return np.zeros(100)  # 800 bytes

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_build("a", slow))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    started.wait(5)
    release.set()
    for t in threads:
        t.join(5)
    assert cache.builds == 1 and len(results) == 4 and all(r is results[0] for r in results)
    for key in "bcd":
        cache.get_or_build(key, lambda: np.zeros(100))
    assert len(cache) == 3 and "a" not in cache  # least recently used out
    cache.get_or_build("big", lambda: np.zeros(2000))  # 16 kB > 10 kB: served, not kept
    assert "big" not in cache and cache.size_bytes <= 10_000

    def boom():
        raise ValueError("bad")

    with pytest.raises(ValueError):
        cache.get_or_build("e", boom)
    assert "e" not in cache
