"""``python -m explorer_core publish``: a static site of models (issue 35). Deterministic bytes, only the
site's own files referenced, and a damaged or unknown model gives a one-line error and writes nothing. The
recorded runs (``fa``, ``watch``) are deterministic, a few MB, and their numbers are the app's: the factor
analysis's evidence and gap exact at every step, its first steps and the Watch run's first frames bit for bit
what the app's experiments compute."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from explorer_core.cli import main
from explorer_core.data import MNISTUnavailable, load_mnist_splits, make_fa_dataset
from explorer_core.explore.fa import FAExperiment, FATrainingConfig
from explorer_core.explore.watch import WatchExperiment, load_watch_data
from explorer_core.paths import PRETRAINED_DIR
from explorer_core.publish import PublishError, build_site, site_zip
from explorer_core.publish.export import unb64
from explorer_core.publish.recordings import fa_parameters, one_thread, watch_config, watch_schedule
from explorer_core.publish.site import STATIC_FILES

REPO = Path(__file__).resolve().parents[2]
#: a small site: one model of the latent kind and the VRNN
MODELS = ("vae-cb-l2", "vrnn")


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    missing = [m for m in MODELS if not (PRETRAINED_DIR / f"{m}.json").is_file()]
    if missing:
        pytest.skip(f"shipped models missing: {missing}")
    try:
        load_mnist_splits(n_validation=0)
    except MNISTUnavailable as err:
        pytest.skip(f"MNIST missing: {err}")
    return build_site(MODELS)


def test_site_layout(files):
    assert set(files) == {*STATIC_FILES, "models.js", "mnist.js", *(f"models/{m}.js" for m in MODELS)}
    html = files["index.html"].decode()
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        if src == "data:,":
            continue  # the empty favicon: no request at all
        assert not re.match(r"^[a-z]+:|^//", src), f"index.html refers outside the site: {src}"
        assert src in files, f"index.html refers to a file the site lacks: {src}"
    # a Content-Security-Policy that allows the site's own files only
    assert "default-src 'none'; script-src 'self'" in html
    for name, data in files.items():
        if name.endswith((".js", ".css", ".html")):
            text = data.decode()
            assert "http://" not in text and "https://" not in text, name
            assert str(REPO) not in text and "/root/" not in text, f"{name} shows a server path"


def test_site_is_deterministic(files, tmp_path):
    assert build_site(MODELS) == files
    assert site_zip(files) == site_zip(dict(reversed(list(files.items()))))
    # another process, through the command line: the same bytes
    out = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "explorer_core", "publish", *MODELS, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    written = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert written == files


def test_zip_unpacks_to_a_folder(files):
    with zipfile.ZipFile(io.BytesIO(site_zip(files, "vae-site"))) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert "vae-site/index.html" in names
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert archive.read("vae-site/models/vrnn.js") == files["models/vrnn.js"]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_unknown_model_writes_nothing(tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["publish", "no-such-model", "--out", str(out)]) == 2
    assert "no-such-model" in _one_line_error(capsys)
    assert not out.exists()


def _copy_model(name: str, folder: Path) -> Path:
    for suffix in (".json", ".safetensors"):
        shutil.copy(PRETRAINED_DIR / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder / f"{name}.json"


@pytest.mark.parametrize("damage", ["weights", "json", "family"])
def test_damaged_model_writes_nothing(files, tmp_path, capsys, damage):
    json_path = _copy_model("vae-cb-l2", tmp_path)
    if damage == "weights":
        weights = tmp_path / "vae-cb-l2.safetensors"
        data = bytearray(weights.read_bytes())
        data[-100] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif damage == "json":
        json_path.write_text(json_path.read_text()[:200])
    else:
        json_path.write_text(json_path.read_text().replace('"family": "vae"', '"family": "nope"', 1))
    out = tmp_path / "site"
    # a good model first: still nothing is written
    assert main(["publish", "vrnn", str(json_path), "--out", str(out)]) == 2
    assert "vae-cb-l2" in _one_line_error(capsys)
    assert not out.exists()


def test_same_name_twice_is_refused(files):
    with pytest.raises(PublishError, match="already in this site"):
        build_site(["vrnn", "vrnn"])


# ------------------------------------------------------------------------------------- recorded runs
#: the recordings' sizes at most (bytes of their data files; the issue: "a few MB at most")
RECORDING_LIMITS = {"fa": 1_500_000, "watch": 4_000_000}
#: the recordings' pseudo-models
RECORDED = ("fa", "watch")


def payload_of(files: dict[str, bytes], name: str) -> dict:
    """The payload a site's ``models/<name>.js`` assigns (``window.AEVB_MODEL_DATA["name"] = {...};``)."""
    text = files[f"models/{name}.js"].decode("ascii")
    marker = f"window.AEVB_MODEL_DATA[{json.dumps(name)}] = "
    return json.loads(text[text.index(marker) + len(marker) :].rstrip().rstrip(";"))


