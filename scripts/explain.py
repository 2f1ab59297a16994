"""Why did it say 7? Every explanation method of scratchcnn.explain on six test digits (two of
them mistakes) and the class models of all ten digits, in one picture.

    python scripts/explain.py --model classic.npz               # writes explain.png
    python scripts/explain.py --model classic.npz --out docs/explain.png

Rows: four test digits the network gets right (the first of different labels) and the first two
it gets wrong; columns: saliency, gradient x input, SmoothGrad, Integrated Gradients, occlusion,
Grad-CAM over the digit, and an adversarial digit (eps 0.2) with what the network now reads.
Each map explains the network's own answer. The last row: the class models.

Without a model, the classic network is first trained for one epoch on the first 10,000 MNIST
training images (about ten seconds).
"""
import numpy as np
from common import DEFAULT_MODEL, load_model, make_parser, train_command

from scratchcnn.data import load_mnist, normalize
from scratchcnn.models import TRAINING_DEFAULTS, build_model
from scratchcnn.optim import OPTIMIZERS
from scratchcnn.trainer import Trainer
from scratchcnn.viz.explanations import plot_explanations

BRIEF_TRAIN_SIZE = 10_000
RIGHT, WRONG = 4, 2


def train_briefly(data_dir):
    """The classic network after one epoch on the first ``BRIEF_TRAIN_SIZE`` training images."""
    train_images, train_labels, _, _ = load_mnist(data_dir)
    images, labels = normalize(train_images[:BRIEF_TRAIN_SIZE]), train_labels[:BRIEF_TRAIN_SIZE].astype(int)
    defaults = TRAINING_DEFAULTS["classic"]
    network = build_model("classic", seed=0)
    optimizer = OPTIMIZERS[defaults["optimizer"]](defaults["lr"])
    Trainer(network, optimizer, images, labels, batch_size=defaults["batch_size"], seed=0).fit(1)
    return network.eval()


def pick_digits(network, images, labels, search=2000):
    """Indices of ``RIGHT`` digits the network gets right (different labels, first found) and
    the first ``WRONG`` it gets wrong, among the first ``search`` test images."""
    said = network.predict(normalize(images[:search]))
    right, seen = [], set()
    for i in np.flatnonzero(said == labels[:search]):
        if labels[i] not in seen and len(right) < RIGHT:
            right.append(int(i))
            seen.add(labels[i])
    wrong = [int(i) for i in np.flatnonzero(said != labels[:search])[:WRONG]]
    return right + wrong


def main(argv=None):
    parser = make_parser(__doc__, __file__)
    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="PATH",
                        help=f"a checkpoint saved by `{train_command()}` (default: %(default)s); "
                             "without it the classic network is trained briefly first")
    parser.add_argument("--data-dir", help="MNIST cache folder (default: the usual cache)")
    parser.add_argument("--out", default="explain.png", metavar="PNG",
                        help="where to write the picture (default: %(default)s)")
    args = parser.parse_args(argv)

    network, meta = load_model(args.model, fallback="training the classic network on "
                               f"{BRIEF_TRAIN_SIZE:,} images for one epoch first")
    if network is None:
        network = train_briefly(args.data_dir)
    _, _, test_images, test_labels = load_mnist(args.data_dir)
    indices = pick_digits(network, test_images, test_labels.astype(int))
    plot_explanations(network, normalize(test_images[indices], np.float64), test_labels[indices].astype(int),
                      path=args.out)
    print(f"Wrote {args.out} (test images {', '.join(map(str, indices))}; model {meta.get('model', 'classic')})")


if __name__ == "__main__":
    main()
