"""Element-wise activations."""
import numpy as np

from .base import Layer, as_array


class ReLU(Layer):
    """``max(x, 0)``, any shape. Backward passes the gradient where the input was positive."""
    window = (1, 1, 0)  # element-wise
    caches = ("last_input",)

    def forward(self, x):
        x = as_array(self, x, range(1, 8), "(N, ...)")
        self.last_input = x
        # Against one example's worth of zeros, broadcast over the batch: NumPy's maximum with
        # the scalar 0 takes a slower path on large float32 batches.
        return np.maximum(x, np.zeros(x.shape[1:], x.dtype))

    def backward(self, d_out):
        # The mask as 0.0/1.0 first: NumPy multiplies two float arrays faster than a float array
        # by a boolean one, which it casts piece by piece (the same numbers either way).
        d_out = np.asarray(d_out)
        d_x = (self.last_input > 0).astype(d_out.dtype)
        d_x *= d_out
        return d_x
