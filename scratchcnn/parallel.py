"""Training on several cores: each part of a batch through its own copy of the layers, in its
own thread (data parallelism inside one process).

Why. Most of a convolutional step is not BLAS: im2col copies, col2im additions, pooling and
ReLU run on one core whatever the BLAS thread count, and BLAS's own threads spin waiting for
each other (several times slower) when another process keeps a core busy. Cutting the batch
in parts instead keeps every core busy with all of the work: NumPy releases the GIL inside
large copies, ufuncs and products, so the parts really run at the same time, each with one
BLAS thread.

How, for a batch of N images cut in parts of n_i:

1. ``halves[i]`` is a ``Network`` of *replicas* of the layers: each shares its layer's
   ``params`` (the very same arrays, so the optimizer's in-place updates reach it) but has its
   own ``grads`` and its own ``last_*`` caches (the names every layer caches under).
2. Each part runs ``loss_and_gradients`` on its replicas; its gradients are means over n_i.
3. The whole batch's mean gradient is ``sum_i (n_i / N) * grads_i``, added in the parts' fixed
   order, so the same seed and thread count give bit-identical training; it lands in the
   network's own ``grads``, where the optimizer reads it as usual.

The numbers differ from the one-thread step only by float rounding (sums in another order).
Layers whose output depends on the rest of the batch (``BatchNorm``'s batch statistics) or that
draw random numbers (``Dropout``: two threads would draw from its generator in a racy order)
can't be split, nor layers whose methods were replaced on the instance (a profiler's timers:
the copies would call the original's); ``Network.train_step`` then runs the whole batch.
After a split step ``network.outputs`` and the layers' ``last_*`` caches are not refreshed:
the halves' are in ``network.splitter.halves``.
"""
import contextvars
import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import threadpoolctl

from .layers import AvgPool2, Conv2D, Dense, Flatten, MaxPool2, ReLU, Softmax

SPLITTABLE = (Conv2D, Dense, Flatten, MaxPool2, AvgPool2, ReLU, Softmax)
METHODS = ("forward", "backward", "backward_from_logits")


def why_unsplittable(layer):
    """Why ``layer`` can't train on part of a batch, or None if it can."""
    if not isinstance(layer, SPLITTABLE):
        return "its output or its random draws depend on the whole batch"
    if methods_replaced(layer):
        return "its methods were replaced on the instance, and its copies would call the original's"
    return None


def methods_replaced(layer):
    """True if ``forward`` or ``backward`` was replaced on the instance (e.g. by
    benchmarks/where_time_goes.py's timers): a copy of the layer would call the original."""
    return any(name in vars(layer) for name in METHODS)


def unsplittable_layer(layers):
    """``(layer, reason)`` for the first layer that can't run on part of a batch, else None."""
    return next(((layer, why) for layer in layers if (why := why_unsplittable(layer))), None)


def replica(layer, caches_from=None):
    """A shallow copy of ``layer`` sharing its ``params`` dict, with its own ``grads`` and its own
    ``last_*`` caches: empty, or those of ``caches_from`` (an earlier replica, whose buffers, such
    as a convolution's window matrix, are then reused)."""
    twin = copy.copy(layer)
    twin.grads = {}
    for name in vars(layer):
        if name.startswith("last_"):
            setattr(twin, name, getattr(caches_from, name, None))
    return twin


