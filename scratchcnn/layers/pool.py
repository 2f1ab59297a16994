"""2x2 pooling, stride 2: ``(N, H, W, C) -> (N, H//2, W//2, C)``.

Odd sizes floor, as in the tutorial: the last row/column of an odd input is never pooled and
gets zero gradient.

Speed note. Channels-last, a pixel's right-hand neighbour sits ``C`` values further on in
memory. So rather than slicing out the four strided window views (NumPy then loops over runs
of only ``C`` values, several times slower for C = 8), both layers view the input as
``(N*H/2, 2, W*C)`` -- the two image rows of each row of windows -- and compare or copy the
flat data with itself shifted by ``C``: every NumPy call streams over long contiguous runs.
Along a row of ``W*C`` values, a window's left pixel is the ``C`` values at ``2*C*j`` and its
right pixel the next ``C`` ("left" and "right" positions below).
"""
import numpy as np

from .base import Layer, as_array, float_dtype


def _check_input(layer, x):
    x = as_array(layer, x, (4,), "(N, H, W, C) with H, W >= 2")
    if x.shape[1] < 2 or x.shape[2] < 2:
        raise ValueError(f"{type(layer).__name__}: expected input of shape (N, H, W, C) with "
                         f"H, W >= 2, got shape {x.shape}")
    return x


def _window_rows(x):
    """``(N, H, W, C)`` -> ``(N*Ho, 2, 2*Wo*C)``: the two image rows under each row of windows.

    Drops the last row/column of odd sizes (a copy only then)."""
    n, h, w, c = x.shape
    x = np.ascontiguousarray(x[:, :h // 2 * 2, :w // 2 * 2])
    return x.reshape(n * (h // 2), 2, (w // 2) * 2 * c)


def _left_positions(row_len, c):
    """``(row_len,)`` booleans, True at the left pixel of each window."""
    return np.arange(row_len) % (2 * c) < c


def _on_both_pixels(a, c):
    """Boolean ``a`` that is True only at left positions -> also True on their right pixels."""
    both = a.copy()
    both.reshape(-1)[c:] |= a.reshape(-1)[:-c]  # a shift by C never crosses a row of windows
    return both


def _spread(d_out, rows_shape):
    """``(N, Ho, Wo, C)`` -> ``(N*Ho, 1, 2*Wo*C)``: each value repeated on both pixels of its
    window row (``np.repeat`` copies runs of C values, fast)."""
    n, ho, wo, c = d_out.shape
    return np.repeat(d_out.reshape(n, ho, wo, 1, c), 2, axis=3).reshape(rows_shape[0], 1, -1)


def _to_input_shape(d_rows, x):
    """``(N*Ho, 2, 2*Wo*C)`` gradient -> shaped like ``x``, zero on a dropped odd row/column."""
    n, h, w, c = x.shape
    d_even = d_rows.reshape(n, h // 2 * 2, w // 2 * 2, c)
    if d_even.shape == x.shape:
        return d_even
    d_x = np.zeros(x.shape, d_rows.dtype)
    d_x[:, :d_even.shape[1], :d_even.shape[2]] = d_even
    return d_x


class MaxPool2(Layer):
    """Max over each 2x2 window.

    Backward routes each window's gradient to exactly one input: the first maximum in
    row-major order when several are tied (as PyTorch does). Ties are common on MNIST,
    where flat background windows hold four equal values; sending the gradient to every
    tied position, as some tutorials do, would count it up to four times.

    Forward takes the max in two steps: between the two columns of each window (ties go
    left), then between the maxima of its two rows (ties go up) -- exactly the first maximum
    in row-major order. It caches ``last_mask`` ``(N*Ho, 2, 2*Wo*C)``, True at the one routed
    maximum of each window, so backward is a single multiply. The output may be a strided view.
    """
    window = (2, 2, 0)  # (size, stride, padding)

    def forward(self, x):
        x = _check_input(self, x)
        self.last_input = x
        n, h, w, c = x.shape
        rows = _window_rows(x)                                  # (N*Ho, 2, 2*Wo*C)
        flat, is_left = rows.reshape(-1), _left_positions(rows.shape[2], c)

        # Step 1, columns: every value against the one C further on (valid at left positions).
        right_wins = np.zeros(rows.shape, bool)
        np.greater(flat[c:], flat[:-c], out=right_wins.reshape(-1)[:-c])
        column_max = np.empty_like(rows)
        np.maximum(flat[:-c], flat[c:], out=column_max.reshape(-1)[:-c])
        column_max.reshape(-1)[-c:] = flat[-c:]
        # Step 2, rows: the column maxima of each window's top row against its bottom row.
        top, bottom = column_max[:, 0], column_max[:, 1]
        bottom_wins = bottom > top                              # (N*Ho, 2*Wo*C)
        out = np.maximum(top, bottom).reshape(n, h // 2, w // 2, 2 * c)[..., :c]

        # One True per window (boolean passes are cheap, unlike np.where or masked copies):
        # in the winning column -- the left pixel unless right_wins, else the right pixel...
        right_wins &= is_left
        self.last_mask = np.greater(is_left, right_wins)   # left positions: not right_wins
        self.last_mask.reshape(-1)[c:] |= right_wins.reshape(-1)[:-c]
        # ...and in the winning row.
        bottom_wins = _on_both_pixels(bottom_wins & is_left, c)
        np.greater(self.last_mask[:, 0], bottom_wins, out=self.last_mask[:, 0])
        self.last_mask[:, 1] &= bottom_wins
        return out

    def backward(self, d_out):
        """``d_out`` ``(N, H//2, W//2, C)`` -> ``(N, H, W, C)``, nonzero only at the maxima."""
        d_rows = _spread(d_out, self.last_mask.shape) * self.last_mask
        return _to_input_shape(d_rows, self.last_input)


class AvgPool2(Layer):
    """Mean over each 2x2 window; backward spreads each gradient evenly over its window."""
    window = (2, 2, 0)  # (size, stride, padding)

    def forward(self, x):
        x = _check_input(self, x)
        x = x.astype(float_dtype(x), copy=False)  # integer pixels would overflow in the sum
        self.last_input = x
        n, h, w, c = x.shape
        rows = _window_rows(x)
        row_sum = rows[:, 0] + rows[:, 1]                        # (N*Ho, 2*Wo*C)
        flat = row_sum.reshape(-1)
        window_sum = flat[:-c] + flat[c:]                        # valid at left positions
        window_sum = np.append(window_sum, flat[-c:]).reshape(n, h // 2, w // 2, 2 * c)
        return window_sum[..., :c] / 4

    def backward(self, d_out):
        share = _spread(d_out / 4, (d_out.shape[0] * d_out.shape[1],))
        n, h, w, c = self.last_input.shape
        d_rows = np.broadcast_to(share, (share.shape[0], 2, share.shape[2]))
        return _to_input_shape(np.ascontiguousarray(d_rows), self.last_input)
