"""The on-disk cache of test-set encodings (explorer_core.explore.latent) is bounded in size: after each write
the least recently used files (by mtime; reads touch their file) are deleted down to AEVB_LATENT_CACHE_MB."""

import os
import time

import numpy as np
import pytest
import torch

from explorer_core.explore import latent
from explorer_core.explore.latent import (
    cache_limit_bytes,
    cached_encodings,
    encodings_cache_path,
    prune_cache,
)

MB = 1024 * 1024


class _TinyEncoder(torch.nn.Module):
    conditional = False

    def __init__(self, latent_dim=4):
        super().__init__()
        self.lin = torch.nn.Linear(784, latent_dim)
        self.latent_dim = latent_dim
        self.calls = 0

    def encode(self, x, y=None):
        self.calls += 1
        return torch.distributions.Normal(self.lin(x), torch.ones(len(x), self.latent_dim))


def _data(n=2000):
    return torch.rand(n, 784), torch.arange(n) % 10


def _age(path, seconds_ago):
    t = time.time() - seconds_ago
    os.utime(path, (t, t))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AEVB_CACHE_DIR", str(tmp_path))
    return tmp_path / "latent"


def test_limit_comes_from_the_environment_with_a_safe_default(monkeypatch):
    monkeypatch.delenv("AEVB_LATENT_CACHE_MB", raising=False)
    assert cache_limit_bytes() == int(latent.DEFAULT_CACHE_MB * MB)
    monkeypatch.setenv("AEVB_LATENT_CACHE_MB", "1.5")
    assert cache_limit_bytes() == int(1.5 * MB)
    monkeypatch.setenv("AEVB_LATENT_CACHE_MB", "0")
    assert cache_limit_bytes() == 0
    for bad in ("lots", "-3", "nan", "inf", ""):
        monkeypatch.setenv("AEVB_LATENT_CACHE_MB", bad)
        assert cache_limit_bytes() == int(latent.DEFAULT_CACHE_MB * MB), bad


def test_many_models_stay_within_the_bound_and_the_newest_survive(cache, monkeypatch):
    x, y = _data()
    model = _TinyEncoder(latent_dim=16)
    one = encodings_cache_path("00" * 32, len(x), "dequantized")
    cached_encodings(model, x, y, str(one))
    size = one.stat().st_size
    assert size > 100_000  # 2000 x 16 x 2 float32
    monkeypatch.setenv("AEVB_LATENT_CACHE_MB", str(3.5 * size / MB))  # room for three files
    paths = [one]
    _age(one, 100)
    for i in range(1, 8):  # seven more "exported models" opened one after another
        path = encodings_cache_path(f"{i:02d}" * 32, len(x), "dequantized")
        cached_encodings(model, x, y, str(path))
        _age(path, 100 - i)
        paths.append(path)
    files = sorted(cache.glob("enc-*.npz"))
    total = sum(p.stat().st_size for p in files)
    assert total <= cache_limit_bytes()
    assert len(files) == 3
    assert set(files) == set(paths[-3:])  # least recently used deleted first


def test_a_read_marks_a_file_as_recently_used(cache, monkeypatch):
    x, y = _data()
    model = _TinyEncoder(latent_dim=16)
    a, b, c = (encodings_cache_path(d * 32, len(x), "dequantized") for d in ("aa", "bb", "cc"))
    cached_encodings(model, x, y, str(a))
    cached_encodings(model, x, y, str(b))
    size = a.stat().st_size
    _age(a, 200)
    _age(b, 100)
    calls = model.calls
    cached_encodings(model, x, y, str(a))  # a read: a is now the most recently used
    assert model.calls == calls  # served from disk
    assert a.stat().st_mtime > b.stat().st_mtime
    monkeypatch.setenv("AEVB_LATENT_CACHE_MB", str(2.5 * size / MB))  # room for two files
    cached_encodings(model, x, y, str(c))
    assert a.is_file() and c.is_file()
    assert not b.exists()  # b was the least recently used


def test_the_file_just_written_survives_a_bound_smaller_than_itself(cache, monkeypatch):
    monkeypatch.setenv("AEVB_LATENT_CACHE_MB", "0")
    x, y = _data(200)
    model = _TinyEncoder()
    old = encodings_cache_path("11" * 32, len(x), "dequantized")
    new = encodings_cache_path("22" * 32, len(x), "dequantized")
    cached_encodings(model, x, y, str(old))
    cached_encodings(model, x, y, str(new))
    assert new.is_file() and not old.exists()
    again = cached_encodings(model, x, y, str(new))
    assert np.isfinite(again.mu).all()


def test_prune_leaves_other_files_and_young_temporaries_alone(tmp_path):
    keep = tmp_path / "notes.txt"
    keep.write_bytes(b"x" * 10_000)
    stale_tmp = tmp_path / ".enc-ab-10-dequantized.tmp-1-2.npz"
    stale_tmp.write_bytes(b"x" * 5_000)
    _age(stale_tmp, 3600)
    young_tmp = tmp_path / ".enc-cd-10-dequantized.tmp-3-4.npz"
    young_tmp.write_bytes(b"x" * 5_000)  # a write in progress in another thread
    enc = tmp_path / "enc-ef-10-dequantized.npz"
    enc.write_bytes(b"x" * 5_000)
    deleted = prune_cache(tmp_path, 0)
    assert set(deleted) == {stale_tmp, enc}
    assert keep.is_file() and young_tmp.is_file()


def test_prune_of_a_missing_folder_does_nothing(tmp_path):
    assert prune_cache(tmp_path / "nowhere", 0) == []


def test_prune_orders_by_mtime(tmp_path):
    files = []
    for i, age in enumerate((50, 300, 10, 200)):
        p = tmp_path / f"enc-{i}-10-dequantized.npz"
        p.write_bytes(b"x" * 1000)
        _age(p, age)
        files.append(p)
    deleted = prune_cache(tmp_path, 2000)
    assert deleted == [files[1], files[3]]  # oldest first, down to the bound
    assert prune_cache(tmp_path, 2000) == []
