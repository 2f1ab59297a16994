"""Where the training step's time goes, engine step by engine step, beside what the machine's
matmul can do.

For the seed and classic networks (``--models``) at their default batch: each step of the fast
engine (``scratchcnn.engine.fused``: a layer, or a convolution fused with the BatchNorm and ReLU
after it, "Conv2D+ReLU") with its forward and backward milliseconds inside a whole-batch training
step (plain SGD), its share of the step, and the GFLOP/s achieved by each step that multiplies
matrices (convolutions, Dense, Softmax) -- next
to the GFLOP/s the same forward product reaches on its own in BLAS (for the whole batch, and for
one part of it where ``train_step`` runs the batch in cache-sized parts), and the machine's float32
matmul GFLOP/s on a large square product at 1 and 2 threads. The gap between a layer and its
product alone is the copies and passes around the product (im2col, col2im, reshapes); the gap
between the product and the square matmul is the product's awkward shape.

With ``--predict``, the same for the engine's ``predict`` of 1,000 images (what
``train_throughput.py`` times against PyTorch's ``eval()``), step by step of its folded network
(``scratchcnn.engine.folded``: BatchNorm folded into the product before it), beside how long the
network's matrix products take alone: the floor any NumPy implementation of the same layers
stands on, and what is left to the passes around them. When ``torch`` can be imported (and
without ``--no-torch``), the PyTorch twin's whole pass is timed in a process of its own right
after, for the floor to be read against it.

Each measurement runs in its own child process with its thread count set before NumPy loads.

    python benchmarks/where_time_goes.py [--quick] [--models seed,classic] [--threads 1]
        [--predict] [--no-torch] [--json PATH] [--markdown PATH]
"""
import argparse
import importlib.metadata
import importlib.util
import json
import statistics
import sys
import time

from _common import (common_arguments, emit, git_commit, machine, markdown_table, model_names, positive_ints,
                     run_child, setup, write_json)

DEFAULT_MODELS = "seed,classic"
SQUARE = 1024  # the size of the square float32 matmul that stands for the machine's peak
PREDICT_IMAGES = 1000  # as train_throughput.py's inference


# ----------------------------------------------------------------------------------------------
# Children.

def child(task):
    setup("benchmark")  # thread count from the environment the parent set
    out = {"matmul": matmul_child, "layers": layers_child, "predict": predict_child,
           "torch_predict": torch_predict_child}[task["kind"]](task)
    print(json.dumps(out))


def gemm_gflops(m, k, n, min_time):
    """GFLOP/s of a float32 ``(m, k) @ (k, n)`` product, median of 5 timings."""
    import numpy as np
    rng = np.random.default_rng(0)
    a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    np.matmul(a, b, out=out)
    timings = []
    for _ in range(5):
        calls, start = 0, time.perf_counter()
        while calls == 0 or time.perf_counter() - start < min_time:
            np.matmul(a, b, out=out)
            calls += 1
        timings.append((time.perf_counter() - start) / calls)
    return 2 * m * k * n / statistics.median(timings) / 1e9


def matmul_child(task):
    size = task["size"]
    return {"gflops": gemm_gflops(size, size, size, task["min_time"]), "size": size}


def timed(method, record, layer_state):
    """``method`` wrapped to append its duration to ``record`` (outermost call only: Softmax's
    ``backward`` calls ``backward_from_logits``), noting whether it returned an input gradient."""
    def wrapper(*args):
        if layer_state["busy"]:
            return method(*args)
        layer_state["busy"] = True
        start = time.perf_counter()
        try:
            result = method(*args)
        finally:
            record.append(time.perf_counter() - start)
            layer_state["busy"] = False
        layer_state["returns_input_grad"] = result is not None
        return result
    return wrapper


