"""One BLAS thread or two? Training throughput of each network, idle and beside a busy process.

Each measurement runs in its own child process with ``SCRATCHCNN_BLAS_THREADS`` set, because
the thread count is a process-wide setting. The "core busy" rows start one extra Python process
spinning in ``while True: pass`` for their duration: what happens to a run on a 2-core
machine when anything else is working. The defaults in ``scratchcnn/engine/blas.py`` come from
this table.

    python benchmarks/blas_threads.py [--quick] [--json PATH] [--markdown PATH]
"""
import argparse
import json
import os
import subprocess
import sys
import time

from _common import common_arguments, emit, header, markdown_table, setup, write_json

CASES = [("seed", 32, 600), ("mlp", 128, 150), ("classic", 64, 30)]  # network, batch, steps


def child(network, batch, steps):
    """Runs in the child: images/s of ``steps`` Adam training steps after a warm-up."""
    import numpy as np
    from scratchcnn.engine import FastEngine
    from scratchcnn.models import build_model
    from scratchcnn.optim import Adam
    setup("benchmark")  # applies SCRATCHCNN_BLAS_THREADS, set by the parent
    net, opt, engine = build_model(network), Adam(1e-3), FastEngine()
    rng = np.random.default_rng(0)
    x = (rng.random((batch, 28, 28)) - 0.5).astype(np.float32)
    y = rng.integers(0, 10, batch)
    for _ in range(3):
        engine.train_step(net, x, y, opt)
    start = time.perf_counter()
    for _ in range(steps):
        engine.train_step(net, x, y, opt)
    print(json.dumps({"images_per_second": steps * batch / (time.perf_counter() - start)}))


def measure(network, batch, steps, threads):
    env = dict(os.environ, SCRATCHCNN_BLAS_THREADS=str(threads))
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps([network, batch, steps])],
                         env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["images_per_second"]


def main():
    parser = common_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*json.loads(args.child))
    settings = setup("benchmark")
    cases = [(n, b, max(2, s // 20)) for n, b, s in CASES] if args.quick else CASES
    results, rows = [], []
    for busy in (False, True):
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            for network, batch, steps in cases:
                one, two = (measure(network, batch, steps, t) for t in (1, 2))
                results.append(dict(network=network, batch=batch, core_busy=busy, one_thread=one, two_threads=two))
                rows.append([network, batch, "busy" if busy else "idle", f"{one:,.0f}", f"{two:,.0f}",
                             f"{two / one - 1:+.0%}"])
        finally:
            if spinner:
                spinner.kill()
                spinner.wait()
    table = markdown_table(["network", "batch", "other core", "1 thread img/s", "2 threads img/s",
                            "2 vs 1"], rows)
    emit(header("BLAS threads: training throughput, 1 vs 2 threads", settings) + "\n" + table, args)
    write_json(args.json, {"results": results})


if __name__ == "__main__":
    main()