@pytest.fixture(scope="module")
def recorded() -> dict[str, bytes]:
    """The site of the two recordings, built in this process (about a minute of one core)."""
    try:
        load_mnist_splits(n_validation=0)
    except MNISTUnavailable as err:
        pytest.skip(f"MNIST missing: {err}")
    return build_site(RECORDED)


@pytest.mark.slow
def test_recordings_are_deterministic_and_small(recorded, tmp_path):
    # another process, through the command line: the same bytes
    out = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "explorer_core", "publish", *RECORDED, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    written = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert written == recorded
    for name, limit in RECORDING_LIMITS.items():
        assert len(recorded[f"models/{name}.js"]) <= limit, name
    site = json.loads(recorded["models.js"].decode().split(" = ", 1)[1].rstrip().rstrip(";"))
    kinds = [(e["name"], e["kind"]) for e in site["models"]]
    assert kinds == [("fa", "fa_replay"), ("watch", "watch_replay")]


def _fa(recorded):
    d = payload_of(recorded, "fa")
    arrays = {k: unb64(d[k], "<f8") for k in ("elbo", "evidence", "gap")}
    params = unb64(d["params"]).astype(np.float64).reshape(d["steps"] + 1, 18)
    x = unb64(d["x_test"]).astype(np.float64).reshape(d["n_test"], 3)
    return d, arrays, params, x


@pytest.mark.slow
def test_fa_recording_is_exact_at_every_step(recorded):
    """At every recorded step the evidence is the exact log-likelihood of the test points under the recorded
    parameters (log N(x; 0, W W^T + diag sigma^2), float64 here), the gap the exact KL(q(z|x) || p(z|x)),
    and so the exact ELBO = evidence - gap lies below the evidence."""
    d, a, params, x = _fa(recorded)
    n = d["steps"] + 1
    assert d["steps"] == 4000 and all(len(v) == n for v in a.values())
    assert [s[0] for s in d["segments"]] == ["e_step", "m_step", "e_step", "m_step"]
    W = torch.as_tensor(params[:, :6].reshape(n, 3, 2))
    sigma = torch.as_tensor(params[:, 6:9])
    V = torch.as_tensor(params[:, 9:15].reshape(n, 2, 3))
    tril = torch.zeros(n, 2, 2, dtype=torch.float64)
    tril[:, 0, 0], tril[:, 1, 0], tril[:, 1, 1] = (torch.as_tensor(params[:, 15 + k]) for k in range(3))
    xt = torch.as_tensor(x)
    cov = W @ W.transpose(1, 2) + torch.diag_embed(sigma**2)  # [n, 3, 3]
    evidence = MultivariateNormal(torch.zeros(3, dtype=torch.float64), covariance_matrix=cov[:, None])
    exact = evidence.log_prob(xt[None]).mean(1).numpy()  # [n]
    np.testing.assert_allclose(a["evidence"], exact, atol=1e-4, rtol=0)
    # the exact posterior p(z|x) = N(S W^T Phi^-1 x, S), S = (I + W^T Phi^-1 W)^-1, and q(z|x) = N(V x, L L^T)
    w_over_phi = W / (sigma**2)[:, :, None]
    S = torch.linalg.inv(torch.eye(2, dtype=torch.float64) + W.transpose(1, 2) @ w_over_phi)
    p_mean = xt[None] @ w_over_phi @ S  # [n, N, 2]
    q = MultivariateNormal(xt[None] @ V.transpose(1, 2), scale_tril=tril[:, None])
    p = MultivariateNormal(p_mean, covariance_matrix=S[:, None])
    gap = kl_divergence(q, p).mean(1).numpy()
    np.testing.assert_allclose(a["gap"], gap, atol=1e-4, rtol=1e-5)
    assert (a["gap"] >= 0).all() and (a["evidence"] - a["gap"] <= a["evidence"]).all()
    # the run closes the gap in an E-phase and climbs to the maximum-likelihood fit
    assert a["gap"][1000] < 0.05 * a["gap"][0]
    assert abs(a["evidence"][-1] - d["mle_evidence"]) < 1.0


