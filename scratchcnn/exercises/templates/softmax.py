"""Exercise: the fully connected layer with softmax, ``Softmax`` (the network's last layer).

Write ``forward`` and ``backward`` where they raise ``NotImplementedError``, then check them::

    python -m scratchcnn.exercises check DIR softmax

The constructor and ``config`` are given: the check, the trainer and the page rely on them.
"""
import numpy as np

from scratchcnn.layers import Layer


class Softmax(Layer):
    """Flatten, multiply by ``weights``, add ``biases``, softmax: ``nodes`` probabilities.

    forward:  x ``(N, ...)`` with ``input_len`` values per image -> probabilities ``(N, nodes)``
    backward: d_out ``(N, nodes)``, the loss's gradient with respect to the probabilities ->
              d_x shaped like x; it also fills ``self.grads["weights"]`` ``(input_len, nodes)``
              and ``self.grads["biases"]`` ``(nodes,)``
    params:   ``self.params["weights"]`` ``(input_len, nodes)``, ``self.params["biases"]`` ``(nodes,)``
    """

    def __init__(self, input_len, nodes):
        super().__init__()
        self.input_len, self.nodes = input_len, nodes
        # given: random weights divided by input_len, zero biases, as in the tutorial. The check
        # and the trainer put their own numbers into these arrays, so always read them from
        # self.params (never keep a copy of them).
        self.params["weights"] = np.random.randn(input_len, nodes) / input_len
        self.params["biases"] = np.zeros(nodes)
        self.grads["weights"] = np.zeros((input_len, nodes))
        self.grads["biases"] = np.zeros(nodes)

    def config(self):
        """given: the constructor's arguments (the page shows them)."""
        return {"input_len": self.input_len, "nodes": self.nodes}

    def forward(self, x):
        """x ``(N, ...)`` -> probabilities ``(N, nodes)``, each row summing to 1."""
        self.last_input_shape = x.shape       # backward returns d_x in this shape
        x = x.reshape(len(x), -1)             # (N, input_len): one row per image
        self.last_input = x
        # Step 1: the totals (logits): totals = x @ weights + biases, (N, nodes).
        # Step 2: softmax of each row: exp(totals) / (the sum of the row's exp(totals)).
        #         exp overflows for totals above ~709: subtract each row's maximum from its
        #         totals first (keepdims=True); the probabilities stay exactly the same.
        # Keep what backward needs (the probabilities, say as self.last_output).
        raise NotImplementedError("Softmax.forward is not implemented yet")

    def backward(self, d_out):
        """d_out ``(N, nodes)`` (the gradient w.r.t. the probabilities) -> d_x shaped like
        forward's x; fills ``self.grads["weights"]`` and ``self.grads["biases"]``."""
        # Step 1, through the softmax: p = softmax(t) has d p_i / d t_j = p_i * (1[i == j] - p_j),
        #         so, for each image (row),
        #             d_totals[j] = p[j] * (d_out[j] - sum over i of d_out[i] * p[i])     (N, nodes)
        #         Every entry of d_out may be nonzero (the tutorial's backward, which uses only
        #         the one nonzero entry a cross-entropy loss sends, is a special case).
        # Step 2, the parameters: totals = x @ weights + biases, so
        #             grads["weights"] = x.T @ d_totals     (input_len, nodes): summed over the images
        #             grads["biases"]  = d_totals summed over the images (axis 0)     (nodes,)
        # Step 3, the input: d_x = d_totals @ weights.T, reshaped to forward's input shape.
        raise NotImplementedError("Softmax.backward is not implemented yet")
