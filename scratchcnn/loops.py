"""The tutorial's layers, written the tutorial's way: one image at a time, explicit loops.

These are the reference ("naive") twins of the vectorized layers in ``scratchcnn.layers``:
same constructor arguments, same ``params``/``grads`` keys and shapes, same
``forward``/``backward`` interface, so either can be plugged into a ``Network`` and their
outputs compared. They are slow on purpose (tens of milliseconds per training image of the
tutorial network: ``python -m scratchcnn.train --loop`` times a step before it starts, and
benchmarks/conv_loop_vs_vectorized.py compares them with the vectorized layers) and meant to be
read and stepped through in a debugger.

Differences from the original tutorial, each to agree with the vectorized layers: batches
(a loop over images), channels and padding for ``Conv3x3``, optional bias, an input gradient
from every layer (but a training network's first, see ``Layer.needs_input_grad``), gradients
kept in ``grads`` instead of updating weights in ``backward``, and ``MaxPool2`` routing a tied
window's gradient to its first maximum only.
"""
import numpy as np

from .layers.base import Layer, as_array, shape_error
from .layers.batchnorm import BatchNorm as _VectorizedBatchNorm
from .layers.conv import Conv3x3 as _VectorizedConv3x3
from .layers.softmax import Softmax as _VectorizedSoftmax


