"""The tutorial's last layer: fully connected, then softmax. ``(N, ...) -> (N, nodes)``."""
import numpy as np

from .base import Layer, as_array, check_dtype, example_rows, init_weights


def stable_softmax(logits):
    """Row-wise softmax of ``(N, K)`` logits; subtracting the row max keeps ``exp`` finite."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class Softmax(Layer):
    """Flatten, multiply by ``weights`` ``(input_len, nodes)``, add ``biases`` ``(nodes,)``,
    softmax. Input ``(N, ...)`` with ``input_len`` values per example; output ``(N, nodes)``
    probabilities.

    ``backward`` takes the gradient of the loss w.r.t. the output *probabilities*, as the
    tutorial's ``d_L_d_out``. ``backward_from_logits`` skips the softmax Jacobian when the
    caller already has the gradient w.r.t. the logits (``Network`` uses it with
    cross-entropy, whose gradient there is simply ``probs - one_hot``).
    """
    caches = ("last_input_shape", "last_input", "last_totals", "last_output")

    def __init__(self, input_len, nodes, init="tutorial", dtype=np.float32, rng=None):
        super().__init__()
        if input_len < 1 or nodes < 1:
            raise ValueError(f"Softmax: input_len and nodes must be >= 1, got {input_len}, {nodes}")
        self.input_len, self.nodes, self.init = input_len, nodes, init
        self.dtype = check_dtype(dtype)
        self.params["weights"] = init_weights((input_len, nodes), input_len, nodes, init, rng, self.dtype)
        self.params["biases"] = np.zeros(nodes, self.dtype)
        self._zero_grads()

    def config(self):
        return dict(input_len=self.input_len, nodes=self.nodes, init=self.init, dtype=self.dtype.name)

    def forward(self, x):
        x = as_array(self, x, range(2, 8), f"(N, ...) with {self.input_len} values per example")
        if x[0].size != self.input_len:
            raise ValueError(f"Softmax: expected input_len={self.input_len} values per example, "
                             f"got input of shape {x.shape} ({x[0].size} per example); "
                             "build the layer with input_len = the product of its input's shape "
                             f"after the batch axis")
        self.last_input_shape = x.shape
        self.last_input = example_rows(x).astype(self.dtype, copy=False)  # (N, input_len)
        self.last_totals = self.last_input @ self.params["weights"]
        self.last_totals += self.params["biases"]
        self.last_output = stable_softmax(self.last_totals)
        return self.last_output

    def backward(self, d_out):
        """``d_out`` ``(N, nodes)``, gradient w.r.t. the probabilities -> gradient w.r.t. the input."""
        p = self.last_output
        # Softmax Jacobian-vector product: dL/dz_j = p_j * (dL/dp_j - sum_i dL/dp_i p_i).
        d_totals = p * (d_out - (d_out * p).sum(axis=1, keepdims=True))
        return self.backward_from_logits(d_totals)

    def backward_from_logits(self, d_totals):
        """``d_totals`` ``(N, nodes)``, gradient w.r.t. the logits -> gradient w.r.t. the input
        (None when ``needs_input_grad`` is False)."""
        self.grads["weights"] = self.last_input.T @ d_totals
        self.grads["biases"] = d_totals.sum(axis=0)
        if not self.needs_input_grad:
            return None
        return (d_totals @ self.params["weights"].T).reshape(self.last_input_shape)
