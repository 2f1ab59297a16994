"""Regenerate every picture under docs/ in one go, so the README's pictures never go stale.

    python scripts/make_docs_images.py                  # trains the tutorial network first (seconds)
    python scripts/make_docs_images.py --model model.npz --metrics metrics.json

It trains the tutorial network with ``python -m scratchcnn.train`` (the default 3 epochs)
unless given a model and its metrics, then runs the other scripts into --out.
"""
import os
import subprocess
import sys
import tempfile
import time

import augmentations
import backward_figure
import feature_maps
import mistakes
import visualize_filters
from common import load_model, make_parser

from scratchcnn.data import load_mnist, normalize
from scratchcnn.viz import most_confident_mistakes, plot_training_curves


def train(folder):
    """Train the tutorial network with the trainer's defaults; returns the paths of its
    checkpoint and metrics JSON."""
    model, metrics = os.path.join(folder, "model.npz"), os.path.join(folder, "metrics.json")
    command = [sys.executable, "-m", "scratchcnn.train", "--model", "seed", "--seed", "0",
               "--save", model, "--metrics", metrics, "--quiet"]
    print("$", " ".join(["python"] + command[1:]), flush=True)
    subprocess.run(command, check=True)
    return model, metrics


def worst_mistake(model, data_dir=None):
    """Index of the test image the model gets wrong most confidently (0 if it makes none)."""
    network, _ = load_model(model)
    _, _, test_images, test_labels = load_mnist(data_dir)
    wrong = most_confident_mistakes(test_labels.astype(int), network.predict_proba(normalize(test_images)), 1)
    return int(wrong[0]) if len(wrong) else 0


def main(argv=None):
    parser = make_parser(__doc__, __file__)
    parser.add_argument("--model", metavar="PATH", help="use this trained checkpoint instead of training one")
    parser.add_argument("--metrics", metavar="JSON", help="its metrics (python -m scratchcnn.train --metrics)")
    parser.add_argument("--index", type=int, default=0, help="test image for the feature maps (default: %(default)s)")
    parser.add_argument("--out", default="docs", metavar="FOLDER", help="where the PNGs go (default: %(default)s)")
    args = parser.parse_args(argv)
    if (args.model is None) != (args.metrics is None):
        parser.error("give both --model and --metrics, or neither (then a model is trained)")

    started = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        model, metrics = (args.model, args.metrics) if args.model else train(scratch)
        index = ["--index", str(args.index)]
        visualize_filters.main(["--model", model, "--out", args.out])
        feature_maps.main(index + ["--filters", "edges", "--out", os.path.join(args.out, "feature_maps_edges.png")])
        feature_maps.main(index + ["--model", model, "--out", os.path.join(args.out, "feature_maps_seed.png")])
        mistakes.main(["--model", model, "--out", args.out])
        backward_figure.main(["--model", model, "--index", str(worst_mistake(model)),
                       "--out", os.path.join(args.out, "backward.png")])
        plot_training_curves(metrics, path=os.path.join(args.out, "training_curves.png"))
        print(f"Wrote {os.path.join(args.out, 'training_curves.png')}")
    augmentations.main(["--out", os.path.join(args.out, "augmentations.png")])
    paths = [os.path.join(args.out, name) for name in sorted(os.listdir(args.out)) if name.endswith(".png")]
    sizes = {os.path.basename(p): os.path.getsize(p) for p in paths if os.path.getmtime(p) >= started - 1}
    print("\n".join(f"  {name:<24} {size / 1024:6.1f} KB" for name, size in sizes.items()))


if __name__ == "__main__":
    main()