def iterate_regions(image, size, step):
    """Yield ``(region, i, j)`` for every ``size`` x ``size`` region of an ``(h, w, ...)`` image,
    taken every ``step`` pixels."""
    h, w = image.shape[:2]
    for i in range((h - size) // step + 1):
        for j in range((w - size) // step + 1):
            yield image[i * step:i * step + size, j * step:j * step + size], i, j


class Conv3x3(_VectorizedConv3x3):
    """Loop twin of ``scratchcnn.Conv3x3`` (it inherits only the constructor and the checks)."""
    caches = ("last_input", "last_padded")

    def forward(self, x):
        self.last_input = x
        x = self._checked_input(x)  # (N, H, W, C)
        p = self.padding
        self.last_padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        n, h, w, c = self.last_padded.shape
        filters = self.params["filters"].reshape(self.num_filters, 3, 3, c)
        output = np.zeros((n, h - 2, w - 2, self.num_filters), self.dtype)
        for b, image in enumerate(self.last_padded):
            for region, i, j in iterate_regions(image, 3, 1):
                output[b, i, j] = np.sum(region * filters, axis=(1, 2, 3))
        if "biases" in self.params:
            output += self.params["biases"]
        return output

    def backward(self, d_L_d_out):
        filters = self.params["filters"].reshape(self.num_filters, 3, 3, -1)
        d_L_d_filters = np.zeros(filters.shape, self.dtype)
        d_L_d_padded = np.zeros(self.last_padded.shape, self.dtype)
        for b, image in enumerate(self.last_padded):
            for region, i, j in iterate_regions(image, 3, 1):
                for f in range(self.num_filters):
                    d_L_d_filters[f] += d_L_d_out[b, i, j, f] * region
            # Not in the tutorial (its conv is the first layer): the input gradient, each
            # output pixel spreading its filter-weighted gradient over its 3x3 region.
            if self.needs_input_grad:  # False for a network's first layer (see Network)
                for region, i, j in iterate_regions(image, 3, 1):
                    d_L_d_padded[b, i:i + 3, j:j + 3] += np.tensordot(d_L_d_out[b, i, j], filters, axes=1)
        self.grads["filters"] = d_L_d_filters.reshape(self.params["filters"].shape)
        if "biases" in self.params:
            self.grads["biases"] = d_L_d_out.sum(axis=(0, 1, 2))
        if not self.needs_input_grad:
            return None
        p = self.padding
        h, w = d_L_d_padded.shape[1:3]
        return d_L_d_padded[:, p:h - p, p:w - p].reshape(np.shape(self.last_input))


class MaxPool2(Layer):
    """Loop twin of ``scratchcnn.MaxPool2``: ``(N, H, W, C) -> (N, H//2, W//2, C)``."""
    window = (2, 2, 0)  # (size, stride, padding)
    caches = ("last_input",)

    def forward(self, x):
        x = as_array(self, x, (4,), "(N, H, W, C) with H, W >= 2")
        if x.shape[1] < 2 or x.shape[2] < 2:
            raise shape_error(self, "(N, H, W, C) with H, W >= 2", x)
        self.last_input = x
        n, h, w, c = x.shape
        output = np.zeros((n, h // 2, w // 2, c), x.dtype)
        for b, image in enumerate(x):
            for region, i, j in iterate_regions(image, 2, 2):
                output[b, i, j] = np.amax(region, axis=(0, 1))
        return output

    def backward(self, d_L_d_out):
        d_L_d_input = np.zeros(self.last_input.shape, d_L_d_out.dtype)
        for b, image in enumerate(self.last_input):
            for region, i, j in iterate_regions(image, 2, 2):
                for c in range(region.shape[2]):
                    # The first maximum in row-major order gets the whole gradient.
                    i2, j2 = np.unravel_index(np.argmax(region[:, :, c]), (2, 2))
                    d_L_d_input[b, i * 2 + i2, j * 2 + j2, c] = d_L_d_out[b, i, j, c]
        return d_L_d_input


class Softmax(_VectorizedSoftmax):
    """Loop twin of ``scratchcnn.Softmax``: one image at a time, the tutorial's formulas."""

    def forward(self, x):
        x = as_array(self, x, range(2, 8), f"(N, ...) with {self.input_len} values per example")
        if x[0].size != self.input_len:
            raise ValueError(f"Softmax: expected input_len={self.input_len} values per example, "
                             f"got input of shape {x.shape}")
        self.last_input_shape = x.shape
        self.last_input = x.reshape(len(x), -1).astype(self.dtype, copy=False)
        self.last_totals = np.zeros((len(x), self.nodes), self.dtype)
        output = np.zeros((len(x), self.nodes), self.dtype)
        for b, flat in enumerate(self.last_input):
            totals = np.dot(flat, self.params["weights"]) + self.params["biases"]
            self.last_totals[b] = totals
            exp = np.exp(totals - totals.max())  # minus the max: exp can't overflow
            output[b] = exp / np.sum(exp, axis=0)
        self.last_output = output
        return output

    def backward(self, d_L_d_out):
        weights = self.params["weights"]
        self.grads["weights"] = np.zeros_like(weights)
        self.grads["biases"] = np.zeros_like(self.params["biases"])
        d_L_d_inputs = np.zeros(self.last_input.shape, self.dtype)
        for b, flat in enumerate(self.last_input):
            t_exp = np.exp(self.last_totals[b] - self.last_totals[b].max())
            S = np.sum(t_exp)
            d_L_d_t = np.zeros(self.nodes, self.dtype)
            for i, gradient in enumerate(d_L_d_out[b]):
                if gradient == 0:
                    continue
                # Gradients of out[i] against the totals
                d_out_d_t = -t_exp[i] * t_exp / (S ** 2)
                d_out_d_t[i] = t_exp[i] * (S - t_exp[i]) / (S ** 2)
                d_L_d_t += gradient * d_out_d_t
            self.grads["weights"] += flat[:, np.newaxis] @ d_L_d_t[np.newaxis]
            self.grads["biases"] += d_L_d_t
            d_L_d_inputs[b] = weights @ d_L_d_t
        return d_L_d_inputs.reshape(self.last_input_shape)

    def backward_from_logits(self, d_totals):
        """Not in the tutorial: given the gradient w.r.t. the totals, loop over images."""
        self.grads["weights"] = np.zeros_like(self.params["weights"])
        self.grads["biases"] = np.zeros_like(self.params["biases"])
        d_L_d_inputs = np.zeros(self.last_input.shape, self.dtype)
        for b, flat in enumerate(self.last_input):
            self.grads["weights"] += flat[:, np.newaxis] @ d_totals[b][np.newaxis]
            self.grads["biases"] += d_totals[b]
            d_L_d_inputs[b] = self.params["weights"] @ d_totals[b]
        return d_L_d_inputs.reshape(self.last_input_shape)


class BatchNorm(_VectorizedBatchNorm):
    """Loop twin of ``scratchcnn.BatchNorm`` (it inherits the constructor, the checks and the
    extra state). Batch statistics need the whole batch, so instead of one image at a time it
    loops over channels, and over each channel's values one by one; its backward goes through
    the mean and the variance step by step (the chain rule written out, as in cs231n) where
    the vectorized layer uses the compact formula."""

    caches = ("last_input", "last_used_batch", "last_mean", "last_var")

    def forward(self, x):
        x = self._checked_input(x)                    # (N, C) or (N, H, W, C)
        values = x.reshape(-1, self.num_features)     # (m, C): one row per pixel of every image
        m = len(values)
        self.last_input, self.last_used_batch = values, self.training
        self.last_mean = np.zeros(self.num_features, self.dtype)
        self.last_var = np.zeros(self.num_features, self.dtype)
        gamma, beta = self.params["gamma"], self.params["beta"]
        output = np.zeros(values.shape, self.dtype)
        for c in range(self.num_features):
            if self.training:
                mean = 0.0
                for k in range(m):
                    mean += values[k, c]
                mean /= m
                var = 0.0
                for k in range(m):
                    var += (values[k, c] - mean) ** 2
                var /= m  # biased: the batch is normalised with it
                self.running_mean[c] = (1 - self.momentum) * self.running_mean[c] + self.momentum * mean
                self.running_var[c] = ((1 - self.momentum) * self.running_var[c]
                                       + self.momentum * var * m / (m - 1))  # unbiased
            else:
                mean, var = self.running_mean[c], self.running_var[c]
            self.last_mean[c], self.last_var[c] = mean, var
            for k in range(m):
                x_hat = (values[k, c] - mean) / np.sqrt(var + self.eps)
                output[k, c] = gamma[c] * x_hat + beta[c]
        return output.reshape(x.shape)

    def backward(self, d_L_d_out):
        d_out = d_L_d_out.reshape(self.last_input.shape)
        m = len(d_out)
        d_input = np.zeros(d_out.shape, self.dtype)
        self._zero_grads()
        for c in range(self.num_features):
            mean, gamma = self.last_mean[c], self.params["gamma"][c]
            std = np.sqrt(self.last_var[c] + self.eps)
            centred = self.last_input[:, c] - mean
            d_var = d_mean = 0.0
            for k in range(m):
                self.grads["gamma"][c] += d_out[k, c] * centred[k] / std
                self.grads["beta"][c] += d_out[k, c]
                # x_hat = centred / std, std = sqrt(var + eps): d x_hat / d var = -centred / (2 std^3)
                d_var += d_out[k, c] * gamma * centred[k] * -0.5 / std ** 3
            for k in range(m):
                # mean enters x_hat directly and through var = sum(centred^2) / m
                d_mean += -d_out[k, c] * gamma / std + d_var * -2 * centred[k] / m
            for k in range(m):
                d_input[k, c] = d_out[k, c] * gamma / std
                if self.last_used_batch:  # in evaluation, mean and var are constants
                    d_input[k, c] += d_var * 2 * centred[k] / m + d_mean / m
        return d_input.reshape(d_L_d_out.shape)


__all__ = ["iterate_regions", "Conv3x3", "MaxPool2", "Softmax", "BatchNorm"]
