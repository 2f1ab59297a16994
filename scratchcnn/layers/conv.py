"""Convolution layers: a general ``Conv2D`` and the tutorial's ``Conv3x3``.

Vectorized with im2col: every k x k window of the batch becomes one row of a matrix, so the
whole forward pass is a single matrix product (BLAS) and the weight gradient another. The
input gradient is the reverse scatter (col2im), done as k*k shifted-slice additions, never
``np.add.at``. Like every framework, "convolution" here is cross-correlation (no kernel flip),
which is what the tutorial computes too. ``scratchcnn.loops.Conv3x3`` is the plain version,
one window at a time.

Three choices make it fast without hiding anything: the window matrix is kept between steps and
refilled in place while the batch shape stays the same (fresh memory pages every step cost
time); with a bias, the window matrix ends with a column of ones, so the biases are one more row
of the weight matrix (the "bias trick": the forward product adds them and the weight-gradient
product also yields their gradient); and the first layer of a training network skips its input
gradient (``needs_input_grad``). What was measured, and what was tried and dropped, is in
benchmarks/README.md ("Why the code is written this way").
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .base import Layer, as_array, check_dtype, init_weights, shape_error


def output_size(size, kernel_size, stride, padding):
    """Spatial output size of a convolution: ``(I - F + 2P) // S + 1``."""
    return (size - kernel_size + 2 * padding) // stride + 1


def window_matrix(rows, k, channels, bias, dtype):
    """An empty window matrix ``(rows, k*k*C)``, plus a last column of ones when ``bias``.

    With one channel it is column-major (Fortran order): each of the k*k columns is then one
    contiguous shifted-slice copy, faster to fill than rows of k*k values, and BLAS
    multiplies a transposed matrix at no extra cost.
    """
    width = k * k * channels + bool(bias)
    columns = np.empty((width, rows), dtype).T if channels == 1 else np.empty((rows, width), dtype)
    if bias:
        columns[:, -1] = 1
    return columns


