"""Loop twins vs vectorized layers: time per image of forward and backward.

The tutorial network's three layers -- Conv3x3(8) on (N, 28, 28), MaxPool2 on (N, 26, 26, 8),
Softmax(1352, 10) on (N, 13, 13, 8) -- and its whole training step (forward, cross-entropy,
backward, SGD update), from ``scratchcnn.loops`` and from ``scratchcnn``, over batch sizes, in
float32 and float64. The two versions are checked to agree before anything is timed.

    python benchmarks/conv_loop_vs_vectorized.py [--quick] [--json PATH] [--plot PATH]
"""
import argparse

from _common import (common_arguments, emit, fmt, header, markdown_table, pyplot, setup, time_call,
                     write_json)

SETTINGS = setup("benchmark")

import numpy as np  # noqa: E402

import scratchcnn  # noqa: E402
from scratchcnn import loops  # noqa: E402
from scratchcnn.engine import FastEngine  # noqa: E402

LAYERS = ("Conv3x3", "MaxPool2", "Softmax", "train step")
INPUT_SHAPES = {"Conv3x3": (28, 28), "MaxPool2": (26, 26, 8), "Softmax": (13, 13, 8)}


def make_layer(module, name, dtype):
    """The layer ``name`` from ``module`` (``scratchcnn`` or ``scratchcnn.loops``), seeded."""
    rng = np.random.default_rng(0)
    if name == "Conv3x3":
        return module.Conv3x3(8, dtype=dtype, rng=rng)
    if name == "MaxPool2":
        return module.MaxPool2()
    return module.Softmax(13 * 13 * 8, 10, dtype=dtype, rng=rng)


def seed_network(module, dtype):
    return scratchcnn.Network([make_layer(module, name, dtype) for name in LAYERS[:3]])


def inputs(name, batch, dtype):
    rng = np.random.default_rng(batch)
    x = (rng.random((batch,) + INPUT_SHAPES.get(name, (28, 28))) - 0.5).astype(dtype)
    if name == "MaxPool2":
        x = np.round(x * 4) / 4  # exact ties, as in MNIST's flat background
    return x, rng.integers(0, 10, batch)


def check_agreement(dtype):
    """Loop twins and vectorized layers give the same forward and backward results."""
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for name in LAYERS[:3]:
        x, _ = inputs(name, 3, dtype)
        fast, slow = make_layer(scratchcnn, name, dtype), make_layer(loops, name, dtype)
        y_fast, y_slow = fast.forward(x), slow.forward(x)
        d_y = np.random.default_rng(1).random(y_fast.shape).astype(dtype)
        if name == "Softmax":  # its backward takes d_probs: keep them tutorial-like
            d_y = d_y * (d_y > 0.9)
        worst = max(np.abs(y_fast - y_slow).max(), np.abs(fast.backward(d_y) - slow.backward(d_y)).max(),
                    *(np.abs(fast.grads[k] - slow.grads[k]).max() for k in fast.grads))
        if not worst <= tol * max(1.0, np.abs(y_slow).max()):
            raise SystemExit(f"{name} ({np.dtype(dtype).name}): loop and vectorized differ by {worst:.3g}")


def measure(module, name, batch, dtype, repeats, min_time):
    """Seconds per image: {"forward": (median, spread), "backward": ...} or {"train step": ...}."""
    x, labels = inputs(name, batch, dtype)
    if name == "train step":
        net, opt, engine = seed_network(module, dtype), scratchcnn.SGD(0.005), FastEngine()
        t, s = time_call(lambda: engine.train_step(net, x, labels, opt), repeats, min_time, warmup=1)
        return {"train step": (t / batch, s / batch)}
    layer = make_layer(module, name, dtype)
    y = layer.forward(x)
    d_y = np.random.default_rng(1).random(y.shape).astype(dtype)
    t_f, s_f = time_call(lambda: layer.forward(x), repeats, min_time, warmup=1)
    t_b, s_b = time_call(lambda: layer.backward(d_y), repeats, min_time, warmup=1)
    return {"forward": (t_f / batch, s_f / batch), "backward": (t_b / batch, s_b / batch)}


