"""Prediction with BatchNorm folded into the weights before it, and ReLU done in place.

In evaluation a BatchNorm is a fixed per-channel affine map of its input, with its running
statistics: ``y = (z - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``. When ``z`` is a
product ``x @ W + b`` (a convolution's or a dense layer's), the map folds into the product:

    y = x @ (W * s) + ((b - mean) * s + beta)

so the BatchNorm costs nothing at all, and a ReLU after it clips the product's output in place.
``FoldedProduct`` runs a ``Conv2D`` or ``Dense`` [-> ``BatchNorm``] [-> ``ReLU``] that way: the
convolution by im2col with the folded bias as the last row of the weights (the "bias trick" of
``layers/conv.py``), the dense layer as one product. The numbers are the plain network's to float
rounding (the same products, summed in another order).

The weights are folded when the ``FoldedNetwork`` is built, from the layers' current parameters
and running statistics: ``FastEngine`` builds one per call of ``predict_proba``, so training in
between shows. Only whole-batch prediction runs this way (``FastEngine.predict_proba``, hence
``evaluate``, ``predict`` and the benchmarks); the page's answers about one drawing run the plain
network, whose every map they show.
"""
import numpy as np

from ..layers import BatchNorm, Dense, ReLU
from ..layers.conv import im2col, output_size, window_matrix
from ..network import Network
from .fused import CONVOLUTIONS


class FoldedProduct:
    """``product`` (a ``Conv2D`` or ``Dense``) [-> ``norm``] [-> ``relu``] in evaluation, as one
    product with folded weights ``(K [+1], F)``. A convolution keeps its window matrix between
    calls of the same shape (``columns``), as the layer does."""

    def __init__(self, product, norm=None, relu=None, columns=None):
        self.product, self.norm, self.relu = product, norm, relu
        self.layers = [layer for layer in (product, norm, relu) if layer is not None]
        self.params = {}  # nothing to train: a FoldedNetwork only predicts
        self.columns = columns
        self.weights = folded_weights(product, norm)

    def __repr__(self):
        return "+".join(type(layer).__name__ for layer in self.layers) + " (folded)"

    def forward(self, x):
        if isinstance(self.product, Dense):
            y = self.product_input(x) @ self.weights[:-1]
            y += self.weights[-1]
        else:
            y = self._convolve(x)
        if self.relu is not None:
            np.maximum(y, np.zeros(y.shape[1:], y.dtype), out=y)  # as ReLU.forward, in place
        return y

    def product_input(self, x):
        """A dense layer's input, checked as ``Dense.forward`` checks it."""
        dense = self.product
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != dense.in_features:
            raise ValueError(f"Dense: expected input of shape (N, {dense.in_features}), got shape {x.shape}")
        return x.astype(dense.dtype, copy=False)

    def _convolve(self, x):
        """The convolution's forward with the folded weights (bias row last): ``(N, Ho, Wo, F)``."""
        conv = self.product
        x = conv._checked_input(x)
        n, h, w, c = x.shape
        k, s, p = conv.kernel_size, conv.stride, conv.padding
        out_h, out_w = output_size(h, k, s, p), output_size(w, k, s, p)
        x_padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0))) if p else x
        rows = n * out_h * out_w
        if self.columns is None or self.columns.shape[0] != rows or self.columns.dtype != conv.dtype:
            self.columns = window_matrix(rows, k, c, True, conv.dtype)
        im2col(x_padded, k, s, out_h, out_w, out=self.columns[:, :k * k * c])
        return (self.columns @ self.weights).reshape(n, out_h, out_w, -1)


def folded_weights(product, norm):
    """``(K + 1, F)``: the product's weights, then its bias, with ``norm`` (a BatchNorm in
    evaluation, or None) folded in."""
    if isinstance(product, Dense):
        weights, bias = product.params["weights"], product.params["biases"]
    else:
        filters = product.params["filters"]
        weights = filters.reshape(len(filters), -1).T                       # (k*k*C, F)
        bias = product.params.get("biases", np.zeros(len(filters), product.dtype))
    if norm is not None:
        scale = norm.params["gamma"] * (1 / np.sqrt(norm.running_var + norm.eps)).astype(norm.dtype)
        weights = weights * scale
        bias = (bias - norm.running_mean) * scale + norm.params["beta"]
    return np.vstack([weights, bias]).astype(product.dtype, copy=False)


def foldable(layers, i):
    """``(product, norm, relu)`` for ``layers[i]`` and the layers it folds in, or None.

    A convolution folds the BatchNorm and ReLU after it; a dense layer only a BatchNorm (and the
    ReLU after that): a lone dense product gains nothing from being run another way."""
    product = layers[i]
    is_conv = type(product) in CONVOLUTIONS
    if not is_conv and type(product) is not Dense:
        return None
    width = product.num_filters if is_conv else product.out_features
    rest = layers[i + 1:i + 3]
    norm = rest[0] if rest and isinstance(rest[0], BatchNorm) and rest[0].num_features == width else None
    after = rest[1:] if norm is not None else rest
    relu = after[0] if after and type(after[0]) is ReLU else None
    if norm is None and (relu is None or not is_conv):
        return None
    return product, norm, relu


def folds_anything(layers):
    return any(foldable(layers, i) is not None for i in range(len(layers)))


class FoldedNetwork(Network):
    """A ``Network`` over ``layers`` (replicas, in evaluation) that predicts through folded steps;
    ``steps`` are what ``forward`` runs. ``previous``: an earlier FoldedNetwork of the same
    layers, whose window matrices it reuses. Not for training: it has no backward."""

    def __init__(self, layers, previous=None):
        super().__init__(layers)
        old = [step.columns for step in getattr(previous, "steps", []) if isinstance(step, FoldedProduct)]
        self.steps, i = [], 0
        while i < len(self.layers):
            found = foldable(self.layers, i)
            if found is None:
                self.steps.append(self.layers[i])
                i += 1
                continue
            self.steps.append(FoldedProduct(*found, columns=old.pop(0) if old else None))
            i += len(self.steps[-1].layers)

    def forward(self, x):
        self.outputs = [x]
        for step in self.steps:
            x = step.forward(x)
            self.outputs.append(x)
        return x

    def backward(self, d_out, input_grad=True):
        raise TypeError("FoldedNetwork: predicts only; train through FastEngine.train_step")
