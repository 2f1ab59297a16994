"""Step through the tutorial network in a debugger: one image forward, the loss, one step back;
then one training step of the classic network, from ``Network.train_step`` into its layers.

    python scripts/step_through.py                   # just read what it prints
    python scripts/step_through.py --pdb             # (Pdb) b forward_pass, c, n, p image.shape, s ...
    python scripts/step_through.py --loop --pdb      # the loop twins: step into iterate_regions

``--pdb`` starts the debugger at the first line of the walk-through (the script starts it
itself, so its own options never pass through pdb's command line, which some Python releases
read as pdb's). Or open this file in an IDE and put a breakpoint on a line marked "BREAK HERE".

The network is Conv3x3(8) -> MaxPool2 -> Softmax(13*13*8 -> 10), read from model.npz when
it exists (``python -m scratchcnn.train --save model.npz``), freshly initialised otherwise.
The layers work on batches: (N, 28, 28) in, (N, 10) out. One image is handed to them as a
batch of one, shape (1, 28, 28), so every array below has a leading 1; what is printed is
one image's part, ``array[0]``:

    (28, 28) -> Conv3x3 -> (26, 26, 8) -> MaxPool2 -> (13, 13, 8) -> Softmax -> (10,)

The classic network (``build_model("classic")``, freshly initialised) then takes one SGD step
on a batch of four: the image and three copies of it shifted by a pixel, (4, 28, 28).
"""

import pdb

import numpy as np
from common import add_image_arguments, add_model_argument, load_digit, load_model, make_parser

from scratchcnn import loops
from scratchcnn.losses import cross_entropy
from scratchcnn.models import build_model
from scratchcnn.network import Network
from scratchcnn.optim import SGD
from scratchcnn.viz import plot_feature_maps

TUTORIAL_LAYERS = ["Conv3x3", "MaxPool2", "Softmax"]
SHIFTS = [(0, 0), (1, 0), (0, 1), (1, 1)]  # (down, right) in pixels: the classic step's batch of four


def describe(name, array):
    """One line: the array's name, shape and statistics."""
    array = np.asarray(array)
    print(f"  {name:<30} shape {str(array.shape):<17} min {array.min():+.3f}  "
          f"max {array.max():+.3f}  mean {array.mean():+.4f}")


def forward_pass(conv, pool, softmax, image):
    """One ``(28, 28)`` image through the three layers; returns the probabilities ``(1, 10)``."""
    print("Forward (shapes are per image; the layers see a batch of one, (1, ...)):")
    # BREAK HERE (pdb: `b forward_pass`) and look at `image`: 28x28 pixels scaled to [-0.5, 0.5].
    describe("image", image)
    batch = image[np.newaxis]  # (28, 28) -> (1, 28, 28): a batch holding one image

    # `s` here steps into Conv3x3.forward. Look at conv.params["filters"]: (8, 3, 3).
    conv_out = conv.forward(batch)  # (1, 28, 28) -> (1, 26, 26, 8): one 26x26 map per filter
    describe("after Conv3x3: conv_out[0]", conv_out[0])

    # Each 2x2 window of each map keeps its maximum: the maps shrink to 13x13.
    pool_out = pool.forward(conv_out)  # (1, 26, 26, 8) -> (1, 13, 13, 8)
    describe("after MaxPool2: pool_out[0]", pool_out[0])

    # Flatten to 13*13*8 = 1352 values, multiply by weights (1352, 10), add biases, softmax.
    probs = softmax.forward(pool_out)  # (1, 13, 13, 8) -> (1, 10)
    describe("after Softmax: probs[0]", probs[0])
    print(f"  probabilities: {np.array2string(probs[0], precision=3, suppress_small=True)}")
    return probs


def backward_pass(conv, pool, softmax, d_L_d_probs):
    """Gradients from the loss back to the image; fills every layer's ``grads``."""
    print("Backward (each gradient has the shape of what it is the gradient of):")
    # BREAK HERE (pdb: `b backward_pass`): d_L_d_probs is zero except at the true label.
    describe("d_L_d_probs[0]", d_L_d_probs[0])

    d_L_d_pool_out = softmax.backward(d_L_d_probs)  # (1, 10) -> (1, 13, 13, 8)
    describe("d_L_d_pool_out[0]", d_L_d_pool_out[0])
    describe('softmax.grads["weights"]', softmax.grads["weights"])  # (1352, 10)
    describe('softmax.grads["biases"]', softmax.grads["biases"])    # (10,)

    # Only the maximum of each 2x2 window receives gradient; the other three get 0.
    d_L_d_conv_out = pool.backward(d_L_d_pool_out)  # (1, 13, 13, 8) -> (1, 26, 26, 8)
    describe("d_L_d_conv_out[0]", d_L_d_conv_out[0])
    print(f"    nonzero: {np.count_nonzero(d_L_d_conv_out)} of {d_L_d_conv_out.size} (one per window)")

    d_L_d_image = conv.backward(d_L_d_conv_out)  # (1, 26, 26, 8) -> (1, 28, 28)
    describe('conv.grads["filters"]', conv.grads["filters"])  # (8, 3, 3), like the filters
    describe("d_L_d_image[0]", d_L_d_image[0])
    return d_L_d_image


