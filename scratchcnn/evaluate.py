"""``python -m scratchcnn.evaluate --model PATH``: test a saved network on the MNIST test set.

Prints the test loss and accuracy, the accuracy of each digit and the confusion matrix, and
with ``--confusion PNG`` draws the matrix. ``main([...])`` returns an exit code.
"""
import argparse
import sys

import numpy as np

from . import cli
from .checkpoint import CheckpointError, load_checkpoint
from .engine import FastEngine
from .network import score
from .data import TEST_SET_SIZE, MnistUnavailableError, first_n, load_mnist, normalize
from .viz import confusion_matrix, plot_confusion_matrix


def format_confusion(matrix):
    """The matrix as text, true digits down, predictions across."""
    width = max(4, len(str(matrix.max())) + 1)
    lines = ["true \\ predicted " + "".join(f"{d:>{width}}" for d in range(len(matrix)))]
    for digit, row in enumerate(matrix):
        lines.append(f"{digit:>16} " + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def format_per_class(matrix):
    """Each digit's accuracy: ``  7:  98.05% of 1,028`` (``-`` for a digit with no images)."""
    lines = []
    for digit, row in enumerate(matrix):
        total = row.sum()
        share = f"{row[digit] / total:.2%}" if total else "-"
        lines.append(f"  {digit}: {share:>7} of {total:,}")
    return "\n".join(lines)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m scratchcnn.evaluate",
                                     description="Test a checkpoint saved by scratchcnn.train on MNIST.")
    parser.add_argument("--model", required=True, metavar="PATH", help="checkpoint (.npz) to test")
    parser.add_argument("--test-size", type=cli.image_count(TEST_SET_SIZE), metavar="N",
                        help=f"use the first N test images (default all {TEST_SET_SIZE:,})")
    parser.add_argument("--data-dir", help=cli.DATA_DIR_HELP)
    parser.add_argument("--confusion", metavar="PNG", help="also draw the confusion matrix to this PNG")
    return parser


def main(argv=None):
    """Run the command line; returns the exit code (0 done, 1 error, 2 bad option)."""
    try:
        cli.configure_runtime("inference")  # BLAS threads and allocator, before any computation
        args = cli.parse_args(build_parser(), argv)
        checkpoint = load_checkpoint(args.model)
        _, _, test_x, test_y = load_mnist(args.data_dir)
    except cli.Usage as e:
        return e.code
    except (CheckpointError, MnistUnavailableError) as e:
        return cli.fail(e)
    if args.test_size:
        test_x, test_y = first_n(test_x, test_y, args.test_size)
    network, meta = checkpoint.network, checkpoint.meta
    x, labels = normalize(test_x, cli.network_dtype(network)), test_y.astype(np.int64)

    probs = FastEngine().predict_proba(network, x)  # (N, 10), in parts on the configured threads
    loss, accuracy = score(probs, labels)
    predicted = probs.argmax(axis=1)
    matrix = confusion_matrix(labels, predicted)
    name = meta.get("model", "network")
    print(f"{args.model}: {name}" + (f", trained {meta['epoch']} epochs" if "epoch" in meta else ""))
    print(f"Test Loss: {loss:.4f} | Test Accuracy: {accuracy:.2%} ({int(np.trace(matrix)):,} of {len(labels):,})")
    print("Per-class accuracy:")
    print(format_per_class(matrix))
    print("Confusion matrix:")
    print(format_confusion(matrix))
    if args.confusion:
        try:
            plot_confusion_matrix(labels, predicted, path=args.confusion,
                                  title=f"scratchcnn {name}: {accuracy:.2%} on {len(labels):,}")
        except OSError as e:
            return cli.fail(f"can't write {args.confusion!r}: {e}")
        print(f"Wrote {args.confusion}")
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
