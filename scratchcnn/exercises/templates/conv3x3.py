"""Exercise: the convolution layer, ``Conv3x3`` (the network's first layer).

Write ``forward`` and ``backward`` where they raise ``NotImplementedError``, then check them::

    python -m scratchcnn.exercises check DIR conv3x3

The rest (the constructor, ``window`` and ``config``) is given: the check, the trainer and the
page rely on it, so leave it as it is.
"""
import numpy as np

from scratchcnn.layers import Layer


class Conv3x3(Layer):
    """``num_filters`` 3x3 filters slid over one-channel images: stride 1, no padding, no bias.

    forward:  x ``(N, H, W)`` -> output ``(N, H - 2, W - 2, num_filters)``
    backward: d_out ``(N, H - 2, W - 2, num_filters)`` -> d_x ``(N, H, W)``; it also fills
              ``self.grads["filters"]`` ``(num_filters, 3, 3)``
    params:   ``self.params["filters"]`` ``(num_filters, 3, 3)``

    Channels come last, as everywhere in scratchcnn: ``output[n, i, j, f]`` is filter ``f``
    at row ``i``, column ``j`` of image ``n``.
    """

    window = (3, 1, 0)  # given: (size, stride, padding) of each output pixel's input window (the page draws it)

    def __init__(self, num_filters):
        super().__init__()
        self.num_filters = num_filters
        # given: random filters divided by 9, as in the tutorial. The check and the trainer
        # put their own numbers into this array, so always read the filters from
        # self.params["filters"] (never keep a copy of them).
        self.params["filters"] = np.random.randn(num_filters, 3, 3) / 9
        self.grads["filters"] = np.zeros((num_filters, 3, 3))

    def config(self):
        """given: the constructor's arguments (the page shows them)."""
        return {"num_filters": self.num_filters}

    def forward(self, x):
        """x ``(N, H, W)`` -> ``(N, H - 2, W - 2, num_filters)``."""
        self.last_input = x                   # backward needs the input
        filters = self.params["filters"]      # (num_filters, 3, 3)
        # Step 1: one output pixel per 3x3 window: the output is (N, H - 2, W - 2, num_filters).
        # Step 2: output[n, i, j, f] = sum(x[n, i:i+3, j:j+3] * filters[f]): the window times
        #         the filter, element by element, added up. No flipping of the filter: this is
        #         what the tutorial (and every framework) calls a convolution.
        # Two ways: loop over n, i, j (the tutorial's, one window at a time: clear, slow), or
        # loop over the filter's nine (a, b) offsets, adding
        #         x[:, a:a + H - 2, b:b + W - 2, np.newaxis] * filters[:, a, b]
        # for the whole batch at once (nine NumPy operations: fast enough to train MNIST).
        raise NotImplementedError("Conv3x3.forward is not implemented yet")

    def backward(self, d_out):
        """d_out ``(N, H - 2, W - 2, num_filters)`` -> d_x ``(N, H, W)``; fills
        ``self.grads["filters"]`` ``(num_filters, 3, 3)``."""
        x = self.last_input                   # (N, H, W)
        filters = self.params["filters"]      # (num_filters, 3, 3)
        # Forward computed output[n, i, j, f] = sum over a, b of x[n, i+a, j+b] * filters[f, a, b].
        # Step 1, the filters: d output[n, i, j, f] / d filters[f, a, b] = x[n, i+a, j+b], so
        #         by the chain rule
        #             grads["filters"][f, a, b] = sum over n, i, j of d_out[n, i, j, f] * x[n, i+a, j+b]
        #         Every image of the batch uses the same filters: sum over the images too.
        # Step 2, the input: d output[n, i, j, f] / d x[n, i+a, j+b] = filters[f, a, b]. A pixel
        #         is in several windows; each gives it its share. Start d_x at zeros and, for
        #         every window and filter, add d_out[n, i, j, f] * filters[f] to d_x[n, i:i+3, j:j+3].
        # Return d_x, shaped like x. (The tutorial returns nothing here, since its Conv3x3 is
        # the first layer; the check and the page's saliency map need d_x.)
        raise NotImplementedError("Conv3x3.backward is not implemented yet")
