"""Training and inference throughput, scratchcnn vs its PyTorch twin on the CPU, in images/s.

Identical work on both sides: PyTorch runs ``scratchcnn.export.to_torch(build_model(name))``, the
same layers with the same weights, so the comparison cannot drift from the models. Every model
``scratchcnn.models`` builds is timed (new ones join by themselves), at each batch size and
thread count, each side in its own fresh process (so neither side's threads compete with the
other's, and each sets its thread count before its libraries load), alternating rounds
(scratchcnn, PyTorch, then PyTorch, scratchcnn, ...) so a change in machine load hits both alike.
Tables: each side at its best thread count, the full grid, inference, and the vectorized seed
step against the loop twins' step.

A training step is ``Network.train_step`` (forward, loss, backward, plain SGD update, counting
correct answers) on random images and labels already in memory; the PyTorch step does the same.
The learning rate is small enough that random labels cannot make the loss diverge; a
configuration that fails anyway is reported as failed and the rest still runs (exit status 1).

    python benchmarks/train_throughput.py [--quick] [--models seed,classic] [--threads 1,2]
        [--batches 32,128] [--rounds 5] [--no-torch] [--json PATH] [--markdown PATH] [--plot PATH]
"""
import argparse
import importlib.metadata
import importlib.util
import json
import statistics
import sys

from _common import (common_arguments, emit, fmt, git_commit, machine, markdown_table, measure_per_item,
                     model_names, peak_rss_mib, positive_ints, pyplot, run_child, setup, write_json)

# Batch sizes timed per model besides its training default (scratchcnn.models.TRAINING_DEFAULTS).
EXTRA_BATCHES = {"seed": (128,)}
LOOP_BATCH = 8           # the loop twins' cost per image does not depend on the batch
INFERENCE_IMAGES = 1000  # predict()'s default batch
LEARNING_RATE = 1e-3     # plain SGD: random labels cannot make it diverge in any timed run
IMPLEMENTATIONS = ("scratchcnn", "pytorch")
LABELS = {"scratchcnn": "scratchcnn", "pytorch": "PyTorch", "loops": "loop twins"}


# ----------------------------------------------------------------------------------------------
# Child process: one measurement, printed as JSON.

def child(task):
    setup("benchmark")  # thread count from the environment the parent set
    import numpy as np
    rng = np.random.default_rng(0)
    pool = max(4 * task["batch"], 64)  # a few batches, cycled: no copy of data inside the step
    images = rng.random((pool, 28, 28), dtype=np.float32) - 0.5
    labels = rng.integers(0, 10, pool)
    maker = {("train", "scratchcnn"): scratchcnn_training, ("train", "loops"): scratchcnn_training,
             ("train", "pytorch"): pytorch_training, ("infer", "scratchcnn"): scratchcnn_inference,
             ("infer", "pytorch"): pytorch_inference}[task["kind"], task["impl"]]
    step = maker(task, images, labels)
    seconds = measure_per_item(step, task["batch"], task["samples"], task["min_time"], task["warmup_time"])
    print(json.dumps({"img_s": 1 / seconds, "peak_rss_mib": peak_rss_mib()}))


def batches_of(images, labels, batch):
    """An endless cycle over the pool's consecutive batches (views, no copies)."""
    starts = range(0, len(images) - batch + 1, batch)
    while True:
        for i in starts:
            yield images[i:i + batch], labels[i:i + batch]


def scratchcnn_training(task, images, labels):
    from scratchcnn.engine import FastEngine
    from scratchcnn.models import build_model
    from scratchcnn.optim import SGD
    network = build_model(task["model"], seed=0, loop=task["impl"] == "loops")
    optimizer, batches, engine = SGD(task["lr"]), batches_of(images, labels, task["batch"]), FastEngine()

    def step():
        engine.train_step(network, *next(batches), optimizer)
    return step


def scratchcnn_inference(task, images, labels):
    from scratchcnn.engine import FastEngine
    from scratchcnn.models import build_model
    network, block, engine = build_model(task["model"], seed=0), images[:task["batch"]], FastEngine()
    return lambda: engine.predict(network, block)


def torch_twin(task):
    """``(torch, twin)``: PyTorch on the task's threads, and the twin of the model."""
    import torch

    from scratchcnn.export import to_torch
    from scratchcnn.models import build_model
    torch.set_num_threads(task["threads"])
    return torch, to_torch(build_model(task["model"], seed=0))


