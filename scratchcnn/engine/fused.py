"""Training steps the engine runs as one: a convolution with the BatchNorm and ReLU after it.

The plain network runs ``Conv2D -> BatchNorm -> ReLU`` as three layers, each reading and
writing the whole feature map, each keeping its own copy for backward. ``ConvStep`` runs them
as one step of a ``FusedNetwork``, with the same formulas (so the same numbers, to float
rounding) and fewer passes over memory:

* forward: the convolution's im2col and product, a few images at a time so that each chunk's
  window matrix stays in the CPU's caches (``algorithms.window_chunk``); BatchNorm centres that
  output in place instead of in a copy; ReLU clips the normalised output in place;
* backward: ReLU's mask and BatchNorm's gradient in one array, updated in place; the
  convolution's weight gradient chunk by chunk (each chunk's window matrix filled again, but for
  a single chunk, whose window matrix still holds forward's windows), and
  its input gradient by the algorithm ``algorithms.input_gradient_algorithm`` picks for the
  layer's shape.

A ``ConvStep`` is made only for a ``Conv2D`` followed by ``BatchNorm`` or ``ReLU`` or that can
take the shifted input gradient; every other layer runs as itself. The steps fill the layers'
own ``grads`` (and move BatchNorm's running statistics through its own method), so the optimizer
and the synchronised BatchNorm of ``sync.py`` see nothing different. The layers are the engine's
replicas (``replicas.py``), never the network a learner inspects.
"""
import numpy as np

from ..layers import BatchNorm, Conv2D, Conv3x3, MaxPool2, ReLU
from ..layers.batchnorm import channel_sum
from ..layers.conv import col2im, im2col, output_size, window_matrix
from ..network import Network
from .algorithms import SHIFTED_MIN_CHANNELS, ShiftedInputGradient, input_gradient_algorithm, window_chunk

CONVOLUTIONS = (Conv2D, Conv3x3)  # exact types: a loop twin computes its own way


