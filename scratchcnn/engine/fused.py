"""Training steps the engine runs as one: a convolution with the BatchNorm and ReLU after it.

The plain network runs ``Conv2D -> BatchNorm -> ReLU`` as three layers, each reading and
writing the whole feature map, each keeping its own copy for backward. ``ConvStep`` runs them
as one step of a ``FusedNetwork``, with the same formulas (so the same numbers, to float
rounding) and fewer passes over memory:

* forward: the convolution's own ``forward`` (im2col and one product); BatchNorm centres that
  output in place instead of in a copy; ReLU clips the normalised output in place;
* backward: ReLU's mask and BatchNorm's gradient in one array, updated in place; the
  convolution's weight gradient by its own ``backward``, and its input gradient by the
  algorithm ``algorithms.input_gradient_algorithm`` picks for the layer's shape.

A ``ConvStep`` is made only for a ``Conv2D`` followed by ``BatchNorm`` or ``ReLU`` or that can
take the shifted input gradient; every other layer runs as itself. The steps fill the layers'
own ``grads`` (and move BatchNorm's running statistics through its own method), so the optimizer
and the synchronised BatchNorm of ``sync.py`` see nothing different. The layers are the engine's
replicas (``replicas.py``), never the network a learner inspects.
"""
import numpy as np

from ..layers import BatchNorm, Conv2D, Conv3x3, ReLU
from ..layers.batchnorm import channel_sum
from ..network import Network
from .algorithms import SHIFTED_MIN_CHANNELS, ShiftedInputGradient, input_gradient_algorithm

CONVOLUTIONS = (Conv2D, Conv3x3)  # exact types: a loop twin computes its own way


class ConvStep:
    """``conv`` [-> ``norm``, a BatchNorm] [-> ``relu``] forward and backward as one step.

    Input and output as the layers': ``(N, H, W[, C]) -> (N, Ho, Wo, F)``. Keeps ``last_output``
    (after the ReLU) and, with a BatchNorm, ``last_centred`` ``(N, Ho, Wo, F)`` for backward.
    """

    def __init__(self, conv, norm=None, relu=None):
        self.conv, self.norm, self.relu = conv, norm, relu
        self.layers = [layer for layer in (conv, norm, relu) if layer is not None]
        self.params = conv.params  # FusedNetwork: the first step with parameters
        self.needs_input_grad = True
        self.shifted = ShiftedInputGradient()
        self.last_output = self.last_centred = self.last_input_shape = None

    def __repr__(self):
        return "+".join(type(layer).__name__ for layer in self.layers)

    def forward(self, x):
        y = self.conv.forward(x)                       # (N, Ho, Wo, F), a new array
        self.last_input_shape = np.shape(x)
        if self.norm is not None:
            y = self._normalise(y)
        if self.relu is not None:
            np.maximum(y, np.zeros(y.shape[1:], y.dtype), out=y)  # as ReLU.forward, in place
        self.last_output = y
        return y

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
        if self.norm is not None:
            d = self._norm_backward(d)
        conv, algorithm = self.conv, input_gradient_algorithm(self.conv, self.last_input_shape)
        wanted = self.needs_input_grad
        conv.needs_input_grad = wanted and algorithm == "col2im"
        try:
            d_x = conv.backward(d)                      # grads; d_x only by col2im
        finally:
            conv.needs_input_grad = True
        if not wanted or algorithm == "col2im":
            return d_x if wanted else None
        f, k = conv.num_filters, conv.kernel_size
        d_x = self.shifted(d, conv.params["filters"].reshape(f, k, k, -1), conv.last_padded_shape, conv.padding)
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


def fusable_convolution(layers, i):
    """A ``ConvStep`` for ``layers[i]`` and the layers it takes in, or None to run it as itself."""
    conv = layers[i]
    if type(conv) not in CONVOLUTIONS:
        return None
    rest = layers[i + 1:i + 3]
    norm = rest[0] if rest and isinstance(rest[0], BatchNorm) and rest[0].num_features == conv.num_filters else None
    after = rest[1:] if norm is not None else rest
    relu = after[0] if after and type(after[0]) is ReLU else None
    if norm is None and relu is None and (conv.stride != 1 or conv.in_channels < SHIFTED_MIN_CHANNELS):
        return None
    return ConvStep(conv, norm, relu)


def fuse(layers):
    """The steps that run ``layers``: a ``ConvStep`` where one applies, else the layer itself."""
    steps, i = [], 0
    while i < len(layers):
        step = fusable_convolution(layers, i)
        steps.append(step if step is not None else layers[i])
        i += len(step.layers) if step is not None else 1
    return steps


def fuses_anything(layers):
    """True if ``fuse(layers)`` runs some layers as other than themselves."""
    return any(fusable_convolution(layers, i) is not None for i in range(len(layers)))


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
