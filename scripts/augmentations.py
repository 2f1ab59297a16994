"""A few MNIST training digits and randomly rotated, scaled and shifted versions of each.

    python scripts/augmentations.py                            # writes augmentations.png
    python scripts/augmentations.py --rotate 15 --scale 0.15 --shift 2 --out docs/augmentations.png

The first column is the digit as it is in MNIST, the others what training would see
(scratchcnn.data.augment.affine_augment, the same draws for the same --seed), each captioned
with its rotation (counter-clockwise), size and shift (right, down).
"""
import numpy as np
from common import make_parser

from scratchcnn.data import load_mnist, normalize
from scratchcnn.data.augment import affine_augment, augment_rng, random_transforms
from scratchcnn.viz.canvas import new_figure, save, show_image


def main(argv=None):
    parser = make_parser(__doc__, __file__)
    parser.add_argument("--rotate", type=float, default=10, help="largest rotation in degrees (default: %(default)s)")
    parser.add_argument("--scale", type=float, default=0.1, help="largest change of size, a fraction (default: %(default)s)")
    parser.add_argument("--shift", type=int, default=2, help="largest shift in pixels (default: %(default)s)")
    parser.add_argument("--digits", type=int, default=6, help="how many digits, one per row (default: %(default)s)")
    parser.add_argument("--versions", type=int, default=7, help="augmented versions of each (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="which draws (default: %(default)s)")
    parser.add_argument("--data-dir", help="MNIST cache folder (default: the usual cache)")
    parser.add_argument("--out", default="augmentations.png", metavar="PNG",
                        help="where to write the picture (default: %(default)s)")
    args = parser.parse_args(argv)

    train_images, train_labels, _, _ = load_mnist(args.data_dir)
    # The first image of each class, so every row shows another digit.
    first = [int(np.argmax(train_labels == label)) for label in range(args.digits)]
    originals = normalize(train_images[first])                           # (D, 28, 28)
    repeated = np.repeat(originals, args.versions, axis=0)               # (D * V, 28, 28)
    options = dict(rotate=args.rotate, scale=args.scale, shift=args.shift)
    try:
        angles, scales, shifts = random_transforms(len(repeated), augment_rng(args.seed, 0, 0), **options)
    except ValueError as e:
        parser.error(str(e))
    augmented = affine_augment(repeated, augment_rng(args.seed, 0, 0), **options)

    columns = args.versions + 1
    fig = new_figure(1.1 * columns, 1.25 * args.digits + 0.4)
    grid = fig.subplots(args.digits, columns, squeeze=False)
    for row, image in enumerate(originals):
        show_image(grid[row, 0], image, "MNIST" if row == 0 else None)
        for col in range(args.versions):
            k = row * args.versions + col
            angle = round(angles[k]) + 0  # + 0: no "-0"
            caption = f"{angle:+d}°, size {scales[k]:.0%}\n→{shifts[k, 1]:+d} ↓{shifts[k, 0]:+d} px"
            show_image(grid[row, col + 1], augmented[k], caption, fontsize=7)
    fig.suptitle(f"Augmented training digits: rotation up to {args.rotate:g}°, size "
                 f"±{args.scale:.0%}, shift up to {args.shift} px", fontsize=10)
    save(fig, args.out)
    print(f"Wrote {args.out} ({args.digits} digits, {args.versions} augmented versions each)")


if __name__ == "__main__":
    main()