def loop_twins(conv, pool, softmax):
    """The same layers written with loops (``scratchcnn.loops``), holding copies of the weights."""
    twins = [loops.Conv3x3(**conv.config()), loops.MaxPool2(), loops.Softmax(**softmax.config())]
    for layer, twin in zip((conv, pool, softmax), twins):
        twin.params = {name: p.copy() for name, p in layer.params.items()}
    return twins


def tutorial_network(path):
    """The three layers from ``path`` if it holds the tutorial network, else fresh ones."""
    network, meta = load_model(path, fallback="using a freshly initialised (untrained) network")
    if network is None:
        network = build_model("seed", seed=0)
    names = [type(layer).__name__ for layer in network.layers]
    if names != TUTORIAL_LAYERS:
        raise SystemExit(f"error: {path} holds {meta.get('model', 'another network')} ({' -> '.join(names)}); "
                         "this walk-through is for the tutorial network. Train it with\n"
                         "    python -m scratchcnn.train --model seed --save model.npz")
    return network.layers


def classic_step(image, label, lr):
    """One ``Network.train_step`` of the classic network on the image and three shifted copies."""
    network = build_model("classic", seed=0)
    batch = np.stack([np.roll(image, shift, axis=(0, 1)) for shift in SHIFTS])  # (4, 28, 28)
    labels = np.full(len(batch), label)
    names = " -> ".join(type(layer).__name__ for layer in network.layers)
    print(f"One training step of the classic network ({names}) on a batch of {len(batch)}: "
          "the image and three copies shifted by a pixel")
    # BREAK HERE (pdb: `b Network.train_step`), then `b self.layers[0].forward` to stop in the
    # first Conv2D with the whole batch: forward through every layer, the loss, backward, the step.
    loss, correct = network.train_step(batch, labels, SGD(lr))
    print(f"  loss {loss:.4f}, {correct} of {len(batch)} right. What each layer made (network.outputs):")
    for i, (layer, output) in enumerate(zip(network.layers, network.outputs[1:])):
        describe(f"outputs[{i + 1}] {type(layer).__name__}", output)
    describe('layers[0].grads["filters"]', network.layers[0].grads["filters"])  # (16, 3, 3)


def walk_through(args):
    """The tutorial network's forward, loss, backward and SGD step, then the classic network's step."""
    conv, pool, softmax = tutorial_network(args.model)
    if args.loop:
        conv, pool, softmax = loop_twins(conv, pool, softmax)
    kind = "loop twins from scratchcnn.loops" if args.loop else "vectorized, from scratchcnn.layers"
    print(f"Layers ({kind}):\n  {conv!r}\n  {pool!r}\n  {softmax!r}")
    image, _, label, name = load_digit(args)
    print(f"Image: {name}\n")

    probs = forward_pass(conv, pool, softmax, image)
    if args.label is not None:
        label = args.label
    elif label is None:
        label = int(probs[0].argmax())
        print(f"  (no label given: taking the prediction, {label}, as the label)")
    print(f"  predicted {int(probs[0].argmax())}, true label {label}\n")
    if args.out:
        plot_feature_maps(Network([conv, pool, softmax]), image, label=label, path=args.out)
        print(f"  (the feature maps are drawn in {args.out})\n")

    # The loss is -log(probability given to the true label); 0 when that is 1.
    loss, d_L_d_probs = cross_entropy(probs, [label])  # d_L_d_probs: (1, 10)
    print(f"Loss: -log(probs[0][{label}]) = -log({probs[0, label]:.4f}) = {loss:.4f}\n")

    backward_pass(conv, pool, softmax, d_L_d_probs)

    # BREAK HERE to compare the weights before and after one step of gradient descent.
    SGD(args.lr).step([conv, pool, softmax])  # every param -= lr * its gradient
    new_loss, _ = cross_entropy(softmax.forward(pool.forward(conv.forward(image[np.newaxis]))), [label])
    print(f"\nAfter one SGD step (lr {args.lr}): loss {loss:.4f} -> {new_loss:.4f}\n")

    classic_step(image, label, args.lr)


def parse_args(argv):
    parser = make_parser(__doc__, __file__)
    add_image_arguments(parser)
    parser.add_argument("--label", type=int, choices=range(10), metavar="DIGIT",
                        help="the true digit (default: the MNIST label; for --image, the prediction)")
    add_model_argument(parser, "without it, an untrained network is used")
    parser.add_argument("--loop", action="store_true",
                        help="use the loop twins from scratchcnn.loops (step into iterate_regions)")
    parser.add_argument("--pdb", action="store_true",
                        help="run under the debugger, stopped at the walk-through's first line "
                             "(set breakpoints, then c)")
    parser.add_argument("--out", metavar="PNG",
                        help="also draw the image's feature maps after each layer to this PNG")
    parser.add_argument("--lr", type=float, default=0.005,
                        help="learning rate of the SGD steps (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.pdb:
        # The script starts pdb itself: `python -m pdb script --option` hands the option to pdb
        # on some Python releases (3.13.0 among them), so it is not a way that works everywhere.
        pdb.Pdb().runcall(walk_through, args)
    else:
        walk_through(args)


if __name__ == "__main__":
    main()
