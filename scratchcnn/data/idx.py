"""The IDX files on disk: what they should contain, how to check them, how to write them safely.

MNIST ships as four gzipped IDX files. An IDX file of unsigned bytes is a 4-byte magic
(``00 00 08 ndim``), ``ndim`` big-endian uint32 sizes, then the raw bytes in C order.
Everything here is verified against the MD5 of the *uncompressed* file, because two gzips
of the same content can differ byte for byte (timestamps, compression level).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_write

_UBYTE = 0x08  # IDX type code for unsigned byte, the only type MNIST uses


@dataclass(frozen=True)
class IdxFile:
    """One expected file of the cache.

    name:  file name in the cache folder, e.g. ``"train-images-idx3-ubyte.gz"``.
    md5:   hex MD5 of the uncompressed IDX content (header + data).
    shape: shape of the array it holds, e.g. ``(60000, 28, 28)``.
    """

    name: str
    md5: str
    shape: tuple[int, ...]

    @property
    def stem(self) -> str:
        """The name without ``.gz``: ``"train-images-idx3-ubyte"``."""
        return self.name[:-3] if self.name.endswith(".gz") else self.name

    @property
    def sidecar_name(self) -> str:
        """Name of the ``.npy`` copy that makes warm loads fast."""
        return self.stem + ".npy"

    @property
    def idx_size(self) -> int:
        """Length in bytes of the uncompressed IDX file."""
        return 4 + 4 * len(self.shape) + int(np.prod(self.shape))


# The canonical MNIST files, keyed by the role load_mnist() gives them.
MNIST_FILES: dict[str, IdxFile] = {
    "train_images": IdxFile("train-images-idx3-ubyte.gz", "6bbc9ace898e44ae57da46a324031adb", (60000, 28, 28)),
    "train_labels": IdxFile("train-labels-idx1-ubyte.gz", "a25bea736e30d166cdddb491f175f624", (60000,)),
    "test_images": IdxFile("t10k-images-idx3-ubyte.gz", "2646ac647ad5339dbf082846283269ea", (10000, 28, 28)),
    "test_labels": IdxFile("t10k-labels-idx1-ubyte.gz", "27ae3e4e09519cfbb04c329615203637", (10000,)),
}
TRAIN_SET_SIZE = MNIST_FILES["train_labels"].shape[0]  # 60,000 images in MNIST's training set
TEST_SET_SIZE = MNIST_FILES["test_labels"].shape[0]    # 10,000 in its test set


class CorruptFileError(ValueError):
    """A cache file is unreadable, truncated or has the wrong content. ``str()`` names the file."""

    def __init__(self, path: os.PathLike | str, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path.name}: {reason}")


def idx_header(shape: tuple[int, ...]) -> bytes:
    """IDX header for an unsigned-byte array of ``shape``: magic + big-endian uint32 sizes."""
    return struct.pack(f">HBB{len(shape)}I", 0, _UBYTE, len(shape), *shape)


def idx_bytes(array: np.ndarray) -> bytes:
    """The full uncompressed IDX file for a uint8 array of any shape."""
    if array.dtype != np.uint8:
        raise TypeError(f"IDX writer handles uint8 only, got {array.dtype}")
    return idx_header(array.shape) + np.ascontiguousarray(array).tobytes()


def array_md5(array: np.ndarray) -> str:
    """MD5 of the IDX file that ``array`` (uint8) would be, computed without building it.

    This is how a ``.npy`` sidecar is checked against the canonical digest.
    """
    digest = hashlib.md5(idx_header(array.shape))
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def check_idx_content(content: bytes, spec: IdxFile, label: str) -> None:
    """Raise CorruptFileError unless ``content`` (uncompressed IDX) is exactly what ``spec`` describes."""
    if len(content) != spec.idx_size:
        raise CorruptFileError(label, f"truncated or wrong size: {len(content)} bytes "
                                      f"uncompressed, expected {spec.idx_size}")
    actual = hashlib.md5(content).hexdigest()
    if actual != spec.md5:
        raise CorruptFileError(label, f"content MD5 is {actual}, expected {spec.md5}")


def read_gz_verified(path: Path, spec: IdxFile) -> bytes:
    """Decompress ``path`` and return its IDX content, or raise CorruptFileError naming it.

    Reads at most one byte past the expected size, so a wrong (or hostile) file can't
    make us inflate gigabytes.
    """
    try:
        with gzip.open(path, "rb") as f:
            content = f.read(spec.idx_size + 1)
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise CorruptFileError(path, f"not a complete gzip file ({e})") from None
    check_idx_content(content, spec, str(path))
    return content


def write_gz(path: Path, content: bytes) -> None:
    """Gzip ``content`` into ``path`` atomically (fixed mtime, so rebuilds are reproducible)."""
    with atomic_write(path) as raw:
        with gzip.GzipFile(filename=Path(path).stem, mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz:
            gz.write(content)


def write_sidecar(path: Path, array: np.ndarray) -> None:
    """Save ``array`` as ``.npy`` atomically."""
    with atomic_write(path) as f:
        np.save(f, array, allow_pickle=False)


def load_sidecar(path: Path, spec: IdxFile) -> np.ndarray | None:
    """Return the sidecar array if it exists and matches ``spec``'s digest, else None.

    A damaged sidecar is not an error: it is only a copy, rebuilt from the ``.gz``.
    """
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if array.dtype != np.uint8 or array.shape != tuple(spec.shape) or array_md5(array) != spec.md5:
        return None
    return array
