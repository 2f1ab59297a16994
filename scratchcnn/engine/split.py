"""Training on several cores, and in cache-sized parts: each part of a batch through replicas of
the layers (``replicas.py``), each thread running its share of the parts (data parallelism inside
one process).

Why. Much of a convolutional step is not BLAS: im2col copies, col2im additions, pooling and
ReLU run on one core whatever the BLAS thread count, and BLAS's own threads spin waiting for
each other when another process keeps a core busy. Cutting the batch in parts instead keeps
every core busy with all of the work: NumPy releases the GIL inside large copies, ufuncs and
products, so the parts really run at the same time, each with one BLAS thread. But each NumPy
call hands the GIL from one thread to the other, so parts must be large (``worth_splitting``):
on two threads each takes one part, half the batch. On one thread, parts of a few images keep
each layer's arrays (a window matrix of many MB for a whole batch) in the CPU's caches, unless
the engine fuses the network's convolutions (``fused.py``), which chunk their window matrices
themselves. The measurements behind these rules are in benchmarks/README.md.

How, for a batch of N images cut in parts of n_i:

1. ``workers[t]`` is a ``Network`` of replicas of the layers.
2. Thread t runs its parts on its replicas, one after another, with ``loss_and_gradients``;
   each part's gradients are means over its n_i images.
3. The whole batch's mean gradient is ``sum_i (n_i / N) * grads_i``, added in the parts' fixed
   order, so the same seed and thread count give bit-identical training; it lands in the
   network's own ``grads``, where the optimizer reads it as usual.

The numbers differ from the whole batch in one pass only by float rounding (sums in another
order). BatchNorm and Dropout see the whole batch through ``sync.Peers``.
"""
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..layers import Conv2D
from ..losses import check_labels
from .blas import one_blas_thread
from .fused import FusedNetwork
from .replicas import replica, shares_batch, unsplittable_layer
from .sync import SYNCHRONISED, Peers

SYNCHRONISED_TWINS = tuple(SYNCHRONISED.values())

MIN_PART_BYTES = 2 ** 20  # worth_splitting: see there


def part_sizes(n, parts):
    """``n`` images cut into ``parts`` nearly equal sizes, the larger first: ``(5, 2) -> [3, 2]``."""
    return [n // parts + (i < n % parts) for i in range(parts)]


def worth_splitting(layers, part_bytes):
    """True if a batch should run in parts on several threads rather than whole with BLAS's own
    threads, given the bytes of the largest array of one part.

    Only for convolutional networks: a network of dense layers is nearly all matrix products,
    which BLAS's threads share out better than our parts. And only for parts of at least
    ``MIN_PART_BYTES``: NumPy hands the GIL between the threads at each call, which costs more
    than small parts gain. (Both rules were measured: benchmarks/README.md.)
    """
    return any(isinstance(layer, Conv2D) for layer in layers) and part_bytes >= MIN_PART_BYTES


class BatchSplitter:
    """Runs ``network``'s forward and backward on parts of each batch, ``threads`` at once.

    Each thread has its ``workers[t]`` replicas and takes a share of the batch: one part, or,
    when no layer shares the batch (``shares_batch``), several parts of at most ``part_size``
    images, one after another (``chunks.chunk_size``: small parts keep each layer's arrays in
    the CPU's caches). The workers' outputs and caches are those of the last part each ran.
    """

    def __init__(self, network, threads):
        bad = unsplittable_layer(network.layers)
        if bad is not None:
            raise ValueError(f"BatchSplitter: can't split a batch through {type(bad[0]).__name__} "
                             f"({bad[1]}); train it on the plain path (FastEngine(threads=1), "
                             "or --engine plain)")
        if threads < 1:
            raise ValueError(f"BatchSplitter: needs threads >= 1, got {threads}")
        self.network, self.threads = network, threads
        self.layers = list(network.layers)  # the layers the workers were copied from
        # Each worker runs the layers as the engine's fused steps (fused.py).
        self.workers = [FusedNetwork([replica(layer) for layer in network.layers]) for _ in range(threads)]
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
                twin.training = layer.training
                if isinstance(twin, SYNCHRONISED_TWINS):
                    twin.peers = peers
        with one_blas_thread():  # each thread of parts on one BLAS thread
            results = self._run_shares(shares, all_peers, n)
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

    def _run_shares(self, shares, all_peers, n):
        """Each thread's ``_run_share``, all at once. A thread that fails breaks the barrier its
        peers may be waiting at, so they stop too; its error is raised once all have."""
        def run(worker, pieces, peers):
            try:
                return self._run_share(worker, pieces, n)
            except BaseException:
                if peers is not None:
                    peers.barrier.abort()
                raise
        jobs = list(zip(self.workers, shares, all_peers))
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
