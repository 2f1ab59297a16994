"""How the engine computes a convolution: in chunks of images, and which input gradient.

**Chunks.** ``Conv2D.forward`` fills one window matrix for the whole batch (for a 32-channel
convolution at 24x24, 21 MB for 32 images), which the product then reads back from memory. The
engine's convolution (``fused.ConvStep``) fills and multiplies it a few images at a time, as
many as keep it within ``WINDOW_CHUNK_BYTES`` (``window_chunk``), so the product reads it from
the CPU's caches; backward fills each chunk's window matrix again for the weight gradient (a
cheap copy) rather than keeping the whole one. The chunk depends only on the layer's shape, and
the chunks' weight gradients are added in their fixed order.

**The input gradient.**
``Conv2D.backward`` (``layers/conv.py``) sends every window's gradient back in place with
``col2im``: k*k products ``(M, F) @ (F, C)``, each added into a strided slice of the padded
input. For stride 1 there is a form without strided slices, the *shifted products*: store the
output gradient at the padded input's full width (zeros where no window starts, at the right
and bottom edges), flatten it to rows ``(N*Hp*Wp, F)``, and the window at kernel offset
``(i, j)`` of every output pixel lies exactly ``i*Wp + j`` rows further on. So each of the k*k
products adds into one contiguous run of rows of the flat input gradient::

    d_x_flat[i*Wp + j : i*Wp + j + L] += d_out_full[:L] @ filters[:, i, j, :]    (L rows)

It computes the rows of the border (the zeros of ``d_out_full``) for nothing, a share of
``Hp*Wp / (Ho*Wo) - 1`` more rows, so it pays only on large maps with enough channels.

The rule, fixed on the layer's shape (never timed at run time, so the same seed and thread count
give the same numbers): shifted products when the stride is 1, the layer has at least
``SHIFTED_MIN_CHANNELS`` input channels and the padded input has at most ``SHIFTED_MAX_AREA``
times the output's pixels; ``col2im`` otherwise. For the networks of ``scratchcnn.models``:
classic's second convolution (16 channels, 26x26 -> 24x24) and modern's second (32 channels,
26x26 -> 24x24) take the shifted products; the 12x12 -> 10x10 and 10x10 -> 8x8 ones, a third
wasted or more, keep ``col2im``; a first layer (one channel) never computes its input gradient
in training. The measurements behind the thresholds are in benchmarks/README.md.
"""
import numpy as np

SHIFTED_MIN_CHANNELS = 16
SHIFTED_MAX_AREA = 1.25
WINDOW_CHUNK_BYTES = 3 * 2 ** 20  # the budget of chunks.CHUNK_BYTES, for one window matrix


def window_chunk(conv, input_shape, itemsize):
    """Images per chunk of ``conv``'s window matrix on an input ``(N, H, W[, C])``: as many as
    keep it within ``WINDOW_CHUNK_BYTES``, at least 1, at most N."""
    n, h, w = input_shape[:3]
    p, k, s = conv.padding, conv.kernel_size, conv.stride
    pixels = ((h + 2 * p - k) // s + 1) * ((w + 2 * p - k) // s + 1)
    row_bytes = (k * k * conv.in_channels + 1) * itemsize
    return int(min(n, max(1, WINDOW_CHUNK_BYTES // (pixels * row_bytes))))


def input_gradient_algorithm(conv, input_shape):
    """``"shifted"`` or ``"col2im"`` for ``conv`` (a ``Conv2D``) on an input ``(N, H, W[, C])``."""
    h, w = input_shape[1], input_shape[2]
    p, k = conv.padding, conv.kernel_size
    hp, wp = h + 2 * p, w + 2 * p
    ho, wo = hp - k + 1, wp - k + 1
    if conv.stride != 1 or conv.in_channels < SHIFTED_MIN_CHANNELS or ho < 1 or wo < 1:
        return "col2im"
    return "shifted" if hp * wp <= SHIFTED_MAX_AREA * ho * wo else "col2im"


class ShiftedInputGradient:
    """The shifted-products input gradient of one stride-1 convolution, with its buffers.

    The full-width output gradient is kept between calls of the same shape: only its top-left
    ``Ho x Wo`` corner is rewritten, so its border stays zero.
    """

    def __init__(self):
        self.full = None  # (N, Hp, Wp, F): the output gradient at full width, zero border
        self.product = None  # (L, C): one product's rows, reused

    def __call__(self, d_out, filters, padded_shape, padding):
        """``d_out`` ``(N, Ho, Wo, F)``, ``filters`` ``(F, k, k, C)``, ``padded_shape``
        ``(N, Hp, Wp, C)`` -> the gradient w.r.t. the unpadded input ``(N, H, W, C)``."""
        n, ho, wo, f = d_out.shape
        _, hp, wp, c = padded_shape
        k = filters.shape[1]
        if self.full is None or self.full.shape != (n, hp, wp, f) or self.full.dtype != d_out.dtype:
            self.full = np.zeros((n, hp, wp, f), d_out.dtype)
        self.full[:, :ho, :wo] = d_out
        rows = self.full.reshape(-1, f)
        length = n * hp * wp - (k - 1) * (wp + 1)  # rows every offset can read
        if self.product is None or self.product.shape != (length, c) or self.product.dtype != d_out.dtype:
            self.product = np.empty((length, c), d_out.dtype)
        d_flat = np.empty((n * hp * wp, c), d_out.dtype)
        np.matmul(rows[:length], filters[:, 0, 0, :], out=d_flat[:length])  # offset (0, 0) first
        d_flat[length:] = 0
        for i in range(k):
            for j in range(k):
                if i == j == 0:
                    continue
                start = i * wp + j
                np.matmul(rows[:length], filters[:, i, j, :], out=self.product)
                d_flat[start:start + length] += self.product
        d_padded = d_flat.reshape(n, hp, wp, c)
        return d_padded[:, padding:hp - padding, padding:wp - padding] if padding else d_padded
