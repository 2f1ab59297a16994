"""End-to-end training throughput, scratchcnn vs PyTorch on the CPU, in images per second.

A training step is forward + loss + backward + optimizer update + counting correct answers,
on data already in memory (random images, so only speed is measured), for the ``seed`` and
``classic`` networks of ``scratchcnn.models`` over batch sizes and BLAS thread counts. When
``torch`` can be imported, the same architecture with the same optimizer and thread count is
timed in the same process, alternating with scratchcnn round by round, and the table shows
the ratio. Each (network, threads) configuration runs in a fresh child process, so its BLAS
threads are set before NumPy starts and its peak memory (RSS) is its own.

    python benchmarks/train_throughput.py [--quick] [--threads 1,2] [--no-torch] [--json PATH] [--plot PATH]
"""
import argparse
import json
import os
import subprocess
import sys
import time

from _common import (common_arguments, emit, header, markdown_table, peak_rss_mib, pyplot, setup,
                     write_json)

BATCHES = {"seed": [1, 8, 32, 128, 512], "classic": [16, 64, 128]}
QUICK_BATCHES = {"seed": [16], "classic": [4]}


# ----------------------------------------------------------------------------------------------
# Child process: one network at one thread count, every batch size.

def child(spec):
    settings = setup("benchmark")  # SCRATCHCNN_BLAS_THREADS was set by the parent
    import numpy as np

    from scratchcnn.optim import OPTIMIZERS
    from scratchcnn.models import TRAINING_DEFAULTS, build_model

    name, rounds, min_time = spec["network"], spec["rounds"], spec["min_time"]
    defaults = TRAINING_DEFAULTS[name]
    rng = np.random.default_rng(0)
    pool = max(max(spec["batches"]) * 4, 64 if spec["quick"] else 1024)
    images = (rng.random((pool, 28, 28), dtype=np.float32) - 0.5)
    labels = rng.integers(0, 10, pool)

    def scratch_runner(batch):
        net = build_model(name, seed=0)
        opt = OPTIMIZERS[defaults["optimizer"]](lr=defaults["lr"])
        state = {"i": 0}

        def step():
            i = state["i"] = (state["i"] + batch) % (pool - batch + 1)
            net.train_step(images[i:i + batch], labels[i:i + batch], opt)
        return step

    runners = {"scratchcnn": scratch_runner}
    for batch in spec["batches"]:  # warm up and record scratchcnn's own memory first
        step = scratch_runner(batch)
        for _ in range(3):
            step()
    rss = peak_rss_mib()
    torch_note = None
    if spec["torch"]:
        try:
            import torch
            torch.set_num_threads(settings["blas_threads"])
            runners["pytorch"] = lambda batch: torch_runner(torch, name, defaults, images, labels, batch)
        except ImportError as error:
            torch_note = f"skipped the PyTorch comparison: cannot import torch ({error})"

    results = []
    for batch in spec["batches"]:
        steps = {impl: make(batch) for impl, make in runners.items()}
        per_image = {impl: [] for impl in steps}
        for step in steps.values():
            step()
            step()
        for _ in range(rounds):  # alternate so that a change in machine load hits both alike
            for impl, step in steps.items():
                calls, start = 0, time.perf_counter()
                while True:
                    step()
                    calls += 1
                    elapsed = time.perf_counter() - start
                    if elapsed >= min_time:
                        break
                per_image[impl].append(elapsed / (calls * batch))
        row = {"network": name, "batch": batch, "threads": settings["blas_threads"], "peak_rss_mib": rss}
        for impl, times in per_image.items():
            times.sort()
            row[f"{impl}_img_s"] = 1 / times[len(times) // 2]
            row[f"{impl}_spread"] = (1 / times[0] - 1 / times[-1]) / 2
        results.append(row)
    # Inference: predictions for a block of images in evaluation mode (forward only).
    net, block = build_model(name, seed=0), min(pool, 1024 if not spec["quick"] else 64)
    net.predict(images[:block], batch_size=block)
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < rounds * min_time:
        net.predict(images[:block], batch_size=block)
        calls += 1
    inference = {"network": name, "threads": settings["blas_threads"], "batch": block,
                 "img_s": calls * block / (time.perf_counter() - start)}
    print(json.dumps({"results": results, "inference": inference, "torch_note": torch_note,
                      "settings": settings}))


def torch_runner(torch, name, defaults, images, labels, batch):
    """The same network in PyTorch (NCHW, its native layout), same optimizer, same step."""
    nn = torch.nn
    torch.manual_seed(0)
    if name == "seed":
        model = nn.Sequential(nn.Conv2d(1, 8, 3, bias=False), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(13 * 13 * 8, 10))
    else:
        model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
                              nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(7 * 7 * 64, 10))
    if defaults["optimizer"] == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=defaults["lr"])
    else:
        momentum = 0.9 if defaults["optimizer"] == "momentum" else 0.0
        opt = torch.optim.SGD(model.parameters(), lr=defaults["lr"], momentum=momentum)
    x_all = torch.from_numpy(images).unsqueeze(1)
    y_all = torch.from_numpy(labels)
    pool = len(images)
    state = {"i": 0}

    def step():
        i = state["i"] = (state["i"] + batch) % (pool - batch + 1)
        x, y = x_all[i:i + batch], y_all[i:i + batch]
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = nn.functional.cross_entropy(out, y)
        loss.backward()
        opt.step()
        return int((out.argmax(1) == y).sum())
    return step


