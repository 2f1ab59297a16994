"""Process-wide runtime settings for speed: BLAS threads, the memory allocator, and a note
when other processes keep the cores busy.

Call ``configure(use)`` at the top of an entry point, before the first NumPy computation::

    from scratchcnn.engine import configure
    configure("train")   # first lines of the train command's main(), benchmarks, ...

It tells the BLAS library NumPy loaded through ``threadpoolctl`` (OpenBLAS, MKL or BLIS, on
Linux, macOS and Windows), which takes effect at once. The environment is left as the user set
it: a ``*_NUM_THREADS`` variable written here would be inherited by every process this one
starts (a test's ``python -m scratchcnn.train``, a benchmark's children), which would take it
for the user's own choice.

BLAS threads. Two BLAS threads help the larger networks' matrix products on an idle machine, but
OpenBLAS's threads spin waiting for each other, so they can be slower than one when another
process keeps a core busy, and they slow any other thread pool in this process. The count is
fixed per use, never chosen from the current load, because it changes float32 rounding: the
same seed must give the same metrics, and a resumed run the same result as an uninterrupted
one. So: one thread for ``"train"`` (the seed network) and ``"benchmark"``; two (at most the
core count) for ``"train-large"`` (classic, modern, mlp) and ``"inference"``, with
``contention_warning`` telling the user when other processes keep a core busy; one for
``"serve"``, the page's server between training jobs (its requests are one image each, run side
by side in their own threads, where a second BLAS thread only spins). With two
threads, the fast engine (``FastEngine``) runs the two halves of a batch at once, each on one
BLAS thread (``split.py``), where that pays. ``SCRATCHCNN_BLAS_THREADS=N`` overrides every
use; an ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` the user set before
starting is left alone (it must be a positive integer). The measurements behind the defaults
are in benchmarks/README.md (benchmarks/blas_threads.py).

Allocator. A training step allocates and frees arrays of a few hundred kB each. glibc hands
arrays above 128 kB out as fresh ``mmap`` pages and unmaps them on free, so every step pays
page faults (a large share of a small network's step: benchmarks/README.md). ``configure`` asks glibc
(through ``mallopt``) to serve them from the heap and keep freed memory for reuse, as
PyTorch's caching allocator does. ``SCRATCHCNN_MALLOC_TUNING=0`` turns it off; it is skipped
where there is no glibc.
"""
import contextlib
import ctypes
import ctypes.util
import os
import sys
import threading
import time

import threadpoolctl

# Default BLAS threads per use (at most the machine's cores); the module doc says why.
DEFAULT_THREADS = {"train": 1, "train-large": 2, "inference": 2, "benchmark": 1, "serve": 1}
USES = tuple(DEFAULT_THREADS)
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# What the user had set before we touched anything (ours must not look like theirs later).
_USER_BLAS_SETTINGS = {name: os.environ[name] for name in BLAS_VARIABLES if name in os.environ}
_threads_in_force = None  # what set_blas_threads last set; None until then

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's upper limit on 64-bit


def cpu_times():
    """``(total, idle)`` CPU time of all cores since boot, in jiffies, from Linux's ``/proc/stat``."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return sum(fields), fields[3] + fields[4]  # idle + waiting for I/O


def busy_cores(interval=0.2):
    """How many cores other processes keep busy right now.

    Linux: CPU time counted in ``/proc/stat`` over ``interval`` seconds (this process sleeps
    meanwhile). Elsewhere: the 1-minute load average, which also remembers jobs that just ended.
    """
    try:
        total_before, idle_before = cpu_times()
        time.sleep(interval)
        total, idle = cpu_times()
        return (os.cpu_count() or 1) * (1 - (idle - idle_before) / max(1, total - total_before))
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average on this platform either
            return 0.0


def contention_warning(threads):
    """A hint for the user when ``threads`` BLAS threads won't each find a free core, else None."""
    busy = busy_cores() if threads > 1 else 0.0
    if threads > 1 and (os.cpu_count() or 1) - busy < threads - 0.5:
        return (f"note: other processes keep {busy:.1f} of this machine's {os.cpu_count()} cores busy; "
                f"{threads} BLAS threads can then be slower than one: set "
                "SCRATCHCNN_BLAS_THREADS=1 if this run crawls")
    return None


