"""Does the page stay responsive while it trains? ``/api/predict`` latency idle vs during a job.

Starts the real server (``python -m scratchcnn.serve --port 0``, the untrained tutorial network)
in a child process, and from this process sends a 280x280 drawing to ``POST /api/predict`` one request at a time,
a short pause between them, as strokes and snapshots arrive from a page. Rounds alternate:

* idle: no job;
* training: a seed job (``POST /api/train``, the whole training set) is running; the drawing is
  scored on the served network and on the training snapshot (``"network": "training"``).

It also reads the job's images per second, alone and while the requests come in. The goal
(issue 13): latency while training within 3x of idle.

BLAS threads are process-wide. The server's own setting ("default") is two for requests and one
while a seed job trains (as ``python -m scratchcnn.train`` trains it); ``--threads 1 2`` adds
servers forced to that count everywhere (``SCRATCHCNN_BLAS_THREADS``), for comparison.

    python benchmarks/predict_while_training.py [--quick] [--threads 1 2] [--json PATH] [--markdown PATH]
"""
import argparse
import json
import os
import statistics
import time

import numpy as np

from _common import ServerProcess, common_arguments, emit, header, markdown_table, setup, write_json

JOB = {"model": "seed", "epochs": 50, "train_size": 60000}   # runs until stopped


BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "SCRATCHCNN_BLAS_THREADS")


def start_server(threads=None):
    """The page server in a child process: its own BLAS thread settings (``threads`` None), or
    ``threads`` everywhere."""
    env = {name: value for name, value in os.environ.items() if name not in BLAS_VARIABLES}
    if threads is not None:
        env["SCRATCHCNN_BLAS_THREADS"] = str(threads)
    return ServerProcess(env=env)


def drawing_bodies():
    """The request bodies: a 280x280 stroke, for the served network and the training snapshot."""
    image = np.zeros((280, 280), int)
    for t in np.linspace(0, 1, 200):
        y, x = int(60 + 160 * t), int(150 - 40 * t)
        image[y - 9:y + 9, x - 9:x + 9] = 255
    drawing = {"width": 280, "height": 280, "pixels": image.ravel().tolist()}
    return {"served": json.dumps(drawing), "training": json.dumps(dict(drawing, network="training"))}


def latencies(server, body, count, pause):
    """Seconds per ``POST /api/predict`` of ``body``, ``count`` requests one after another."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        status, answer = server.call("POST", "/api/predict", body)
        times.append(time.perf_counter() - start)
        if status != 200:
            raise RuntimeError(f"/api/predict answered {status}: {answer[:200]}")
        time.sleep(pause)
    return times


def job_speed(server, seconds):
    """The running job's images per second over ``seconds``, from its step counter."""
    def images(state):
        p = state["progress"]
        return ((p["epoch"] - 1) * p["steps_per_epoch"] + p["step"]) * state["settings"]["batch_size"]
    before, start = images(server.state()), time.perf_counter()
    time.sleep(seconds)
    return (images(server.state()) - before) / (time.perf_counter() - start)


def measure(threads, rounds, count, pause):
    """Latencies (idle, training served, training snapshot) and job speeds, for one thread count."""
    server = start_server(threads)
    bodies = drawing_bodies()
    result = {"idle": [], "training": [], "snapshot": [], "job_alone": [], "job_with_requests": []}
    try:
        latencies(server, bodies["served"], 5, 0)                 # warm-up
        for _ in range(rounds):
            result["idle"] += latencies(server, bodies["served"], count, pause)
            status, answer = server.call("POST", "/api/train", json.dumps(JOB))
            if status != 202:
                raise RuntimeError(f"/api/train answered {status}: {answer[:200]}")
            while server.state()["progress"] is None:              # loading the data, first steps
                time.sleep(0.05)
            result["job_alone"].append(job_speed(server, 1.5))
            start = server.state()
            result["training"] += latencies(server, bodies["served"], count, pause)
            result["snapshot"] += latencies(server, bodies["training"], count, pause)
            result["job_with_requests"].append(with_requests_speed(server, start))
            server.call("POST", "/api/train/stop", b"{}")
            while server.state()["status"] == "running":
                time.sleep(0.05)
    finally:
        server.close()
    return result


def with_requests_speed(server, start):
    """Images per second of the job since the state ``start`` (read when the requests began)."""
    end = server.state()
    images = [((s["progress"]["epoch"] - 1) * s["progress"]["steps_per_epoch"] + s["progress"]["step"])
              * s["settings"]["batch_size"] for s in (start, end)]
    return (images[1] - images[0]) / max(end["progress"]["seconds"] - start["progress"]["seconds"], 1e-9)


def ms(values, q=50):
    return f"{np.percentile(values, q) * 1000:.1f}"


def main():
    parser = common_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--threads", type=int, nargs="*", default=[],
                        help="also measure servers forced to these BLAS thread counts (e.g. 1 2)")
    args = parser.parse_args()
    settings = setup("inference")
    rounds, count, pause = (1, 8, 0.02) if args.quick else (3, 30, 0.05)
    rows, results = [], []
    for threads in [None] + args.threads:
        r = measure(threads, rounds, count, pause)
        idle, training, snapshot = (statistics.median(r[k]) for k in ("idle", "training", "snapshot"))
        results.append(dict(blas_threads=threads, **r))
        rows.append(["server default (2, 1 for a seed job)" if threads is None else f"{threads} everywhere",
                     ms(r["idle"]), ms(r["idle"], 90), ms(r["training"]), ms(r["training"], 90),
                     ms(r["snapshot"]), f"{training / idle:.1f}x", f"{snapshot / idle:.1f}x",
                     f"{statistics.median(r['job_alone']):,.0f}", f"{statistics.median(r['job_with_requests']):,.0f}"])
    table = markdown_table(
        ["BLAS threads", "idle ms (median)", "idle p90", "training ms (median)", "training p90",
         "training snapshot ms", "served vs idle", "snapshot vs idle", "job img/s alone",
         "job img/s with requests"], rows)
    note = (f"\n{rounds} round(s) of {count} sequential requests per case, {pause * 1000:.0f} ms apart; "
            "a seed job on the whole training set. Goal: latency while training within 3x of idle.")
    emit(header("POST /api/predict while the page trains", settings) + "\n" + table + "\n" + note, args)
    write_json(args.json, {"rounds": rounds, "requests": count, "pause": pause, "results": results})


if __name__ == "__main__":
    main()
