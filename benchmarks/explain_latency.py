"""Does every explanation feel live? ``POST /api/explain`` latency of the real server, per method.

Starts ``python -m scratchcnn.serve --model CHECKPOINT --port 0`` (the classic network; with no
``--checkpoint`` one is trained first, for one epoch on 10,000 images; ``--quick``: untrained)
in a child process, and from this process sends drawings as the page does: MNIST test digits
blown up to 280x280, one request at a time, with each method's default options (the target: the
prediction). Every method must answer within a second (issue 22). Also timed: the first
``GET /api/class-models`` (computed then kept) and the second.

    python benchmarks/explain_latency.py [--checkpoint PATH] [--quick] [--json PATH] [--markdown PATH]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from _common import ServerProcess, common_arguments, emit, header, markdown_table, setup, write_json

METHODS = ("saliency", "gradient_times_input", "smoothgrad", "integrated_gradients", "occlusion",
           "grad_cam", "adversarial")
GOAL_SECONDS = 1.0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed_call(server, method, path, body=None):
    """``(status, seconds, parsed answer)`` of one request to ``server``."""
    start = time.perf_counter()
    status, answer = server.call(method, path, body, timeout=120)
    return status, time.perf_counter() - start, json.loads(answer)


def train_classic(path, images):
    """A classic network trained for one epoch on the first ``images`` training images (none:
    saved untrained, for a smoke test)."""
    if not images:
        from scratchcnn.checkpoint import save_checkpoint
        from scratchcnn.models import build_model
        save_checkpoint(path, build_model("classic", seed=0), model="classic")
        return
    subprocess.run([sys.executable, "-m", "scratchcnn.train", "--model", "classic", "--epochs", "1",
                    "--train-size", str(images), "--test-size", "1000", "--quiet", "--save", path],
                   check=True, env=dict(os.environ, PYTHONPATH=ROOT))


def drawings(count):
    """``count`` MNIST test digits as the page sends a drawing: 280x280, each pixel 10x10."""
    from scratchcnn.data import load_mnist
    _, _, images, _ = load_mnist()
    return [json.dumps({"width": 280, "height": 280, "pixels": np.kron(image, np.ones((10, 10), int)).ravel().tolist()})
            for image in images[:count]]


def with_method(body, method):
    return json.dumps(dict(json.loads(body), method=method))


def latencies(server, bodies, method, repeats):
    """Seconds per ``POST /api/explain`` of ``method``, every drawing ``repeats`` times."""
    times = []
    for body in bodies:
        request = with_method(body, method)
        for _ in range(repeats):
            status, seconds, answer = timed_call(server, "POST", "/api/explain", request)
            if status != 200:
                raise RuntimeError(f"{method} answered {status}: {answer}")
            times.append(seconds)
    return times


def measure(checkpoint, count, repeats):
    server = ServerProcess("--model", checkpoint)
    try:
        bodies = drawings(count)
        status, first, _ = timed_call(server, "GET", "/api/class-models")
        _, again, _ = timed_call(server, "GET", "/api/class-models")
        latencies(server, bodies[:1], "saliency", 3)                     # warm-up
        rows = {method: latencies(server, bodies, method, repeats) for method in METHODS}
    finally:
        server.close()
    return rows, {"first": first, "again": again}


def table(rows, class_models):
    lines = []
    for method, times in rows.items():
        ms = [1000 * t for t in times]
        lines.append([f"`{method}`", f"{statistics.median(ms):.0f}", f"{np.percentile(ms, 90):.0f}",
                      f"{max(ms):.0f}", "yes" if max(times) < GOAL_SECONDS else "**no**"])
    lines.append(["`GET /api/class-models`, first (computes ten)", f"{1000 * class_models['first']:.0f}", "", "", "(once)"])
    lines.append(["`GET /api/class-models`, again (kept)", f"{1000 * class_models['again']:.0f}", "", "", ""])
    return markdown_table(["method", "ms (median)", "p90", "max", "under 1 s"], lines)


def main():
    parser = common_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--checkpoint", metavar="PATH", help="the classic network to serve "
                        "(default: train one for an epoch on 10,000 images first)")
    args = parser.parse_args()
    settings = setup("inference")     # as the server sets itself (its header: the server's threads)
    count, repeats = (1, 1) if args.quick else (6, 5)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = args.checkpoint
        if checkpoint is None:
            checkpoint = os.path.join(folder, "classic.npz")
            train_classic(checkpoint, 0 if args.quick else 10000)
        rows, class_models = measure(checkpoint, count, repeats)
    note = (f"{count} MNIST test digits sent as 280x280 drawings, {repeats} time(s) each, one request at a "
            f"time, each method with its default options; the classic network "
            f"({args.checkpoint or ('untrained' if args.quick else 'trained here: one epoch on 10,000 images')}). "
            f"Goal: every method under {GOAL_SECONDS:g} s.")
    emit(header("POST /api/explain, per method", settings) + "\n" + table(rows, class_models) + "\n\n" + note, args)
    write_json(args.json, {"drawings": count, "repeats": repeats, "checkpoint": args.checkpoint,
                           "seconds": rows, "class_models": class_models})


if __name__ == "__main__":
    main()
