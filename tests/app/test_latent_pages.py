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
from tests.app.conftest import TIMEOUT, VIEWS, image_by_caption, open_page, pad_data, pad_send

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


def decoded(at: AppTest) -> str:
    """The decoded image the latent pad shows (a PNG data URL)."""
    page = "cvae" if "cvae_pad" in at.session_state else "vae"
    image = pad_data(at, f"{page}_pad")["image"]
    assert image and image.startswith("data:image/png;base64,")
    return image


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
def test_vae_pad_drag_moves_z_and_a_click_picks_an_image(model_dir, monkeypatch):
    at = open_page("vae", model_dir, "tiny-vae", monkeypatch)
    data = pad_data(at, "vae_pad")
    version = data["version"]
    assert data["points"] is not None and len(data["points"]["u"]) == len(data["points"]["c"]) > 100
    assert data["ack"] == 0 and data["z"] == [0.0, 0.0]
    # the browser reports that it holds the point set: it is not sent again
    pad_send(at, "vae_pad", have=version)
    assert pad_data(at, "vae_pad")["points"] is None
    before = decoded(at)

    # a drag streams moves: z, the sliders and the decoded image follow; each move is acknowledged
    lo, hi = at.slider(key="vae_u").min, at.slider(key="vae_u").max
    v_lo, v_hi = at.slider(key="vae_v").min, at.slider(key="vae_v").max
    v = round(v_lo + 0.3 * (v_hi - v_lo), 3)
    images = {before}
    for seq, t in enumerate((0.6, 0.7, 0.8), start=1):
        u = round(lo + t * (hi - lo), 3)
        pad_send(at, "vae_pad", "move", {"u": u, "v": v, "seq": seq}, have=version)
        assert not at.exception
        data = pad_data(at, "vae_pad")
        assert data["ack"] == seq and data["z"] == [pytest.approx(u), pytest.approx(v)]
        assert at.slider(key="vae_u").value == pytest.approx(u)
        assert data["points"] is None
        images.add(decoded(at))
    assert len(images) == 4

    # out of range and malformed moves: clamped, or ignored
    pad_send(at, "vae_pad", "move", {"u": 1e9, "v": "x", "seq": 9}, have=version)
    assert pad_data(at, "vae_pad")["ack"] == 3
    pad_send(at, "vae_pad", "move", {"u": 1e9, "v": 0.0, "seq": 10}, have=version)
    assert at.slider(key="vae_u").value == hi

    # a click on a test point: z moves to its encoding and the encoder view shows that image
    pad_send(at, "vae_pad", "pick", {"kind": "point", "i": 7}, have=version)
    assert not at.exception
    index = at.session_state["vae_index"]
    assert at.number_input(key="vae_index").value == index
    image_by_caption(at, f"test image {index}")
    u_picked = at.session_state["vae_u"]
    assert u_picked != pytest.approx(hi)
    assert pad_data(at, "vae_pad")["overlays"]["marks"]  # q(z|x) of the new image is drawn

    # the slider still wins afterwards (the pick is not applied twice)
    at.slider(key="vae_u").set_value(lo).run()
    assert at.session_state["vae_u"] == lo
    assert pad_data(at, "vae_pad")["z"][0] == lo

    # the wheel zooms in around the pointer and the manifold follows
    manifolds = {u for i in at.image for u in i.value}
    pad_send(at, "vae_pad", "zoom", {"dir": 1, "u": 0.0, "v": 0.0}, have=version)
    assert at.session_state["vae_zoom"] == 2
    region = pad_data(at, "vae_pad")["region"]
    assert region[0][1] - region[0][0] == pytest.approx((hi - lo) / 2)
    assert {u for i in at.image for u in i.value} != manifolds
    pad_send(at, "vae_pad", "zoom", {"dir": -1, "u": 0.0, "v": 0.0}, have=version)
    assert at.session_state["vae_zoom"] == 1


