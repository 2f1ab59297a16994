"""How fast a training step could be if it were nothing but its matrix products.

For each layer with weights, the three float32 products of a training step, timed alone in BLAS
on one thread at the shapes the engine gives them: a convolution's window matrix in the chunks
``engine.algorithms.window_chunk`` picks (so it sits in the CPU's caches, as in the engine),
``(M, K) @ (K, F)`` forward, ``(F, M) @ (M, K)`` for the weight gradient and ``(M, F) @ (F, K)``
for the input gradient (the fastest layout of its FLOPs: the engine's shifted products and
``col2im`` cost at least that); a dense layer's on the whole batch. The first layer skips its
input gradient, as the engine does. The sum is a floor no NumPy step can go below on one core,
and its images per second a ceiling: everything else a step does (im2col copies, pooling, ReLU,
BatchNorm, handing parts between threads) comes on top.

    python benchmarks/product_ceiling.py [--models classic,modern] [--batch 64] [--quick] [--json PATH]
"""
import argparse
import time

from _common import common_arguments, emit, header, markdown_table, model_names, setup, write_json

SETTINGS = setup("benchmark")

import numpy as np  # noqa: E402
import threadpoolctl  # noqa: E402

from scratchcnn.engine.algorithms import window_chunk  # noqa: E402
from scratchcnn.layers import Conv2D, Conv3x3, Dense, Softmax  # noqa: E402
from scratchcnn.models import build_model  # noqa: E402


def best_seconds(fn, calls):
    """The fastest of ``calls`` timed calls of ``fn()`` (after one untimed)."""
    fn()
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def layer_products(layer, in_shape, batch):
    """``(name, rows per call, calls per batch, [(product, (a, b) shapes)])`` for a layer with
    weights, or None. ``in_shape`` is the layer's input for one image."""
    if type(layer) in (Conv2D, Conv3x3):
        h, w = in_shape[1], in_shape[2]
        c = in_shape[3] if len(in_shape) == 4 else 1
        k, s, p, f = layer.kernel_size, layer.stride, layer.padding, layer.num_filters
        pixels = ((h + 2 * p - k) // s + 1) * ((w + 2 * p - k) // s + 1)
        images = window_chunk(layer, (batch, h, w, c), 4)
        m, kk = images * pixels, k * k * c + ("biases" in layer.params)
        name = f"{type(layer).__name__} {h}x{w}x{c} -> {f}"
        return name, m, batch / images, [("forward", (m, kk), (kk, f)), ("weight gradient", (f, m), (m, kk)),
                                         ("input gradient", (m, f), (f, kk))]
    if isinstance(layer, (Dense, Softmax)):
        n_in, n_out = layer.params["weights"].shape
        name = f"{type(layer).__name__} {n_in} -> {n_out}"
        return name, batch, 1, [("forward", (batch, n_in), (n_in, n_out)),
                                ("weight gradient", (n_in, batch), (batch, n_out)),
                                ("input gradient", (batch, n_out), (n_out, n_in))]
    return None


def profile(model, batch, calls):
    """Each layer's products: GFLOP/s and ms for the whole batch; and their sum."""
    network = build_model(model, seed=0)
    network.eval()
    network.forward(np.zeros((1, 28, 28), np.float32))
    rng, layers, first = np.random.default_rng(0), [], True
    for layer, x in zip(network.layers, network.outputs):
        found = layer_products(layer, np.shape(x), batch)
        if found is None:
            continue
        name, rows, per_batch, products = found
        entry = {"layer": name, "rows": rows, "calls_per_batch": per_batch}
        for product, a_shape, b_shape in products[:2] if first else products:
            a = rng.random(a_shape, dtype=np.float32)
            b = rng.random(b_shape, dtype=np.float32)
            seconds = best_seconds(lambda: a @ b, calls)
            flop = 2 * a_shape[0] * a_shape[1] * b_shape[1]
            entry[product] = {"gflop_s": flop / seconds / 1e9, "batch_ms": seconds * per_batch * 1e3}
        layers.append(entry)
        first = False
    total_ms = sum(entry[p]["batch_ms"] for entry in layers for p in ("forward", "weight gradient", "input gradient")
                   if p in entry)
    return {"model": model, "batch": batch, "layers": layers, "products_ms": total_ms,
            "ceiling_img_s_one_core": batch / total_ms * 1e3}


def report(results):
    parts = [header("The products alone: a ceiling for the training step", SETTINGS),
             "Each product timed alone (float32, one BLAS thread, fastest of its calls) at the engine's shapes; "
             "ms for a whole batch. The first layer computes no input gradient.\n"]
    for result in results:
        rows = []
        for entry in result["layers"]:
            cells = [entry["layer"], f"{entry['rows']:,}"]
            for product in ("forward", "weight gradient", "input gradient"):
                found = entry.get(product)
                cells.append(f"{found['gflop_s']:.1f} ({found['batch_ms']:.2f} ms)" if found else "-")
            rows.append(cells)
        parts.append(f"### {result['model']}, batch {result['batch']}, one thread\n")
        parts.append(markdown_table(["layer", "rows per product", "forward GFLOP/s (ms)",
                                     "weight gradient GFLOP/s (ms)", "input gradient GFLOP/s (ms)"], rows))
        ceiling = result["ceiling_img_s_one_core"]
        parts.append(f"\nThe products alone: **{result['products_ms']:.2f} ms** per batch of {result['batch']}, "
                     f"so at most **{ceiling:,.0f} img/s** on one core and {2 * ceiling:,.0f} on two.\n")
    return "\n".join(parts)


def main():
    parser = common_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    parser.add_argument("--models", default="classic,modern", help="comma-separated (default classic,modern)")
    parser.add_argument("--batch", type=int, default=64, help="images per training step (default 64)")
    args = parser.parse_args()
    if args.batch < 1:
        parser.error(f"--batch must be at least 1, got {args.batch}")
    models = model_names(args.models, parser)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        results = [profile(model, args.batch, 3 if args.quick else 30) for model in models]
    emit(report(results), args)
    write_json(args.json, {"results": results})


if __name__ == "__main__":
    main()
