"""BLAS thread defaults per use (the speed itself is measured in benchmarks/, not here)."""
import pytest

from scratchcnn import threads


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    monkeypatch.delenv("SCRATCHCNN_BLAS_THREADS", raising=False)


def test_defaults_per_use_are_fixed_whatever_the_load(monkeypatch):
    """A load-dependent count would change float32 rounding, so results would depend on load."""
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 8)
    for busy in (0.0, 8.0):
        monkeypatch.setattr(threads, "busy_cores", lambda: busy)
        assert threads.blas_threads("train") == 1          # the seed network
        assert threads.blas_threads("train-large") == 2    # classic, mlp
        assert threads.blas_threads("inference") == 2
        assert threads.blas_threads("benchmark") == 1


def test_never_more_threads_than_cores(monkeypatch):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 1)
    assert threads.blas_threads("train-large") == 1


def test_contention_warning_only_when_a_thread_would_share_a_core(monkeypatch):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.1)
    assert threads.contention_warning(2) is None
    monkeypatch.setattr(threads, "busy_cores", lambda: 1.0)
    assert "SCRATCHCNN_BLAS_THREADS=1" in threads.contention_warning(2)
    assert threads.contention_warning(1) is None


def test_busy_cores_from_cpu_time(monkeypatch):
    """Over the interval, 1,000 jiffies passed on 2 cores and 500 of them idle: one core busy."""
    readings = iter([(10_000, 6_000), (11_000, 6_500)])
    monkeypatch.setattr(threads, "cpu_times", lambda: next(readings))
    monkeypatch.setattr(threads.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    assert threads.busy_cores() == pytest.approx(1.0)


def test_busy_cores_on_this_machine_is_a_core_count():
    assert 0 <= threads.busy_cores(0.05) <= (threads.os.cpu_count() or 1) + 1e-9


def test_environment_variable_overrides_every_use(monkeypatch):
    monkeypatch.setenv("SCRATCHCNN_BLAS_THREADS", "3")
    assert {threads.blas_threads(use) for use in threads.USES} == {3}
    monkeypatch.setenv("SCRATCHCNN_BLAS_THREADS", "two")
    with pytest.raises(ValueError, match="positive integer"):
        threads.blas_threads("train")


def test_unknown_use_is_refused():
    with pytest.raises(ValueError, match="unknown use 'training'"):
        threads.blas_threads("training")


def test_our_own_setting_can_be_changed_later(monkeypatch):
    """configure() runs once at start-up and again when the model is known; the second wins."""
    for name in threads.BLAS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_USER_BLAS_SETTINGS", {})
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    assert threads.set_blas_threads(threads.blas_threads("train")) == 1
    assert threads.set_blas_threads(threads.blas_threads("train-large")) == 2
    threads.set_blas_threads(1)  # leave this test process as the others expect it


def test_a_users_own_openblas_setting_is_left_alone(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setattr(threads, "_USER_BLAS_SETTINGS", {"OPENBLAS_NUM_THREADS": "1"})
    assert threads.set_blas_threads(2) == 1
