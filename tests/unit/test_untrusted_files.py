"""Every file read from a model folder or ``runs/`` is untrusted: malformed variants, field by field.

For each shipped model family (a real JSON from ``pretrained/``) and for a run folder, every field of every
file is removed, given a value of the wrong type and given an absurd value; special files (a symlink to
``/dev/zero``, a FIFO, a directory, an oversized file, non-UTF-8 bytes, NaN, deep nesting) are added. Listing
never raises: each file is either a valid model whose fields have the documented types, or one entry with a
clear one-line error naming it; the other models are still listed. The CLI ``evaluate`` exits 2 with one
``error:`` line on each of them.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from explorer_core import untrusted
from explorer_core.artifacts import (
    CONFIG_SCHEMAS,
    MODEL_SCHEMA,
    PRETRAINED_DIR,
    ArtifactError,
    list_models,
    load_model,
    read_model_description,
)
from explorer_core.jobs import (
    CONFIG_FILE_SCHEMA,
    STATUS_SCHEMA,
    RunInfo,
    read_metrics,
    read_preview,
    scan_runs,
)

ROOT = Path(__file__).resolve().parents[2]
BASES = {"vae": "vae-cb-l2", "cvae": "cvae-cb-l2", "gmvae": "gmvae-gumbel", "vrnn": "vrnn"}
WRONG_TYPES: list[Any] = ["abc", [], {}, None, True, [1, 2, 3]]
ABSURD: list[Any] = [-1, 0, 1e300, -(10**12), 10**18, "x" * 200_000]


def paths_of(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every key path of a JSON value (objects' keys; a list's first and last item)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from paths_of(item, (*prefix, key))
    elif isinstance(value, list) and value:
        for index in dict.fromkeys((0, len(value) - 1)):
            yield (*prefix, index)
            yield from paths_of(value[index], (*prefix, index))


def with_value(doc: Any, path: tuple, value: Any, delete: bool = False) -> Any:
    """A copy of ``doc`` with ``path`` set to ``value`` (or removed)."""
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def variants(doc: dict) -> Iterator[tuple[str, Any]]:
    """(label, malformed document) for every field: missing, each wrong type, each absurd value."""
    for path in paths_of(doc):
        where = ".".join(map(str, path))
        yield f"{where}:missing", with_value(doc, path, None, delete=True)
        for i, value in enumerate(WRONG_TYPES + ABSURD):
            yield f"{where}:{i}", with_value(doc, path, value)


def special_files(folder: Path) -> list[Path]:
    """Files that are not JSON model descriptions at all."""
    made = []
    zero = folder / "zero.json"
    zero.symlink_to("/dev/zero")
    made.append(zero)
    fifo = folder / "fifo.json"
    os.mkfifo(fifo)
    made.append(fifo)
    (folder / "dir.json").mkdir()
    made.append(folder / "dir.json")
    huge = folder / "huge.json"
    with open(huge, "wb") as f:
        f.truncate(200 * 2**20)  # sparse: 200 MB of zero bytes
    made.append(huge)
    for name, data in {
        "latin1.json": b'{"name": "caf\xe9"}',
        "list.json": b"[1, 2, 3]",
        "null.json": b"null",
        "nan.json": json.dumps({"family": "vae", "config": {}, "weights": "w", "sha256": "0"})
        .replace('"0"', "NaN")
        .encode(),
        "deep.json": b"[" * 100_000 + b"]" * 100_000,
        "empty.json": b"",
        "text.json": b"not json at all",
    }.items():
        (folder / name).write_bytes(data)
        made.append(folder / name)
    dangling = folder / "dangling.json"
    dangling.symlink_to(folder / "nowhere")
    made.append(dangling)
    return made


def assert_schema_types(meta: dict) -> None:
    """A listed (valid) model's fields have the documented types: checking it again changes nothing."""
    clean = {k: v for k, v in meta.items() if k != "path"}
    assert untrusted.check(copy.deepcopy(clean), MODEL_SCHEMA) == clean
    assert isinstance(meta["name"], str) and meta["name"]
    for value in (meta.get("test_metrics") or {}).values():
        assert value is None or isinstance(value, int | float | list | str | bool)


