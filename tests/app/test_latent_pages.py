"""The VAE and CVAE pages under AppTest, with tiny untrained models written to a temporary folder.

Nothing is trained here: the models are random, which is enough to check that every control reaches the
decoder. The folder is found through ``AEVB_MODEL_DIRS``; the real ``pretrained/`` folder is swapped for an
empty one, so these tests neither need nor see the shipped models. MNIST must be on disk (``make test``
fetches it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer_core.artifacts import save_model
from explorer_core.models.vae import CVAE, VAE, VAEConfig

TIMEOUT = 120
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = {"vae": ROOT / "views" / "vae.py", "cvae": ROOT / "views" / "cvae.py"}
METRICS = {"elbo": -543.2, "reconstruction": -540.0, "kl": 3.2, "active_units": 2, "n_images": 10000}


def _save(model, family: str, folder: Path, name: str) -> Path:
    return save_model(
        model, family, folder, name, meta={"preprocessing": "dequantized", "test_metrics": dict(METRICS)}
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-vae (L=2), tiny-vae-l5 (L=5: the map is a PCA plane), tiny-cvae (L=2), broken-vae (garbage
    weights), mismatched-vae (weights that do not fit the described architecture)."""
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    small = {"hidden": (32,), "dropout": 0.0}
    _save(VAE(VAEConfig(latent_dim=2, **small)), "vae", folder, "tiny-vae")
    _save(VAE(VAEConfig(latent_dim=5, **small)), "vae", folder, "tiny-vae-l5")
    _save(CVAE(VAEConfig(latent_dim=2, **small)), "cvae", folder, "tiny-cvae")
    broken = _save(VAE(VAEConfig(latent_dim=2, **small)), "vae", folder, "broken-vae")
    weights = broken.with_suffix(".safetensors")
    weights.write_bytes(b"this is not a safetensors file" + bytes(range(256)) * 8)
    mismatched = _save(VAE(VAEConfig(latent_dim=2, **small)), "vae", folder, "mismatched-vae")
    description = json.loads(mismatched.read_text())
    description["config"]["latent_dim"] = 3  # the weights are intact (sha256 matches) but do not fit
    mismatched.write_text(json.dumps(description))
    return folder