def run(args):
    if args.quick:
        batches, loop_batches, dtypes, repeats, min_time = [1, 32], {1}, [np.float32], 2, 0.005
        loop_step_batches = set()
    else:
        batches, loop_batches, dtypes, repeats, min_time = [1, 8, 32, 128, 512], {1, 8}, [np.float32, np.float64], 5, 0.1
        loop_step_batches = {32}  # the loop twins' per-image cost doesn't depend on the batch
    results = []
    for dtype in dtypes:
        check_agreement(dtype)
        for name in LAYERS:
            for batch in batches:
                vec = measure(scratchcnn, name, batch, dtype, repeats, min_time)
                loop_ok = batch in (loop_step_batches if name == "train step" else loop_batches)
                loop = measure(loops, name, batch, dtype, 3 if not args.quick else 1, 0.0) if loop_ok else {}
                for pass_, (t, s) in vec.items():
                    lt = loop.get(pass_, (None, None))[0]
                    results.append(dict(layer=name, pass_=pass_, dtype=np.dtype(dtype).name, batch=batch,
                                        vectorized_s=t, vectorized_spread_s=s, loop_s=lt,
                                        speedup=lt / t if lt else None))
    return results


def best_loop(results, layer, pass_, dtype):
    """The loop twin's time per image for a row (its cost doesn't depend on the batch size)."""
    times = [r["loop_s"] for r in results
             if (r["layer"], r["pass_"], r["dtype"]) == (layer, pass_, dtype) and r["loop_s"]]
    return statistics_median(times) if times else None


def statistics_median(values):
    values = sorted(values)
    return values[len(values) // 2]


def table(results):
    rows = []
    for r in results:
        loop = best_loop(results, r["layer"], r["pass_"], r["dtype"])
        measured = r["loop_s"] is not None
        rows.append([r["layer"], r["pass_"], r["dtype"], r["batch"],
                     (fmt(loop) + ("" if measured else "*")) if loop else "-",
                     f"{fmt(r['vectorized_s'])} ± {fmt(r['vectorized_spread_s'])}",
                     f"{loop / r['vectorized_s']:,.0f}x" if loop else "-"])
    return markdown_table(["layer", "pass", "dtype", "batch", "loop / image", "vectorized / image",
                           "speedup"], rows)


def plot(results, path):
    plt = pyplot()
    fig, axes = plt.subplots(1, len(LAYERS), figsize=(4.2 * len(LAYERS), 3.8), sharey=True)
    for ax, name in zip(axes, LAYERS):
        for pass_, color in (("forward", "tab:blue"), ("backward", "tab:red"), ("train step", "tab:purple")):
            for dtype, style in (("float32", "-"), ("float64", "--")):
                rows = [r for r in results if (r["layer"], r["pass_"], r["dtype"]) == (name, pass_, dtype)]
                if not rows:
                    continue
                ax.plot([r["batch"] for r in rows], [r["vectorized_s"] * 1e6 for r in rows], style,
                        color=color, marker="o", ms=3, label=f"vectorized {pass_} {dtype}")
                loop = [(r["batch"], r["loop_s"] * 1e6) for r in rows if r["loop_s"]]
                if loop:
                    ax.plot(*zip(*loop), style, color=color, marker="s", ms=6, alpha=0.45,
                            label=f"loop {pass_} {dtype}")
        ax.set(xscale="log", yscale="log", title=name, xlabel="batch size")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    axes[0].set_ylabel("time per image (us, log)")
    fig.suptitle("Loop twins (squares) vs vectorized layers (circles): time per image")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main():
    args = common_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0])).parse_args()
    results = run(args)
    text = header("Loop twins vs vectorized layers", SETTINGS) + "\n" + table(results)
    text += ("\n\n`*` the loop twins loop over images, so their time per image is the same at every "
             "batch size: measured at " + ("batch 1" if args.quick else "batches 1 and 8 (train step: 32)")
             + " and repeated down the column.")
    emit(text, args)
    write_json(args.json, {"settings": SETTINGS, "results": results})
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
