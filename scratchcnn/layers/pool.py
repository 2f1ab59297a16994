"""2x2 pooling, stride 2: ``(N, H, W, C) -> (N, H//2, W//2, C)``.

Odd sizes floor, as in the tutorial: the last row/column of an odd input is never pooled and
gets zero gradient. ``scratchcnn.loops.MaxPool2`` is the plain version, one window at a time;
these layers compute the same numbers for the whole batch in a few NumPy passes.

How. Channels-last, a pixel's right-hand neighbour sits ``C`` values further on in memory and
the pixel below it one image row (``W*C`` values) further on. So rather than slicing out the
four corners of every window (strided views: NumPy then loops over runs of only ``C`` values,
several times slower for C = 8), each step combines the whole flat input with itself shifted
by ``C`` (the "columns" step) or by a row (the "rows" step): every NumPy call streams over one
long contiguous run. Results are meaningful at the left pixels (columns step) and at the
top-left pixel of each window (rows step); the other positions hold by-products never used.

Worked example: max-pooling one 4x4 image with one channel, so ``C`` = 1 and a row is 4::

    x             columns step: max of each   rows step: max of those     output
                  pixel and its right-hand    and the ones below them
                  neighbour (left pixels)     (top-left pixels)
    1 3 | 2 2     3 . | 2 .                   4 . | 9 .                   4 9
    4 0 | 7 9     4 . | 9 .                   . . | . .                   6 1
    ----+----
    5 5 | 0 1     5 . | 1 .                   6 . | 1 .
    5 6 | 1 0     6 . | 1 .                   . . | . .

Backward routes each window's gradient to its first maximum in row-major order (PyTorch's
rule; the loop twin's ``np.argmax``), read from the same two steps: the right pixel wins its
pair only when strictly larger (ties go left), the bottom pair only when its maximum is
strictly larger (ties go up). Above, the gradient of 4 goes to x[1, 0] (3 < 4: bottom; 4 > 0:
left), of 9 to x[1, 3], of 6 to x[3, 1] (the tie 5 = 5 never matters: 6 below wins), and of 1
to x[2, 3]: 1 = 1 between the rows, so the top pair, where 0 < 1 picked the right pixel.
``tests/test_layers.py::test_maxpool_worked_example`` checks exactly this.
"""
import numpy as np

from .base import Layer, as_array, float_dtype


def _check_input(layer, x):
    x = as_array(layer, x, (4,), "(N, H, W, C) with H, W >= 2")
    if x.shape[1] < 2 or x.shape[2] < 2:
        raise ValueError(f"{type(layer).__name__}: expected input of shape (N, H, W, C) with "
                         f"H, W >= 2, got shape {x.shape}")
    return x