# ----------------------------------------------------------------------------------------------
# Parent: one child per (network, threads), then the table.

def run_child(network, threads, batches, args):
    spec = {"network": network, "batches": batches, "torch": not args.no_torch, "quick": args.quick,
            "rounds": 2 if args.quick else 7, "min_time": 0.005 if args.quick else 0.25}
    env = dict(os.environ, SCRATCHCNN_BLAS_THREADS=str(threads))
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)],
                          env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"child for {network} ({threads} threads) failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(results):
    has_torch = any("pytorch_img_s" in r for r in results)
    headers = ["network", "batch", "BLAS threads", "scratchcnn img/s"]
    headers += ["PyTorch img/s", "scratchcnn / PyTorch"] if has_torch else []
    headers += ["peak RSS (MiB)"]
    rows = []
    for r in sorted(results, key=lambda r: (r["network"] != "seed", r["batch"], r["threads"])):
        row = [r["network"], r["batch"], r["threads"],
               f"{r['scratchcnn_img_s']:,.0f} ± {r['scratchcnn_spread']:,.0f}"]
        if has_torch:
            t = r.get("pytorch_img_s")
            row += [f"{t:,.0f} ± {r['pytorch_spread']:,.0f}", f"**{r['scratchcnn_img_s'] / t:.2f}x**"] if t else ["-", "-"]
        row.append(f"{r['peak_rss_mib']:.0f}")
        rows.append(row)
    return markdown_table(headers, rows)


def plot(results, path):
    plt = pyplot()
    networks = sorted({r["network"] for r in results}, key=lambda n: n != "seed")
    fig, axes = plt.subplots(1, len(networks), figsize=(5.5 * len(networks), 4))
    axes = axes if len(networks) > 1 else [axes]
    for ax, network in zip(axes, networks):
        for threads, style in ((1, "-"), (2, "--")):
            rows = sorted((r for r in results if r["network"] == network and r["threads"] == threads),
                          key=lambda r: r["batch"])
            if not rows:
                continue
            b = [r["batch"] for r in rows]
            ax.plot(b, [r["scratchcnn_img_s"] for r in rows], style, marker="o", color="tab:blue",
                    label=f"scratchcnn, {threads} thread{'s' * (threads > 1)}")
            if any("pytorch_img_s" in r for r in rows):
                ax.plot(b, [r.get("pytorch_img_s", float("nan")) for r in rows], style, marker="s",
                        color="tab:orange", label=f"PyTorch CPU, {threads} thread{'s' * (threads > 1)}")
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="training images / s",
               title=f"{network} network")
        ax.set_xticks(b, [str(v) for v in b])
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        # Plain numbers at 1-1.5-2-3-5-7 steps: a log axis spanning under a decade shows ~no label otherwise.
        ax.yaxis.set_major_locator(plt.LogLocator(subs=(1, 1.5, 2, 3, 5, 7)))
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.yaxis.set_minor_formatter(plt.NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Training throughput (forward + backward + update), higher is better")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        return child(json.loads(sys.argv[2]))
    parser = common_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--threads", help="BLAS thread counts to compare (default 1,2; --quick: 1)")
    parser.add_argument("--networks", default="seed,classic")
    parser.add_argument("--no-torch", action="store_true", help="don't compare with PyTorch")
    args = parser.parse_args()
    settings = setup("benchmark")
    results, inference, notes = [], [], set()
    for network in args.networks.split(","):
        batches = (QUICK_BATCHES if args.quick else BATCHES)[network]
        for threads in [int(t) for t in (args.threads or ("1" if args.quick else "1,2")).split(",")]:
            out = run_child(network, threads, batches, args)
            results += out["results"]
            inference.append(out["inference"])
            if out["torch_note"]:
                notes.add(out["torch_note"])
    if args.no_torch:
        notes.add("skipped the PyTorch comparison (--no-torch)")
    text = header("Training throughput", settings) + "\n" + table(results)
    text += "\n\nInference (forward only, evaluation mode, one block of images):\n\n" + markdown_table(
        ["network", "block", "BLAS threads", "scratchcnn img/s"],
        [[r["network"], r["batch"], r["threads"], f"{r['img_s']:,.0f}"] for r in inference])
    text += "".join(f"\n\nNote: {n}." for n in sorted(notes))
    emit(text, args)
    write_json(args.json, {"settings": settings, "results": results, "inference": inference,
                           "notes": sorted(notes)})
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
