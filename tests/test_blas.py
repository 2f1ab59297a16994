"""Runtime settings: BLAS thread defaults per use, the busy-core note (the speed itself is
measured in benchmarks/, not here)."""
import os
import threading

import pytest
import threadpoolctl

from scratchcnn.engine import blas


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    monkeypatch.delenv("SCRATCHCNN_BLAS_THREADS", raising=False)


def test_defaults_per_use_are_fixed_whatever_the_load(monkeypatch):
    """A load-dependent count would change float32 rounding, so results would depend on load."""
    monkeypatch.setattr(blas.os, "cpu_count", lambda: 8)
    for busy in (0.0, 8.0):
        monkeypatch.setattr(blas, "busy_cores", lambda: busy)
        assert blas.blas_threads("train") == 1          # the seed network
        assert blas.blas_threads("train-large") == 2    # classic, modern, mlp
        assert blas.blas_threads("inference") == 2
        assert blas.blas_threads("benchmark") == 1


def test_never_more_threads_than_cores(monkeypatch):
    monkeypatch.setattr(blas.os, "cpu_count", lambda: 1)
    assert blas.blas_threads("train-large") == 1


def test_contention_warning_only_when_a_thread_would_share_a_core(monkeypatch):
    monkeypatch.setattr(blas.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(blas, "busy_cores", lambda: 0.1)
    assert blas.contention_warning(2) is None
    monkeypatch.setattr(blas, "busy_cores", lambda: 1.0)
    assert "SCRATCHCNN_BLAS_THREADS=1" in blas.contention_warning(2)
    assert blas.contention_warning(1) is None


def test_busy_cores_from_cpu_time(monkeypatch):
    """Over the interval, 1,000 jiffies passed on 2 cores and 500 of them idle: one core busy."""
    readings = iter([(10_000, 6_000), (11_000, 6_500), (20_000, 9_000), (21_000, 9_250)])
    monkeypatch.setattr(blas, "cpu_times", lambda: next(readings))
    monkeypatch.setattr(blas.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(blas.os, "cpu_count", lambda: 2)
    assert blas.busy_cores() == pytest.approx(1.0)
    assert blas.busy_cores() == pytest.approx(1.5)  # 250 of 1,000 idle: 1.5 cores busy


def test_busy_cores_falls_back_to_the_load_average(monkeypatch):
    """Where there is no /proc/stat (macOS, Windows), the 1-minute load average answers."""
    def no_proc_stat():
        raise OSError("no /proc/stat")
    monkeypatch.setattr(blas, "cpu_times", no_proc_stat)
    monkeypatch.setattr(blas.os, "getloadavg", lambda: (1.25, 0.5, 0.25))
    assert blas.busy_cores() == 1.25


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="elsewhere the load average answers, "
                    "which a 0.3 s spin barely moves")
def test_busy_cores_on_this_machine_counts_a_spinning_thread():
    """A thread that never sleeps keeps one core busy for the whole interval, whatever else the
    machine does, so at least (about) one core must be counted, and never more than it has."""
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            pass

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        busy = blas.busy_cores(0.3)
    finally:
        stop.set()
        spinner.join()
    assert 0.6 <= busy <= (blas.os.cpu_count() or 1) + 1e-9


def test_environment_variable_overrides_every_use(monkeypatch):
    monkeypatch.setenv("SCRATCHCNN_BLAS_THREADS", "3")
    assert {blas.blas_threads(use) for use in blas.USES} == {3}
    monkeypatch.setenv("SCRATCHCNN_BLAS_THREADS", "two")
    with pytest.raises(ValueError, match="positive integer"):
        blas.blas_threads("train")


def test_unknown_use_is_refused():
    with pytest.raises(ValueError, match="unknown use 'training'"):
        blas.blas_threads("training")


def test_our_own_setting_can_be_changed_later(monkeypatch):
    """configure() runs once at start-up and again when the model is known; the second wins."""
    for name in blas.BLAS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(blas, "_USER_BLAS_SETTINGS", {})
    monkeypatch.setattr(blas.os, "cpu_count", lambda: 2)
    assert blas.set_blas_threads(blas.blas_threads("train")) == 1
    assert blas.set_blas_threads(blas.blas_threads("train-large")) == 2
    blas.set_blas_threads(1)  # leave this test process as the others expect it


def test_the_loaded_blas_library_is_told(monkeypatch):
    """NumPy is loaded already here, so the variables alone would change nothing."""
    for name in blas.BLAS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(blas, "_USER_BLAS_SETTINGS", {})

    def loaded_blas_threads():
        return {pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"}

    if not loaded_blas_threads():
        pytest.skip("threadpoolctl controls no BLAS library in this process (Apple Accelerate?)")
    for threads in (2, 1):  # ends on 1, as the other tests expect this process
        assert blas.set_blas_threads(threads) == threads
        assert loaded_blas_threads() == {threads}


def test_a_users_own_openblas_setting_is_left_alone(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setattr(blas, "_USER_BLAS_SETTINGS", {"OPENBLAS_NUM_THREADS": "1"})
    assert blas.set_blas_threads(2) == 1


def test_the_environment_is_left_as_the_user_set_it(monkeypatch):
    """Processes started later (a test's trainer, a benchmark's children) must not take our
    count for the user's."""
    for name in blas.BLAS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(blas, "_USER_BLAS_SETTINGS", {})
    before = dict(blas.os.environ)
    blas.configure("train-large")
    blas.configure("train")  # leave this test process on one thread, as the others expect
    assert dict(blas.os.environ) == before


def test_a_users_omp_setting_is_honoured_too(monkeypatch):
    monkeypatch.setattr(blas, "_USER_BLAS_SETTINGS", {"OMP_NUM_THREADS": "1"})
    assert blas.set_blas_threads(2) == 1


@pytest.mark.parametrize("value", ["abc", "0", "-2", ""])
def test_a_users_malformed_setting_is_refused_by_name(monkeypatch, value):
    monkeypatch.delenv("SCRATCHCNN_BLAS_THREADS", raising=False)
    monkeypatch.setattr(blas, "_USER_BLAS_SETTINGS", {"OMP_NUM_THREADS": value})
    with pytest.raises(ValueError, match="OMP_NUM_THREADS must be a positive integer.*SCRATCHCNN_BLAS_THREADS"):
        blas.set_blas_threads(2)