@pytest.fixture
def no_pretrained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pages look for models in an empty 'pretrained' folder (plus AEVB_MODEL_DIRS)."""
    import views._models as common

    empty = tmp_path / "pretrained"
    empty.mkdir()
    monkeypatch.setattr(common, "PRETRAINED_DIR", empty)
    monkeypatch.delenv("AEVB_MODEL_DIRS", raising=False)


def open_page(page: str, model_dir: Path | None, model: str | None, monkeypatch) -> AppTest:
    if model_dir is not None:
        monkeypatch.setenv("AEVB_MODEL_DIRS", str(model_dir))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if model is not None:
        at.session_state[f"{page}_model"] = str(model_dir / f"{model}.json")
    at.run()
    at.switch_page(str(PAGES[page])).run()
    assert not at.exception, at.exception
    return at


def image_by_caption(at: AppTest, prefix: str) -> str:
    """The URL (content-addressed) of the image whose caption starts with ``prefix``."""
    for image in at.image:
        for url, caption in zip(image.value, image.captions, strict=True):
            if caption.startswith(prefix):
                return url
    raise AssertionError(f"no image captioned {prefix!r}: {[c for i in at.image for c in i.captions]}")


def decoded(at: AppTest) -> str:
    """The decoded image of the latent panel (captioned with z or u, v)."""
    for prefix in ("z = (", "u = "):
        try:
            return image_by_caption(at, prefix)
        except AssertionError:
            pass
    raise AssertionError("no decoded image")


def click(at: AppTest, key: str, **point) -> AppTest:
    """Simulate a click on the plotly chart ``key`` (as the frontend reports it) and rerun."""
    at.session_state[key] = {
        "selection": {
            "points": [point],
            "point_indices": [point.get("point_index", 0)],
            "box": [],
            "lasso": [],
        }
    }
    return at.run()


@pytest.mark.usefixtures("no_pretrained")
@pytest.mark.parametrize("page", ["vae", "cvae"])
def test_no_model_gives_a_hint_not_an_error(page, monkeypatch):
    at = open_page(page, None, None, monkeypatch)
    assert not at.error
    assert any("No trained" in i.value and "AEVB_MODEL_DIRS" in i.value for i in at.info)


@pytest.mark.usefixtures("no_pretrained")
def test_vae_page_lists_models_with_their_test_elbo(model_dir, monkeypatch):
    at = open_page("vae", model_dir, "tiny-vae", monkeypatch)
    labels = at.selectbox(key="vae_model").options
    assert any("tiny-vae · test ELBO -543.2" in label for label in labels), labels
    assert not any("cvae" in label for label in labels)
    assert next(m.value for m in at.metric if m.label == "Test ELBO") == "-543.2"


@pytest.mark.usefixtures("no_pretrained")
def test_vae_slider_changes_the_decoded_image(model_dir, monkeypatch):
    at = open_page("vae", model_dir, "tiny-vae", monkeypatch)
    assert [s.label for s in at.slider][:2] == ["z1", "z2"]
    before = decoded(at)
    upper = at.slider(key="vae_u").max
    at.slider(key="vae_u").set_value(upper).run()
    assert not at.exception
    assert at.session_state["vae_u"] == upper
    assert decoded(at) != before
    before = decoded(at)
    at.radio(key="vae_view").set_value("mean").run()
    assert decoded(at) != before


@pytest.mark.usefixtures("no_pretrained")
def test_vae_map_click_moves_z_and_picks_images(model_dir, monkeypatch):
    at = open_page("vae", model_dir, "tiny-vae", monkeypatch)
    before = decoded(at)
    lo, hi = at.slider(key="vae_u").min, at.slider(key="vae_u").max
    u = round(lo + 0.8 * (hi - lo), 2)
    click(at, "vae_map", x=u, y=0.0, curve_number=0, point_number=3, point_index=3)
    assert not at.exception
    assert at.session_state["vae_u"] == pytest.approx(u)
    assert at.session_state["vae_v"] == pytest.approx(0.0)
    assert decoded(at) != before

    # a click on a test image's point: z moves to its encoding and the encoder view shows that image
    click(at, "vae_map", x=0.0, y=0.0, curve_number=4, point_number=7, point_index=7, customdata=42)
    assert not at.exception
    assert at.session_state["vae_index"] == 42
    assert at.number_input(key="vae_index").value == 42
    image_by_caption(at, "test image 42")
    u42 = at.session_state["vae_u"]
    assert u42 != pytest.approx(u)

    # the same selection seen again on the next rerun is not applied twice: the slider wins
    at.slider(key="vae_u").set_value(lo).run()
    assert at.session_state["vae_u"] == lo


@pytest.mark.usefixtures("no_pretrained")
def test_vae_encoder_view_and_interpolation_follow_their_inputs(model_dir, monkeypatch):
    at = open_page("vae", model_dir, "tiny-vae", monkeypatch)
    elbo = next(m.value for m in at.metric if m.label == "ELBO")
    at.number_input(key="vae_index").set_value(5).run()
    assert not at.exception
    image_by_caption(at, "test image 5")
    assert next(m.value for m in at.metric if m.label == "ELBO") != elbo
    at.slider(key="vae_n").set_value(3).run()
    at.button(key="vae_new_eps").click().run()
    assert at.session_state["vae_eps_seed"] == 1
    at.number_input(key="vae_interp_b").set_value(7).run()
    at.checkbox(key="vae_interp_from_encoder").check().run()
    assert not at.exception


@pytest.mark.usefixtures("no_pretrained")
def test_vae_drawing_is_encoded_like_a_test_image(model_dir, monkeypatch):
    from explorer_core.latent_views import drawing_input

    at = open_page("vae", model_dir, "tiny-vae", monkeypatch)
    at.radio(key="vae_source").set_value("drawing").run()
    assert any("Nothing drawn yet" in i.value for i in at.info)  # a hint, not an error
    assert not at.error and not at.exception
    canvas = np.zeros((224, 224, 4), np.uint8)
    canvas[40:180, 100:125] = 255  # a "1"
    at.session_state["vae_drawing"] = drawing_input(canvas, "dequantized")
    at.run()
    assert not at.exception
    image_by_caption(at, "your drawing")


@pytest.mark.usefixtures("no_pretrained")
def test_vae_latent_plane_for_a_larger_latent(model_dir, monkeypatch):
    at = open_page("vae", model_dir, "tiny-vae-l5", monkeypatch)
    assert [s.label for s in at.slider][:2] == ["u (along PC 1)", "v (along PC 2)"]
    before = decoded(at)
    at.slider(key="vae_v").set_value(at.slider(key="vae_v").min).run()
    assert not at.exception and decoded(at) != before
    at.select_slider(key="vae_zoom").set_value(4).run()
    assert not at.exception


@pytest.mark.usefixtures("no_pretrained")
@pytest.mark.parametrize(("name", "says"), [("broken-vae", "corrupt"), ("mismatched-vae", "does not fit")])
def test_bad_weights_give_a_clear_error_and_the_app_goes_on(model_dir, monkeypatch, name, says):
    at = open_page("vae", model_dir, name, monkeypatch)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(name in e and says in e for e in errors), errors
    at.selectbox(key="vae_model").set_value(str(model_dir / "tiny-vae.json")).run()
    assert not at.exception and not at.error
    decoded(at)
    at.switch_page(str(ROOT / "views" / "home.py")).run()
    assert not at.exception


@pytest.mark.usefixtures("no_pretrained")
def test_cvae_label_pill_and_sliders_change_the_image(model_dir, monkeypatch):
    at = open_page("cvae", model_dir, "tiny-cvae", monkeypatch)
    before = decoded(at)
    at.pills(key="cvae_label").set_value(3).run()
    assert not at.exception
    assert at.session_state["cvae_label"] == 3
    after_label = decoded(at)
    assert after_label != before
    at.slider(key="cvae_v").set_value(at.slider(key="cvae_v").max).run()
    assert decoded(at) != after_label
    # a click on a test image's point also picks its label
    click(at, "cvae_map", x=0.0, y=0.0, curve_number=2, point_number=0, point_index=0, customdata=1)
    assert not at.exception
    assert at.session_state["cvae_index"] == 1
    assert at.session_state["cvae_label"] == 2  # MNIST test image 1 is a 2
    image_by_caption(at, "test image 1 (y = 2)")


@pytest.mark.usefixtures("no_pretrained")
def test_cvae_grid_regenerates_and_priors_toggle(model_dir, monkeypatch):
    at = open_page("cvae", model_dir, "tiny-cvae", monkeypatch)
    urls = {u for i in at.image for u in i.value}
    at.button(key="cvae_regenerate").click().run()
    assert not at.exception
    assert at.session_state["cvae_grid_seed"] == 1
    assert {u for i in at.image for u in i.value} != urls
    at.checkbox(key="cvae_show_priors").uncheck().run()
    at.radio(key="cvae_view").set_value("sample").run()
    at.button(key="cvae_resample").click().run()
    assert not at.exception
