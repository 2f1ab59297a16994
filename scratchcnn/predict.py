"""``python -m scratchcnn.predict --model PATH IMAGE.png [...]``: read digits from pictures.

Each image (PNG or anything Pillow reads; grayscale or colour, any size, dark ink on light
paper or light on dark) goes through ``scratchcnn.imaging.to_mnist``, which makes it look like
an MNIST digit (28x28, light on dark, digit in a 20x20 box centred by mass), then through
the network. ``main([...])`` returns an exit code (1 if any image could not be read).
"""
import argparse
import sys

import numpy as np

from . import cli
from .checkpoint import CheckpointError, load_checkpoint
from .data import normalize
from .engine import FastEngine
from .imaging import ImageError, load_image, to_mnist


def predict_images(network, paths, dtype=np.float32, engine=None):
    """For each path: ``(path, probabilities (10,), None)`` or ``(path, None, error message)``.
    ``engine`` runs the network (None: ``FastEngine()``)."""
    engine = engine or FastEngine()
    results = []
    for path in paths:
        try:
            digit = to_mnist(load_image(path))                       # (28, 28) uint8
        except ImageError as e:
            results.append((path, None, str(e)))
            continue
        probs = engine.predict_proba(network, normalize(digit[None], dtype))[0]  # (10,)
        results.append((path, probs, None))
    return results


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m scratchcnn.predict",
                                     description="Predict the digit in each image with a saved network.")
    parser.add_argument("--model", required=True, metavar="PATH", help="checkpoint (.npz) from scratchcnn.train")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="picture(s) of one digit each")
    parser.add_argument("--top", type=int, default=3, choices=range(1, 11), metavar="K",
                        help="how many of the most likely digits to show (1-10, default 3)")
    return parser


def main(argv=None):
    """Run the command line; returns the exit code (0 done, 1 error, 2 bad option)."""
    try:
        cli.configure_runtime("inference")  # BLAS threads and allocator, before any computation
        args = cli.parse_args(build_parser(), argv)
        network = load_checkpoint(args.model).network
    except cli.Usage as e:
        return e.code
    except CheckpointError as e:
        return cli.fail(e)
    failed = 0
    for path, probs, error in predict_images(network, args.images, cli.network_dtype(network)):
        if error:
            failed += 1
            cli.fail(error)
            continue
        order = np.argsort(probs)[::-1][:args.top]
        top = ", ".join(f"{d}: {probs[d]:.1%}" for d in order)
        print(f"{path}: {order[0]}  ({top})")
    return cli.EXIT_ERROR if failed else cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
