"""The published site: ``index.html``, its script, style and networks, and one data file per model.

Layout of a site (every path relative, so it works from a static host and from ``file://``)::

    index.html        the page (no inline script: a Content-Security-Policy allows only the site's files)
    style.css         the app's look, lecture scale (100/125/150 %) and a phone layout
    nets.js           the networks the browser runs (float32 weights, float64 sums)
    app.js            the views of each kind of model, the URL hash state
    models.js         which models the site holds (window.AEVB_SITE)
    replay.js         the pages of the recorded runs: their charts, the 3-D scatter, the scrubber and Play
    mnist.js          the first MAP_POINTS MNIST test images and labels (uint8, base64)
    models/<name>.js  one model's payload (:func:`explorer_core.publish.export.export_model`), or a recorded
                      run's (``fa``, ``watch``: :mod:`explorer_core.publish.recordings`)

Scripts are classic ``<script src>`` files, not modules or ``fetch``: Chromium refuses both from ``file://``.
A model's data file is added to the page only when that model is shown. The bytes depend only on the models
and the MNIST files: no time stamps, keys in sorted order, a zip with fixed dates (a course can commit it).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from explorer_core.artifacts import ArtifactError, load_model
from explorer_core.atomic import replace_atomically
from explorer_core.data import MNISTUnavailable, load_mnist_splits, preprocess_for_evaluation
from explorer_core.publish.export import MAP_POINTS, ExportError, b64, export_model, kind_of
from explorer_core.publish.recordings import RECORDINGS

#: the site's own files, copied as they are
ASSETS = Path(__file__).resolve().parent / "site"
STATIC_FILES = ("index.html", "style.css", "nets.js", "replay.js", "app.js")
#: a published model's name becomes a file name: letters, digits, dot, dash, underscore
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: the fixed date of every zip entry (the earliest a zip can hold)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class PublishError(RuntimeError):
    """A model that cannot be published, or a site that cannot be written; the message is one line."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _js_assign(target: str, key: str | None, value: Any) -> bytes:
    """A script that stores ``value`` (JSON, keys sorted) in ``window[target]`` (or its entry ``key``)."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    if key is None:
        return f"window.{target} = {data};\n".encode("ascii")
    name = json.dumps(key)
    return (f"window.{target} = window.{target} || {{}};\nwindow.{target}[{name}] = {data};\n").encode(
        "ascii"
    )


def build_site(models: Iterable[str | Path], mnist_directory: str | Path | None = None) -> dict[str, bytes]:
    """Every file of the site of ``models`` (names in ``pretrained/`` or paths to model JSONs; ``fa`` and
    ``watch``: the recorded runs of :mod:`explorer_core.publish.recordings`, which take about 15 and 35
    seconds of one CPU core to record), in memory: relative path -> bytes. Nothing is written.

    Raises:
        PublishError: no model, a name given twice, a model that is missing, damaged or of a family without
            a published page, or the MNIST test set missing (one line, naming the model).
    """
    models = list(models)
    if not models:
        raise PublishError("no model to publish.")
    try:
        splits = load_mnist_splits(n_validation=0, directory=mnist_directory)
    except MNISTUnavailable as err:
        raise PublishError(_one_line(err)) from err
    images, labels = splits.x_test, splits.y_test
    files: dict[str, bytes] = {}
    entries = []
    preprocessed: dict[str, torch.Tensor] = {}
    for model in models:
        if isinstance(model, str) and model in RECORDINGS:
            if any(e["name"] == model for e in entries):
                raise PublishError(f"{model}: a model named {model!r} is already in this site.")
            try:
                payload = RECORDINGS[model](mnist_directory)
            except MNISTUnavailable as err:
                raise PublishError(f"{model}: {_one_line(err)}") from err
            except (RuntimeError, ValueError) as err:
                raise PublishError(f"{model}: the recording failed: {_one_line(err)}") from err
            files[f"models/{model}.js"] = _js_assign("AEVB_MODEL_DATA", model, payload)
            entries.append(
                {
                    "name": model,
                    "label": payload["label"],
                    "family": payload["family"],
                    "kind": payload["kind"],
                    "latent_dim": payload["latent_dim"],
                    "file": f"models/{model}.js",
                    "bytes": len(files[f"models/{model}.js"]),
                }
            )
            continue
        try:
            loaded = load_model(model, "cpu")
            kind = kind_of(loaded.model)
        except (ArtifactError, ExportError, OSError, ValueError) as err:
            raise PublishError(f"{model}: {_one_line(err)}") from err
        name = loaded.name
        if not NAME_PATTERN.match(name):
            raise PublishError(f"{model}: the name {name!r} cannot be a file name of the site.")
        if any(e["name"] == name for e in entries):
            raise PublishError(f"{model}: a model named {name!r} is already in this site.")
        x = None
        if kind == "latent":
            prep = str(loaded.meta.get("preprocessing", "dequantized"))
            if prep not in preprocessed:
                try:
                    preprocessed[prep] = preprocess_for_evaluation(images, prep)
                except ValueError as err:
                    raise PublishError(f"{model}: {_one_line(err)}") from err
            x = preprocessed[prep]
        try:
            payload = export_model(loaded, x, labels)
        except (ExportError, ValueError, RuntimeError) as err:
            raise PublishError(f"{model}: {_one_line(err)}") from err
        files[f"models/{name}.js"] = _js_assign("AEVB_MODEL_DATA", name, payload)
        entries.append(
            {
                "name": name,
                "family": loaded.family,
                "kind": kind,
                "latent_dim": payload["latent_dim"],
                "file": f"models/{name}.js",
                "bytes": len(files[f"models/{name}.js"]),
            }
        )
    n = min(MAP_POINTS, len(images))
    files["mnist.js"] = _js_assign(
        "AEVB_MNIST",
        None,
        {
            "n": n,
            "images": b64(images[:n].numpy(), "u1"),
            "labels": b64(labels[:n].numpy().astype("u1"), "u1"),
        },
    )
    files["models.js"] = _js_assign("AEVB_SITE", None, {"models": entries})
    for name in STATIC_FILES:
        files[name] = (ASSETS / name).read_bytes()
    return dict(sorted(files.items()))


def write_site(files: Mapping[str, bytes], out: str | Path) -> list[Path]:
    """Write the site's ``files`` under ``out`` (created when missing; files of the same names replaced,
    each atomically). Returns the paths written.

    Raises:
        PublishError: ``out`` is a file, or a file cannot be written.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PublishError(f"{out} is not a folder.")
    written = []
    try:
        for rel, data in files.items():
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_atomically(path, lambda tmp, data=data: tmp.write_bytes(data))
            written.append(path)
    except OSError as err:
        raise PublishError(_one_line(err)) from err
    return written


def publish(
    models: Iterable[str | Path], out: str | Path, mnist_directory: str | Path | None = None
) -> list[Path]:
    """Build the site of ``models`` and write it under ``out``; nothing is written when a model fails.

    Raises:
        PublishError: see :func:`build_site` and :func:`write_site`.
    """
    return write_site(build_site(models, mnist_directory), out)


def site_zip(files: Mapping[str, bytes], folder: str = "aevb-site") -> bytes:
    """The site as a zip whose entries sit in ``folder/`` (unpacked, ``folder/index.html`` opens it), with
    fixed dates and sorted names: the same files give the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in sorted(files):
            info = zipfile.ZipInfo(f"{folder}/{rel}", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[rel])
    return buffer.getvalue()