class ConvStep:
    """``conv`` [-> ``norm``, a BatchNorm] [-> ``relu`` [-> ``pool``, a MaxPool2]] forward and
    backward as one step.

    Input and output as the layers': ``(N, H, W[, C]) -> (N, Ho, Wo, F)``, or ``(N, Ho//2,
    Wo//2, F)`` with the pool. The convolution runs in chunks of ``algorithms.window_chunk``
    images. Keeps the padded input, ``last_output`` (after the ReLU) and, with a BatchNorm,
    ``last_centred`` ``(N, Ho, Wo, F)`` for backward.

    With a pool, the ReLU runs after it: ``max(relu(v)) = relu(max(v))``, and a window's first
    maximum is the same pixel before and after the ReLU wherever its gradient isn't zero, so
    the numbers are the same while the ReLU and its mask cover a quarter of the values.
    """

    def __init__(self, conv, norm=None, relu=None, pool=None):
        self.conv, self.norm, self.relu, self.pool = conv, norm, relu, pool
        self.layers = [layer for layer in (conv, norm, relu, pool) if layer is not None]
        self.params = conv.params  # FusedNetwork: the first step with parameters
        self.needs_input_grad = True
        self.windows = {}  # rows -> a window matrix, refilled chunk after chunk
        self.shifted = {}  # images -> its ShiftedInputGradient
        self.last_output = self.last_centred = self.last_padded = self.last_input_shape = None
        self.windows_hold = None  # the padded input whose windows ``windows`` holds, if whole

    def __repr__(self):
        return "+".join(type(layer).__name__ for layer in self.layers)

    def forward(self, x):
        y = self._convolve(x)                          # (N, Ho, Wo, F), a new array
        if self.norm is not None:
            y = self._normalise(y)
        if self.pool is not None:
            y = np.ascontiguousarray(self.pool.forward(y))  # the pool's strided view, copied
        if self.relu is not None:
            np.maximum(y, np.zeros(y.shape[1:], y.dtype), out=y)  # as ReLU.forward, in place
        self.last_output = y
        return y

    def _chunks(self, backward=False):
        """``(first image, images, window matrix)`` for each chunk of the last input, filled.
        In backward, a single chunk's window matrix still holds what forward filled in."""
        conv, padded = self.conv, self.last_padded
        n, c, k, stride = len(padded), padded.shape[3], conv.kernel_size, conv.stride
        out_h, out_w = self.out_hw
        size = window_chunk(conv, self.last_input_shape, padded.itemsize)
        for start in range(0, n, size):
            images = min(size, n - start)
            rows = images * out_h * out_w
            if rows not in self.windows:
                self.windows[rows] = window_matrix(rows, k, c, "biases" in conv.params, conv.dtype)
            columns = self.windows[rows]
            if not (backward and size >= n and self.windows_hold is padded):
                im2col(padded[start:start + images], k, stride, out_h, out_w, out=columns[:, :k * k * c])
            self.windows_hold = padded if size >= n else None  # the input whose windows they are
            yield start, images, columns

    def _convolve(self, x):
        """``Conv2D.forward``'s numbers, chunk by chunk: ``(N, Ho, Wo, F)``."""
        conv = self.conv
        self.last_input_shape = np.shape(x)
        x = conv._checked_input(x)
        n, h, w, _ = x.shape
        k, s, p, f = conv.kernel_size, conv.stride, conv.padding, conv.num_filters
        self.out_hw = out_h, out_w = output_size(h, k, s, p), output_size(w, k, s, p)
        self.last_padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0))) if p else x
        weights = conv.params["filters"].reshape(f, -1).T                      # (k*k*C, F)
        if "biases" in conv.params:
            weights = np.vstack([weights, conv.params["biases"]])              # (k*k*C + 1, F)
        y = np.empty((n * out_h * out_w, f), conv.dtype)
        pixels = out_h * out_w
        for start, images, columns in self._chunks():
            np.matmul(columns, weights, out=y[start * pixels:(start + images) * pixels])
        return y.reshape(n, out_h, out_w, f)

    def _normalise(self, y):
        """BatchNorm.forward on ``y``, which it may overwrite: ``y`` becomes ``y - mean``."""
        bn = self.norm
        bn._checked_input(y)
        bn.last_used_batch = bn.training
        if bn.training:
            m = bn._values_per_channel(y)
            mean = bn._batch_sum(y) / m
            y -= mean                                   # centred, in place
            var = bn._batch_sum(y * y) / m
            bn._update_running_statistics(mean, var, m)
        else:
            var = bn.running_var
            y -= bn.running_mean
        inv_std = (1 / np.sqrt(var + bn.eps)).astype(bn.dtype)
        self.last_centred, self.inv_std = y, inv_std
        out = y * (bn.params["gamma"] * inv_std)
        out += bn.params["beta"]
        return out

    def backward(self, d_out):
        d = self._relu_backward(d_out)
        if self.pool is not None:
            d = self.pool.backward(d)  # a new array, which _norm_backward may overwrite
        if self.norm is not None:
            d = self._norm_backward(d)
        self._weight_gradients(d)
        return self._input_gradient(d) if self.needs_input_grad else None

    def _weight_gradients(self, d):
        """``Conv2D.backward``'s ``grads``, chunk by chunk, each chunk's window matrix filled
        again; added in the chunks' order."""
        conv, pixels = self.conv, self.out_hw[0] * self.out_hw[1]
        d_rows = d.reshape(-1, conv.num_filters)
        total = 0
        for start, images, columns in self._chunks(backward=True):
            total = total + d_rows[start * pixels:(start + images) * pixels].T @ columns  # (F, k*k*C [+1])
        filters = conv.params["filters"]
        conv.grads["filters"] = total[:, :filters[0].size].reshape(filters.shape)
        if "biases" in conv.params:
            conv.grads["biases"] = np.ascontiguousarray(total[:, -1])

    def _input_gradient(self, d):
        """The gradient w.r.t. the input, by the algorithm ``input_gradient_algorithm`` picks,
        chunk by chunk: ``(N, H, W[, C])``."""
        conv, padded = self.conv, self.last_padded
        f, k, p = conv.num_filters, conv.kernel_size, conv.padding
        filters = conv.params["filters"].reshape(f, k, k, -1)
        out_h, out_w = self.out_hw
        n, hp, wp, c = padded.shape
        d_x = np.empty((n, hp - 2 * p, wp - 2 * p, c), d.dtype)
        size = window_chunk(conv, self.last_input_shape, padded.itemsize)
        shifted = input_gradient_algorithm(conv, self.last_input_shape) == "shifted"
        for start in range(0, n, size):
            images = min(size, n - start)
            d_part = d[start:start + images]
            if shifted:
                run = self.shifted.setdefault(images, ShiftedInputGradient())
                d_x[start:start + images] = run(d_part, filters, (images, hp, wp, c), p)
            else:
                d_padded = col2im(d_part.reshape(-1, f), filters, (images, hp, wp, c), k, conv.stride, out_h, out_w)
                d_x[start:start + images] = d_padded[:, p:hp - p, p:wp - p] if p else d_padded
        return d_x.reshape(self.last_input_shape)

    def _relu_backward(self, d_out):
        """The gradient through the ReLU as a new array (the mask as 0.0/1.0, as ReLU.backward)."""
        if self.relu is None:
            return d_out if self.norm is None else np.array(d_out, copy=True)
        d = (self.last_output > 0).astype(d_out.dtype)
        d *= d_out
        return d

    def _norm_backward(self, d):
        """BatchNorm.backward, overwriting ``d`` (this step's own array)."""
        bn, centred, inv_std = self.norm, self.last_centred, self.inv_std
        m = d.size // bn.num_features
        bn.grads["beta"] = channel_sum(d)
        bn.grads["gamma"] = channel_sum(d * centred) * inv_std
        scale = bn.params["gamma"] * inv_std
        if not bn.last_used_batch:
            d *= scale
            return d
        d_beta, d_gamma = bn._whole_batch_sums(bn.grads["beta"], bn.grads["gamma"])
        d *= scale
        d -= centred * (scale * inv_std * d_gamma / m)
        d -= scale * d_beta / m
        return d


