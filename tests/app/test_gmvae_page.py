"""The Gaussian mixture VAE page under AppTest, with tiny untrained GMVAEs written to a temporary folder.

The models are random (C = 10, L = 4, one hidden layer of 32), which is enough to check that every control
reaches the model. The folder is found through ``AEVB_MODEL_DIRS``; the real ``pretrained/`` folder is
swapped for an empty one. MNIST must be on disk (``make test`` fetches it).
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import streamlit.testing.v1.local_script_runner as local_runner
import torch
from PIL import Image
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData
from streamlit.testing.v1 import AppTest

from explorer_core.artifacts import load_model, save_model
from explorer_core.evaluation.metrics import cluster_accuracy
from explorer_core.explore.clusters import decode_plane, load_cluster_bundle
from explorer_core.models.gmvae import GMVAE, GMVAEConfig
from tests.app.conftest import ROOT, TIMEOUT, VIEWS, image_by_caption, pad_data, pad_send
from tests.app.conftest import open_page as open_any_page

P = "gmvae"


def _metrics(seed: int, accuracy_hint: float) -> dict:
    """Stored test metrics as the trainer writes them (the cluster figures from a made-up assignment)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, 1000)
    assignments = np.where(rng.random(1000) < accuracy_hint, (labels + 3) % 10, rng.integers(0, 10, 1000))
    clusters = cluster_accuracy(assignments, labels, 10)
    return {
        "elbo": -97.53,
        "elbo_without_log_c": -97.53 + np.log(10),
        "reconstruction": -80.0,
        "kl": 17.53,
        "conditional_entropy": 0.106,
        "cluster_accuracy": clusters["accuracy"],
        "matched_label": clusters["matched_label"],
        "cluster_usage": clusters["usage"],
        "contingency": clusters["contingency"],
        "n_images": 1000,
    }


