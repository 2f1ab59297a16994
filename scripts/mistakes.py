"""Where a saved model goes wrong: its confusion matrix and its most confident mistakes.

    python scripts/mistakes.py                          # model.npz on the 10,000 test images
    python scripts/mistakes.py --model classic.npz --count 24 --out classic_mistakes

Writes OUT/confusion_matrix.png, OUT/misclassified.png, and the probabilities behind the
most confident mistake (OUT/worst_mistake.png) and the nearest miss (OUT/near_miss.png);
prints the commonest confusions.
"""

import numpy as np
from common import add_model_argument, load_model, make_parser, output_path

from scratchcnn.data import load_mnist, normalize
from scratchcnn.viz import (confusion_matrix, most_confident_mistakes, plot_confusion_matrix,
                            plot_misclassified, plot_probabilities)


def main(argv=None):
    parser = make_parser(__doc__, __file__)
    add_model_argument(parser, "the network to examine")
    parser.add_argument("--count", type=int, default=16, help="mistakes to show (default: %(default)s)")
    parser.add_argument("--test-size", type=int, default=10000,
                        help="use the first N test images (default: all %(default)s)")
    parser.add_argument("--data-dir", help="MNIST cache folder (default: the usual cache)")
    parser.add_argument("--out", default="mistakes", metavar="FOLDER",
                        help="folder for the PNGs (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.test_size < 1:
        parser.error("--count and --test-size must be at least 1")

    network, meta = load_model(args.model)
    name = meta.get("model", args.model)
    _, _, test_images, test_labels = load_mnist(args.data_dir)
    images, labels = test_images[:args.test_size], test_labels[:args.test_size].astype(int)
    probs = network.predict_proba(normalize(images))
    predictions = probs.argmax(axis=1)
    wrong = int((predictions != labels).sum())
    print(f"{name}: {len(labels) - wrong:,} of {len(labels):,} right ({1 - wrong / len(labels):.2%}), "
          f"{wrong} mistakes")

    counts = confusion_matrix(labels, predictions)
    np.fill_diagonal(counts, 0)
    print("Commonest confusions:")
    for flat in np.argsort(-counts, axis=None, kind="stable")[:5]:
        true, predicted = np.unravel_index(flat, counts.shape)
        if counts[true, predicted]:
            print(f"  {true} taken for {predicted}: {counts[true, predicted]} times")

    path = output_path(args.out, "confusion_matrix.png")
    plot_confusion_matrix(labels, predictions, path=path)
    print(f"Wrote {path}")
    worst = most_confident_mistakes(labels, probs, args.count)
    path = output_path(args.out, "misclassified.png")
    plot_misclassified(images, labels, probs, indices=worst,
                       title=f"The {len(worst)} most confident mistakes of {name}", path=path)
    print(f"Wrote {path}")
    if not len(worst):
        return
    # The probabilities behind two mistakes: the most confident one, and the nearest miss
    # (the mistake that gave the true digit the most probability).
    wrong = np.flatnonzero(predictions != labels)
    near_miss = wrong[np.argmax(probs[wrong, labels[wrong]])]
    for i, file, what in ((worst[0], "worst_mistake.png", "most confident mistake"),
                          (near_miss, "near_miss.png", "nearest miss")):
        path = output_path(args.out, file)
        plot_probabilities(probs[i], label=int(labels[i]), image=images[i],
                           title=f"The {what}, test image #{i}: truly {labels[i]}", path=path)
        print(f"Wrote {path} (see its feature maps: python scripts/feature_maps.py --index {i})")


if __name__ == "__main__":
    main()
