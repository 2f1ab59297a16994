"""Fully connected layer without activation: ``(N, in_features) -> (N, out_features)``."""
import numpy as np

from .base import Layer, as_array, check_dtype, init_weights


class Dense(Layer):
    """``y = x @ weights + biases``; ``weights`` ``(in_features, out_features)``, ``biases``
    ``(out_features,)``. Input must already be flat ``(N, in_features)`` (put a ``Flatten``
    before it)."""
    caches = ("last_input",)

    def __init__(self, in_features, out_features, init="he", dtype=np.float32, rng=None):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Dense: in_features and out_features must be >= 1, "
                             f"got {in_features}, {out_features}")
        self.in_features, self.out_features, self.init = in_features, out_features, init
        self.dtype = check_dtype(dtype)
        self.params["weights"] = init_weights((in_features, out_features), in_features,
                                              out_features, init, rng, self.dtype)
        self.params["biases"] = np.zeros(out_features, self.dtype)
        self._zero_grads()

    def config(self):
        return dict(in_features=self.in_features, out_features=self.out_features,
                    init=self.init, dtype=self.dtype.name)

    def forward(self, x):
        expected = f"(N, {self.in_features})"
        x = as_array(self, x, (2,), expected)
        if x.shape[1] != self.in_features:
            raise ValueError(f"Dense: expected input of shape {expected}, got shape {x.shape}")
        self.last_input = x.astype(self.dtype, copy=False)
        out = self.last_input @ self.params["weights"]
        out += self.params["biases"]  # in place: no second (N, out_features) array
        return out

    def backward(self, d_out):
        """``d_out`` ``(N, out_features)`` -> ``(N, in_features)`` (None when
        ``needs_input_grad`` is False)."""
        self.grads["weights"] = self.last_input.T @ d_out
        self.grads["biases"] = d_out.sum(axis=0)
        return d_out @ self.params["weights"].T if self.needs_input_grad else None
