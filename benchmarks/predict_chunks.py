"""How many images per forward pass when predicting? ``predict`` of 1,000 images in chunks of each
size, against the chunk the fast engine picks (``scratchcnn.engine.chunks.chunk_size``: the largest array of a layer within
``CHUNK_BYTES``).

Large chunks make few Python calls but arrays (a convolution's window matrix above all) that no
longer fit in the CPU's caches, so every pass over them goes to memory; small chunks the reverse.
Each thread count runs in its own process (set before NumPy loads); on two threads the chunks
are shared between two threads (``scratchcnn.engine.chunks.ThreadedPredictor``).

    python benchmarks/predict_chunks.py [--quick] [--models seed,modern] [--threads 1,2]
        [--json PATH] [--markdown PATH]
"""
import argparse
import json
import statistics
import sys

from _common import (common_arguments, emit, header, markdown_table, measure_per_item, model_names,
                     positive_ints, run_child, setup, write_json)

IMAGES = 1000
SIZES = (2, 4, 8, 16, 32, 64, 128, 256, 500)
ROUNDS = 3  # img/s is the median over rounds


def child(task):
    """Runs in the child: img/s of predict() at each chunk size, and the chosen size."""
    setup("benchmark")  # thread count from the environment the parent set
    import numpy as np

    from scratchcnn.engine import FastEngine
    from scratchcnn.engine.chunks import chunk_size
    from scratchcnn.models import build_model
    network, engine = build_model(task["model"], seed=0), FastEngine()
    images = np.random.default_rng(0).random((IMAGES, 28, 28), dtype=np.float32) - 0.5
    chosen = chunk_size(engine.bytes_per_image(network, images))
    sizes = [None, *task["sizes"]]  # None: the chosen size, through predict's own default
    engine.predict(network, images)  # warm up once: the first pass allocates every buffer
    timings = {size: [] for size in sizes}
    for _ in range(ROUNDS):  # sizes interleaved, so a slow moment of the machine hits them all
        for size in sizes:
            timings[size].append(measure_per_item(lambda: engine.predict(network, images, size), IMAGES, 1,
                                                  task["min_time"], 0.05))
    speeds = {"chosen" if size is None else str(size): 1 / statistics.median(timings[size]) for size in sizes}
    print(json.dumps({"chosen": chosen, "img_s": speeds}))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        return child(json.loads(sys.argv[2]))
    from scratchcnn.models import MODEL_NAMES
    parser = common_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--models", default=",".join(MODEL_NAMES), help="comma-separated models")
    parser.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    args = parser.parse_args()
    models = model_names(args.models, parser)
    threads = positive_ints(args.threads, "--threads", parser)
    sizes = (4, 64, 500) if args.quick else SIZES
    settings = setup("benchmark")
    rows, results = [], []
    for model in models:
        for count in threads:
            task = dict(model=model, sizes=list(sizes), min_time=0.02 if args.quick else 0.15)
            out = run_child(__file__, task, count, timeout=600)
            results.append({"model": model, "threads": count, **out})
            if "failed" in out:
                rows.append([model, count, "failed: " + out["failed"]] + [""] * (len(sizes) + 1))
                continue
            best = max(out["img_s"], key=out["img_s"].get)
            rows.append([model, count, f"{out['chosen']}: **{out['img_s']['chosen']:,.0f}**"]
                        + [f"**{v:,.0f}**" if k == best else f"{v:,.0f}"
                           for k, v in out["img_s"].items() if k != "chosen"])
            print(f"{model}, {count} thread(s): done", file=sys.stderr)
    text = (header("Predicting in chunks", settings)
            + f"\n`predict` of {IMAGES:,} images, img/s by images per forward pass; \"chosen\" is "
              "the fast engine's pick (`engine.chunks.chunk_size`, predict's default), bold the fastest.\n\n"
            + markdown_table(["model", "threads", "chosen"] + [str(s) for s in sizes], rows))
    emit(text, args)
    write_json(args.json, {"images": IMAGES, "results": results})
    if any("failed" in r for r in results):
        sys.exit("some measurements failed; the table shows the rest")


if __name__ == "__main__":
    main()