def pytorch_training(task, images, labels):
    torch, twin = torch_twin(task)
    twin.train()
    optimizer = torch.optim.SGD(twin.parameters(), lr=task["lr"])
    batches = ((torch.from_numpy(x[:, None]), torch.from_numpy(y))
               for x, y in batches_of(images, labels, task["batch"]))

    def step():  # what Network.train_step does: loss, a finiteness check, update, count correct
        x, y = next(batches)
        optimizer.zero_grad(set_to_none=True)
        logits = twin(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        if not torch.isfinite(loss):
            raise RuntimeError(f"the loss became {loss.item()}")
        loss.backward()
        optimizer.step()
        return int((logits.argmax(dim=1) == y).sum())
    return step


def pytorch_inference(task, images, labels):
    torch, twin = torch_twin(task)
    twin.eval()
    block = torch.from_numpy(images[:task["batch"], None])

    def predict():
        with torch.no_grad():
            return twin(block).argmax(dim=1)
    return predict


# ----------------------------------------------------------------------------------------------
# Parent: the measurements, in alternating rounds, then the tables.

def plan(args, models):
    """Groups of tasks measured back to back in each round: the implementations of one
    configuration, so that they alternate."""
    impls = IMPLEMENTATIONS if args.torch else IMPLEMENTATIONS[:1]
    quick = args.quick
    timing = dict(samples=3, min_time=0.01 if quick else 0.3, warmup_time=0.0 if quick else 0.3, lr=args.lr)
    groups = []
    for model in models:
        for batch in batch_sizes(model, args):
            for threads in args.threads:
                groups.append([dict(kind="train", impl=impl, model=model, batch=batch, threads=threads, **timing)
                               for impl in impls])
        block = 64 if quick else INFERENCE_IMAGES
        for threads in args.threads:
            groups.append([dict(kind="infer", impl=impl, model=model, batch=block, threads=threads, **timing)
                           for impl in impls])
    if "seed" in models:  # the loop twins: a step takes ~0.3 s, so each sample is one step
        groups.append([dict(kind="train", impl="loops", model="seed", batch=2 if quick else LOOP_BATCH,
                            threads=1, samples=1 if quick else 3, min_time=0.0, warmup_time=0.0, lr=args.lr)])
    return groups


def batch_sizes(model, args):
    from scratchcnn.models import TRAINING_DEFAULTS
    if args.batches:
        return args.batches
    default = TRAINING_DEFAULTS.get(model, {}).get("batch_size", 32)
    return [default] if args.quick else sorted({default, *EXTRA_BATCHES.get(model, ())})


def key(task):
    return task["kind"], task["impl"], task["model"], task["batch"], task["threads"]


def run(args, models):
    """Every task ``args.rounds`` times, alternating; ``{key: {"img_s": [...], ...}}``."""
    groups, results = plan(args, models), {}
    total = sum(len(g) for g in groups) * args.rounds
    done = 0
    for round_index in range(args.rounds):
        for group in groups:
            for task in (group if round_index % 2 == 0 else group[::-1]):
                entry = results.setdefault(key(task), {"task": task, "img_s": [], "peak_rss_mib": 0})
                done += 1
                if "failed" in entry:  # failed once: not again
                    continue
                out = run_child(__file__, task, task["threads"], timeout=120 if args.quick else 900)
                progress = f"[{done}/{total}] {task['kind']} {task['model']} batch {task['batch']} " \
                           f"{task['threads']} thread(s) {LABELS[task['impl']]}: "
                if "failed" in out:
                    entry["failed"] = out["failed"]
                    print(progress + "FAILED: " + out["failed"], file=sys.stderr)
                    continue
                entry["img_s"].append(out["img_s"])
                entry["peak_rss_mib"] = max(entry["peak_rss_mib"], out["peak_rss_mib"])
                print(progress + f"{out['img_s']:,.0f} img/s", file=sys.stderr)
    return {k: summarise(v) for k, v in results.items()}


def summarise(entry):
    """Median and spread ((max - min) / 2) over the rounds, or the failure."""
    values = entry["img_s"]
    summary = {**{k: entry["task"][k] for k in ("kind", "impl", "model", "batch", "threads")},
               "rounds": len(values), "peak_rss_mib": round(entry["peak_rss_mib"], 1)}
    if "failed" in entry:
        return {**summary, "failed": entry["failed"]}
    return {**summary, "img_s": statistics.median(values), "spread": (max(values) - min(values)) / 2}


def cell(result):
    if result is None:
        return "-"
    if "failed" in result:
        return "failed"
    spread = f" ± {result['spread']:,.0f}" if result["rounds"] > 1 else ""
    return f"{result['img_s']:,.0f}{spread}"


def ratio(a, b):
    if not a or not b or "failed" in a or "failed" in b:
        return "-"
    return f"**{a['img_s'] / b['img_s']:.2f}x**"


def best(results, kind, impl, model, batch):
    """The thread count at which ``impl`` is fastest (a failure only if every count failed)."""
    candidates = [r for (k, i, m, b, _), r in results.items() if (k, i, m, b) == (kind, impl, model, batch)]
    ok = [r for r in candidates if "failed" not in r]
    if ok:
        return max(ok, key=lambda r: r["img_s"])
    return candidates[0] if candidates else None


def configurations(results, kind):
    pairs = {(r["model"], r["batch"]) for r in results.values() if r["kind"] == kind and r["impl"] != "loops"}
    return sorted(pairs, key=lambda mb: (model_order(mb[0]), mb[1]))


def model_order(name):
    from scratchcnn.models import MODEL_NAMES
    return MODEL_NAMES.index(name) if name in MODEL_NAMES else len(MODEL_NAMES)


def best_table(results, kind):
    rows = []
    for model, batch in configurations(results, kind):
        ours, theirs = (best(results, kind, impl, model, batch) for impl in IMPLEMENTATIONS)
        rows.append([model, batch, cell(ours), threads_of(ours), cell(theirs), threads_of(theirs),
                     ratio(ours, theirs)])
    return markdown_table(["model", "images" if kind == "infer" else "batch", "scratchcnn img/s", "threads",
                           "PyTorch img/s", "threads", "scratchcnn / PyTorch"], rows)


def threads_of(result):
    return "-" if result is None or "failed" in result else result["threads"]


def grid_table(results, kind):
    rows = []
    for model, batch in configurations(results, kind):
        for threads in sorted({r["threads"] for r in results.values()}):
            ours, theirs = (results.get((kind, impl, model, batch, threads)) for impl in IMPLEMENTATIONS)
            if ours is None and theirs is None:
                continue
            rss = " / ".join(f"{r['peak_rss_mib']:.0f}" if r and r["rounds"] else "-" for r in (ours, theirs))
            rows.append([model, batch, threads, cell(ours), cell(theirs), ratio(ours, theirs), rss])
    return markdown_table(["model", "images" if kind == "infer" else "batch", "threads", "scratchcnn img/s",
                           "PyTorch img/s", "scratchcnn / PyTorch", "peak RSS MiB (scratchcnn / PyTorch)"], rows)


def loop_table(results):
    """The vectorized seed step per image (its default batch, 1 thread) vs the loop twins'."""
    from scratchcnn.models import TRAINING_DEFAULTS
    loops = next((r for r in results.values() if r["impl"] == "loops"), None)
    batch = TRAINING_DEFAULTS["seed"]["batch_size"]
    vectorized = results.get(("train", "scratchcnn", "seed", batch, 1))
    if loops is None or vectorized is None:
        return None
    per_image = [fmt(1 / r["img_s"]) if "img_s" in r else "failed" for r in (loops, vectorized)]
    speedup = f"{vectorized['img_s'] / loops['img_s']:,.0f}x" if "failed" not in loops | vectorized else "-"
    return markdown_table(["seed training step, 1 thread", "loop twins", "vectorized", "speedup"],
                          [[f"time per image (loop twins at batch {loops['batch']}, vectorized at {batch})",
                            *per_image, f"**{speedup}**"]])


def report(results, args, notes):
    m = machine()
    torch_version = version_of("torch") if args.torch else None
    text = (f"## Training throughput: scratchcnn vs its PyTorch twin\n\n{m['cpu']}, {m['cores']} cores; "
            f"Python {m['python']}, NumPy {m['numpy']} ({m['blas']})"
            + (f", PyTorch {torch_version}" if torch_version else "")
            + f"; load average at start {m['load_average'][0]:.2f}; commit {git_commit()}; "
            f"{args.rounds} alternating round(s), each measurement in its own process, median ± half "
            "the range over rounds.\n")
    text += "\n### Training, each side at its best thread count\n\n" + best_table(results, "train")
    text += "\n\n### Training, every thread count\n\n" + grid_table(results, "train")
    text += ("\n\n### Inference (`predict` vs `eval()` + `no_grad()`), each side at its best\n\n"
             + best_table(results, "infer"))
    text += "\n\n### Inference, every thread count\n\n" + grid_table(results, "infer")
    loops = loop_table(results)
    if loops:
        text += "\n\n### Vectorized vs loop twins, both through `FastEngine.train_step`\n\n" + loops
    failed = [r for r in results.values() if "failed" in r]
    notes = notes + [f"FAILED: {r['kind']} {LABELS[r['impl']]} {r['model']} batch {r['batch']} "
                     f"{r['threads']} thread(s): {r['failed']}" for r in failed]
    return text + "".join(f"\n\nNote: {n}" for n in notes)


def version_of(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def plot(results, path):
    """Training img/s per model: one group of bars per batch, one bar per side and thread count."""
    plt = pyplot()
    models = sorted({r["model"] for r in results.values() if r["kind"] == "train" and r["impl"] != "loops"},
                    key=model_order)
    thread_counts = sorted({r["threads"] for r in results.values()})
    bars = [(impl, t) for impl in IMPLEMENTATIONS for t in thread_counts
            if any(r["impl"] == impl and r["threads"] == t for r in results.values())]
    fig, axes = plt.subplots(1, len(models), figsize=(max(4.5 * len(models), 9), 3.8), squeeze=False)
    colors = {"scratchcnn": ("tab:blue", "lightskyblue"), "pytorch": ("tab:orange", "navajowhite")}
    for ax, model in zip(axes[0], models):
        batches = sorted(b for m, b in configurations(results, "train") if m == model)
        width = 0.8 / len(bars)
        for n, (impl, threads) in enumerate(bars):
            cells = [results.get(("train", impl, model, b, threads), {}) for b in batches]
            ax.bar([i + (n - (len(bars) - 1) / 2) * width for i in range(len(batches))],
                   [c.get("img_s", 0) for c in cells], width, yerr=[c.get("spread", 0) for c in cells],
                   capsize=2, color=colors[impl][min(threads, 2) - 1],
                   label=f"{LABELS[impl]}, {threads} thread{'s' * (threads > 1)}")
        ax.set_xticks(range(len(batches)), [f"batch {b}" for b in batches])
        ax.set(title=f"{model} network", ylabel="training images / s")
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.grid(True, axis="y", alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.suptitle("Training throughput, identical layers and weights (higher is better)")
    fig.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, 0.93), ncol=len(bars),
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def parse_args():
    from scratchcnn.models import MODEL_NAMES
    parser = common_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--models", default=",".join(MODEL_NAMES),
                        help=f"comma-separated models to time (default: all, {','.join(MODEL_NAMES)})")
    parser.add_argument("--threads", help="thread counts to compare (default 1,2; --quick: 1)")
    parser.add_argument("--batches", help="batch sizes for every model (default: each model's "
                                          "training batch, and 128 for seed)")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 5; --quick: 1)")
    parser.add_argument("--lr", type=float, default=LEARNING_RATE, help="SGD learning rate of the timed steps")
    parser.add_argument("--no-torch", action="store_true", help="don't compare with PyTorch")
    args = parser.parse_args()
    args.threads = positive_ints(args.threads or ("1" if args.quick else "1,2"), "--threads", parser)
    args.batches = positive_ints(args.batches, "--batches", parser) if args.batches else None
    args.models = model_names(args.models, parser)
    args.rounds = args.rounds or (1 if args.quick else 5)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    args.torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    return args


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        return child(json.loads(sys.argv[2]))
    args = parse_args()
    notes = []
    if not args.torch:
        notes.append("no PyTorch comparison: " + ("--no-torch" if args.no_torch else
                     "torch cannot be imported (pip install torch to add it)") + ".")
    results = run(args, args.models)
    emit(report(results, args, notes), args)
    write_json(args.json, {"rounds": args.rounds, "lr": args.lr, "notes": notes,
                           "results": list(results.values())})
    if args.plot:
        plot(results, args.plot)
    failed = sum("failed" in r for r in results.values())
    if failed:
        sys.exit(f"\n{failed} configuration(s) failed; the tables show the rest")


if __name__ == "__main__":
    main()