def _flat_even_part(x):
    """``(N, H, W, C)`` -> its values as one contiguous 1-D array, without the last row/column
    of odd sizes (a copy only then)."""
    n, h, w, c = x.shape
    return np.ascontiguousarray(x[:, :h // 2 * 2, :w // 2 * 2]).reshape(-1)


def shifted(op, flat, shift, dtype=None):
    """``op(flat[i], flat[i + shift])`` for every ``i`` of the 1-D array ``flat``.

    The last ``shift`` values have no partner: they get ``op(flat[i], flat[i])`` only so that
    every result is defined (``np.empty`` would leave whatever was in memory). They are right
    or bottom pixels, whose results are never used."""
    out = np.empty(flat.shape, dtype or flat.dtype)
    op(flat[:-shift], flat[shift:], out=out[:-shift])
    op(flat[-shift:], flat[-shift:], out=out[-shift:])
    return out


def and_not(a, b, out=None):
    """``a and not b`` for boolean arrays, in one pass: ``a > b`` holds only for (True, False)."""
    return np.greater(a, b, out=out)


def _spread(d_out):
    """``(N, Ho, Wo, C)`` -> ``(N*Ho, 1, 2*Wo*C)``: each value on both pixels of its window's row
    (``np.repeat`` copies runs of C values, fast); the 1 broadcasts over the window's two rows."""
    n, ho, wo, c = d_out.shape
    return np.repeat(d_out.reshape(n, ho, wo, 1, c), 2, axis=3).reshape(n * ho, 1, -1)


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
    """Max over each 2x2 window; see the module docstring for how, with a worked example.

    Backward routes each window's gradient to exactly one input: the first maximum in
    row-major order when several are tied (as PyTorch does). Ties are common on MNIST,
    where flat background windows hold four equal values; sending the gradient to every
    tied position, as some tutorials do, would count it up to four times.

    Forward keeps ``last_column_max`` (the columns step) so that backward can tell which pixel
    won; prediction, which never goes backward, pays for the two max steps only. The output
    is a strided view of the rows step's result.
    """
    window = (2, 2, 0)  # (size, stride, padding)
    caches = ("last_input", "last_column_max", "last_patterns")
    last_patterns = None  # (shape key, routing patterns), see _patterns

    def forward(self, x):
        x = _check_input(self, x)
        self.last_input = x
        n, h, w, c = x.shape
        flat = _flat_even_part(x)                     # (N*H2*W2*C,)
        row = (w // 2) * 2 * c                        # the pixel below is a row further on
        # Step 1, columns: each value and its right-hand neighbour, C values further on.
        self.last_column_max = shifted(np.maximum, flat, c)
        # Step 2, rows: each of those and the one below it.
        window_max = shifted(np.maximum, self.last_column_max, row)
        return window_max.reshape(n, h // 2, 2, w // 2, 2, c)[:, :, 0, :, 0]  # top-left pixels

    def backward(self, d_out):
        """``d_out`` ``(N, H//2, W//2, C)`` -> ``(N, H, W, C)``, nonzero only at the maxima."""
        n, h, w, c = self.last_input.shape
        row = (w // 2) * 2 * c
        d_rows = _spread(d_out) * self._routing_mask(c, row).reshape(-1, 2, row)
        return _to_input_shape(d_rows, self.last_input)

    def _routing_mask(self, c, row):
        """``(N*H2*W2*C,)`` booleans: True at the one input each window's gradient goes to."""
        flat, column_max = _flat_even_part(self.last_input), self.last_column_max
        is_left, is_top, is_top_left = self._patterns(flat.size, c, row)
        # Which pixel of each row's pair wins (meaningful at left pixels): the right one only if
        # strictly larger. True on the winner: the left pixel, or C values on for the right.
        right_wins = shifted(np.less, flat, c, bool)  # x[i] < x[i + C]
        right_wins &= is_left
        column_choice = and_not(is_left, right_wins)
        column_choice[c:] |= right_wins[:-c]
        # Which row of each window wins (meaningful at top-left pixels): the bottom one only if
        # strictly larger. True on both pixels of the winning row.
        bottom_wins = shifted(np.less, column_max, row, bool)
        bottom_wins &= is_top_left
        bottom_wins[c:] |= bottom_wins[:-c]           # onto the top row's right pixel (NumPy
                                                      # reads overlapping operands unshifted)
        row_choice = and_not(is_top, bottom_wins)
        row_choice[row:] |= bottom_wins[:-row]        # onto the bottom row
        column_choice &= row_choice                   # the winning pixel of the winning row
        return column_choice

    def _patterns(self, size, c, row):
        """``(is_left, is_top, is_top_left)``: booleans over the flat even part of the input,
        True at the left pixels, the windows' top rows, and both. Kept between steps of the same
        shape: full-length operands make every pass above contiguous, which is faster than
        broadcasting one line's pattern (benchmarks/README.md, "Why the code is written this way")."""
        key = (size, c, row)
        if self.last_patterns is None or self.last_patterns[0] != key:
            pair = np.arange(2 * row)                 # positions along a pair of image rows
            is_left, is_top = (np.tile(line, size // (2 * row)) for line in (pair % (2 * c) < c, pair < row))
            self.last_patterns = (key, (is_left, is_top, is_left & is_top))
        return self.last_patterns[1]


class AvgPool2(Layer):
    """Mean over each 2x2 window; backward spreads each gradient evenly over its window."""
    window = (2, 2, 0)  # (size, stride, padding)
    caches = ("last_input",)

    def forward(self, x):
        x = _check_input(self, x)
        x = x.astype(float_dtype(x), copy=False)  # integer pixels would overflow in the sum
        self.last_input = x
        n, h, w, c = x.shape
        flat = _flat_even_part(x)
        column_sum = shifted(np.add, flat, c)                     # the same two steps as
        window_sum = shifted(np.add, column_sum, (w // 2) * 2 * c)  # MaxPool2, adding
        return window_sum.reshape(n, h // 2, 2, w // 2, 2, c)[:, :, 0, :, 0] / 4

    def backward(self, d_out):
        share = _spread(d_out / 4)                                # (N*Ho, 1, 2*Wo*C)
        d_rows = np.broadcast_to(share, (share.shape[0], 2, share.shape[2]))
        return _to_input_shape(np.ascontiguousarray(d_rows), self.last_input)
