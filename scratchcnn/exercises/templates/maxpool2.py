"""Exercise: max pooling, ``MaxPool2`` (the network's second layer).

Write ``forward`` and ``backward`` where they raise ``NotImplementedError``, then check them::

    python -m scratchcnn.exercises check DIR maxpool2

``window`` is given: the page relies on it, so leave it as it is.
"""
import numpy as np

from scratchcnn.layers import Layer


class MaxPool2(Layer):
    """The largest value of each 2x2 window, stride 2, each channel on its own. No parameters.

    forward:  x ``(N, H, W, C)`` -> output ``(N, H // 2, W // 2, C)``  (H and W are even here)
    backward: d_out ``(N, H // 2, W // 2, C)`` -> d_x ``(N, H, W, C)``

    ``output[n, i, j, c]`` is the maximum of ``x[n, 2i:2i+2, 2j:2j+2, c]``.
    """

    window = (2, 2, 0)  # given: (size, stride, padding) of each output pixel's input window (the page draws it)

    def forward(self, x):
        """x ``(N, H, W, C)`` -> ``(N, H // 2, W // 2, C)``."""
        self.last_input = x                   # backward needs the input
        # Step 1: cut x into its 2x2 windows. Either loop over them (the tutorial's way), or
        #         reshape: x.reshape(N, H // 2, 2, W // 2, 2, C) puts each window's rows on
        #         axis 2 and its columns on axis 4.
        # Step 2: the maximum of each window (np.max over those two axes).
        raise NotImplementedError("MaxPool2.forward is not implemented yet")

    def backward(self, d_out):
        """d_out ``(N, H // 2, W // 2, C)`` -> d_x ``(N, H, W, C)``."""
        x = self.last_input                   # (N, H, W, C)
        # Step 1: only a window's maximum reached the output: nudging any other pixel of the
        #         window changes nothing. So the window's gradient d_out[n, i, j, c] goes to
        #         the position of its maximum in d_x, and the other three pixels get 0.
        # Step 2: ties. Where several pixels of a window hold the maximum (MNIST's flat
        #         background: four equal values), give the gradient to exactly ONE of them,
        #         e.g. the first in row-major order, the one np.argmax picks. Giving it to every
        #         tied pixel, as the tutorial does, counts it up to four times.
        raise NotImplementedError("MaxPool2.backward is not implemented yet")