def im2col(x_padded, k, stride, out_h, out_w, out):
    """Windows of a padded batch as rows: ``(N, Hp, Wp, C) -> out (N*out_h*out_w, k*k*C)``.

    Columns are ordered ``(ki, kj, c)``, matching filters stored as ``(F, k, k, C)``. ``out``
    comes from ``window_matrix`` (column-major for one channel).
    """
    n, _, _, c = x_padded.shape
    if c == 1:
        cols_t = out.T.reshape(k, k, n, out_h, out_w)  # (ki, kj, window), contiguous
        for i in range(k):
            for j in range(k):
                cols_t[i, j] = x_padded[:, i:i + stride * out_h:stride, j:j + stride * out_w:stride, 0]
        return out
    # Many channels: one copy of the strided view of all windows, faster than k*k slices.
    windows = sliding_window_view(x_padded, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    np.copyto(out.reshape(n, out_h, out_w, k, k, c), windows.transpose(0, 1, 2, 4, 5, 3))
    return out


def col2im(d_out2d, filters, padded_shape, k, stride, out_h, out_w):
    """Gradient w.r.t. the padded input: every window's gradient summed back where it came from.

    ``d_out2d`` ``(N*out_h*out_w, F)``, ``filters`` ``(F, k, k, C)``; returns ``(N, Hp, Wp, C)``
    as k*k shifted-slice additions (overlapping windows accumulate), never ``np.add.at``.
    One channel: one product gives all k*k window columns, each contiguous (column-major).
    Many channels: one ``(M, F) @ (F, C)`` product per kernel offset, faster than forming the
    whole ``(M, k*k*C)`` window-gradient matrix and reading it back strided.
    """
    n, _, _, c = padded_shape
    f = filters.shape[0]
    if c == 1:
        d_windows = (filters.reshape(f, k * k).T @ d_out2d.T).reshape(k, k, n, out_h, out_w, 1)
    d_padded = np.zeros(padded_shape, d_out2d.dtype)
    for i in range(k):
        for j in range(k):
            d_window = d_windows[i, j] if c == 1 else (d_out2d @ filters[:, i, j, :]).reshape(n, out_h, out_w, c)
            d_padded[:, i:i + stride * out_h:stride, j:j + stride * out_w:stride] += d_window
    return d_padded


def resolve_padding(padding, kernel_size, stride):
    """``"valid"`` -> 0, ``"same"`` -> k // 2 (odd k, stride 1), or a non-negative int."""
    if padding == "valid":
        return 0
    if padding == "same":
        if kernel_size % 2 == 0 or stride != 1:
            raise ValueError('padding="same" needs an odd kernel size and stride 1; '
                             "pass an integer padding instead")
        return kernel_size // 2
    if isinstance(padding, (int, np.integer)) and padding >= 0:
        return int(padding)
    raise ValueError(f'padding must be "valid", "same" or an int >= 0, got {padding!r}')


class Conv2D(Layer):
    """Square-kernel 2-D convolution over channels-last batches.

    Input ``(N, H, W)`` (one channel, like the tutorial's images) or ``(N, H, W, C)``;
    output ``(N, Ho, Wo, F)`` with ``Ho = (H - k + 2P) // S + 1``.
    ``params["filters"]`` is ``(F, k, k)`` for one input channel, ``(F, k, k, C)`` otherwise;
    ``params["biases"]`` is ``(F,)`` when ``bias=True``.
    """
    caches = ("last_input", "last_columns", "last_padded_shape")

    def __init__(self, num_filters, kernel_size, in_channels=1, stride=1, padding="valid",
                 bias=True, init="he", dtype=np.float32, rng=None):
        super().__init__()
        if num_filters < 1 or kernel_size < 1 or in_channels < 1 or stride < 1:
            raise ValueError(f"{type(self).__name__}: num_filters, kernel_size, in_channels and "
                             "stride must all be >= 1")
        self.num_filters, self.kernel_size = num_filters, kernel_size
        self.in_channels, self.stride = in_channels, stride
        self.padding_arg, self.init = padding, init
        self.padding = resolve_padding(padding, kernel_size, stride)
        self.window = (kernel_size, stride, self.padding)  # see Layer.window
        self.dtype = check_dtype(dtype)
        k, c = kernel_size, in_channels
        shape = (num_filters, k, k) if c == 1 else (num_filters, k, k, c)
        self.params["filters"] = init_weights(shape, k * k * c, k * k * num_filters, init, rng, self.dtype)
        if bias:
            self.params["biases"] = np.zeros(num_filters, self.dtype)
        self._zero_grads()
        self.last_columns = None  # the window matrix, refilled by each forward of the same shape

    def config(self):
        return dict(num_filters=self.num_filters, kernel_size=self.kernel_size,
                    in_channels=self.in_channels, stride=self.stride, padding=self.padding_arg,
                    bias="biases" in self.params, init=self.init, dtype=self.dtype.name)

    def _checked_input(self, x):
        """``x`` as ``(N, H, W, C)`` in the layer's dtype, or a ValueError saying what's wrong."""
        c = self.in_channels
        expected = "(N, H, W) or (N, H, W, 1)" if c == 1 else f"(N, H, W, {c})"
        x = as_array(self, x, (3, 4), expected)
        if x.ndim == 3:
            if c != 1:
                raise shape_error(self, expected, x)
            x = x[..., None]
        if x.shape[3] != c:
            raise shape_error(self, expected, x)
        k, p = self.kernel_size, self.padding
        if x.shape[1] + 2 * p < k or x.shape[2] + 2 * p < k:
            raise ValueError(f"{type(self).__name__}: input of spatial size {x.shape[1]}x{x.shape[2]} "
                             f"(padding {p}) is smaller than the {k}x{k} kernel")
        return x.astype(self.dtype, copy=False)

    def forward(self, x):
        self.last_input = x
        x = self._checked_input(x)
        n, h, w, c = x.shape
        k, s, p, f = self.kernel_size, self.stride, self.padding, self.num_filters
        out_h, out_w = output_size(h, k, s, p), output_size(w, k, s, p)
        x_padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0))) if p else x
        rows, bias = n * out_h * out_w, "biases" in self.params
        if self.last_columns is None or self.last_columns.shape[0] != rows:  # else refill it
            self.last_columns = window_matrix(rows, k, c, bias, self.dtype)  # (N*Ho*Wo, k*k*C [+1])
        # Step 1, im2col: every window of the batch becomes a row of the window matrix.
        im2col(x_padded, k, s, out_h, out_w, out=self.last_columns[:, :k * k * c])
        # Step 2, one product: every output pixel of every filter (plus its bias).
        weights = self.params["filters"].reshape(f, -1).T                      # (k*k*C, F)
        if bias:
            weights = np.vstack([weights, self.params["biases"]])              # (k*k*C + 1, F)
        self.last_padded_shape = x_padded.shape
        return (self.last_columns @ weights).reshape(n, out_h, out_w, f)

    def backward(self, d_out):
        """``d_out`` ``(N, Ho, Wo, F)`` -> gradient w.r.t. the input, shaped like it (None when
        ``needs_input_grad`` is False)."""
        n, out_h, out_w, f = d_out.shape
        d_out2d = d_out.reshape(-1, f)                            # (N*Ho*Wo, F), a row per window
        filters = self.params["filters"]
        # Step 1, weights: every window's pixels times its gradient, summed over the windows,
        # (k*k*C [+1], F). The same product either way round; BLAS is faster with a row-major
        # window matrix as the right-hand operand.
        if self.last_columns.flags.c_contiguous:
            d_weights = (d_out2d.T @ self.last_columns).T
        else:
            d_weights = self.last_columns.T @ d_out2d
        self.grads["filters"] = d_weights[:filters[0].size].T.reshape(filters.shape)
        if "biases" in self.params:
            self.grads["biases"] = np.ascontiguousarray(d_weights[-1])  # the column of ones'
        if not self.needs_input_grad:
            return None
        # Step 2, input (col2im): every window's gradient, through the filters, back in place.
        d_padded = col2im(d_out2d, filters.reshape(f, self.kernel_size, self.kernel_size, -1),
                          self.last_padded_shape, self.kernel_size, self.stride, out_h, out_w)
        p = self.padding
        d_x = d_padded[:, p:d_padded.shape[1] - p, p:d_padded.shape[2] - p, :] if p else d_padded
        return d_x.reshape(np.shape(self.last_input))


class Conv3x3(Conv2D):
    """The tutorial's convolution: ``num_filters`` 3x3 filters, stride 1.

    ``(N, 28, 28) -> (N, 26, 26, num_filters)`` with ``padding="valid"``, or
    ``(N, 28, 28, num_filters)`` with ``"same"``. Filters start as ``randn / 9`` like the
    tutorial's (``init="tutorial"``) and, like the tutorial's, have no bias unless
    ``bias=True``; use ``init="he"`` in deep ReLU networks.
    """

    def __init__(self, num_filters, in_channels=1, padding="valid", bias=False,
                 init="tutorial", dtype=np.float32, rng=None):
        super().__init__(num_filters, 3, in_channels=in_channels, stride=1, padding=padding,
                         bias=bias, init=init, dtype=dtype, rng=rng)

    def config(self):
        cfg = super().config()
        del cfg["kernel_size"], cfg["stride"]
        return cfg
