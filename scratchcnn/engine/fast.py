"""The two ways to run a network's training steps and predictions: plain, and fast.

Both take the network as an argument, so one ``Network`` can be stepped through plainly in a
debugger and trained fast by the same ``Trainer``::

    engine = FastEngine()                       # threads: what blas.configure set
    loss, correct = engine.train_step(network, x, labels, optimizer)
    probs = engine.predict_proba(network, images)

``PlainEngine`` calls the network's own methods: the whole batch on the calling thread, every
output and cache left on the network's layers. ``FastEngine`` gives the same numbers (to float
rounding; bit-identical run to run for the same thread count) faster: a batch cut in parts run
on several threads, or in cache-sized parts on one (``split.py``); predictions in cache-sized
chunks, on several threads where that pays (``chunks.py``). It runs the parts through replicas
of the layers, so after a step it ran in parts the network's own outputs and caches are
cleared rather than left from an older call.
"""
import weakref

import numpy as np

from ..network import TrainingDiverged, check_finite, score
from . import blas
from .chunks import ThreadedPredictor, chunk_size, largest_array_per_image
from .folded import FoldedNetwork, folds_anything
from .fused import FusedNetwork, fuses_anything
from .replicas import methods_replaced, replica, shares_batch, unsplittable_layer
from .split import BatchSplitter, worth_splitting


class PlainEngine:
    """The network's own methods, as a learner reads them."""

    name = "plain"

    def train_step(self, network, x, labels, optimizer):
        return network.train_step(x, labels, optimizer)

    def predict_proba(self, network, x, batch_size=None):
        return network.predict_proba(x, batch_size)

    def predict(self, network, x, batch_size=None):
        return self.predict_proba(network, x, batch_size).argmax(axis=1)

    def evaluate(self, network, x, labels, batch_size=None):
        return score(self.predict_proba(network, x, batch_size), labels)


class _Helpers:
    """What ``FastEngine`` keeps for one network: its splitter, its fused network for whole
    batches, its predictor, its last folded network and the probed bytes per image, by image
    shape."""

    def __init__(self):
        self.splitter = None
        self.fused = None
        self.predictor = None
        self.folded = None
        self.bytes_per_image = {}