@pytest.mark.parametrize("family", sorted(BASES))
def test_every_malformed_model_file_is_one_clear_entry_and_the_rest_is_listed(tmp_path, family):
    base = json.loads((PRETRAINED_DIR / f"{BASES[family]}.json").read_text())
    expected: dict[str, bool] = {}
    for i, (label, doc) in enumerate(variants(base)):
        name = f"m{i:05d}"
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
        expected[name] = label
    special = special_files(tmp_path)
    (tmp_path / "good.json").write_text(json.dumps(base))  # a valid description still listed

    listed = list_models(tmp_path)
    names = [m["name"] for m in listed]
    assert len(names) == len(expected) + len(special) + 1  # every file exactly one entry (dir.json too)
    good = [m for m in listed if Path(m["path"]).name == "good.json"]
    assert len(good) == 1 and "error" not in good[0] and good[0]["family"] == family
    errors = [m for m in listed if m.get("error")]
    assert len(errors) > len(expected) // 2
    for meta in listed:
        if meta.get("error"):
            message = meta["error"]
            stem = Path(meta["path"]).name
            assert message.startswith(f"{stem}: not a model file: "), message
            assert "\n" not in message and len(message) < 1000 and "Traceback" not in message
        else:
            assert_schema_types(meta)
    # the special files are all errors, with the reason
    by_name = {Path(m["path"]).name: m for m in listed}
    assert "not a regular file" in by_name["zero.json"]["error"]
    assert "not a regular file" in by_name["fifo.json"]["error"]
    assert "too large" in by_name["huge.json"]["error"]
    assert "not UTF-8" in by_name["latin1.json"]["error"]
    assert "top level is list" in by_name["list.json"]["error"]
    assert "not JSON" in by_name["nan.json"]["error"]
    assert "not JSON" in by_name["deep.json"]["error"]


@pytest.mark.parametrize("family", sorted(set(BASES) - {"cvae"}))
def test_every_config_field_is_checked_before_a_module_is_built(tmp_path, family):
    base = json.loads((PRETRAINED_DIR / f"{BASES[family]}.json").read_text())
    for key in CONFIG_SCHEMAS[family].fields:
        for value in [None, "abc", -784, 10**9, 1e9, [8192] * 200, True]:
            doc = with_value(base, ("config", key), value, delete=value is None)
            path = tmp_path / f"{family}-{key}.json"
            path.write_text(json.dumps(doc))
            try:
                meta = read_model_description(path)
            except ArtifactError as err:
                assert str(err).startswith(f"{path.name}: not a model file: config"), err
            else:  # accepted only when the value is one the family allows (or an optional field is absent)
                assert meta["config"].get(key) == value


def test_paths_inside_a_model_file_stay_in_its_folder(tmp_path):
    base = json.loads((PRETRAINED_DIR / "vae-cb-l2.json").read_text())
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(b"x")
    folder = tmp_path / "models"
    folder.mkdir()
    for weights in ["../outside.safetensors", str(outside), "sub/w.safetensors", "..", ""]:
        (folder / "m.json").write_text(json.dumps({**base, "weights": weights}))
        with pytest.raises(ArtifactError, match="not a model file"):
            load_model(folder / "m.json")
    (folder / "link.safetensors").symlink_to(outside)  # a symlink leaving the folder
    (folder / "m.json").write_text(json.dumps({**base, "weights": "link.safetensors"}))
    with pytest.raises(ArtifactError, match="resolves outside its folder"):
        load_model(folder / "m.json")
    views = {**base, "weights": "vae-cb-l2.safetensors", "views": {"file": "../x", "sha256": "0" * 64}}
    (folder / "m.json").write_text(json.dumps(views))
    with pytest.raises(ArtifactError, match="not a plain file name"):
        load_model(folder / "m.json")


