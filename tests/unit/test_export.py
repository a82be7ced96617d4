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
