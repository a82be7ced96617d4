"""The variational RNN page under AppTest, with tiny random VRNNs written to a temporary folder.

The folder is found through ``AEVB_MODEL_DIRS``; the real ``pretrained/`` folder is swapped for an empty one,
so these tests neither need nor see the shipped models. MNIST must be on disk (``make test`` fetches it).
``run_every`` never fires in AppTest, so playing is checked through the first frame and the pause.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer_core.artifacts import save_model
from explorer_core.models.vrnn import VRNN, VRNNConfig
from views.components.player import PAUSE_LABEL, PLAY_LABEL

TIMEOUT = 120
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGE = str(ROOT / "views" / "vrnn.py")
T = 28
METRICS = {
    "elbo": -91.23,
    "reconstruction": -80.0,
    "kl": 11.23,
    "per_row_reconstruction": [-1.0] * T,
    "per_row_kl": [0.4] * T,
    "n_images": 10000,
}


def _save(folder: Path, name: str) -> Path:
    model = VRNN(VRNNConfig(hidden=(16,), rnn_hidden=16, rnn_layers=1))
    return save_model(
        model, "vrnn", folder, name, meta={"preprocessing": "binarized", "test_metrics": dict(METRICS)}
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-vrnn, tiny-vrnn-b (another random one), broken-vrnn (garbage weights), mismatched-vrnn (weights
    that do not fit the described architecture)."""
    folder = tmp_path_factory.mktemp("vrnn-models")
    torch.manual_seed(0)
    _save(folder, "tiny-vrnn")
    _save(folder, "tiny-vrnn-b")
    broken = _save(folder, "broken-vrnn")
    broken.with_suffix(".safetensors").write_bytes(b"not a safetensors file" + bytes(range(256)) * 4)
    mismatched = _save(folder, "mismatched-vrnn")
    description = json.loads(mismatched.read_text())
    description["config"]["rnn_hidden"] = 24  # intact weights (sha256 matches) that do not fit
    mismatched.write_text(json.dumps(description))
    return folder


