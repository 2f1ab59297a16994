"""Training and predicting on several cores, and in cache-sized parts: each part of a batch
through a copy of the layers, each thread running its share of the parts (data parallelism
inside one process).

Why. Most of a convolutional step is not BLAS: im2col copies, col2im additions, pooling and
ReLU run on one core whatever the BLAS thread count, and BLAS's own threads spin waiting for
each other (several times slower) when another process keeps a core busy. Cutting the batch
in parts instead keeps every core busy with all of the work: NumPy releases the GIL inside
large copies, ufuncs and products, so the parts really run at the same time, each with one
BLAS thread. But each NumPy call hands the GIL from one thread to the other, so parts must be
large (``worth_splitting``): on two threads each takes one part, half the batch. On one thread,
parts of a few images keep each layer's arrays (a window matrix of many MB for a whole batch)
in the CPU's caches.

How, for a batch of N images cut in parts of n_i:

1. ``workers[t]`` is a ``Network`` of *replicas* of the layers: each shares its layer's
   ``params`` (the very same arrays, so the optimizer's in-place updates reach it) but has its
   own ``grads`` and its own ``last_*`` caches (the names every layer caches under).
2. Thread t runs its parts on its replicas, one after another, with ``loss_and_gradients``;
   each part's gradients are means over its n_i images.
3. The whole batch's mean gradient is ``sum_i (n_i / N) * grads_i``, added in the parts' fixed
   order, so the same seed and thread count give bit-identical training; it lands in the
   network's own ``grads``, where the optimizer reads it as usual.

The numbers differ from the whole batch in one pass only by float rounding (sums in another
order). Two layers need the whole batch, and get it through ``peers`` (a ``Peers``, set on
their replicas for each step), where each part hands in its share and waits for the others, so
these parts must all run at once: one part per thread (``shares_batch``):

* ``BatchNorm``: the batch's mean and variance are sums over every part; in backward, so are
  the sums of ``d_out`` and ``d_out * x_hat`` that reach every input. Only the first part moves
  the running statistics (arrays the replicas share with the layer, updated in place).
* ``Dropout``: the first part draws the mask for the whole batch from the layer's generator,
  exactly as one thread would, and each part takes its rows: the same masks on any number of
  threads, and a resumed run draws what it would have drawn.

Other layers whose output depends on the rest of the batch can't be split, nor layers whose
methods were replaced on the instance (a profiler's timers: the copies would call the
original's); ``Network.train_step`` then runs the whole batch. After a split step
``network.outputs`` and the layers' ``last_*`` caches are not refreshed: the workers' are in
``network.splitter.workers``.
"""
import contextlib
import contextvars
import copy
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import threadpoolctl

from .layers import AvgPool2, BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2, ReLU, Softmax
from .losses import check_labels

SPLITTABLE = (Conv2D, Dense, Flatten, MaxPool2, AvgPool2, ReLU, Softmax, BatchNorm, Dropout)
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


_blas_lock = threading.Lock()
_blas_users = 0        # threads inside one_blas_thread() right now
_blas_before = None    # threadpoolctl's record of the count to restore when the last one leaves
_blas_controller = None  # found once: looking for the loaded libraries takes ~0.3 ms, limiting 6 us


@contextlib.contextmanager
def one_blas_thread():
    """BLAS on one thread inside (a process-wide setting, through threadpoolctl). Several threads
    may be inside at once (a page request predicting while a job trains): the first in sets it,
    the last out restores the count from before, so an early leaver can't restore it under the
    others, nor a late one leave it at one thread."""
    global _blas_users, _blas_before, _blas_controller
    with _blas_lock:
        if _blas_users == 0:
            _blas_controller = _blas_controller or threadpoolctl.ThreadpoolController()
            _blas_before = _blas_controller.limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_before.restore_original_limits()