@pytest.mark.slow
def test_fa_recording_is_the_apps_run(recorded):
    """The recording's first 100 steps are what the app's FAExperiment computes with the same settings, bit
    for bit, and its parameters with the recorded noise give the app's model samples (the 3-D scatter)."""
    d, a, params, _ = _fa(recorded)
    with one_thread():
        ex = FAExperiment(make_fa_dataset(), FATrainingConfig())
        for _ in range(100):
            assert ex.run("e_step", 1) == 1
        samples = ex.model_samples(d["n_test"])
        posteriors = ex.posteriors_of(7)
    h = ex.history
    for name in ("elbo", "evidence", "gap"):
        assert a[name][:101].tolist() == getattr(h, name), name
    np.testing.assert_array_equal(params[100].astype(np.float32), fa_parameters(ex.model))
    p = params[100]
    z = unb64(d["noise_z"]).astype(np.float64).reshape(-1, 2)
    eps = unb64(d["noise_eps"]).astype(np.float64).reshape(-1, 3)
    browser = z @ p[:6].reshape(3, 2).T + eps * p[6:9]  # what replay.js draws
    np.testing.assert_allclose(browser, samples, atol=1e-5)
    x = unb64(d["x_test"]).astype(np.float64).reshape(-1, 3)[7]
    np.testing.assert_allclose(p[9:15].reshape(2, 3) @ x, posteriors["q_mean"], atol=1e-5)
    assert d["chart"]["panels"][0]["bands"][0]["label"] == "E"


@pytest.mark.slow
def test_watch_recording_is_the_apps_run(recorded):
    """The Watch recording: its first evaluations are what the app's WatchExperiment computes (the curves bit
    for bit, the map within its int16 step), the map holds at least 1,000 validation images with their
    labels, and the first keyframe's manifold is the app's."""
    d = payload_of(recorded, "watch")
    F = d["frames"]
    steps = unb64(d["step"], "<i4")
    assert F == len(steps) == len(d["phase"]) and steps[0] == 0 and steps[-1] == d["steps"] == 4000
    assert [s[0] for s in d["segments"]] == ["e_step", "m_step", "e_step", "m_step", "joint"]
    curves = {k: unb64(d[k], "<f8") for k in ("elbo", "iwae", "gap", "reconstruction", "kl")}
    np.testing.assert_array_equal(curves["gap"], curves["iwae"] - curves["elbo"])
    assert curves["elbo"][-1] > curves["elbo"][0] + 300  # it learns: about -545 to -138 nats per image
    m = d["map"]
    assert m["n"] >= 1000
    coords = unb64(m["coords"], "<i2").astype(np.float64).reshape(F, m["n"], 2)
    scale = unb64(m["scale"])
    config = watch_config()
    with one_thread():
        data = load_watch_data(config)
        data = dataclasses.replace(data, x_test=None)
        ex = WatchExperiment(config, data)
        region = ex.map_region(None)  # the first frame's, as the page's
        first_manifold = ex.manifold(region, 12)  # [12 * 28, 12 * 28] in [0, 1]
        for phase, n in watch_schedule()[:1]:
            ex.enqueue(phase, n)
        frames = [ex.latest, ex.frame(25), ex.frame(25)]
    np.testing.assert_array_equal(unb64(m["labels"], "u1"), data.y_map.numpy())
    for i, frame in enumerate(frames):
        assert steps[i] == frame.step
        for name in curves:
            assert curves[name][i] == getattr(ex.history, name)[i], (name, i)
        np.testing.assert_allclose(coords[i] * scale[i], frame.coords, atol=float(scale[i]))
    key = d["keyframes"]
    assert key["step"] == [0, 250, 500, 750, 1000, 1500, 2000, 2500, 3000, 4000]
    g = key["grid"]
    manifold = unb64(key["manifold"], "u1").reshape(len(key["step"]), g * g, 784)
    assert manifold.shape[0] == len(key["frame"]) and not (manifold[0] == manifold[-1]).all()
    tiles = manifold[0].reshape(g, g, 28, 28).transpose(0, 2, 1, 3).reshape(g * 28, g * 28)
    np.testing.assert_array_equal(tiles, np.rint(first_manifold.astype(np.float64) * 255).astype(np.uint8))
    assert unb64(m["half"])[0] == region[0][1]


def test_a_recording_without_mnist_writes_nothing(tmp_path, capsys, monkeypatch):
    """Without the MNIST files (the Watch run trains on them, and every site holds test images) publishing a
    recording is a one-line error and writes nothing."""
    monkeypatch.setenv("AEVB_DATA_DIR", str(tmp_path / "no-data"))
    out = tmp_path / "site"
    assert main(["publish", "fa", "watch", "--out", str(out)]) == 2
    assert "MNIST" in _one_line_error(capsys)
    assert not out.exists()
