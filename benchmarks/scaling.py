"""How the cost of Conv3x3 forward + backward grows: with batch size, filters and image size.

Time per image against the FLOP count (forward 2*Ho*Wo*F*9*C, backward twice that: the filter
gradient and the input gradient). Where time per image still falls as the batch grows, the
layer is bound by per-call overhead (Python and NumPy dispatch); where the achieved GFLOP/s
levels off it is bound by compute or memory bandwidth.

    python benchmarks/scaling.py [--quick] [--json PATH] [--plot PATH]
"""
import argparse

from _common import (common_arguments, emit, fmt, header, markdown_table, pyplot, setup, time_call,
                     write_json)

SETTINGS = setup("benchmark")

import numpy as np  # noqa: E402

from scratchcnn import Conv3x3  # noqa: E402


def flops_per_image(size, filters, channels=1):
    out = (size - 2) ** 2
    return 3 * 2 * out * filters * 9 * channels  # forward + filter gradient + input gradient


def measure(batch, filters, size, repeats, min_time):
    rng = np.random.default_rng(0)
    conv = Conv3x3(filters, rng=rng)
    x = rng.random((batch, size, size), dtype=np.float32)
    d_y = rng.random((batch, size - 2, size - 2, filters), dtype=np.float32)

    def step():
        conv.forward(x)
        conv.backward(d_y)
    t, s = time_call(step, repeats, min_time, warmup=1)
    flops = flops_per_image(size, filters)
    return dict(batch=batch, filters=filters, size=size, s_per_image=t / batch,
                spread_per_image=s / batch, mflop_per_image=flops / 1e6, gflop_s=flops * batch / t / 1e9)


def run(args):
    repeats, min_time = (2, 0.005) if args.quick else (5, 0.1)
    batches = [1, 32] if args.quick else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    filters = [8, 16] if args.quick else [8, 16, 32, 64]
    sizes = [28, 56] if args.quick else [28, 56, 112]
    return {
        "batch": [measure(b, 8, 28, repeats, min_time) for b in batches],
        "filters": [measure(32, f, 28, repeats, min_time) for f in filters],
        "size": [measure(32, 8, s, repeats, min_time) for s in sizes],
    }


SWEEPS = {"batch": "batch size (8 filters, 28x28)", "filters": "filters (batch 32, 28x28)",
          "size": "input size (batch 32, 8 filters)"}


def table(results):
    parts = []
    for sweep, label in SWEEPS.items():
        rows = [[r[sweep], f"{r['mflop_per_image']:.2f}", f"{fmt(r['s_per_image'])} ± {fmt(r['spread_per_image'])}",
                 f"{r['gflop_s']:.1f}"] for r in results[sweep]]
        parts.append(f"### Conv3x3 forward + backward vs {label}\n\n"
                     + markdown_table([sweep, "MFLOP / image", "time / image", "GFLOP/s"], rows))
    return "\n\n".join(parts)


def plot(results, path):
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, (sweep, label) in zip(axes, SWEEPS.items()):
        rows = results[sweep]
        x = [r[sweep] for r in rows]
        ax.plot(x, [r["s_per_image"] * 1e6 for r in rows], "o-", color="tab:blue", label="time / image (us)")
        ax.set(xscale="log", yscale="log", xlabel=label, ylabel="time per image (us, log)")
        ax.set_xticks(x, [str(v) for v in x])
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        ax2 = ax.twinx()
        ax2.plot(x, [r["gflop_s"] for r in rows], "s--", color="tab:red", label="GFLOP/s")
        ax2.set_ylabel("achieved GFLOP/s", color="tab:red")
        ax2.set_ylim(bottom=0)
    # One legend for all three panels, above them, where it can't cover a curve.
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    fig.legend(lines, [ln.get_label() for ln in lines], loc="upper center", ncol=2, fontsize=9,
               bbox_to_anchor=(0.5, 0.93), frameon=False)
    fig.suptitle("Conv3x3 forward + backward (float32): cost per image and achieved FLOP rate")
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main():
    args = common_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0])).parse_args()
    results = run(args)
    emit(header("Scaling of Conv3x3 forward + backward", SETTINGS) + "\n" + table(results), args)
    write_json(args.json, {"settings": SETTINGS, "results": results})
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