def part_sizes(n, parts):
    """``n`` images cut into ``parts`` nearly equal sizes, the larger first: ``(5, 2) -> [3, 2]``."""
    return [n // parts + (i < n % parts) for i in range(parts)]


class Peers:
    """What part ``part`` of a split batch shares with the other parts during one step.

    Each call hands in this part's value and waits until every part has handed in theirs
    (a barrier); all parts then compute the same combination in the parts' fixed order, so a
    run is bit-identical to the next. Every part makes the same calls in the same order, since
    each runs the same layers.
    """

    def __init__(self, part, sizes, slots, barrier):
        self.part, self.sizes = part, sizes       # this part's index; every part's batch size
        self.whole_batch = sum(sizes)             # N
        self.slots, self.barrier = slots, barrier  # shared by all the parts' Peers

    @classmethod
    def for_parts(cls, sizes):
        """One ``Peers`` per part, sharing their slots and barrier."""
        slots, barrier = [None] * len(sizes), threading.Barrier(len(sizes))
        return [cls(part, sizes, slots, barrier) for part in range(len(sizes))]

    def _exchange(self, value):
        """Every part's ``value``, in part order."""
        self.slots[self.part] = value
        self.barrier.wait()
        values = list(self.slots)
        self.barrier.wait()  # nobody hands in the next value before everyone has read these
        return values

    def total(self, value):
        """The sum of every part's ``value`` (e.g. per-channel sums over its images)."""
        values = self._exchange(value)
        return sum(values[1:], values[0])

    def weighted_total(self, value):
        """``sum_i (n_i / N) * value_i``: the whole batch's mean gradient from the parts' means."""
        values = self._exchange(value)
        weights = [size / self.whole_batch for size in self.sizes]
        return sum((w * v for w, v in zip(weights[1:], values[1:])), weights[0] * values[0])

    def from_first(self, make):
        """``make()``, called by the first part only; every part gets its result."""
        return self._exchange(make() if self.part == 0 else None)[0]

    def rows(self, whole):
        """This part's rows of an array over the whole batch."""
        start = sum(self.sizes[:self.part])
        return whole[start:start + self.sizes[self.part]]


MIN_PART_BYTES = 2 ** 20  # worth_splitting: see there


def worth_splitting(layers, part_bytes):
    """True if a batch should run in parts on several threads rather than whole with BLAS's own
    threads, given the bytes of the largest array of one part (``Network.image_bytes`` times
    its images).

    Only for convolutional networks: a network of dense layers is nearly all matrix products,
    which BLAS's threads share out better than our parts (mlp trains ~40% faster whole). And
    only for parts of at least ``MIN_PART_BYTES``: NumPy hands the GIL between the threads at
    each call, which costs more than small parts gain (the seed network at batch 32, parts of
    16 images: ~35% slower than whole; at batch 128, parts of 64: ~5% faster). Measured on the
    2-core AVX2 machine (benchmarks/README.md).
    """
    return any(isinstance(layer, Conv2D) for layer in layers) and part_bytes >= MIN_PART_BYTES


def shares_batch(layers):
    """True if a layer in training shares the batch between parts through ``Peers`` (then the
    parts must all run at once, one per thread)."""
    return any(isinstance(layer, (BatchNorm, Dropout)) for layer in layers)


class BatchSplitter:
    """Runs ``network``'s forward and backward on parts of each batch, ``threads`` at once.

    Each thread has its ``workers[t]`` replicas and takes a share of the batch: one part, or,
    when no layer shares the batch (``shares_batch``), several parts of at most ``part_size``
    images, one after another. Small parts keep each layer's arrays in the CPU's caches
    (``Network.chunk_size``): on one thread, the classic network's step was ~19% faster in
    parts of 9 images than whole on the AVX-512 machine (0-4% on the AVX2 one). On two threads
    they were ~11% slower than one part a thread on the AVX2 machine (+3% on the AVX-512 one),
    so ``Network`` gives each thread one part there (benchmarks/README.md).
    """

    def __init__(self, network, threads):
        bad = unsplittable_layer(network.layers)
        if bad is not None:
            raise ValueError(f"BatchSplitter: can't split a batch through {type(bad[0]).__name__} "
                             f"({bad[1]}); train this network on one thread (batch_threads=1)")
        if threads < 1:
            raise ValueError(f"BatchSplitter: needs threads >= 1, got {threads}")
        self.network, self.threads = network, threads
        self.layers = list(network.layers)  # the layers the workers were copied from
        self.workers = [type(network)([replica(layer) for layer in network.layers])
                        for _ in range(threads)]
        self.pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="scratchcnn-part") if threads > 1 else None

    def __reduce__(self):
        """Copied or pickled, a splitter becomes None (threads can't be copied): a copy of the
        network makes its own at its first split step."""
        return type(None), ()

    def fits(self, network, threads):
        """True while ``network`` still has the layers and parameter dicts the workers share
        (and they can still be split)."""
        return (threads == self.threads and len(network.layers) == len(self.layers)
                and unsplittable_layer(network.layers) is None
                and all(a is b and a.params is w.params
                        for a, b, w in zip(network.layers, self.layers, self.workers[0].layers)))

    def loss_and_gradients(self, x, labels, part_size=None):
        """``Network.loss_and_gradients(x, labels)`` for the whole batch, in parts of at most
        ``part_size`` images (one per thread if None, or if a layer shares the batch).
        Returns ``(mean loss, probs (N, K))``; fills the network's layers' ``grads``."""
        n = len(x)
        labels = check_labels(labels, n, np.iinfo(np.int64).max)  # before cutting: the whole batch's sizes in any error
        threads = min(self.threads, n)
        parts = threads if part_size is None or shares_batch(self.layers) else max(threads, -(-n // part_size))
        sizes = part_sizes(n, parts)
        starts = np.cumsum([0] + sizes)
        pieces = [(x[a:b], labels[a:b]) for a, b in zip(starts, starts[1:])]
        first = np.cumsum([0] + part_sizes(parts, threads))  # thread t runs parts first[t]:first[t + 1]
        shares = [pieces[a:b] for a, b in zip(first, first[1:])]
        all_peers = Peers.for_parts(sizes) if parts == threads else [None] * threads
        for worker, peers in zip(self.workers, all_peers):
            for layer, twin in zip(self.network.layers, worker.layers):
                twin.training, twin.peers = layer.training, peers
        with one_blas_thread():  # each thread of parts on one BLAS thread
            results = self._run_shares(shares, n)
        loss = sum(share_loss for share_loss, _, _ in results)
        for i, layer in enumerate(self.network.layers):  # the shares' sums, in their fixed order
            for name in layer.params:
                total = results[0][1][i][name]
                for _, grads, _ in results[1:]:
                    total = total + grads[i][name]
                layer.grads[name] = total
        return loss, np.concatenate([probs for _, _, share_probs in results for probs in share_probs])

    def _run_share(self, worker, pieces, n):
        """One thread's parts, one after another: ``(its weighted loss, its weighted gradients
        [{name: array}] per layer, [probs per part])``. Each part's loss and gradients are means
        over its images, weighted here by its share of the whole batch."""
        loss, grads, probs = 0.0, None, []
        for xs, ys in pieces:
            part_loss, part_probs = worker.loss_and_gradients(xs, ys)
            weight = len(xs) / n
            loss += weight * part_loss
            weighted = [{name: weight * g for name, g in layer.grads.items()} for layer in worker.layers]
            grads = weighted if grads is None else [{name: acc[name] + w[name] for name in acc}
                                                    for acc, w in zip(grads, weighted)]
            probs.append(part_probs)
        return loss, grads, probs

    def _run_shares(self, shares, n):
        """Each thread's ``_run_share``, all at once. A thread that fails breaks the barrier its
        peers may be waiting at, so they stop too; its error is raised once all have."""
        def run(worker, pieces):
            try:
                return self._run_share(worker, pieces, n)
            except BaseException:
                if worker.layers[0].peers is not None:
                    worker.layers[0].peers.barrier.abort()
                raise
        jobs = list(zip(self.workers, shares))
        # Each worker runs in a copy of this thread's context: np.errstate carries over.
        futures = [self.pool.submit(contextvars.copy_context().run, run, *job) for job in jobs[1:]]
        outcomes = [outcome(run, *jobs[0])] + [outcome(future.result) for future in futures]
        errors = [error for _, error in outcomes if error is not None]
        if errors:  # the first that isn't a peer's broken barrier
            raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
        return [result for result, _ in outcomes]


def outcome(function, *args):
    """``(function(*args), None)``, or ``(None, the exception it raised)``."""
    try:
        return function(*args), None
    except Exception as error:
        return None, error


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

    def __reduce__(self):
        return type(None), ()  # as BatchSplitter's: a copied network makes its own

    def forward(self, chunks):
        """``[network.forward(chunk) for chunk in chunks]``, computed ``threads`` at once."""
        layers = self.network.layers
        self.parts = [type(self.network)([replica(layer, old) for layer, old in zip(layers, self._buffers_of(part))])
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

    def _buffers_of(self, part):
        """The layers whose buffers a new replica of each layer reuses: ``part``'s, from the last
        call, while the network still has as many layers; else none."""
        layers = self.network.layers
        return part.layers if part is not None and len(part.layers) == len(layers) else [None] * len(layers)