def _save(model: GMVAE, folder: Path, name: str, seed: int = 0) -> Path:
    meta = {
        "preprocessing": "binarized",
        "test_metrics": _metrics(seed, 0.8 if seed == 0 else 0.5),
        "training": {"epochs_run": 3, "best_epoch": 2, "wall_seconds": 120.0},
    }
    return save_model(model, "gmvae", folder, name, meta)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-gmvae (marginal), tiny-gumbel (gumbel), broken-gmvae (garbage weights), mismatched-gmvae
    (weights that do not fit the described architecture)."""
    folder = tmp_path_factory.mktemp("gmvae-models")
    torch.manual_seed(0)
    small = {"hidden": (32,), "latent_dim": 4}
    _save(GMVAE(GMVAEConfig(**small)), folder, "tiny-gmvae", seed=0)
    _save(GMVAE(GMVAEConfig(estimator="gumbel", temperature=0.5, **small)), folder, "tiny-gumbel", seed=1)
    broken = _save(GMVAE(GMVAEConfig(**small)), folder, "broken-gmvae")
    broken.with_suffix(".safetensors").write_bytes(b"not a safetensors file" + bytes(range(256)) * 8)
    mismatched = _save(GMVAE(GMVAEConfig(**small)), folder, "mismatched-gmvae")
    description = json.loads(mismatched.read_text())
    description["config"]["latent_dim"] = 5  # intact weights (sha256 matches) that do not fit
    mismatched.write_text(json.dumps(description))
    return folder


def open_page(model_dir: Path | None, model: str | None, monkeypatch) -> AppTest:
    return open_any_page(P, model_dir, model, monkeypatch)


def samples(at: AppTest) -> str:
    return image_by_caption(at, "100 samples from cluster")


def samples_caption(at: AppTest) -> str:
    return next(c for i in at.image for c in i.captions if "samples from cluster" in c)


def figures(at: AppTest) -> list[dict]:
    return [json.loads(element.proto.spec) for element in at.get("plotly_chart")]


@pytest.mark.usefixtures("no_pretrained")
def test_no_model_gives_a_hint_not_an_error(monkeypatch):
    at = open_page(None, None, monkeypatch)
    assert not at.error
    assert any("No trained GMVAE" in i.value and "AEVB_MODEL_DIRS" in i.value for i in at.info)


@pytest.mark.usefixtures("no_pretrained")
def test_page_renders_metrics_gallery_samples_and_confusion(model_dir, monkeypatch):
    at = open_page(model_dir, "tiny-gmvae", monkeypatch)
    assert not at.error
    shown = {m.label: m.value for m in at.metric}
    assert shown["Test ELBO"] == "-97.53"
    assert shown["ELBO without −log C"] == "-95.23"
    assert shown["H(q(y|x))"] == "0.106"
    assert shown["Cluster accuracy"].endswith("%")
    samples(at)
    image_by_caption(at, "test image 0 (digit 7)")
    kinds = [[t.get("type") for t in f["data"]] for f in figures(at)]
    assert ["image"] in kinds  # the gallery
    assert ["bar"] in kinds  # q(y|x)
    assert kinds.count(["heatmap"]) == 2  # the two confusion matrices side by side
    gallery = next(f for f in figures(at) if [t.get("type") for t in f["data"]] == ["image"])
    ticks = gallery["layout"]["yaxis"]["ticktext"]
    assert len(ticks) == 10
    digits = [int(t.split("→ ")[1][0]) for t in ticks if "→ –" not in t]
    assert digits == sorted(digits)  # rows ordered by matched digit
    # the comparison shows both estimators
    text = " ".join(m.value for m in at.markdown)
    assert "marginal estimator" in text and "gumbel estimator" in text


@pytest.mark.usefixtures("no_pretrained")
def test_every_chart_saves_its_png_at_3x_under_a_telling_name(model_dir, monkeypatch):
    """Issue 33, PNG exports: the modebar's PNG of each plotly chart is 3x the shown size, named for what it
    shows, drawn in the system font the PNG is painted with (views.components.charts)."""
    from views.components.charts import CHART_FONT, EXPORT_SCALE

    at = open_page(model_dir, "tiny-gmvae", monkeypatch)
    charts = at.get("plotly_chart")
    assert len(charts) == 4  # the gallery, q(y|x), two confusion matrices
    names = []
    for chart in charts:
        png = json.loads(chart.proto.config)["toImageButtonOptions"]
        assert png["format"] == "png" and png["scale"] == EXPORT_SCALE >= 2
        names.append(png["filename"])
        assert json.loads(chart.proto.spec)["layout"]["font"]["family"] == CHART_FONT
    assert all(n.startswith("aevb-gmvae-") for n in names)
    assert "aevb-gmvae-qyx-test-image-0-digit-7-tiny-gmvae" in names
    assert {"aevb-gmvae-confusion-tiny-gmvae", "aevb-gmvae-confusion-tiny-gumbel"} <= set(names)


@pytest.mark.usefixtures("no_pretrained")
def test_picking_a_cluster_changes_the_samples(model_dir, monkeypatch):
    at = open_page(model_dir, "tiny-gmvae", monkeypatch)
    first = at.session_state[f"{P}_cluster"]
    before = samples(at)
    new = (first + 1) % 10
    at.pills(key=f"{P}_cluster").set_value(new).run()
    assert not at.exception
    assert at.session_state[f"{P}_cluster"] == new
    assert f"y={new} →" in samples_caption(at)
    after_pill = samples(at)
    assert after_pill != before

    # a click on a cluster's disc (its prior mean) on the pad picks it too, and z goes to that mean
    third = (new + 1) % 10
    data = pad_data(at, f"{P}_pad")
    picks = [m for m in data["overlays"]["marks"] if m["pick"] is not None]
    assert sorted(m["pick"] for m in picks) == list(range(10))
    pad_send(at, f"{P}_pad", "pick", {"kind": "mark", "i": third}, have=data["version"])
    assert not at.exception
    assert at.session_state[f"{P}_cluster"] == third
    assert samples(at) != after_pill
    disc = next(m for m in picks if m["pick"] == third)
    assert pad_data(at, f"{P}_pad")["z"] == [
        pytest.approx(disc["u"], abs=1e-3),
        pytest.approx(disc["v"], abs=1e-3),
    ]

    # a drag decodes any z of the plane; the samples of the cluster are not redrawn
    current_samples, image = samples(at), pad_data(at, f"{P}_pad")["image"]
    region = pad_data(at, f"{P}_pad")["region"]
    for seq, t in enumerate((0.2, 0.5, 0.8), start=1):
        u = region[0][0] + t * (region[0][1] - region[0][0])
        pad_send(at, f"{P}_pad", "move", {"u": u, "v": region[1][0] + 0.5, "seq": seq}, have=data["version"])
        assert not at.exception
        moved = pad_data(at, f"{P}_pad")
        assert moved["ack"] == seq and moved["image"] != image and moved["points"] is None
        image = moved["image"]
        assert samples(at) == current_samples
    assert dict(at.query_params)["cluster"] == str(third)

    # the spread slider and the reseed button give new samples of the same cluster
    current = samples(at)
    at.slider(key=f"{P}_spread").set_value(0.5).run()
    assert not at.exception and samples(at) != current
    current = samples(at)
    at.button(key=f"{P}_resample").click().run()
    assert at.session_state[f"{P}_seed"] == 1 and samples(at) != current
    at.slider(key=f"{P}_n").set_value(30).run()
    assert not at.exception
    image_by_caption(at, "30 samples from cluster")


@pytest.mark.usefixtures("no_pretrained")
def test_clicking_a_test_image_classifies_it(model_dir, monkeypatch):
    at = open_page(model_dir, "tiny-gmvae", monkeypatch)
    bars = next(f for f in figures(at) if f["data"][0].get("type") == "bar")
    data = pad_data(at, f"{P}_pad")
    position = data["points"]["c"].index(2)  # the pad's first point of a 2
    pad_send(at, f"{P}_pad", "pick", {"kind": "point", "i": position}, have=data["version"])
    assert not at.exception
    index = at.session_state[f"{P}_index"]
    image_by_caption(at, f"test image {index} (digit 2)")
    new_bars = next(f for f in figures(at) if f["data"][0].get("type") == "bar")
    assert new_bars["data"][0]["y"] != bars["data"][0]["y"]
    recon = [c for i in at.image for c in i.captions if c.startswith("y=") and ": " in c]
    assert len(recon) == 10  # one reconstruction per cluster
    at.number_input(key=f"{P}_index").set_value(5).run()
    assert not at.exception
    image_by_caption(at, "test image 5")


@pytest.mark.usefixtures("no_pretrained")
def test_a_drawing_is_classified(model_dir, monkeypatch):
    from explorer_core.explore.latent import drawing_input

    at = open_page(model_dir, "tiny-gmvae", monkeypatch)
    at.radio(key=f"{P}_source").set_value("drawing").run()
    assert any("Nothing drawn yet" in i.value for i in at.info)
    assert not at.error and not at.exception
    canvas = np.zeros((224, 224, 4), np.uint8)
    canvas[40:180, 100:125] = 255  # a "1"
    at.session_state[f"{P}_drawing"] = drawing_input(canvas, "binarized")
    at.run()
    assert not at.exception
    image_by_caption(at, "your drawing")
    title = next(f for f in figures(at) if f["data"][0].get("type") == "bar")["layout"]["title"]["text"]
    assert "your drawing" in title


@pytest.mark.usefixtures("no_pretrained")
@pytest.mark.parametrize(
    ("name", "says"), [("broken-gmvae", "cannot be used"), ("mismatched-gmvae", "does not fit")]
)
def test_bad_weights_give_a_clear_error_and_the_page_goes_on(model_dir, monkeypatch, name, says):
    at = open_page(model_dir, name, monkeypatch)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(name in e and says in e for e in errors), errors
    # the rest of the page still works: the stored metrics and the comparison of two models
    assert any(m.label == "Test ELBO" for m in at.metric)
    assert [[t.get("type") for t in f["data"]] for f in figures(at)].count(["heatmap"]) == 2
    at.selectbox(key=f"{P}_model").set_value(str(model_dir / "tiny-gmvae.json")).run()
    assert not at.exception and not at.error
    samples(at)
    at.switch_page(str(VIEWS / "home.py")).run()
    assert not at.exception


def test_initialisation_panel_shows_every_seed_of_the_shipped_recipe(monkeypatch):
    """The shipped gmvae-marginal carries the table of every seed (``select``); the page shows it."""
    monkeypatch.delenv("AEVB_MODEL_DIRS", raising=False)
    meta = json.loads((ROOT / "pretrained" / "gmvae-marginal.json").read_text())
    seeds = sorted(r["seed"] for r in meta["selection"]["candidates"])
    at = AppTest.from_file(str(VIEWS / "gmvae.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    panels = [e for e in at.expander if e.label.startswith("Initialisation matters")]
    assert panels and f"{len(seeds)} seeds" in panels[0].label
    table = at.dataframe[0].value
    assert sorted(table["seed"].tolist()) == seeds
    assert table["chosen"].tolist().count("✓") == 1


@pytest.mark.usefixtures("no_pretrained")
def test_the_wheel_zooms_the_pad_and_a_link_opens_its_z(model_dir, monkeypatch):
    """The GMVAE pad has no zoom widget: its zoom and z live in the page's state object (``gmvae_page``)."""
    at = open_page(model_dir, "tiny-gmvae", monkeypatch)
    data = pad_data(at, f"{P}_pad")
    full = data["region"]
    pad_send(at, f"{P}_pad", "zoom", {"dir": 1, "u": data["z"][0], "v": data["z"][1]}, have=data["version"])
    assert not at.exception
    zoomed = pad_data(at, f"{P}_pad")["region"]
    assert zoomed[0][1] - zoomed[0][0] == pytest.approx((full[0][1] - full[0][0]) / 2)
    assert at.session_state[f"{P}_page"].pad.zoom == 2
    pad_send(at, f"{P}_pad", "zoom", {"dir": -1, "u": 0.0, "v": 0.0}, have=data["version"])
    assert pad_data(at, f"{P}_pad")["region"] == full

    bounds = data["bounds"]
    u = round(bounds[0][0] + 0.25 * (bounds[0][1] - bounds[0][0]), 3)
    v = round(bounds[1][0] + 0.75 * (bounds[1][1] - bounds[1][0]), 3)
    monkeypatch.setenv("AEVB_MODEL_DIRS", str(model_dir))
    fresh = AppTest.from_file(str(VIEWS / "gmvae.py"), default_timeout=TIMEOUT)
    # (without a cluster the page picks the first and moves z to its prior mean)
    fresh.query_params.update({"model": "tiny-gmvae", "cluster": "3", "u": str(u), "v": str(v)})
    fresh.run()
    assert not fresh.exception, fresh.exception
    assert pad_data(fresh, f"{P}_pad")["z"] == [pytest.approx(u), pytest.approx(v)]
    assert fresh.session_state[f"{P}_cluster"] == 3