def training_use(model):
    """The use whose thread count trains ``model`` (a ``models.MODEL_NAMES`` name): ``"train"``
    for the small seed network, ``"train-large"`` for the others."""
    return "train" if model == "seed" else "train-large"


def blas_threads(use="train"):
    """The BLAS thread count for ``use``: ``SCRATCHCNN_BLAS_THREADS`` if set, else the default."""
    if use not in USES:
        raise ValueError(f"unknown use {use!r}; expected one of {', '.join(USES)}")
    value = os.environ.get("SCRATCHCNN_BLAS_THREADS")
    if value is None:
        return min(DEFAULT_THREADS[use], os.cpu_count() or 1)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"SCRATCHCNN_BLAS_THREADS must be a positive integer, got {value!r}")
    return int(value)


def set_blas_threads(threads):
    """Set the loaded BLAS library's thread count, unless the user set one of
    ``BLAS_VARIABLES`` before starting (the first set wins; ``SCRATCHCNN_BLAS_THREADS`` wins
    over all). Returns the count in force."""
    import numpy  # noqa: F401  (the BLAS library loads with NumPy; `import scratchcnn` did that)
    user = next((name for name in BLAS_VARIABLES if name in _USER_BLAS_SETTINGS), None)
    if user is not None and os.environ.get("SCRATCHCNN_BLAS_THREADS") is None:
        value = _USER_BLAS_SETTINGS[user]
        if not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"{user} must be a positive integer, got {value!r}; unset it, or set "
                             "SCRATCHCNN_BLAS_THREADS=N to choose scratchcnn's thread count")
        threads = int(value)
    global _threads_in_force
    _threads_in_force = threads
    with _blas_control():
        threadpoolctl.threadpool_limits(limits=threads, user_api="blas")  # stays in force
    return threads


@contextlib.contextmanager
def _blas_control():
    """Let this thread set OpenBLAS's thread count inside, and leave it to nobody after.

    threadpoolctl 3.8 (not 3.7 or older) lets only the thread that last took control of a
    pthreads OpenBLAS's process-wide count change it, and silently ignores the others: a page
    job's ``one_blas_thread()`` on a worker thread would leave both BLAS threads running. Ours
    is a single count that any thread may set (under ``_blas_lock``, or before any thread
    starts)."""
    clear = getattr(getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
    try:
        yield
    finally:
        if clear is not None:
            clear(force=True)


def threads_in_force():
    """The thread count ``configure`` last set, 1 if it was never called. ``FastEngine`` runs that
    many parts of each batch at once (``split.py``) where the layers allow and it pays."""
    return _threads_in_force or 1


_blas_lock = threading.Lock()
_blas_users = 0        # threads inside one_blas_thread() right now
_blas_before = None    # threadpoolctl's record of the count to restore when the last one leaves
_blas_controller = None  # found once: looking for the loaded libraries is slow, limiting is not


@contextlib.contextmanager
def one_blas_thread():
    """BLAS on one thread inside (a process-wide setting, through threadpoolctl), entered from
    any thread. Several threads may be inside at once (a page request predicting while a job
    trains): the first in sets it, the last out restores the count from before, so an early
    leaver can't restore it under the others, nor a late one leave it at one thread."""
    global _blas_users, _blas_before, _blas_controller
    with _blas_lock:
        if _blas_users == 0:
            _blas_controller = _blas_controller or threadpoolctl.ThreadpoolController()
            with _blas_control():
                _blas_before = _blas_controller.limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                with _blas_control():
                    _blas_before.restore_original_limits()


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
    """BLAS threads for ``use`` (one of ``USES``) and allocator tuning; may be called again later
    (e.g. once the model is known) to change the thread count.

    Returns ``{"blas_threads": n, "malloc_tuned": bool}``, for logs and benchmark headers.
    """
    threads = set_blas_threads(blas_threads(use))
    return {"blas_threads": threads, "malloc_tuned": tune_malloc()}
