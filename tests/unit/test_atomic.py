"""The one atomic writer: a reader sees the old file or the new one, never half a file or a stray temp."""

import json

import pytest
import torch
from safetensors.torch import load_file

from explorer_core import atomic


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "status.json"
    atomic.write_json(path, {"state": "queued"})
    atomic.write_json(path, {"state": "done"})
    assert json.loads(path.read_text()) == {"state": "done"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "status.json"
    atomic.write_json(path, {"state": "done"})
    with pytest.raises(TypeError):
        atomic.write_json(path, {"bad": object()})
    with pytest.raises(RuntimeError):
        atomic.replace_atomically(
            path, lambda tmp: (tmp.write_text("half"), (_ for _ in ()).throw(RuntimeError()))
        )
    assert json.loads(path.read_text()) == {"state": "done"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_save_tensors_keeps_the_suffix_of_its_temporary_and_the_values(tmp_path):
    seen = []
    path = tmp_path / "w.safetensors"
    atomic.replace_atomically(tmp_path / "x.npz", lambda tmp: seen.append(tmp.suffix) or tmp.write_bytes(b""))
    assert seen == [".npz"]  # np.savez appends .npz to any other name
    atomic.save_tensors({"a": torch.arange(6.0).reshape(2, 3).t()}, path, {"epoch": "3"})
    assert torch.equal(load_file(str(path))["a"], torch.arange(6.0).reshape(2, 3).t())