def test_absurd_architectures_are_refused_before_any_memory_is_spent(tmp_path):
    base = json.loads((PRETRAINED_DIR / "vae-cb-l2.json").read_text())
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"\0" * 1000)
    for hidden in ([8192] * 6, [8192] * 16):
        doc = {**base, "weights": weights.name, "config": {**base["config"], "hidden": hidden}}
        (tmp_path / "big.json").write_text(json.dumps(doc))
        with pytest.raises(ArtifactError, match=r"does not fit a vae with|larger than this app loads"):
            load_model(tmp_path / "big.json")
    zero = tmp_path / "zero.safetensors"
    zero.symlink_to("/dev/zero")
    (tmp_path / "z.json").write_text(json.dumps({**base, "weights": "zero.safetensors"}))
    with pytest.raises(ArtifactError, match=r"resolves outside its folder|not a regular file"):
        load_model(tmp_path / "z.json")


@pytest.mark.parametrize("name", ["list.json", "zero.json", "huge.json", "nan.json", "m.json"])
def test_evaluate_on_a_bad_model_exits_2_with_one_error_line(tmp_path, name):
    special_files(tmp_path)
    base = json.loads((PRETRAINED_DIR / "vae-cb-l2.json").read_text())
    del base["preprocessing"]
    (tmp_path / "m.json").write_text(json.dumps({**base, "weights": "../vae-cb-l2.safetensors"}))
    result = subprocess.run(
        [sys.executable, "-m", "explorer_core", "evaluate", str(tmp_path / name)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], result.stderr


# ------------------------------------------------------------------------------------------------ runs

GOOD_STATUS = {
    "state": "done",
    "created": 1.0,
    "started": 2.0,
    "finished": 9.0,
    "pid": 12345,
    "device": "cpu",
    "model": "r.json",
    "test_elbo": -120.5,
    "best_epoch": 2,
    "epochs_run": 2,
    "message": "finished all epochs",
}
GOOD_CONFIG = {
    "config": {"family": "vae", "latent_dim": 2, "hidden": [16], "epochs": 2, "tsne_points": 0},
    "options": {"label": "VAE", "preset": "quick", "data_limit": 300, "log_every": 2, "nice": 5},
}
GOOD_ROWS = [
    {"kind": "step", "epoch": 1, "step": 2, "total_steps": 12, "train_elbo": -300.0, "seconds": 0.1},
    {"kind": "epoch", "epoch": 1, "step": 6, "total_steps": 12, "train_elbo": -250.0, "val_elbo": -240.0},
]


def make_run(root: Path, name: str, status: Any, config: Any, rows: list | bytes = GOOD_ROWS) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps(status))
    (folder / "config.json").write_text(json.dumps(config))
    data = rows if isinstance(rows, bytes) else "".join(json.dumps(r) + "\n" for r in rows).encode()
    (folder / "metrics.jsonl").write_bytes(data)
    return folder


def exercise(run: RunInfo) -> None:
    """What the Training page does with a run: none of it may raise."""
    rows = run.metrics()
    run.progress(rows)
    assert isinstance(run.label, str) and isinstance(run.family, str)
    run.model_json  # noqa: B018
    run.resumable  # noqa: B018
    read_preview(run.path)
    from explorer_core.figures.training import curves_from_metrics, family_metrics_figure, learning_curves

    curves = curves_from_metrics(rows, run.progress(rows).epochs)
    learning_curves(curves, run.progress(rows).epochs)
    family_metrics_figure(curves)


