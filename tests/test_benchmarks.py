"""Smoke test: every benchmark script runs with --quick and prints a table (timings unchecked)."""
import os
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


@pytest.mark.parametrize("script, extra", [
    ("conv_loop_vs_vectorized.py", []),
    ("scaling.py", []),
    ("train_throughput.py", ["--no-torch"]),  # PyTorch stays optional, and importing it is slow
    ("blas_threads.py", []),
    ("predict_while_training.py", []),
])
def test_benchmark_runs_quick(script, extra, tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, os.path.join(BENCHMARKS, script), "--quick", "--json", str(out)] + extra,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "|---:|" in proc.stdout
    assert out.exists()
