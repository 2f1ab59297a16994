"""One digit through a network, stage by stage (convolution, ReLU, pooling), filter by filter.

    python scripts/feature_maps.py                      # test image 0 through model.npz
    python scripts/feature_maps.py --index 7 --filters edges
    python scripts/feature_maps.py --image my_digit.png --model model.npz --out my_digit_maps.png

Without a model (or with --filters) the image goes through hand-made filters: convolution,
then ReLU, then 2x2 max pooling.
"""

from common import add_image_arguments, add_model_argument, load_digit, load_model, make_parser

from scratchcnn.filters import EDGE_FILTERS, SOBEL_FILTERS, handmade_network
from scratchcnn.viz import plot_feature_maps

HANDMADE = {"edges": ("the 4x4 edge filters", EDGE_FILTERS), "sobel": ("the Sobel filters", SOBEL_FILTERS)}


def main(argv=None):
    parser = make_parser(__doc__, __file__)
    add_image_arguments(parser)
    add_model_argument(parser, "without it, the hand-made edge filters are used")
    parser.add_argument("--filters", choices=sorted(HANDMADE),
                        help="use these hand-made filters instead of a model")
    parser.add_argument("--max-filters", type=int, default=8, help="filters shown per stage (default: %(default)s)")
    parser.add_argument("--out", default="feature_maps.png", metavar="PNG",
                        help="where to write the picture (default: %(default)s)")
    args = parser.parse_args(argv)

    image, _, label, name = load_digit(args)
    network = filter_names = None
    if args.filters is None:
        network, meta = load_model(args.model, fallback="using the hand-made 4x4 edge filters")
        title = f"{name.capitalize()} through {meta.get('model', args.model)}"
    if network is None:
        description, filters = HANDMADE[args.filters or "edges"]
        network, filter_names = handmade_network(filters), list(filters)
        title = f"{name.capitalize()}: {description}, then ReLU, then 2x2 max pooling"

    plot_feature_maps(network, image, filter_names=filter_names, label=label, title=title,
                      max_filters=args.max_filters, path=args.out)
    print(f"Wrote {args.out} ({name}{'' if label is None else f', label {label}'})")


if __name__ == "__main__":
    main()
