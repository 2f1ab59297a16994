"""The backward pass of one digit: each stage's output beside its gradient, the saliency map,
and the filters beside their gradients.

    python scripts/backward_figure.py                           # test image 0 through model.npz
    python scripts/backward_figure.py --index 8 --label 5       # "what if it were a 5?"
    python scripts/backward_figure.py --image my_digit.png --out my_digit_backward.png

The loss is the cross-entropy of this one image, L = -log p[label], with --label (default:
the test image's true label; for a PNG, the network's prediction). Its gradient goes back
through the layers' own backward (scratchcnn.backprop.backward_pass). Blue is negative, red
positive, white zero: raising a red value would raise the loss. The top row also shows the
probabilities after one plain SGD step (--lr) on this image alone.

Without a model, the tutorial network is first trained for one epoch on the first
10,000 MNIST training images (seconds).
"""

from common import DEFAULT_MODEL, add_image_arguments, load_digit, load_model, make_parser, train_command

from scratchcnn.backprop import DEFAULT_LR, backward_pass
from scratchcnn.data import load_mnist, normalize
from scratchcnn.models import TRAINING_DEFAULTS, build_model
from scratchcnn.optim import OPTIMIZERS
from scratchcnn.trainer import Trainer
from scratchcnn.viz import plot_backward_pass

BRIEF_TRAIN_SIZE = 10_000


def train_briefly(data_dir):
    """The tutorial network after one epoch on the first ``BRIEF_TRAIN_SIZE`` training images."""
    train_images, train_labels, _, _ = load_mnist(data_dir)
    images, labels = normalize(train_images[:BRIEF_TRAIN_SIZE]), train_labels[:BRIEF_TRAIN_SIZE].astype(int)
    defaults = TRAINING_DEFAULTS["seed"]
    network = build_model("seed", seed=0)
    optimizer = OPTIMIZERS[defaults["optimizer"]](defaults["lr"])
    Trainer(network, optimizer, images, labels, batch_size=defaults["batch_size"], seed=0).fit(1)
    return network.eval()


def main(argv=None):
    parser = make_parser(__doc__, __file__)
    add_image_arguments(parser)
    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="PATH",
                        help=f"a checkpoint saved by `{train_command()}` (default: %(default)s); "
                             "without it the tutorial network is trained briefly first")
    parser.add_argument("--label", type=int, metavar="K",
                        help="the target digit of the loss (default: the true label, or the prediction)")
    parser.add_argument("--lr", type=float, default=DEFAULT_LR,
                        help="learning rate of the one SGD step shown (default: %(default)s)")
    parser.add_argument("--out", default="backward.png", metavar="PNG",
                        help="where to write the picture (default: %(default)s)")
    args = parser.parse_args(argv)

    image, pixels, true_label, name = load_digit(args)
    network, meta = load_model(args.model, fallback="training the tutorial network on "
                               f"{BRIEF_TRAIN_SIZE:,} images for one epoch first")
    model_name = meta.get("model", args.model)
    if network is None:
        network, model_name = train_briefly(args.data_dir), "the briefly trained tutorial network"
    label = args.label if args.label is not None else true_label
    if label is None:
        label = int(network.predict(image[None])[0])
    try:
        result = backward_pass(network, image, label, lr=args.lr)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None

    truth = "" if true_label is None else f", true label {true_label}"
    title = (f"{name.capitalize()}{truth}, through {model_name}: predicted {result.prediction}; "
             f"loss -log p[{label}] = {result.loss:.3f}")
    plot_backward_pass(result, pixels=pixels, title=title, path=args.out)
    print(f"Wrote {args.out} ({name}{truth}; label {label}: loss {result.loss:.4g}, after one SGD step "
          f"(lr {result.lr:g}) {result.loss_after_step + 0.0:.4g})")  # + 0.0: no "-0" for -log(1)


if __name__ == "__main__":
    main()
