"""What the scripts share: the saved model (or how to make one) and the image to look at."""
import argparse
import os

import numpy as np

from scratchcnn.checkpoint import CheckpointError, load_checkpoint
from scratchcnn.data import load_mnist, normalize
from scratchcnn.imaging import ImageError, load_image, to_mnist

DEFAULT_MODEL = "model.npz"


def make_parser(doc, script):
    """An argument parser whose --help shows the script's docstring, examples included."""
    return argparse.ArgumentParser(prog=f"python scripts/{os.path.basename(script)}", description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def train_command(path=DEFAULT_MODEL):
    return f"python -m scratchcnn.train --save {path}"


def add_model_argument(parser, what):
    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="PATH",
                        help=f"a checkpoint saved by `{train_command()}` (default: %(default)s); {what}")


def add_image_arguments(parser):
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--index", type=int, default=0,
                        help="which MNIST test image, 0-9999 (default: %(default)s)")
    source.add_argument("--image", metavar="PNG", help="a picture of a digit instead (any size; "
                        "converted to a 28x28 MNIST-style image)")
    parser.add_argument("--data-dir", help="MNIST cache folder (default: the usual cache)")


def load_model(path, fallback=None):
    """The saved network and its metadata, or ``None`` when ``path`` is missing and a
    ``fallback`` (a sentence saying what is used instead) is given; exits with a message
    saying how to make the model otherwise."""
    if not os.path.exists(path):
        if fallback:
            print(f"No model at {path}; {fallback}. To see a trained network: {train_command(path)}")
            return None, {}
        raise SystemExit(f"error: no model at {path}. Train one first:\n    {train_command(path)}")
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as e:
        raise SystemExit(f"error: {e}") from None
    return checkpoint.network, checkpoint.meta


def load_digit(args):
    """``(image, pixels, label, name)``: the normalised ``(28, 28)`` float32 image the network
    takes, its uint8 pixels, its label (None for a PNG) and a short description."""
    if args.image:
        try:
            pixels = to_mnist(load_image(args.image))
        except ImageError as e:
            raise SystemExit(f"error: {e}") from None
        return normalize(pixels), pixels, None, os.path.basename(args.image)
    _, _, test_images, test_labels = load_mnist(args.data_dir)
    if not 0 <= args.index < len(test_images):
        raise SystemExit(f"error: --index must be between 0 and {len(test_images) - 1}, got {args.index}")
    pixels = test_images[args.index]
    return normalize(pixels), pixels, int(test_labels[args.index]), f"test image #{args.index}"


def output_path(folder, name):
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, name)


def conv_filters(network, which=0):
    """The ``which``-th convolution layer's filters ``(F, k, k)`` or ``(F, k, k, C)``, and its index."""
    convs = [i for i, layer in enumerate(network.layers) if "filters" in layer.params]
    if not convs:
        raise SystemExit("error: this model has no convolution layer (an mlp?), so no filters to show")
    if not 0 <= which < len(convs):
        raise SystemExit(f"error: --layer must be between 0 and {len(convs) - 1} for this model")
    return np.asarray(network.layers[convs[which]].params["filters"]), convs[which]