def instrument(network, optimizer=None):
    """Time every step's forward and backward (the engine's steps, or the layers of a plain
    network), and the update, by wrapping them on the instances."""
    records = {"update": []}
    for i, layer in enumerate(getattr(network, "steps", network.layers)):
        state = {"busy": False, "returns_input_grad": True}
        records[i] = {"forward": [], "backward": [], "state": state}
        layer.forward = timed(layer.forward, records[i]["forward"], state)
        for name in ("backward", "backward_from_logits"):
            if hasattr(layer, name):
                setattr(layer, name, timed(getattr(layer, name), records[i]["backward"], state))
    if optimizer is not None:
        optimizer.step = timed(optimizer.step, records["update"], {"busy": False})
    return records


def layers_child(task):
    import numpy as np

    from _common import measure_per_item
    from scratchcnn.engine import FastEngine
    from scratchcnn.models import build_model
    from scratchcnn.optim import SGD
    rng = np.random.default_rng(0)
    x = rng.random((task["batch"], 28, 28), dtype=np.float32) - 0.5
    labels = rng.integers(0, 10, task["batch"])
    network, optimizer, engine = build_model(task["model"], seed=0), SGD(1e-3), FastEngine()
    part = part_images(engine, network, x)
    step_s = measure_per_item(lambda: engine.train_step(network, x, labels, optimizer), 1, 5,
                              task["min_time"] / 5, task["min_time"] / 5)
    engine.whole_batch_gradients(network, x, labels)  # the engine's steps for the whole batch
    fused = engine.fused_network(network)
    records = instrument(fused, optimizer)
    steps = []
    for i in range(task["steps"]):
        start = time.perf_counter()
        engine.whole_batch_gradients(network, x, labels)
        optimizer.step(network.layers)
        steps.append(time.perf_counter() - start)
    layers = []
    for i, step in enumerate(fused.steps):
        rec = records[i]
        in_shape, out_shape = np.shape(fused.outputs[i]), np.shape(fused.outputs[i + 1])
        layers.append(dict(name=step_name(step), output_shape=list(out_shape),
                           forward_s=statistics.median(rec["forward"]),
                           # 0 for a layer never stepped back (a Flatten before the first weights)
                           backward_s=statistics.median(rec["backward"] or [0.0]),
                           **products(getattr(step, "conv", step), in_shape, product_output(step, out_shape),
                                      rec["state"]["returns_input_grad"], task["min_time"] / 10,
                                      part / task["batch"])))
    return {"step_s": step_s, "instrumented_step_s": statistics.median(steps), "part_images": part,
            "update_s": statistics.median(records["update"]), "layers": layers}


def product_output(step, out_shape):
    """The shape a step's product makes: a fused step's convolution output, before its pool."""
    if getattr(step, "pool", None) is not None:
        return (out_shape[0], *step.out_hw, step.conv.num_filters)
    return out_shape


def step_name(step):
    """A layer's class name, or a fused step's ("Conv2D+BatchNorm+ReLU")."""
    name = type(step).__name__ if hasattr(step, "config") else str(step)
    return name.replace("Sync", "")  # the engine's synchronised replicas are the plain layers


