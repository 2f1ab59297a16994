"""Process-wide runtime settings for speed: BLAS threads and the memory allocator.

Call ``configure(use)`` at the top of an entry point, before the first NumPy computation::

    from scratchcnn.threads import configure
    configure("train")   # first lines of scratchcnn/train.py's main(), benchmarks, ...

If NumPy isn't loaded yet, this sets the ``*_NUM_THREADS`` variables that OpenBLAS reads when
it loads. If it is (``import scratchcnn`` imports NumPy), it also calls the loaded OpenBLAS's
``openblas_set_num_threads`` through ctypes, which takes effect at once.

BLAS threads. Measured on the 2-core development machine (benchmarks/README.md): one thread
is as fast as or faster than two for training at every batch size and for inference, and two
threads collapse (5-20x slower) whenever another process keeps a core busy, because
OpenBLAS's threads spin waiting for each other. So the default is one thread for every use;
``SCRATCHCNN_BLAS_THREADS=2`` may pay off on an idle machine for large-batch inference of the
deeper networks. An ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``
already set by the user is left alone (``SCRATCHCNN_BLAS_THREADS`` overrides them).

Allocator. A training step allocates and frees arrays of a few hundred kB each. glibc hands
arrays above 128 kB out as fresh ``mmap`` pages and unmaps them on free, so every step pays
page faults: about 40% of the seed network's step time at batch 32. ``configure`` asks glibc
(through ``mallopt``) to serve them from the heap and keep freed memory for reuse, as
PyTorch's caching allocator does. ``SCRATCHCNN_MALLOC_TUNING=0`` turns it off; it is skipped
where there is no glibc.
"""
import ctypes
import ctypes.util
import os
import sys

# Default BLAS threads per use, from the measurements in benchmarks/README.md.
DEFAULT_THREADS = {"train": 1, "inference": 1, "benchmark": 1}
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's upper limit on 64-bit


def blas_threads(use="train"):
    """The BLAS thread count for ``use``: ``SCRATCHCNN_BLAS_THREADS`` if set, else the default."""
    value = os.environ.get("SCRATCHCNN_BLAS_THREADS")
    if value is None:
        return DEFAULT_THREADS.get(use, 1)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"SCRATCHCNN_BLAS_THREADS must be a positive integer, got {value!r}")
    return int(value)


def set_blas_threads(threads):
    """Set the BLAS thread variables that the user hasn't set. Returns the count in force.

    If NumPy is already loaded, its OpenBLAS is told directly.
    """
    if os.environ.get("SCRATCHCNN_BLAS_THREADS") is not None:  # an explicit request wins
        for name in BLAS_VARIABLES:
            os.environ[name] = str(threads)
    else:
        for name in BLAS_VARIABLES:
            os.environ.setdefault(name, str(threads))
    threads = int(os.environ["OPENBLAS_NUM_THREADS"])
    if "numpy" in sys.modules:
        set_loaded_blas_threads(threads)
    return threads


def set_loaded_blas_threads(threads):
    """Call ``openblas_set_num_threads`` in every OpenBLAS this process has loaded (a running
    NumPy's thread count can change this way). True if one was found."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line}
    except OSError:
        return False
    done = False
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("openblas_set_num_threads", "openblas_set_num_threads64_",
                       "scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads"):
            setter = getattr(lib, symbol, None)
            if setter is not None:
                setter(ctypes.c_int(threads))
                done = True
                break
    return done


def tune_malloc():
    """Keep large arrays on glibc's heap and freed memory for reuse. True if applied."""
    if os.environ.get("SCRATCHCNN_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: nothing to tune
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
    ok &= mallopt(_M_TRIM_THRESHOLD, 1 << 30)  # give memory back only above 1 GiB free
    ok &= mallopt(_M_TOP_PAD, 64 << 20)        # grow the heap 64 MiB at a time
    return bool(ok)


def configure(use="train"):
    """BLAS threads for ``use`` ("train", "inference" or "benchmark") and allocator tuning.

    Returns ``{"blas_threads": n, "malloc_tuned": bool}``, for logs and benchmark headers.
    """
    threads = set_blas_threads(blas_threads(use))
    return {"blas_threads": threads, "malloc_tuned": tune_malloc()}