@pytest.fixture(autouse=True)
def no_pretrained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page looks for models in an empty 'pretrained' folder (plus AEVB_MODEL_DIRS)."""
    import views._models as common

    empty = tmp_path / "pretrained"
    empty.mkdir()
    monkeypatch.setattr(common, "PRETRAINED_DIR", empty)
    monkeypatch.delenv("AEVB_MODEL_DIRS", raising=False)


def open_page(model_dir: Path | None, model: str | None, monkeypatch) -> AppTest:
    if model_dir is not None:
        monkeypatch.setenv("AEVB_MODEL_DIRS", str(model_dir))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if model is not None:
        at.session_state["vrnn_model"] = str(model_dir / f"{model}.json")
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def rows_done(at: AppTest) -> int:
    return at.session_state["vrnn_gen"].rows


def row_caption(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Row "))


def images(at: AppTest) -> list[str]:
    return [url for image in at.image for url in image.value]


def live_chart_data(at: AppTest, key: str) -> dict:
    """The data sent to the live canvas chart mounted with ``key`` (a components v2 element)."""
    found = [el for el in at.get("bidi_component") if el.proto.id.endswith(f"-{key}")]
    assert found, [el.proto.id for el in at.get("bidi_component")]
    return json.loads(found[0].proto.json)


def test_no_model_gives_a_hint_not_an_error(monkeypatch):
    at = open_page(None, None, monkeypatch)
    assert not at.error
    assert any("No trained VRNN" in i.value and "AEVB_MODEL_DIRS" in i.value for i in at.info)


def test_page_renders_with_its_metrics_grid_and_charts(model_dir, monkeypatch):
    at = open_page(model_dir, "tiny-vrnn", monkeypatch)
    assert not at.error
    assert at.title[0].value.startswith(":material/history_edu: Variational RNN")
    labels = at.selectbox(key="vrnn_model").options
    assert any("tiny-vrnn · test ELBO -91.2" in label for label in labels), labels
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test ELBO"] == "-91.23" and metrics["Total KL per image"] == "11.23"
    assert metrics["LSTM"] == "1 × 16"
    assert row_caption(at).startswith("**Row 0 of 28**")
    assert rows_done(at) == 0
    assert len(images(at)) >= 3  # the generation grid, the completions, the chosen digit
    trajectory = live_chart_data(at, "vrnn_trajectory")  # a canvas redrawn in place, not a plotly chart
    assert "Prior means" in trajectory["title"] and "no row yet" in trajectory["title"]
    assert len(trajectory["panels"]) == 2  # z1 and z2 over the rows
    assert trajectory["panels"][0]["x"]["range"] == [0.5, 28.5]  # fixed: a streamed chart never rescales


def test_next_row_advances_the_grid_by_exactly_one_row_and_reset_clears_it(model_dir, monkeypatch):
    at = open_page(model_dir, "tiny-vrnn", monkeypatch)
    grid = images(at)[0]
    at.button(key="vrnn_next").click().run()
    assert not at.exception
    assert rows_done(at) == 1
    assert row_caption(at).startswith("**Row 1 of 28**")
    gen = at.session_state["vrnn_gen"]
    assert gen.state.means.shape == (16, 1, 28) and gen.state.prior_means.shape == (16, 1, 2)
    assert images(at)[0] != grid
    path = live_chart_data(at, "vrnn_trajectory")["panels"][0]
    assert path["vlines"][0]["x"] == 1.0 and len(path["lines"][1]["y"]) == 1  # the latest row, the average
    for expected in range(2, 5):
        at.button(key="vrnn_next").click().run()
        assert rows_done(at) == expected
    first_rows = at.session_state["vrnn_gen"].state.samples.clone()

    at.button(key="vrnn_reset").click().run()
    assert not at.exception
    assert rows_done(at) == 0 and row_caption(at).startswith("**Row 0 of 28**")
    assert images(at)[0] == grid
    # same seed, same digits
    for _ in range(4):
        at.button(key="vrnn_next").click().run()
    assert torch.equal(at.session_state["vrnn_gen"].state.samples, first_rows)


def test_play_runs_a_frame_then_pause_keeps_the_rows(model_dir, monkeypatch):
    at = open_page(model_dir, "tiny-vrnn", monkeypatch)
    at.select_slider(key="vrnn_per_frame").set_value(4).run()
    at.button(key="vrnn_play").click().run()
    assert not at.exception
    assert at.session_state["vrnn_player"].running  # the fragment timer takes over (never fires in AppTest)
    assert rows_done(at) == 4
    assert at.button(key="vrnn_play").label == PAUSE_LABEL
    at.button(key="vrnn_play").click().run()  # pause
    assert not at.session_state["vrnn_player"].running and rows_done(at) == 4
    assert at.button(key="vrnn_play").label == PLAY_LABEL
    # to the end: 28 rows, the last one included, then playing stops by itself
    for _ in range(24):
        at.button(key="vrnn_next").click().run()
    assert rows_done(at) == T and row_caption(at) == "**Row 28 of 28** · all rows generated"
    at.button(key="vrnn_next").click().run()
    assert rows_done(at) == T and not at.exception


def test_n_seed_and_the_samples_toggle(model_dir, monkeypatch):
    at = open_page(model_dir, "tiny-vrnn", monkeypatch)
    at.button(key="vrnn_next").click().run()
    at.button(key="vrnn_next").click().run()
    means = images(at)[0]
    at.toggle(key="vrnn_show_samples").set_value(True).run()
    assert rows_done(at) == 2 and images(at)[0] != means
    at.select_slider(key="vrnn_n").set_value(4).run()
    assert rows_done(at) == 0 and at.session_state["vrnn_gen"].n == 4
    at.button(key="vrnn_next").click().run()
    rows = at.session_state["vrnn_gen"].state.samples.clone()
    at.number_input(key="vrnn_seed").set_value(5).run()
    assert rows_done(at) == 0
    at.button(key="vrnn_next").click().run()
    assert not torch.equal(at.session_state["vrnn_gen"].state.samples, rows)
    at.radio(key="vrnn_traj_mode").set_value("plane").run()
    assert not at.exception


def test_completion_and_per_row_terms_follow_the_chosen_digit(model_dir, monkeypatch):
    at = open_page(model_dir, "tiny-vrnn", monkeypatch)
    assert any("test image 0 (digit 7)" in m.value for m in at.markdown)
    before = images(at)
    at.slider(key="vrnn_keep").set_value(20).run()
    assert not at.exception
    comp = at.session_state["vrnn_memo_completion"][1]
    assert comp.kept == 20 and comp.means.shape == (8, T, 28)
    at.slider(key="vrnn_m").set_value(3).run()
    assert at.session_state["vrnn_memo_completion"][1].means.shape == (3, T, 28)
    at.number_input(key="vrnn_index").set_value(1).run()
    assert any("test image 1 (digit 2)" in m.value for m in at.markdown)
    assert images(at)[1:] != before[1:]
    elbo = next(m.value for m in at.metric if m.label == "ELBO")
    at.slider(key="vrnn_terms_n").set_value(2).run()
    assert next(m.value for m in at.metric if m.label == "ELBO") != elbo
    at.button(key="vrnn_new_completions").click().run()
    assert at.session_state["vrnn_comp_seed"] == 1 and not at.exception


def test_a_drawing_is_completed(model_dir, monkeypatch):
    from explorer_core.explore.latent import drawing_input

    at = open_page(model_dir, "tiny-vrnn", monkeypatch)
    at.radio(key="vrnn_source").set_value("drawing").run()
    assert any("Nothing drawn yet" in i.value for i in at.info)
    canvas = np.zeros((224, 224, 4), np.uint8)
    canvas[40:180, 100:125] = 255  # a "1"
    at.session_state["vrnn_drawing"] = drawing_input(canvas, "binarized")
    at.run()
    assert not at.exception
    assert any("your drawing" in m.value for m in at.markdown)
    comp = at.session_state["vrnn_memo_completion"][1]
    kept = at.session_state["vrnn_keep"]
    x = at.session_state["vrnn_drawing"].x.reshape(T, 28)
    assert torch.equal(comp.means[0, :kept], x[:kept])


@pytest.mark.parametrize(
    ("name", "says"),
    # a truncated file: artifacts.py checks its size against the description first ("does not fit")
    [("broken-vrnn", ("corrupt", "does not fit")), ("mismatched-vrnn", ("does not fit",))],
)
def test_a_corrupt_model_shows_an_error_and_the_app_goes_on(model_dir, monkeypatch, name, says):
    at = open_page(model_dir, name, monkeypatch)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(name in e and any(s in e for s in says) for e in errors), errors
    at.selectbox(key="vrnn_model").set_value(str(model_dir / "tiny-vrnn.json")).run()
    assert not at.exception and not at.error
    at.button(key="vrnn_next").click().run()
    assert rows_done(at) == 1
    at.switch_page(str(ROOT / "views" / "home.py")).run()
    assert not at.exception


def test_another_model_starts_a_new_generation(model_dir, monkeypatch):
    at = open_page(model_dir, "tiny-vrnn", monkeypatch)
    at.button(key="vrnn_next").click().run()
    at.selectbox(key="vrnn_model").set_value(str(model_dir / "tiny-vrnn-b.json")).run()
    assert not at.exception
    assert rows_done(at) == 0