def predict_child(task):
    """Each step's forward inside the engine's folded ``predict`` (summed over its chunks), and its
    product alone."""
    import numpy as np

    from scratchcnn.engine import FastEngine
    from scratchcnn.engine.folded import FoldedNetwork
    from scratchcnn.engine.replicas import replica
    from scratchcnn.models import build_model
    x = np.random.default_rng(0).random((task["batch"], 28, 28), dtype=np.float32) - 0.5
    network, engine = build_model(task["model"], seed=0), FastEngine()
    plan = engine.predict_plan(network, x)  # (images per chunk, threads) as a user's predict runs
    predict_s = whole_pass_seconds(lambda: engine.predict(network, x), task)
    with network.evaluating():  # the steps the engine's predict runs, timed chunk after chunk
        folded = FoldedNetwork([replica(layer) for layer in network.layers])
    records = instrument(folded)
    chunk = plan[0]
    chunks = -(-len(x) // chunk)
    calls = []
    for _ in range(task["steps"]):
        start = time.perf_counter()
        np.concatenate([folded.forward(x[i:i + chunk]) for i in range(0, len(x), chunk)]).argmax(axis=1)
        calls.append(time.perf_counter() - start)
    folded.forward(x[:chunk])  # one full chunk: the shapes of the products (one more timing)
    layers = []
    for i, step in enumerate(folded.steps):
        timings = records[i]["forward"][:task["steps"] * chunks]
        per_call = [sum(timings[j:j + chunks]) for j in range(0, len(timings), chunks)]
        in_shape, out_shape = np.shape(folded.outputs[i]), np.shape(folded.outputs[i + 1])
        found = products(getattr(step, "product", step), in_shape, out_shape, False, task["min_time"] / 10, 1.0)
        if found:  # FLOPs of all the images: a product's FLOPs grow with its rows
            found["forward_flop"] = found["forward_flop"] * len(x) // chunk
        layers.append(dict(name=step_name(step), output_shape=list(out_shape),
                           forward_s=statistics.median(per_call), **found))
    return {"predict_s": predict_s, "instrumented_predict_s": statistics.median(calls), "images": len(x),
            "chunk_images": chunk, "plan": list(plan), "layers": layers}


def torch_predict_child(task):
    """Seconds of the PyTorch twin's ``eval()`` pass and argmax, as ``train_throughput.py`` times it."""
    import numpy as np

    from train_throughput import pytorch_inference
    x = np.random.default_rng(0).random((task["batch"], 28, 28), dtype=np.float32) - 0.5
    predict = pytorch_inference(task, x, None)
    return {"predict_s": whole_pass_seconds(predict, task)}


def whole_pass_seconds(predict, task):
    """Seconds per call of ``predict()``, both sides timed alike: a warm-up as long as the
    timing (PyTorch's first calls are slow), then the median of 5 samples."""
    from _common import measure_per_item
    return measure_per_item(predict, 1, 5, task["min_time"] / 5, task["min_time"])


def part_images(engine, network, x):
    """Images per part as the fast engine cuts this batch (the timers prevent it: the tables
    show the whole batch): cache-sized parts on one thread, one part a thread on several, or
    the whole batch."""
    plan = engine.split_plan(network, x)
    if plan is None:
        return len(x)
    splitter, part_size = plan
    return part_size or -(-len(x) // splitter.threads)


def products(layer, in_shape, out_shape, returns_input_grad, min_time, part_share):
    """FLOPs of the layer's matrix products and the GFLOP/s of its forward product alone, for
    the whole batch and for one part of it (``part_share`` of the rows; None if it is whole).

    Forward ``(M, K) @ (K, F)``; backward the weight gradient (same FLOPs) and, unless the
    layer skips it, the input gradient (same again)."""
    gemm = gemm_shape(layer, in_shape, out_shape)
    if gemm is None:
        return {}
    m, k, n = gemm
    forward = 2 * m * k * n
    part_rows = max(1, round(m * part_share))
    return {"gemm": [m, k, n], "forward_flop": forward,
            "backward_flop": forward * (2 if returns_input_grad else 1), "returns_input_grad": returns_input_grad,
            "gemm_alone_gflops": gemm_gflops(m, k, n, min_time),
            "gemm_part_gflops": gemm_gflops(part_rows, k, n, min_time) if part_rows < m else None}


def gemm_shape(layer, in_shape, out_shape):
    """``(M, K, F)`` of the forward product: im2col rows x window size x filters, or a dense one."""
    if hasattr(layer, "kernel_size") and hasattr(layer, "num_filters"):  # Conv2D and its twins
        n, ho, wo, f = out_shape
        return n * ho * wo, layer.kernel_size ** 2 * layer.in_channels, f
    weights = layer.params.get("weights")
    if weights is not None and weights.ndim == 2:                         # Dense, Softmax
        return in_shape[0], weights.shape[0], weights.shape[1]
    return None


# ----------------------------------------------------------------------------------------------
# Parent.

def ms(seconds):
    return f"{seconds * 1e3:.2f}"


def gflops(flop, seconds):
    return f"{flop / seconds / 1e9:.1f}" if flop and seconds > 0 else "-"


def layer_table(result):
    step = result["instrumented_step_s"]
    rows = []
    for i, layer in enumerate(result["layers"]):
        total = layer["forward_s"] + layer["backward_s"]
        backward_note = "" if layer.get("returns_input_grad", True) or "gemm" not in layer else " (no input grad)"
        rows.append([i, layer["name"], "(" + ", ".join(map(str, layer["output_shape"])) + ")",
                     ms(layer["forward_s"]), ms(layer["backward_s"]), ms(total), f"{total / step:.0%}",
                     gflops(layer.get("forward_flop"), layer["forward_s"]),
                     gflops(layer.get("backward_flop"), layer["backward_s"]) + backward_note,
                     product_alone(layer)])
    rest = step - result["update_s"] - sum(layer["forward_s"] + layer["backward_s"] for layer in result["layers"])
    extra_rows = (("SGD update", result["update_s"]), ("loss and the rest", rest), ("**whole step**", step))
    for name, seconds in extra_rows:
        rows.append(["", name, "", "", "", ms(seconds), f"{seconds / step:.0%}", "", "", ""])
    return markdown_table(["#", "engine step", "output", "forward ms", "backward ms", "ms", "share of the step",
                           "forward GFLOP/s", "backward GFLOP/s",
                           "its forward product alone, GFLOP/s (whole batch / one part)"], rows)


def product_alone(layer):
    if "gemm" not in layer:
        return "-"
    part = layer.get("gemm_part_gflops")
    return f"{layer['gemm_alone_gflops']:.1f}" + (f" / {part:.1f}" if part else "")


def predict_table(result):
    """Rows of the layers inside ``predict``, then its products alone: the floor."""
    whole = result["instrumented_predict_s"]
    rows, floor = [], 0.0
    for i, layer in enumerate(result["layers"]):
        alone_s = layer["forward_flop"] / layer["gemm_alone_gflops"] / 1e9 if "gemm" in layer else None
        floor += alone_s or 0.0
        rows.append([i, layer["name"], "(" + ", ".join(map(str, layer["output_shape"])) + ")",
                     ms(layer["forward_s"]), f"{layer['forward_s'] / whole:.0%}",
                     gflops(layer.get("forward_flop"), layer["forward_s"]),
                     ms(alone_s) if alone_s else "-", product_alone(layer)])
    rest = whole - sum(layer["forward_s"] for layer in result["layers"])
    totals = [("argmax and the rest", rest), ("**whole predict**", whole), ("**its products alone**", floor)]
    if "torch_s" in result:
        totals.append(("PyTorch twin's whole pass (own process)", result["torch_s"]))
    for name, seconds in totals:
        rows.append(["", name, "", ms(seconds), f"{seconds / whole:.0%}", "", "", ""])
    return markdown_table(["#", "engine step", "output", "forward ms", "share", "GFLOP/s",
                           "its product alone, ms", "its product alone, GFLOP/s"], rows)


def profile_text(args, result, batch):
    """The table of one profile and the sentence under it."""
    if "predict_s" in result:
        size, threads = result["plan"]
        how = (f"{threads} chunks of {size} at once (`ThreadedPredictor`)" if threads > 1
               else f"chunks of {size} one after another")
        return predict_table(result) + (
            f"\n\nMedians over {args.steps} instrumented calls of `predict` on {result['images']} "
            f"images in chunks of {result['chunk_images']}; without the timers it runs {how}: "
            f"{ms(result['predict_s'])} ms."
            + (f" The PyTorch twin failed: {result['torch_failed']}" if "torch_failed" in result else "") + "\n")
    parts = f", which runs in parts of {result['part_images']} images" if result["part_images"] < batch else ""
    return layer_table(result) + (
        f"\n\nMedians over {args.steps} instrumented steps, each batch whole through the engine's steps; "
        f"the same step without the timers{parts}: {ms(result['step_s'])} ms.\n")


def report(args, peaks, profiles):
    m = machine()
    size = next((p["size"] for p in peaks.values() if "size" in p), "?")
    peak_text = ", ".join(f"{t} thread{'s' * (t > 1)}: "
                          + (f"**{p['gflops']:.0f} GFLOP/s**" if "gflops" in p else "failed")
                          for t, p in peaks.items())
    torch = f", PyTorch {importlib.metadata.version('torch')}" if args.torch else ""
    text = (f"## Where the time goes\n\n{m['cpu']}, {m['cores']} cores; Python {m['python']}, NumPy "
            f"{m['numpy']} ({m['blas']}){torch}; load average at start {m['load_average'][0]:.2f}; commit "
            f"{git_commit()}\n\nThis machine's float32 matmul ({size}x{size} @ {size}x{size}): "
            f"{peak_text}.\n")
    what = "`predict` of" if args.predict else "batch"
    for (model, batch, threads), result in profiles.items():
        text += f"\n### {model}, {what} {batch}{' images' * args.predict}, {threads} thread{'s' * (threads > 1)}\n\n"
        text += f"failed: {result['failed']}\n" if "failed" in result else profile_text(args, result, batch)
    return text


def parse_args():
    from scratchcnn.models import MODEL_NAMES
    parser = common_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated, from {','.join(MODEL_NAMES)}")
    parser.add_argument("--threads", default="1", help="thread counts of the layer tables (default 1)")
    parser.add_argument("--predict", action="store_true",
                        help=f"profile predict of {PREDICT_IMAGES:,} images instead of the training step")
    parser.add_argument("--no-torch", action="store_true", help="with --predict: don't time the PyTorch twin")
    args = parser.parse_args()
    args.models = model_names(args.models, parser)
    args.threads = positive_ints(args.threads, "--threads", parser)
    args.steps = 3 if args.quick else 30
    args.torch = args.predict and not args.no_torch and importlib.util.find_spec("torch") is not None
    return args


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        return child(json.loads(sys.argv[2]))
    from scratchcnn.models import TRAINING_DEFAULTS
    args = parse_args()
    min_time = 0.02 if args.quick else 0.5
    timeout = 120 if args.quick else 900
    square = {"kind": "matmul", "size": 256 if args.quick else SQUARE, "min_time": min_time}
    peaks = {t: run_child(__file__, square, t, timeout) for t in (1, 2)}
    profiles = {}
    for model in args.models:
        batch = PREDICT_IMAGES if args.predict else TRAINING_DEFAULTS.get(model, {}).get("batch_size", 32)
        for threads in args.threads:
            task = {"kind": "predict" if args.predict else "layers", "model": model, "batch": batch,
                    "steps": args.steps, "min_time": min_time}
            profiles[model, batch, threads] = run_child(__file__, task, threads, timeout)
            if args.torch and "failed" not in profiles[model, batch, threads]:
                twin = run_child(__file__, dict(task, kind="torch_predict", threads=threads), threads, timeout)
                profiles[model, batch, threads].update(
                    {"torch_failed": twin["failed"]} if "failed" in twin else {"torch_s": twin["predict_s"]})
            print(f"{model} batch {batch}, {threads} thread(s): done", file=sys.stderr)
    emit(report(args, peaks, profiles), args)
    write_json(args.json, {"matmul_gflops": {str(t): p for t, p in peaks.items()},
                           "profiles": [{"model": m, "batch": b, "threads": t, **r}
                                        for (m, b, t), r in profiles.items()]})
    failed = [key for key, r in {**peaks, **profiles}.items() if "failed" in r]
    if failed:
        sys.exit(f"\n{len(failed)} measurement(s) failed; the tables show the rest")


if __name__ == "__main__":
    main()
