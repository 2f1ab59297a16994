"""Shape-only layers."""
from .base import Layer, as_array, example_rows


class Flatten(Layer):
    """``(N, d1, d2, ...) -> (N, d1*d2*...)``; backward restores the shape."""
    caches = ("last_input_shape",)

    def forward(self, x):
        x = as_array(self, x, range(1, 8), "(N, ...)")
        self.last_input_shape = x.shape
        return example_rows(x)

    def backward(self, d_out):
        return d_out.reshape(self.last_input_shape)