def test_every_malformed_run_file_is_one_problem_and_the_other_runs_work(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "good", GOOD_STATUS, GOOD_CONFIG)
    count = 0
    for which, doc in (("status", GOOD_STATUS), ("config", GOOD_CONFIG)):
        for label, bad in variants(doc):
            status, config = (bad, GOOD_CONFIG) if which == "status" else (GOOD_STATUS, bad)
            make_run(root, f"r{count:05d}-{which}-{label.split(':')[0]}", status, config)
            count += 1
    for i, (status, config) in enumerate([([1], GOOD_CONFIG), (None, GOOD_CONFIG), (GOOD_STATUS, "x")]):
        make_run(root, f"top{i}", status, config)
        count += 1
    runs, problems = scan_runs(root)
    assert len(runs) + len(problems) == count + 1
    assert "good" in [r.id for r in runs]
    assert len(problems) > count // 2
    for problem in problems:
        assert problem.message.startswith(f"{problem.id}/"), problem.message
        assert "not a run" in problem.message and "\n" not in problem.message
    for run in runs:
        assert untrusted.check(copy.deepcopy(run.status), STATUS_SCHEMA) == run.status
        exercise(run)
    assert CONFIG_FILE_SCHEMA.fields  # the schema the config variants went through


def test_malformed_metrics_lines_are_skipped(tmp_path):
    lines = [json.dumps(r) for r in GOOD_ROWS]
    for _label, bad in variants(GOOD_ROWS[1]):
        lines.append(json.dumps(bad))
    raw = ("\n".join(lines) + "\n").encode() + b"\xff\xfe not utf-8\n" + b'{"kind": "epoch", "epoch": NaN}\n'
    folder = make_run(tmp_path, "r", GOOD_STATUS, GOOD_CONFIG, raw)
    rows = read_metrics(folder)
    assert rows[:2] == GOOD_ROWS
    for row in rows:
        assert row["kind"] in ("step", "epoch") and isinstance(row["step"], int)
        assert all(isinstance(v, int | float | str) or v is None for v in row.values())
        assert isinstance(row["train_elbo"], int | float) and math.isfinite(row["train_elbo"])
    run = scan_runs(tmp_path)[0][0]
    exercise(run)


def test_special_run_files_do_not_hang_or_exhaust_the_server(tmp_path):
    folder = make_run(tmp_path, "r", GOOD_STATUS, GOOD_CONFIG)
    (folder / "metrics.jsonl").unlink()
    (folder / "metrics.jsonl").symlink_to("/dev/zero")
    (folder / "preview.safetensors").symlink_to("/dev/zero")
    os.mkfifo(folder / "r.json")
    runs, problems = scan_runs(tmp_path)
    assert [r.id for r in runs] == ["r"] and not problems
    assert runs[0].metrics() == [] and read_preview(folder) is None and runs[0].model_json is None
    (folder / "status.json").unlink()
    (folder / "status.json").symlink_to("/dev/zero")
    runs, problems = scan_runs(tmp_path)
    assert not runs and "not a regular file" in problems[0].message


def test_cli_train_checks_memory_before_it_starts(tmp_path):
    hidden = ["8192"] * 16
    result = subprocess.run(
        [sys.executable, "-m", "explorer_core", "train", "vae", "--hidden", *hidden, "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AEVB_RUNS_DIR": str(tmp_path / "runs")},
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: this configuration needs about"), result.stderr
    assert not list(tmp_path.glob("*.safetensors"))


def test_special_files_in_the_data_folder_are_refused_without_being_read(tmp_path):
    from explorer_core.data import MNISTUnavailable, load_mnist_splits, read_idx

    folder = tmp_path / "mnist"
    folder.mkdir()
    names = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    for name in names:
        (folder / name).symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="not a regular file"):
        read_idx(folder / names[0])
    with pytest.raises(MNISTUnavailable):
        load_mnist_splits(directory=folder)
    huge = tmp_path / "huge-idx"
    with open(huge, "wb") as f:
        f.truncate(100 * 2**20)
    with pytest.raises(ValueError, match="not an MNIST file"):
        read_idx(huge)