class FastEngine(PlainEngine):
    """Training steps and predictions in parts and on several threads.

    ``threads`` None follows ``blas.threads_in_force()`` and splits a batch only where that pays
    (``split.worth_splitting``); a number always runs that many parts at once (1: every batch
    whole, as ``PlainEngine``, predictions in cache-sized chunks).
    """

    name = "fast"

    def __init__(self, threads=None):
        if threads is not None and (int(threads) != threads or threads < 1):
            raise ValueError(f"FastEngine: threads must be None or an integer >= 1, got {threads!r}")
        self.threads = threads
        self._helpers = weakref.WeakKeyDictionary()  # network -> _Helpers

    def __repr__(self):
        return f"FastEngine(threads={self.threads!r})"

    def train_step(self, network, x, labels, optimizer):
        """``network.train_step(x, labels, optimizer)``, in parts where ``split_plan`` says."""
        x = np.asarray(x)
        plan = self.split_plan(network, x)
        if plan is None and not self.fuses(network):
            return network.train_step(x, labels, optimizer)
        check_finite(x)
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, with advice
            if plan is None:
                loss, probs = self.whole_batch_gradients(network, x, labels)
            else:
                loss, probs = plan[0].loss_and_gradients(x, labels, plan[1])
        clear_caches(network)  # it ran on replicas: nothing on the network is this step's
        if not np.isfinite(loss):
            raise TrainingDiverged(loss)
        optimizer.step(network.layers)
        return loss, int((probs.argmax(axis=1) == np.asarray(labels)).sum())

    @staticmethod
    def fuses(network):
        """True if a batch run whole goes through ``fused.FusedNetwork`` steps rather than the
        network's own methods: some layers fuse, and the engine knows every layer."""
        return fuses_anything(network.layers) and unsplittable_layer(network.layers) is None

    def whole_batch_gradients(self, network, x, labels):
        """``network.loss_and_gradients(x, labels)`` through a ``FusedNetwork`` of replicas, on
        this thread (with BLAS's threads); the gradients land in the network's ``grads``."""
        fused = self.fused_network(network)
        for layer, twin in zip(network.layers, fused.layers):
            twin.training = layer.training
        loss, probs = fused.loss_and_gradients(x, labels)
        for layer, twin in zip(network.layers, fused.layers):
            for name in layer.params:
                layer.grads[name] = twin.grads[name]
        return loss, probs

    def fused_network(self, network):
        """The ``fused.FusedNetwork`` of replicas that runs ``network``'s whole batches, made
        afresh when the network's layers change (a profiler times its steps)."""
        helpers = self._helpers_of(network)
        if helpers.fused is None or not same_layers(network, helpers.fused):
            helpers.fused = FusedNetwork([replica(layer) for layer in network.layers])
        return helpers.fused

    def split_plan(self, network, x):
        """None to run the batch ``x`` whole, or ``(a split.BatchSplitter, part size or None)``.

        On several threads each thread runs one part; with the automatic count, only where that
        pays (``worth_splitting``), else the whole batch runs with BLAS's own threads. On one
        thread, the batch runs in cache-sized parts when no layer shares it and no layer fuses
        (a fused convolution fills its window matrix in cache-sized chunks itself, and runs
        faster on the whole batch than on parts of it: benchmarks/README.md).
        """
        threads = self.threads or blas.threads_in_force()
        automatic = self.threads is None
        if self.threads == 1 or (automatic and unsplittable_layer(network.layers)):
            return None
        if threads >= 2:
            part_bytes = -(-len(x) // threads) * self.bytes_per_image(network, x)
            if automatic and not worth_splitting(network.layers, part_bytes):
                return None
            part_size = None  # one part a thread: smaller ones hand the GIL to and fro
        else:
            part_size = chunk_size(self.bytes_per_image(network, x))
            if shares_batch(network.layers) or len(x) <= part_size or self.fuses(network):
                return None
        helpers = self._helpers_of(network)
        if helpers.splitter is None or not helpers.splitter.fits(network, threads):
            helpers.splitter = BatchSplitter(network, threads)  # refuses unsplittable layers
        return helpers.splitter, part_size

    def predict_proba(self, network, x, batch_size=None):
        """``network.predict_proba(x)``: in cache-sized chunks (or ``batch_size``), several at
        once where ``predict_plan`` says."""
        x = np.asarray(x)
        if len(x) == 0:
            return network.predict_proba(x)  # its error message
        size, threads = self.predict_plan(network, x, batch_size)
        folds = folds_anything(network.layers) and unsplittable_layer(network.layers) is None
        if threads < 2 and not folds:
            return network.predict_proba(x, size)
        helpers = self._helpers_of(network)
        with network.evaluating():
            chunks = [x[i:i + size] for i in range(0, len(x), size)]
            if threads < 2:  # the chunks one after another, through the folded steps
                helpers.folded = FoldedNetwork([replica(layer) for layer in network.layers], helpers.folded)
                probs = np.concatenate([helpers.folded.forward(chunk) for chunk in chunks])
            else:
                predictor = helpers.predictor
                if predictor is None or (predictor.threads, predictor.folded) != (threads, folds):
                    helpers.predictor = predictor = ThreadedPredictor(network, threads, folds)
                probs = np.concatenate(predictor.forward(chunks))
        clear_caches(network)
        return probs

    def predict_plan(self, network, x, batch_size=None):
        """``(images per forward pass, threads)`` with which ``predict_proba`` runs ``x``."""
        size = batch_size or chunk_size(self.bytes_per_image(network, x))
        threads = min(self.threads or blas.threads_in_force(), len(x))
        if threads > 1 and any(methods_replaced(layer) for layer in network.layers):
            threads = 1  # a profiler's timers on the layers: their copies would bypass them
        if threads > 1:
            shared = min(size, -(-len(x) // threads))  # every thread gets a share
            if self.threads is None and not worth_splitting(network.layers,
                                                            shared * self.bytes_per_image(network, x)):
                return size, 1  # the chunks one after another, with BLAS's own threads
            size = shared
        return size, threads

    def bytes_per_image(self, network, x):
        """``chunks.largest_array_per_image``, probed once per network and image shape."""
        key = (x.shape[1:], x.dtype.str, tuple(map(id, network.layers)))
        known = self._helpers_of(network).bytes_per_image
        if key not in known:
            known[key] = largest_array_per_image(network, x)
        return known[key]

    def _helpers_of(self, network):
        if network not in self._helpers:
            self._helpers[network] = _Helpers()
        return self._helpers[network]


def same_layers(network, twin):
    """True while ``twin`` (a network of replicas) was made from ``network``'s very layers and
    shares their parameter dicts."""
    return (len(network.layers) == len(twin.layers)
            and all(a.params is b.params for a, b in zip(network.layers, twin.layers)))


def clear_caches(network):
    """Empty the network's outputs and every layer's caches, which a run on replicas left as
    they were before it: better none than an older call's."""
    network.outputs = []
    for layer in network.layers:
        for name in layer.caches:
            setattr(layer, name, None)


ENGINES = {"fast": FastEngine, "plain": PlainEngine}
