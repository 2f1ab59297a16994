"""Draw convolution filters with their values written on them.

    python scripts/visualize_filters.py                 # hand-made filters, and model.npz's if it exists
    python scripts/visualize_filters.py --model classic.npz --layer 1 --out figures

Writes OUT/handmade_filters.png (the Sobel filters and the 4x4 edge filter with its negation,
transpose and negated transpose) and OUT/learned_filters.png (the model's filters).
"""

from common import add_model_argument, conv_filters, load_model, make_parser, output_path

from scratchcnn.filters import HANDMADE_FILTERS
from scratchcnn.viz import plot_filters


def main(argv=None):
    parser = make_parser(__doc__, __file__)
    add_model_argument(parser, "its learned filters are drawn if it exists")
    parser.add_argument("--layer", type=int, default=0,
                        help="which convolution layer of the model, 0 = the first (default: %(default)s)")
    parser.add_argument("--out", default="figures", metavar="FOLDER",
                        help="folder for the PNGs (default: %(default)s)")
    args = parser.parse_args(argv)

    path = output_path(args.out, "handmade_filters.png")
    plot_filters(HANDMADE_FILTERS, columns=2, title="Hand-made filters:\nSobel (3x3), edge (4x4)", path=path)
    print(f"Wrote {path}")

    network, meta = load_model(args.model, fallback="drawing the hand-made filters only")
    if network is None:
        return
    filters, index = conv_filters(network, args.layer)
    shape = " x ".join(map(str, filters.shape))
    title = f"Learned filters of {meta.get('model', args.model)}, layer {index} ({shape})"
    path = output_path(args.out, "learned_filters.png")
    plot_filters(filters, title=title, path=path)
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
