"""``python -m explorer_core publish``: a static site of models (issue 35). Deterministic bytes, only the
site's own files referenced, and a damaged or unknown model gives a one-line error and writes nothing."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from explorer_core.cli import main
from explorer_core.data import MNISTUnavailable, load_mnist_splits
from explorer_core.paths import PRETRAINED_DIR
from explorer_core.publish import PublishError, build_site, site_zip
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
