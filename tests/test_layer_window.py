"""``Layer.window`` says what each layer's forward actually does.

For every layer kind with a window ``(size, stride, padding)``: the output's spatial size follows
``(I - size + 2P) // S + 1``, and output pixel ``(i, j)`` changes when, and only when, an input
pixel inside rows/columns ``i*S - P .. i*S - P + size - 1`` changes. Layers with flat output have
no window.
"""
import numpy as np
import pytest

from scratchcnn import loops
from scratchcnn.layers import (AvgPool2, Conv2D, Conv3x3, Dense, Dropout, Flatten, MaxPool2, ReLU,
                               Softmax)

CHANNELS = 2


def spatial_layers():
    """``(layer, expected window)`` for every layer kind that keeps a spatial map."""
    rng = np.random.default_rng(0)
    cases = {
        "Conv3x3": (Conv3x3(3, in_channels=CHANNELS, dtype=np.float64, rng=rng), (3, 1, 0)),
        "Conv3x3-same": (Conv3x3(3, in_channels=CHANNELS, padding="same", dtype=np.float64, rng=rng),
                         (3, 1, 1)),
        "Conv2D-k4-s2-p1": (Conv2D(3, 4, in_channels=CHANNELS, stride=2, padding=1, dtype=np.float64,
                                   rng=rng), (4, 2, 1)),
        "Conv2D-k5-s3": (Conv2D(3, 5, in_channels=CHANNELS, stride=3, dtype=np.float64, rng=rng),
                         (5, 3, 0)),
        "MaxPool2": (MaxPool2(), (2, 2, 0)),
        "AvgPool2": (AvgPool2(), (2, 2, 0)),
        "loops.MaxPool2": (loops.MaxPool2(), (2, 2, 0)),
        "ReLU": (ReLU(), (1, 1, 0)),
        "Dropout": (Dropout(0.5, rng=rng), (1, 1, 0)),
    }
    return [pytest.param(layer, window, id=name) for name, (layer, window) in cases.items()]


def window_rows(i, window):
    """The input rows (or columns) output row ``i`` is computed from, clipped to none below 0."""
    size, stride, padding = window
    return range(max(0, i * stride - padding), i * stride - padding + size)


@pytest.mark.parametrize("layer, window", spatial_layers())
@pytest.mark.parametrize("side", [7, 8])
def test_window_matches_what_forward_does(layer, window, side):
    name = type(layer).__name__
    assert layer.window == window
    layer.training = False  # Dropout: the identity, so a change can only come from the window
    rng = np.random.default_rng(side)
    x = rng.uniform(0.1, 1.0, (1, side, side, CHANNELS))   # positive: ReLU passes every change
    out = layer.forward(x)

    size, stride, padding = window
    expected_side = (side - size + 2 * padding) // stride + 1
    assert out.shape[1:3] == (expected_side, expected_side), name

    for r, c in [(0, 0), (side // 2, side // 2 - 1), (side - 1, side - 2), (1, side - 1)]:
        bumped = x.copy()
        bumped[0, r, c, :] += 10.0      # above every other value: a pool's window max changes too
        changed = np.any(layer.forward(bumped) != out, axis=(0, 3))            # (Ho, Wo)
        expected = np.zeros_like(changed)
        for i in range(expected_side):
            for j in range(expected_side):
                expected[i, j] = r in window_rows(i, window) and c in window_rows(j, window)
        assert np.array_equal(changed, expected), f"{name}: input pixel {(r, c)}"


@pytest.mark.parametrize("layer", [Flatten(), Dense(4, 3), Softmax(4, 3)], ids=lambda layer: type(layer).__name__)
def test_layers_with_flat_output_have_no_window(layer):
    assert layer.window is None
