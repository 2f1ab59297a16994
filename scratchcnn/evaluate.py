"""``python -m scratchcnn.evaluate --model PATH``: test a saved network on the MNIST test set.

Prints the test loss and accuracy, the accuracy of each digit and the confusion matrix, and
with ``--confusion PNG`` draws the matrix. ``main([...])`` returns an exit code.
"""
import argparse
import sys

import numpy as np

from . import runtime
from .checkpoint import CheckpointError, load_checkpoint
from .data import MNIST_FILES, MnistUnavailableError, first_n, load_mnist, normalize
from .training import evaluate
from .viz import confusion_matrix, plot_confusion_matrix

TEST_SET_SIZE = MNIST_FILES["test_labels"].shape[0]


def format_confusion(matrix):
    """The matrix as text, true digits down, predictions across."""
    width = max(4, len(str(matrix.max())) + 1)
    lines = ["true \\ predicted " + "".join(f"{d:>{width}}" for d in range(len(matrix)))]
    for digit, row in enumerate(matrix):
        lines.append(f"{digit:>16} " + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m scratchcnn.evaluate",
                                     description="Test a checkpoint saved by scratchcnn.train on MNIST.")
    parser.add_argument("--model", required=True, metavar="PATH", help="checkpoint (.npz) to test")
    parser.add_argument("--test-size", type=int, metavar="N",
                        help=f"use the first N test images (default all {TEST_SET_SIZE:,})")
    parser.add_argument("--data-dir", help="MNIST folder (default $SCRATCHCNN_DATA or the user cache)")
    parser.add_argument("--confusion", metavar="PNG", help="also draw the confusion matrix to this PNG")
    return parser


def main(argv=None):
    """Run the command line; returns the exit code (0 done, 1 error, 2 bad option)."""
    runtime.configure("inference")  # BLAS threads and allocator, before any computation
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.test_size is not None and not 1 <= args.test_size <= TEST_SET_SIZE:
            parser.error(f"--test-size: {args.test_size} is not from 1 to {TEST_SET_SIZE:,}")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    try:
        checkpoint = load_checkpoint(args.model)
        _, _, test_x, test_y = load_mnist(args.data_dir)
    except (CheckpointError, MnistUnavailableError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.test_size:
        test_x, test_y = first_n(test_x, test_y, args.test_size)
    network, meta = checkpoint.network, checkpoint.meta
    dtype = network.layers[-1].params["weights"].dtype if network.layers[-1].params else np.float32
    x, labels = normalize(test_x, dtype), test_y.astype(np.int64)

    loss, accuracy = evaluate(network, x, labels)
    predicted = network.predict(x, batch_size=500)
    matrix = confusion_matrix(labels, predicted)
    name = meta.get("model", "network")
    print(f"{args.model}: {name}" + (f", trained {meta['epoch']} epochs" if "epoch" in meta else ""))
    print(f"Test Loss: {loss:.4f} | Test Accuracy: {accuracy:.2%} ({int(np.trace(matrix)):,} of {len(labels):,})")
    print("Per-class accuracy:")
    for digit in range(10):
        total = matrix[digit].sum()
        share = f"{matrix[digit, digit] / total:.2%}" if total else "-"
        print(f"  {digit}: {share:>7} of {total:,}")
    print("Confusion matrix:")
    print(format_confusion(matrix))
    if args.confusion:
        try:
            plot_confusion_matrix(labels, predicted, path=args.confusion,
                                  title=f"scratchcnn {name}: {accuracy:.2%} on {len(labels):,}")
        except OSError as e:
            print(f"error: can't write {args.confusion!r}: {e}", file=sys.stderr)
            return 1
        print(f"Wrote {args.confusion}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