@pytest.mark.usefixtures("no_pretrained")
@pytest.mark.parametrize(("page", "model"), [("vae", "tiny-vae"), ("cvae", "tiny-cvae")])
def test_pad_sends_its_decoder_once_then_the_browser_decodes(page, model, model_dir, monkeypatch):
    at = open_page(page, model_dir, model, monkeypatch)
    key = f"{page}_pad"
    first = pad_data(at, key)
    # the first render sends no decoder (the page and the server's image come first); the browser asks
    assert first["decoder"] is None and first["image"].startswith("data:image/png;base64,")
    pad_send(at, key, have=first["version"], have_decoder=f"need:{first['decoder_version']}:0")
    data = pad_data(at, key)
    decoder, version = data["decoder"], data["decoder_version"]
    # the decoder on the map's plane, float32 arrays in base64, one first-layer bias per label
    assert (
        decoder["version"] == version
        and decoder["h0"] == 32
        and decoder["k"] == (10 if page == "cvae" else 1)
    )
    assert [layer["n_out"] for layer in decoder["layers"]] == [784]
    assert set(decoder["tables"]) == {"lambda", "mean"} and data["view"] == "lambda"
    assert data["caption_format"] == "z = ({u}, {v})" and data["image"]  # the server's image until it is held
    assert data["row_k"] == (list(range(10)) if page == "cvae" else [])
    # held: neither the decoder nor an image is sent, a move still moves the sliders and is acknowledged
    pad_send(at, key, "move", {"u": 0.3, "v": 0.2, "seq": 1}, have=data["version"], have_decoder=version)
    held = pad_data(at, key)
    assert held["decoder"] is None and held["decoder_version"] == version
    assert held["image"] is None and held["row"] is None and held["ack"] == 1
    assert at.slider(key=f"{page}_u").value == pytest.approx(0.3)
    # a sample is random: the server draws it, the browser shows it
    at.radio(key=f"{page}_view").set_value("sample")
    pad_send(at, key, have=data["version"], have_decoder=version)
    assert pad_data(at, key)["image"].startswith("data:image/png;base64,")
    # the browser lost it (a remount): the next run sends it again
    pad_send(at, key, have=data["version"], have_decoder=f"need:{version}:1")
    assert pad_data(at, key)["decoder"]["version"] == version


@pytest.mark.usefixtures("no_pretrained")
def test_vae_state_goes_to_the_url_and_a_url_opens_that_view(model_dir, monkeypatch):
    at = open_page("vae", model_dir, "tiny-vae", monkeypatch)
    u = round(at.slider(key="vae_u").max / 2, 2)
    at.slider(key="vae_u").set_value(u).run()
    at.number_input(key="vae_index").set_value(12).run()
    params = dict(at.query_params)
    assert params["model"] == "tiny-vae" and params["img"] == "12" and params["u"] == f"{u:.3f}", params

    monkeypatch.setenv("AEVB_MODEL_DIRS", str(model_dir))
    fresh = AppTest.from_file(str(VIEWS / "vae.py"), default_timeout=TIMEOUT)
    fresh.query_params.update({"model": "tiny-vae-l5", "u": "0.05", "v": "-0.05", "img": "3", "zoom": "4"})
    fresh.run()
    assert not fresh.exception, fresh.exception
    assert fresh.selectbox(key="vae_model").value.endswith("tiny-vae-l5.json")
    assert fresh.slider(key="vae_u").value == pytest.approx(0.05)
    assert fresh.slider(key="vae_v").value == pytest.approx(-0.05)
    assert fresh.session_state["vae_zoom"] == 4
    image_by_caption(fresh, "test image 3")

    # nonsense in the URL is ignored, not an error
    bad = AppTest.from_file(str(VIEWS / "vae.py"), default_timeout=TIMEOUT)
    bad.session_state["vae_model"] = str(model_dir / "tiny-vae.json")
    bad.query_params.update({"model": "<script>", "u": "nan", "img": "-4", "zoom": "3", "seed": "x"})
    bad.run()
    assert not bad.exception and not bad.error
    assert bad.session_state["vae_index"] == 0 and bad.session_state["vae_zoom"] == 1


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
    from explorer_core.explore.latent import drawing_input

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
@pytest.mark.parametrize(
    ("name", "says"), [("broken-vae", "cannot be used"), ("mismatched-vae", "does not fit")]
)
def test_bad_weights_give_a_clear_error_and_the_app_goes_on(model_dir, monkeypatch, name, says):
    at = open_page("vae", model_dir, name, monkeypatch)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(name in e and says in e for e in errors), errors
    at.selectbox(key="vae_model").set_value(str(model_dir / "tiny-vae.json")).run()
    assert not at.exception and not at.error
    decoded(at)
    at.switch_page(str(VIEWS / "home.py")).run()
    assert not at.exception


@pytest.mark.usefixtures("no_pretrained")
def test_cvae_label_pill_and_sliders_change_the_image(model_dir, monkeypatch):
    at = open_page("cvae", model_dir, "tiny-cvae", monkeypatch)
    # the test points travel once per session and version (later runs rely on the browser keeping them)
    points = pad_data(at, "cvae_pad")["points"]
    before = decoded(at)
    at.pills(key="cvae_label").set_value(3).run()
    assert not at.exception
    assert at.session_state["cvae_label"] == 3
    after_label = decoded(at)
    assert after_label != before
    at.slider(key="cvae_v").set_value(at.slider(key="cvae_v").max).run()
    assert decoded(at) != after_label
    # a drag on the pad changes the decoded image and the row of ten labels together
    data = pad_data(at, "cvae_pad")
    assert data["row"] and data["row"].startswith("data:image/png;base64,")
    pad_send(at, "cvae_pad", "move", {"u": 0.3, "v": 0.2, "seq": 1}, have=data["version"])
    moved = pad_data(at, "cvae_pad")
    assert moved["image"] != data["image"] and moved["row"] != data["row"] and moved["ack"] == 1
    # the class priors p(z|y) are drawn (ten 1-sigma ellipses and the q(z|x, y) ellipses)
    assert len(moved["overlays"]["lines"]) >= 11
    # a click on a test image's point also picks its label
    position = points["c"].index(2)  # the first point of a 2
    pad_send(at, "cvae_pad", "pick", {"kind": "point", "i": position}, have=data["version"])
    assert not at.exception
    index = at.session_state["cvae_index"]
    assert at.session_state["cvae_label"] == 2
    image_by_caption(at, f"test image {index} (y = 2)")
    assert dict(at.query_params)["label"] == "2"


