"""``ModelRunner``: one shared network, run safely for many request threads."""
import copy

import numpy as np

from ..checkpoint import CheckpointError
from ..data import normalize
from ..imaging import MNIST_SIZE, to_mnist
from ..engine import one_blas_thread
from .describe import describe_network, describe_prediction

# The server's BLAS setting (an ``engine.configure`` use) between training jobs: one thread. A
# page's requests are one image each, run side by side in their own threads; BLAS's second
# thread would only spin waiting for work that small (and wake to spin again whenever the count
# changes), taking the core the other requests need.
SERVING_BLAS_USE = "serve"


class ModelRunner:
    """Runs one shared network for many threads.

    Layers keep what backward needs (``last_input``, ...) on themselves during ``forward``, so
    two threads running the same network would overwrite each other's state. The shared
    network here is never run: each call to ``run`` works on its own ``copy.deepcopy`` of it
    (well under a millisecond for the tutorial network), so requests can't interfere.

    ``output_shapes``: the input's and every layer's output shape, without the batch axis;
    ``info``: what ``GET /api/model`` returns (``describe.describe_network``).
    """

    def __init__(self, network, description=""):
        self._network = network.eval()
        self.description = description
        probe = self._fresh_copy()
        try:
            probe.forward(np.zeros((1, MNIST_SIZE, MNIST_SIZE), np.float32))
        except ValueError as e:
            raise CheckpointError(f"this network doesn't take 28x28 MNIST images: {e}") from None
        self.output_shapes = [tuple(out.shape[1:]) for out in probe.outputs]  # stage 0 = input
        self.num_classes = self.output_shapes[-1][0]
        # What GET /api/model returns, computed once: the network never changes.
        self.info = describe_network(self._network, self.output_shapes, description)

    @property
    def network(self):
        """The served network, for routes that copy it before running it (never run it)."""
        return self._network

    def _fresh_copy(self):
        network = copy.deepcopy(self._network)
        network.eval()
        return network

    def run(self, gray, arrays="lists"):
        """``gray`` ``(H, W)`` in ``[0, 1]``, either polarity -> what ``POST /api/predict`` returns.

        ``input``: ``(28, 28)`` uint8 as lists, the image after ``to_mnist``; ``layers``: per
        layer ``{"shape", "min", "max", "maps"}`` for map outputs ``(H, W, C)`` (maps listed
        channel-first, ``(C, H, W)``, for drawing) or ``{..., "values"}`` for flat ones ``(D,)``;
        see ``describe.describe_prediction`` (and for ``arrays="float32"``, ``describe``).
        """
        image = to_mnist(gray)                               # (28, 28) uint8, MNIST-style
        network = self._fresh_copy()                         # never the shared one
        # One BLAS thread, also while a job trains on two (see SERVING_BLAS_USE): it keeps an
        # answer's float32 rounding the same whatever runs beside it.
        with one_blas_thread():
            network.forward(normalize(image[None]))          # (1, 28, 28) -> (1, classes)
        return describe_prediction(image, network.outputs, arrays)