def part_sizes(n, parts):
    """``n`` images cut into ``parts`` nearly equal sizes, the larger first: ``(5, 2) -> [3, 2]``."""
    return [n // parts + (i < n % parts) for i in range(parts)]


class BatchSplitter:
    """Runs ``network``'s forward and backward on ``threads`` parts of each batch at once."""

    def __init__(self, network, threads):
        bad = unsplittable_layer(network.layers)
        if bad is not None:
            raise ValueError(f"BatchSplitter: can't split a batch through {type(bad[0]).__name__} "
                             f"({bad[1]}); train this network on one thread (batch_threads=1)")
        if threads < 2:
            raise ValueError(f"BatchSplitter: needs threads >= 2, got {threads}")
        self.network, self.threads = network, threads
        self.layers = list(network.layers)  # the layers the halves were copied from
        self.halves = [type(network)([replica(layer) for layer in network.layers])
                       for _ in range(threads)]
        self.pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="scratchcnn-part")
        self.blas = threadpoolctl.ThreadpoolController()

    def __reduce__(self):
        """Copied or pickled, a splitter becomes None (threads can't be copied): a copy of the
        network makes its own at its first split step."""
        return type(None), ()

    def fits(self, network, threads):
        """True while ``network`` still has the layers and parameter dicts the halves share (and
        they can still be split)."""
        return (threads == self.threads and len(network.layers) == len(self.layers)
                and unsplittable_layer(network.layers) is None
                and all(a is b and a.params is h.params
                        for a, b, h in zip(network.layers, self.layers, self.halves[0].layers)))

    def loss_and_gradients(self, x, labels):
        """``Network.loss_and_gradients(x, labels)`` for the whole batch, the parts run at once.
        Returns ``(mean loss, probs (N, K))``; fills the network's layers' ``grads``."""
        sizes = part_sizes(len(x), min(self.threads, len(x)))
        starts = np.cumsum([0] + sizes)
        parts = [(half, x[a:b], labels[a:b]) for half, a, b in zip(self.halves, starts, starts[1:])]
        for half in self.halves:
            for layer, twin in zip(self.network.layers, half.layers):
                twin.training = layer.training
        with self.blas.limit(limits=1, user_api="blas"):  # one BLAS thread per part
            # Each worker runs in a copy of this thread's context: np.errstate carries over.
            futures = [self.pool.submit(contextvars.copy_context().run, half.loss_and_gradients, xs, ys)
                       for half, xs, ys in parts[1:]]
            try:
                results = [parts[0][0].loss_and_gradients(*parts[0][1:])]
            finally:
                results += [future.result() for future in futures]  # waits for all, even on error
        weights = [size / len(x) for size in sizes]
        self._combine_gradients(weights)
        loss = sum(w * part_loss for w, (part_loss, _) in zip(weights, results))
        return loss, np.concatenate([probs for _, probs in results])

    def _combine_gradients(self, weights):
        """Every parameter's gradient: the parts' means, weighted by their share of the batch."""
        for i, layer in enumerate(self.network.layers):
            for name in layer.params:
                total = weights[0] * self.halves[0].layers[i].grads[name]
                for weight, half in zip(weights[1:], self.halves[1:]):
                    total += weight * half.layers[i].grads[name]
                layer.grads[name] = total


class ChunkRunner:
    """Forward passes (evaluation mode) over chunks of a batch, ``threads`` chunks at once.

    Prediction's counterpart of ``BatchSplitter``: each thread runs its share of the chunks
    (thread t takes chunks t, t + threads, ...) through its own replicas of the layers, on one
    BLAS thread. Every layer can predict on part of a batch: in evaluation ``BatchNorm`` uses
    its running statistics and ``Dropout`` passes its input through. The replicas are made
    afresh from the network at each call (keeping only their buffers), so they always see its
    current weights, running statistics and modes. Each chunk gives the same numbers as
    ``network.forward`` of that chunk on one BLAS thread.
    """

    def __init__(self, network, threads):
        if threads < 2:
            raise ValueError(f"ChunkRunner: needs threads >= 2, got {threads}")
        self.network, self.threads = network, threads
        self.parts = [None] * threads  # each thread's replicas of the layers, from the last call
        self.pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="scratchcnn-chunk")
        self.blas = threadpoolctl.ThreadpoolController()

    def __reduce__(self):
        return type(None), ()  # as BatchSplitter's: a copied network makes its own

    def forward(self, chunks):
        """``[network.forward(chunk) for chunk in chunks]``, computed ``threads`` at once."""
        layers = self.network.layers
        self.parts = [type(self.network)([replica(layer, old) for layer, old in
                                          zip(layers, part.layers if part else [None] * len(layers))])
                      for part in self.parts]
        outputs = [None] * len(chunks)

        def run_share(t):
            for i in range(t, len(chunks), self.threads):
                outputs[i] = self.parts[t].forward(chunks[i])

        with self.blas.limit(limits=1, user_api="blas"):  # one BLAS thread per share
            futures = [self.pool.submit(contextvars.copy_context().run, run_share, t)
                       for t in range(1, self.threads)]
            try:
                run_share(0)
            finally:
                for future in futures:
                    future.result()  # waits for all, even on error
        return outputs