# ------------------------------------------------------------------------------- issue 33, items 5 and 6


def fragment_id(at: AppTest, name: str) -> str:
    """The id of the page's fragment whose function is ``name`` (from AppTest's private fragment storage:
    the function each stored fragment wraps)."""
    ids = []
    for fid, wrapped in at._fragment_storage._fragments.items():
        cells = dict(zip(wrapped.__code__.co_freevars, wrapped.__closure__ or (), strict=True))
        func = cells.get("non_optional_func")
        if func is not None and getattr(func.cell_contents, "__name__", None) == name:
            ids.append(fid)
    assert len(ids) == 1, (name, ids)
    return ids[0]


@contextmanager
def only_fragment(at: AppTest, name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Inside, each run is what the browser asks for after a widget inside the fragment ``name`` changed:
    only that fragment reruns (AppTest itself always reruns the whole script, which hid issue 33's item 6); a
    ``st.rerun(scope="app")`` inside it still reruns the whole page."""
    fid = fragment_id(at, name)
    with monkeypatch.context() as patched:
        patched.setattr(local_runner, "RerunData", partial(RerunData, fragment_id_queue=[fid]))
        yield


def pad_pixels(data: dict) -> np.ndarray:
    """The pad's decoded image (the server's PNG) as uint8 [28, 28]."""
    assert data["image"], "the server sent no image"
    png = base64.b64decode(data["image"].split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))


def eight_bit(image: np.ndarray) -> np.ndarray:
    """Bernoulli means [28, 28] as the page's PNG holds them (8 bits), as int for differences."""
    return np.round(np.clip(image, 0, 1) * 255).astype(np.int64)


@pytest.mark.usefixtures("no_pretrained")
def test_a_pick_shows_the_decoder_mean_at_mu_y_and_a_drag_the_lifted_plane_point(model_dir, monkeypatch):
    """For every cluster picked (a pill, or a disc on the pad), the pad's image is the decoder mean at mu(y)
    itself and its caption says so; a drag (which reruns only the pad) decodes the plane point lifted to the
    latent space and the caption says that, with the point; a pick goes back to mu(y)."""
    at = open_page(model_dir, "tiny-gmvae", monkeypatch)
    path = model_dir / "tiny-gmvae.json"
    model = load_model(path, "cpu").model
    with torch.no_grad():
        means = model.decode(model.prior().mean).mean.reshape(10, 28, 28).numpy()
    pad = f"{P}_pad"
    for c in [*range(1, 10), 0]:
        at.pills(key=f"{P}_cluster").set_value(c).run()
        assert not at.exception
        data = pad_data(at, pad)
        assert data["caption"].startswith(f"decoder mean at μ(y) of cluster y={c} → "), data["caption"]
        assert data["caption"].endswith("(all 4 coordinates)") and "μ(y)" in data["title"]
        assert data["view"] == "prior_mean"  # the server decodes: the browser's decoder knows only the plane
        assert np.abs(pad_pixels(data).astype(np.int64) - eight_bit(means[c])).max() <= 1

    bundle = load_cluster_bundle(path)
    version = pad_data(at, pad)["version"]
    for seq, c in enumerate((3, 7), start=1):
        pad_send(at, pad, "pick", {"kind": "mark", "i": c}, have=version)  # a click on the disc of c
        assert not at.exception and at.session_state[f"{P}_cluster"] == c
        data = pad_data(at, pad)
        assert data["caption"].startswith(f"decoder mean at μ(y) of cluster y={c} → ")
        assert np.abs(pad_pixels(data).astype(np.int64) - eight_bit(means[c])).max() <= 1
        u, v = (float(x) + 0.5 for x in bundle.prior_coords[c])
        with only_fragment(at, "pad_panel", monkeypatch):  # a drag reruns only the pad
            pad_send(at, pad, "move", {"u": u, "v": v, "seq": seq}, have=version)
        assert not at.exception
        data = pad_data(at, pad)
        z = np.asarray(data["z"], dtype=np.float32)
        assert data["caption"] == f"plane ({z[0]:.2f}, {z[1]:.2f}) → 4-D"
        assert "lifted to 4-D" in data["title"] and data["view"] == "lambda"
        lifted = eight_bit(decode_plane(model, bundle.projection, z))
        assert np.abs(pad_pixels(data).astype(np.int64) - lifted).max() <= 1


@pytest.mark.usefixtures("no_pretrained")
def test_new_samples_puts_its_seed_in_the_link_and_the_gallery(model_dir, monkeypatch):
    """The button "New samples" (inside the cluster panel's fragment, which alone reruns in a browser): the
    samples' caption, the gallery's caption and the link's seed agree, and the link reopens those samples."""
    at = open_page(model_dir, "tiny-gmvae", monkeypatch)
    assert dict(at.query_params).get("seed") == "0"
    for expected in (1, 2):
        with only_fragment(at, "cluster_panel", monkeypatch):
            at.button(key=f"{P}_resample").click().run()
        assert not at.exception
        shown = int(re.search(r", seed (\d+)\)$", samples_caption(at)).group(1))
        assert shown == expected == int(dict(at.query_params)["seed"])
        assert any(c.value.endswith(f"Seed {expected}.") for c in at.caption)  # the gallery's
    cluster, picture = at.session_state[f"{P}_cluster"], samples(at)

    monkeypatch.setenv("AEVB_MODEL_DIRS", str(model_dir))
    link = AppTest.from_file(str(VIEWS / "gmvae.py"), default_timeout=TIMEOUT)
    link.query_params.update(dict(at.query_params))
    link.run()
    assert not link.exception
    assert link.session_state[f"{P}_cluster"] == cluster
    assert samples_caption(link).endswith(", seed 2)") and samples(link) == picture


def test_the_seeds_panel_shows_the_v3_restarts_screened_so_far(monkeypatch):
    """Issue 36: the 'Initialisation matters' panel holds the v3 screening restarts beside the v2 seeds,
    ranked by the declared rule (the JSONs in pretrained/seeds/)."""
    from explorer_core.artifacts import PRETRAINED_DIR
    from explorer_core.evaluation.selection import v3_screening_table

    record = v3_screening_table(PRETRAINED_DIR / "seeds")
    assert record is not None and "restarts" in record, record  # committed JSONs in pretrained/seeds/
    at = open_page(None, None, monkeypatch)  # the shipped gmvae-marginal, the page's first model
    assert not at.exception, at.exception
    tables = [df.value for df in at.dataframe if "H(q(y|x)) at epoch 20 (rule)" in df.value.columns]
    assert tables, [list(df.value.columns) for df in at.dataframe]
    shown = tables[0]
    assert list(shown["seed"]) == [r["seed"] for r in record["restarts"]]
    assert list(shown["rank"].astype(str)) == [str(r["rank"] or "skipped") for r in record["restarts"]]
