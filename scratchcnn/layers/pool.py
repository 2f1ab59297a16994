"""2x2 pooling, stride 2: ``(N, H, W, C) -> (N, H//2, W//2, C)``.

Odd sizes floor, as in the tutorial: the last row/column of an odd input is never pooled and
gets zero gradient. Both layers work on the four strided views ``x[:, di::2, dj::2]`` of the
(cropped) input, one per position in the window, so forward and backward are four vectorized
steps each.
"""
import numpy as np

from .base import Layer, as_array, float_dtype

# Window offsets in row-major order: top-left, top-right, bottom-left, bottom-right.
OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))


def _check_input(layer, x):
    x = as_array(layer, x, (4,), "(N, H, W, C) with H, W >= 2")
    if x.shape[1] < 2 or x.shape[2] < 2:
        raise ValueError(f"{type(layer).__name__}: expected input of shape (N, H, W, C) with "
                         f"H, W >= 2, got shape {x.shape}")
    return x


def _window_views(x, out_h, out_w):
    """The four ``(N, out_h, out_w, C)`` views, one per window position, in row-major order."""
    return [x[:, di:2 * out_h:2, dj:2 * out_w:2] for di, dj in OFFSETS]


class MaxPool2(Layer):
    """Max over each 2x2 window.

    Backward routes each window's gradient to exactly one input: the first maximum in
    row-major order when several are tied (as PyTorch does). Ties are common on MNIST,
    where flat background windows hold four equal values; sending the gradient to every
    tied position, as some tutorials do, would count it up to four times.
    """

    def forward(self, x):
        x = _check_input(self, x)
        self.last_input = x
        out_h, out_w = x.shape[1] // 2, x.shape[2] // 2
        a, b, c, d = _window_views(x, out_h, out_w)
        self.last_output = np.maximum(np.maximum(a, b), np.maximum(c, d))
        return self.last_output

    def backward(self, d_out):
        x, out = self.last_input, self.last_output
        d_x = np.zeros(x.shape, d_out.dtype)
        already_routed = np.zeros(out.shape, dtype=bool)
        for view, d_view in zip(_window_views(x, *out.shape[1:3]), _window_views(d_x, *out.shape[1:3])):
            is_first_max = (view == out) & ~already_routed
            d_view[...] = np.where(is_first_max, d_out, 0)  # writes through into d_x
            already_routed |= is_first_max
        return d_x


class AvgPool2(Layer):
    """Mean over each 2x2 window; backward spreads each gradient evenly over its window."""

    def forward(self, x):
        x = _check_input(self, x)
        x = x.astype(float_dtype(x), copy=False)  # integer pixels would overflow in the sum
        self.last_input = x
        a, b, c, d = _window_views(x, x.shape[1] // 2, x.shape[2] // 2)
        return (a + b + c + d) / 4

    def backward(self, d_out):
        x = self.last_input
        d_x = np.zeros(x.shape, d_out.dtype)
        share = d_out / 4
        for d_view in _window_views(d_x, *d_out.shape[1:3]):
            d_view[...] = share
        return d_x