@pytest.mark.usefixtures("no_pretrained")
def test_cvae_map_keeps_its_scale_and_in_lecture_mode_leaves_room_for_the_row(model_dir, monkeypatch):
    from views.components.pad_fragment import PAD_HEIGHT

    note = "far from it (outside the ellipses)"  # where the row's style need not hold
    at = open_page("cvae", model_dir, "tiny-cvae", monkeypatch)
    data = pad_data(at, "cvae_pad")
    # the same scale on both axes (the priors' ellipses keep their shape), at most the usual height
    assert data["equal_scale"] and data["height"] == PAD_HEIGHT and note in data["row_title"]
    at.toggle(key="lecture").set_value(True).run()
    assert not at.exception
    data = pad_data(at, "cvae_pad")
    # lecture mode: a lower canvas and a title of one line, so the row is on a projector's first screen;
    # the note moves to the caption under the pad
    assert data["equal_scale"] and data["height"] < PAD_HEIGHT
    assert data["row_title"].startswith("The same z under all ten labels") and note not in data["row_title"]
    assert any(note in c.value for c in at.caption)


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


@pytest.mark.usefixtures("no_pretrained")
def test_vae_encoder_view_tables_mu_sigma_and_the_first_sample(model_dir, monkeypatch):
    at = open_page("vae", model_dir, "tiny-vae", monkeypatch)
    (table,) = at.table
    frame = table.value.astype(float)  # shown as text with three decimals
    assert list(frame.columns) == ["μ", "σ", "ε₁", "z₁ = μ + σ·ε₁"] and list(frame.index) == ["z1", "z2"]
    assert (frame["σ"] > 0).all()
    # z₁ = μ + σ·ε₁, at the 3 decimals shown
    assert ((frame["μ"] + frame["σ"] * frame["ε₁"] - frame["z₁ = μ + σ·ε₁"]).abs() < 2e-3).all()


@pytest.mark.usefixtures("no_pretrained")
def test_the_test_points_travel_once_per_session_unless_the_browser_asks(model_dir, monkeypatch):
    """A pad that mounts again (no state yet: the visitor came back from another page) gets no points when
    this session was sent them before (the browser keeps them, ``main.js`` ``keptPoints``); a browser that
    lacks them asks (``need:...``) and gets them."""
    at = open_page("vae", model_dir, "tiny-vae", monkeypatch)
    first = pad_data(at, "vae_pad")
    assert first["points"] and len(first["points"]["u"]) > 0
    at.run()  # the same session, the pad reports no state: as on a remount
    assert pad_data(at, "vae_pad")["points"] is None
    pad_send(at, "vae_pad", have=f"need:{first['version']}:1")
    assert pad_data(at, "vae_pad")["points"] == first["points"]
    pad_send(at, "vae_pad", have=first["version"])
    assert pad_data(at, "vae_pad")["points"] is None
    assert not at.exception


@pytest.mark.usefixtures("no_pretrained")
def test_the_pad_state_is_one_object_under_one_key_and_a_new_model_resets_it(model_dir, monkeypatch):
    at = open_page("vae", model_dir, "tiny-vae", monkeypatch)
    data = pad_data(at, "vae_pad")
    pad_send(at, "vae_pad", "move", {"u": 0.1, "v": 0.1, "seq": 4}, have=data["version"])
    pad_send(at, "vae_pad", "zoom", {"dir": 1, "u": 0.1, "v": 0.2}, have=data["version"])
    assert not at.exception
    page = at.session_state["vae_page"]
    assert page.pad.ack == 4 and page.pad.centre == (0.1, 0.2) and page.pad.points_sent == [data["version"]]
    for name in ("pad_ack", "centre", "decode_s", "rerun_app", "rerun_zoom", "pending", "pad_points_sent"):
        assert f"vae_{name}" not in at.session_state, name
    at.selectbox(key="vae_model").set_value(str(model_dir / "tiny-vae-l5.json")).run()
    assert not at.exception
    page = at.session_state["vae_page"]
    assert page.pad.ack == 0 and page.pad.centre is None and at.session_state["vae_zoom"] == 1