def fusable_layers(layers, i):
    """``[conv, norm, relu, pool]`` (None where absent) that one ``ConvStep`` runs from
    ``layers[i]`` on, or None to run ``layers[i]`` as itself."""
    conv = layers[i]
    if type(conv) not in CONVOLUTIONS:
        return None
    taken, following = [conv, None, None, None], iter(layers[i + 1:])
    layer = next(following, None)
    if isinstance(layer, BatchNorm) and layer.num_features == conv.num_filters:
        taken[1], layer = layer, next(following, None)
    if type(layer) is ReLU:
        taken[2], layer = layer, next(following, None)
        if type(layer) is MaxPool2:  # pooled after a ReLU only: the ReLU then runs after it
            taken[3] = layer
    if taken[1] is None and taken[2] is None and (conv.stride != 1 or conv.in_channels < SHIFTED_MIN_CHANNELS):
        return None
    return taken


def fuse(layers):
    """The steps that run ``layers``: a ``ConvStep`` where one applies, else the layer itself."""
    steps, i = [], 0
    while i < len(layers):
        found = fusable_layers(layers, i)
        steps.append(ConvStep(*found) if found is not None else layers[i])
        i += len(steps[-1].layers) if found is not None else 1
    return steps


def fuses_anything(layers):
    """True if ``fuse(layers)`` runs some layers as other than themselves (checked at every
    training step: it only looks at the layers, building nothing)."""
    return any(fusable_layers(layers, i) is not None for i in range(len(layers)))


class FusedNetwork(Network):
    """A ``Network`` over ``layers`` (the engine's replicas) that runs them as ``fuse`` steps.

    ``layers`` stay the layers, whose ``params`` and ``grads`` the optimizer and the splitter read;
    ``steps`` are what forward and backward run. ``outputs`` holds each step's output.
    """

    def __init__(self, layers):
        super().__init__(layers)
        self.steps = fuse(self.layers)

    def forward(self, x):
        self.outputs = [x]
        for step in self.steps:
            x = step.forward(x)
            self.outputs.append(x)
        return x

    def _backward(self, d_out, input_grad, from_logits):
        steps, last = self.steps, len(self.steps) - 1
        first = 0 if input_grad else next((i for i, step in enumerate(steps) if step.params), 0)
        steps[first].needs_input_grad = input_grad
        try:
            for i in range(last, first - 1, -1):
                step = steps[i]
                d_out = step.backward_from_logits(d_out) if from_logits and i == last else step.backward(d_out)
        finally:
            steps[first].needs_input_grad = True
        return d_out if input_grad else None
