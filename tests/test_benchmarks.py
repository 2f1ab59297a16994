"""Smoke tests: every benchmark script runs to the end with --quick and prints its tables.

Timings are never checked (speed lives in the benchmarks, not in unit tests); what is checked is
that each script finishes, writes its JSON, covers what it claims to cover, and that a failing
configuration is reported without stopping the rest.
"""
import json
import os
import subprocess
import sys

import pytest

from scratchcnn.models import MODEL_NAMES

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


def table_rows(text, heading):
    """The cells of each data row of the markdown table under ``heading`` in ``text``."""
    lines = text.split(heading, 1)[1].strip().splitlines()[2:]  # past the header and |---|
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def run(script, *extra, tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, os.path.join(BENCHMARKS, script), "--quick", "--json", str(out),
                           *extra], capture_output=True, text=True, timeout=180)
    return proc, (json.loads(out.read_text()) if out.exists() else None)


@pytest.mark.parametrize("script, extra", [
    ("conv_loop_vs_vectorized.py", []),
    ("scaling.py", []),
    ("blas_threads.py", []),
    ("predict_while_training.py", []),
    ("where_time_goes.py", []),
    ("product_ceiling.py", ["--models", "seed,classic"]),
    ("classroom.py", ["--formats", "page"]),
    ("explain_latency.py", []),
])
def test_benchmark_runs_quick(script, extra, tmp_path):
    proc, results = run(script, *extra, tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "|---:|" in proc.stdout
    assert results is not None


def test_where_time_goes_in_predict_counts_every_chunks_products(tmp_path):
    proc, results = run("where_time_goes.py", "--predict", "--models", "mlp", "--no-torch", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "`predict` of 1000 images" in proc.stdout and "its products alone" in proc.stdout
    assert "PyTorch" not in proc.stdout
    (profile,) = results["profiles"]
    dense = [layer for layer in profile["layers"] if layer["name"] == "Dense"]
    # 784 -> 512 -> 512 over all 1,000 images, whatever the chunks
    assert [layer["forward_flop"] for layer in dense] == [2 * 1000 * 784 * 512, 2 * 1000 * 512 * 512]
    assert profile["instrumented_predict_s"] > 0 and profile["predict_s"] > 0


def test_where_time_goes_in_predict_times_the_pytorch_twin_beside(tmp_path):
    pytest.importorskip("torch")
    proc, results = run("where_time_goes.py", "--predict", "--models", "seed", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (profile,) = results["profiles"]
    assert profile["torch_s"] > 0 and "PyTorch twin's whole pass" in proc.stdout


def test_train_throughput_times_every_model_without_torch(tmp_path):
    proc, results = run("train_throughput.py", "--no-torch", tmp_path=tmp_path)  # importing torch is slow
    assert proc.returncode == 0, proc.stderr
    rows = results["results"]
    assert {r["model"] for r in rows if r["kind"] == "train"} == set(MODEL_NAMES)
    assert {r["model"] for r in rows if r["kind"] == "infer"} == set(MODEL_NAMES)
    assert any(r["impl"] == "loops" and r["img_s"] > 0 for r in rows)
    assert all(r["impl"] != "pytorch" for r in rows)
    for title in ("each side at its best", "every thread count", "Inference", "loop twins"):
        assert title in proc.stdout


def test_train_throughput_against_the_pytorch_twin(tmp_path):
    pytest.importorskip("torch")
    proc, results = run("train_throughput.py", "--models", "seed", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    impls = {(r["kind"], r["impl"]) for r in results["results"] if "img_s" in r}
    assert impls == {("train", "scratchcnn"), ("train", "pytorch"), ("infer", "scratchcnn"),
                     ("infer", "pytorch"), ("train", "loops")}
    rows = table_rows(proc.stdout, "### Training, each side at its best thread count")
    assert len(rows) == 1  # | seed | 32 | ours | threads | theirs | threads | **ratio** |
    ours, theirs, ratio = (float(rows[0][i].strip("*x").replace(",", "")) for i in (2, 4, 6))
    assert ratio == pytest.approx(ours / theirs, abs=0.006)  # the ratio printed is the rates' quotient
    best = {r["impl"]: r["img_s"] for r in results["results"] if r["kind"] == "train" and r["impl"] != "loops"}
    assert (ours, theirs) == (round(best["scratchcnn"]), round(best["pytorch"]))  # and those are the JSON's


def test_train_throughput_reports_a_failed_configuration_and_runs_the_rest(tmp_path):
    # A learning rate this large makes every training step diverge; inference still runs.
    proc, results = run("train_throughput.py", "--no-torch", "--models", "mlp", "--lr", "1e12",
                        tmp_path=tmp_path)
    assert proc.returncode == 1
    assert "1 configuration(s) failed" in proc.stderr
    train, infer = (next(r for r in results["results"] if r["kind"] == kind) for kind in ("train", "infer"))
    assert "TrainingDiverged" in train["failed"]
    assert infer["img_s"] > 0
    assert "| mlp | 128 | failed |" in proc.stdout


def test_train_throughput_refuses_an_unknown_model(tmp_path):
    proc, _ = run("train_throughput.py", "--models", "seed,nope", tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "unknown nope" in proc.stderr


def test_predict_chunks_reports_the_chosen_size_of_every_model(tmp_path):
    proc, results = run("predict_chunks.py", "--threads", "1", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    chosen = {r["model"]: r["chosen"] for r in results["results"]}
    assert set(chosen) == set(MODEL_NAMES) and chosen["modern"] < chosen["seed"]
    assert all(r["img_s"]["chosen"] > 0 and len(r["img_s"]) == 4 for r in results["results"])


def test_product_ceiling_times_every_product_of_a_training_step(tmp_path):
    proc, results = run("product_ceiling.py", "--models", "classic", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (classic,) = results["results"]
    layers = classic["layers"]
    assert [entry["layer"].split()[0] for entry in layers] == ["Conv2D", "Conv2D", "Conv2D", "Softmax"]
    assert "input gradient" not in layers[0] and all("input gradient" in entry for entry in layers[1:])
    # the 26x26 -> 24x24 convolution in the engine's chunks, which cover the batch of 64
    assert layers[1]["rows"] % (24 * 24) == 0 and layers[1]["rows"] * layers[1]["calls_per_batch"] == 64 * 24 * 24
    total = sum(p["batch_ms"] for entry in layers for name, p in entry.items() if isinstance(p, dict))
    assert classic["products_ms"] == pytest.approx(total)
