"""Cache-sized chunks, and prediction on several threads.

A chunk of images per forward pass (predicting) or per part of a batch (training on one thread)
is as large as keeps the largest array a layer makes (an im2col window matrix, usually) within
``CHUNK_BYTES``, so the passes over it are served from the CPU's caches instead of memory
(measured in benchmarks/predict_chunks.py; the record is in benchmarks/README.md).
"""
import contextvars
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..network import EVAL_BATCH, Network
from .blas import one_blas_thread
from .folded import FoldedNetwork
from .replicas import replica
from .split import outcome

CHUNK_BYTES = 3 * 2 ** 20


def chunk_size(largest_per_image):
    """Images per chunk, given the bytes of the largest array a layer makes per image: as many
    as keep it within ``CHUNK_BYTES``, at least 1, at most ``EVAL_BATCH``."""
    return int(min(EVAL_BATCH, max(1, CHUNK_BYTES // largest_per_image)))


def largest_array_per_image(network, x):
    """Bytes of the largest array any layer of ``network`` makes per image of ``x`` ``(N, ...)``.

    Found by a forward pass of one image, in evaluation mode, through replicas of the layers
    (the arrays grow in proportion to the images), so the network's own outputs and caches
    stay those of its last call."""
    probe = Network([replica(layer) for layer in network.layers]).eval()
    try:
        probe.forward(x[:1])
    except ValueError as error:  # bad input, found on one image: say what the caller passed
        raise ValueError(f"{error} (in a pass over the first image of x, shape {x.shape})") from None
    caches = [getattr(layer, name, None) for layer in probe.layers for name in layer.caches]
    return max(a.nbytes for a in caches + probe.outputs if isinstance(a, np.ndarray))


class ThreadedPredictor:
    """Forward passes (evaluation mode) over chunks of a batch, ``threads`` chunks at once.

    Prediction's counterpart of ``split.BatchSplitter``: each thread runs its share of the
    chunks (thread t takes chunks t, t + threads, ...) through its own replicas of the layers,
    on one BLAS thread. Every layer can predict on part of a batch: in evaluation ``BatchNorm``
    uses its running statistics and ``Dropout`` passes its input through. The replicas are made
    afresh from the network at each call (keeping only their buffers), so they always see its
    current weights, running statistics and modes. Each chunk gives the same numbers as
    ``network.forward`` of that chunk on one BLAS thread, or with ``folded`` as a
    ``folded.FoldedNetwork``'s (BatchNorm folded into the weights before it).
    """

    def __init__(self, network, threads, folded=False):
        if threads < 2:
            raise ValueError(f"ThreadedPredictor: needs threads >= 2, got {threads}")
        self.network, self.threads, self.folded = network, threads, folded
        self.parts = [None] * threads  # each thread's replicas of the layers, from the last call
        self.pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="scratchcnn-chunk")

    def __reduce__(self):
        return type(None), ()  # threads can't be copied: a copy of its engine makes its own

    def forward(self, chunks):
        """``[network.forward(chunk) for chunk in chunks]``, computed ``threads`` at once."""
        layers = self.network.layers
        self.parts = [self._part([replica(layer, old) for layer, old in zip(layers, self._buffers_of(part))], part)
                      for part in self.parts]
        outputs = [None] * len(chunks)

        def run_share(t):
            for i in range(t, len(chunks), self.threads):
                outputs[i] = self.parts[t].forward(chunks[i])

        with one_blas_thread():  # each share on one BLAS thread
            futures = [self.pool.submit(contextvars.copy_context().run, run_share, t)
                       for t in range(1, self.threads)]
            errors = [outcome(run_share, 0)[1]] + [outcome(future.result)[1] for future in futures]
        error = next((e for e in errors if e is not None), None)  # raised once all have stopped
        if error is not None:
            raise error
        return outputs

    def _part(self, replicas, previous):
        return FoldedNetwork(replicas, previous) if self.folded else Network(replicas)

    def _buffers_of(self, part):
        """The layers whose buffers a new replica of each layer reuses: ``part``'s, from the last
        call, while the network still has as many layers; else none."""
        layers = self.network.layers
        return part.layers if part is not None and len(part.layers) == len(layers) else [None] * len(layers)
