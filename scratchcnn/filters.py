"""Hand-made filters from the tutorials, and a tiny network that applies them.

Before a network learns its own filters, the tutorials show what a filter *does* with ones
chosen by hand: the Sobel filters, which light up on vertical or horizontal edges, and a
4x4 edge filter with its three rotations/negations. Like the layers, "convolution" here is
cross-correlation: the filter is slid over the image as written, never flipped.

    from scratchcnn.filters import EDGE_FILTERS, edge_network
    network = edge_network()                  # Conv(4 filters, 4x4) -> ReLU -> MaxPool2
    network.forward(image[None])              # (1, 28, 28) -> (1, 12, 12, 4)
    network.outputs                           # [input, conv out, ReLU out, pool out]
"""
import numpy as np

from .layers import Conv2D, MaxPool2, ReLU
from .network import Network

# Sobel filters (3x3). "Vertical" finds vertical edges: dark on the left, bright on the right
# gives a large positive response.
SOBEL_VERTICAL = np.array([[-1, 0, 1],
                           [-2, 0, 2],
                           [-1, 0, 1]], dtype=np.float32)
SOBEL_HORIZONTAL = SOBEL_VERTICAL.T.copy()  # dark above, bright below -> positive

# The tutorial's 4x4 edge filter: each row is [-1, -1, 1, 1] (dark left, bright right).
EDGE_4X4 = np.array([[-1, -1, 1, 1]] * 4, dtype=np.float32)

SOBEL_FILTERS = {
    "Sobel vertical": SOBEL_VERTICAL,
    "Sobel horizontal": SOBEL_HORIZONTAL,
}

EDGE_FILTERS = {
    "edge": EDGE_4X4,                          # dark -> bright, left to right
    "edge, negated": -EDGE_4X4,                # bright -> dark, left to right
    "edge, transposed": EDGE_4X4.T.copy(),     # dark -> bright, top to bottom
    "edge, negated transpose": -EDGE_4X4.T,    # bright -> dark, top to bottom
}

HANDMADE_FILTERS = {**SOBEL_FILTERS, **EDGE_FILTERS}


def filter_bank(filters):
    """A dict (or list) of equal-sized ``(k, k)`` filters -> ``(names, (F, k, k) array)``."""
    if isinstance(filters, dict):
        names, arrays = list(filters), list(filters.values())
    else:
        arrays = [np.asarray(f) for f in filters]
        names = [f"filter {i}" for i in range(len(arrays))]
    shapes = {np.shape(a) for a in arrays}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"filter_bank: expected equal-sized (k, k) filters, got shapes {sorted(shapes)}")
    return names, np.stack(arrays).astype(np.float32)


def handmade_network(filters=None, dtype=np.float32):
    """Convolution with fixed ``filters`` -> ReLU -> MaxPool2, for looking at feature maps.

    ``filters``: a dict name -> ``(k, k)`` array, or an ``(F, k, k)`` array; the four 4x4
    edge filters by default. Input ``(N, 28, 28)`` -> ``(N, (28 - k + 1) // 2, ..., F)``.
    No bias and nothing learned: the filters are exactly the ones given.
    """
    if filters is None:
        filters = EDGE_FILTERS
    if isinstance(filters, np.ndarray) and filters.ndim == 3:
        bank = filters.astype(np.float32)
    else:
        _, bank = filter_bank(filters)
    conv = Conv2D(len(bank), bank.shape[1], bias=False, dtype=dtype)
    conv.params["filters"][...] = bank
    return Network([conv,          # (N, 28, 28)       -> (N, 28-k+1, 28-k+1, F)
                    ReLU(),        # keeps only positive responses
                    MaxPool2()])   # (N, H, W, F)      -> (N, H//2, W//2, F)


def edge_network(dtype=np.float32):
    """``handmade_network`` with the four 4x4 edge filters: ``(N, 28, 28) -> (N, 12, 12, 4)``."""
    return handmade_network(EDGE_FILTERS, dtype)
