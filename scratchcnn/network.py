"""``Network``: a sequence of layers with a loss, trained by an optimizer.

The wiring of the tutorial network, for example::

    Network([Conv3x3(8),              # (N, 28, 28)     -> (N, 26, 26, 8)
             MaxPool2(),              # (N, 26, 26, 8)  -> (N, 13, 13, 8)
             Softmax(13 * 13 * 8, 10)])  # (N, 13, 13, 8) -> (N, 10)
"""
import contextlib

import numpy as np

from . import parallel, runtime
from .losses import check_labels, cross_entropy, softmax_cross_entropy

EVAL_BATCH = 500  # at most this many images per forward pass when predicting or evaluating
# A chunk of images per forward pass (predicting) or per part of a batch (training on one thread,
# when no layer shares the batch) is as large as keeps the largest array a layer makes (an im2col
# window matrix, usually) within this size, so the passes over it are served from the CPU's caches
# instead of memory. Predicting: 1.5-1.8x faster than chunks of EVAL_BATCH for the convolutional
# models on one thread, within a few percent of the best chunk for nearly every model
# (benchmarks/predict_chunks.py, table in benchmarks/README.md); training classic on one thread:
# +19% on the AVX-512 Zen 5 machine, +0-4% on the AVX2 Zen 3 one.
CHUNK_BYTES = 3 * 2 ** 20


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the weights are those from before the bad step."""

    def __init__(self, loss, where=""):
        self.loss = loss
        super().__init__(f"the loss became {loss}{where}; try a lower learning rate")


class Network:
    """Sequential network ending in a layer that outputs ``(N, num_classes)`` probabilities."""

    def __init__(self, layers):
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("Network: needs at least one layer")
        self.outputs = []  # after forward: [input, output of layer 0, output of layer 1, ...]
        self.input_gradient = None  # after loss_and_gradients(..., input_grad=True): dL/dx
        # Parts of each training batch run at once (scratchcnn.parallel): None follows
        # scratchcnn.runtime's thread count, 1 never splits.
        self.batch_threads = None
        self.splitter = None  # the parallel.BatchSplitter in use, made by the first split step
        self.chunk_runner = None  # the parallel.ChunkRunner that predicts on several threads
        self.largest_per_image = {}  # image_bytes's answers, by the shape of one image

    cross_entropy = staticmethod(cross_entropy)

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Network([\n  {inner}\n])"

    def train(self):
        """Training mode (dropout active)."""
        for layer in self.layers:
            layer.training = True
        return self

    def eval(self):
        """Evaluation mode (dropout off)."""
        for layer in self.layers:
            layer.training = False
        return self

    def forward(self, x):
        """``x`` ``(N, ...)`` -> probabilities ``(N, num_classes)``; keeps every layer's output
        in ``self.outputs`` for inspection."""
        self.outputs = [x]
        for layer in self.layers:
            x = layer.forward(x)
            self.outputs.append(x)
        return x

    def backward(self, d_out, input_grad=True):
        """Gradient w.r.t. the network's output -> gradient w.r.t. its input; fills every
        layer's ``grads``.

        ``input_grad=False``, as in training, where the gradient w.r.t. the images is never
        used: the first layer with parameters skips computing it (``needs_input_grad``, about a
        quarter of the seed network's step), the parameter-free layers before it (a ``Flatten``)
        are not stepped, and None is returned.
        """
        return self._backward(d_out, input_grad, from_logits=False)

    def _backward(self, d_out, input_grad, from_logits):
        """``backward``; with ``from_logits``, ``d_out`` is the gradient w.r.t. the last layer's
        logits and enters through its ``backward_from_logits``."""
        last = len(self.layers) - 1
        first = 0 if input_grad else next((i for i, layer in enumerate(self.layers) if layer.params), 0)
        self.layers[first].needs_input_grad = input_grad
        try:
            for i in range(last, first - 1, -1):
                layer = self.layers[i]
                d_out = layer.backward_from_logits(d_out) if from_logits and i == last else layer.backward(d_out)
        finally:
            self.layers[first].needs_input_grad = True  # the layer on its own returns d_x again
        return d_out if input_grad else None

    def loss_and_gradients(self, x, labels, input_grad=False):
        """Forward, mean cross-entropy and backward on one batch. Returns ``(loss, probs)``.

        When the last layer is a ``Softmax`` the fused gradient ``(probs - one_hot) / N`` is
        fed straight to its logits (stable, and faster than going through ``d_probs``);
        otherwise the general ``cross_entropy`` gradient goes through ``backward``. Only the
        parameters' gradients are computed, unless ``input_grad``: then the loss's gradient
        w.r.t. ``x`` is kept in ``self.input_gradient`` (same shape as ``x``).
        """
        check_finite(x)
        probs = self.forward(x)
        last = self.layers[-1]
        if hasattr(last, "backward_from_logits"):
            loss, d_logits = softmax_cross_entropy(last.last_totals, labels)
            self.input_gradient = self._backward(d_logits, input_grad, from_logits=True)
        else:
            loss, d_probs = cross_entropy(probs, labels)
            self.input_gradient = self._backward(d_probs, input_grad, from_logits=False)
        return loss, probs

    def train_step(self, x, labels, optimizer):
        """One minibatch of training. Returns ``(mean loss, number correct)``.

        Raises ``TrainingDiverged`` *before* updating if the loss is NaN or infinite, so the
        weights stay those of the last good step. On several threads (``batch_threads``, or the
        runtime's count) the batch's parts run at once: see ``scratchcnn.parallel``.
        """
        # Overflow is reported once below, with advice, instead of as NumPy warnings.
        with np.errstate(over="ignore", invalid="ignore"):
            splitter, part_size = self._splitter_for(x)
            loss, probs = (self.loss_and_gradients(x, labels) if splitter is None
                           else splitter.loss_and_gradients(x, labels, part_size))
        if not np.isfinite(loss):
            raise TrainingDiverged(loss)
        optimizer.step(self.layers)
        return loss, int((probs.argmax(axis=1) == labels).sum())

    def _splitter_for(self, x):
        """``(None, None)`` to run the training batch ``x`` whole, in one pass, or
        ``(a parallel.BatchSplitter, the size of its parts or None)``.

        On several threads (``batch_threads``, or else the runtime's thread count if every layer
        can be split) each thread runs one part; with the runtime's count, only where that pays
        (``parallel.worth_splitting``): else the whole batch runs with BLAS's own threads. On
        one thread, the batch runs in cache-sized parts (``chunk_size``) when no layer shares
        it. ``batch_threads=1`` always runs the whole batch.
        """
        threads = self.batch_threads or runtime.threads_in_force()
        automatic = self.batch_threads is None
        if self.batch_threads == 1 or (automatic and parallel.unsplittable_layer(self.layers)):
            return None, None
        if threads >= 2:
            part_bytes = -(-len(x) // threads) * self.image_bytes(x)
            if automatic and not parallel.worth_splitting(self.layers, part_bytes):
                return None, None
            part_size = None  # one part a thread: smaller ones hand the GIL to and fro (parallel.py)
        else:
            part_size = self.chunk_size(x)
            if parallel.shares_batch(self.layers) or len(x) <= part_size:
                return None, None
        if self.splitter is None or not self.splitter.fits(self, threads):
            self.splitter = parallel.BatchSplitter(self, threads)  # refuses unsplittable layers
        return self.splitter, part_size

    @contextlib.contextmanager
    def evaluating(self):
        """``with network.evaluating():`` evaluation mode inside, each layer's mode restored after."""
        modes = [layer.training for layer in self.layers]
        self.eval()
        try:
            yield self
        finally:
            for layer, training in zip(self.layers, modes):
                layer.training = training

    def predict_proba(self, x, batch_size=None):
        """Probabilities ``(N, num_classes)`` in evaluation mode, ``batch_size`` images per
        forward pass (None: ``chunk_size``). On several threads (``batch_threads``, or the
        runtime's count where ``parallel.worth_splitting``) the passes run at once, each thread
        through its own copies of the layers (``parallel.ChunkRunner``); ``outputs`` and the
        ``last_*`` caches are then not those of the last chunk. The probabilities are the same
        either way."""
        x = np.asarray(x)
        if len(x) == 0:
            raise ValueError(f"Network: nothing to predict, x has shape {x.shape}; pass at least one image")
        size, threads = self.predict_chunking(x, batch_size)
        chunks = [x[i:i + size] for i in range(0, len(x), size)]
        with self.evaluating():
            if threads < 2:
                return np.concatenate([self.forward(chunk) for chunk in chunks])
            if self.chunk_runner is None or self.chunk_runner.threads != threads:
                self.chunk_runner = parallel.ChunkRunner(self, threads)
            return np.concatenate(self.chunk_runner.forward(chunks))

    def predict_chunking(self, x, batch_size=None):
        """``(images per forward pass, threads)`` with which ``predict_proba`` runs ``x``
        ``(N, ...)``: ``batch_size`` (None: ``chunk_size``) images per pass; the passes on one
        thread (BLAS's own threads inside) or ``threads`` at once through ``ChunkRunner``."""
        size = batch_size or self.chunk_size(x)
        threads = min(self.batch_threads or runtime.threads_in_force(), len(x))
        if threads > 1 and any(parallel.methods_replaced(layer) for layer in self.layers):
            threads = 1  # a profiler's timers on the layers: their copies would bypass them
        if threads > 1:
            shared = min(size, -(-len(x) // threads))  # every thread gets a share
            if self.batch_threads is None and not parallel.worth_splitting(self.layers, shared * self.image_bytes(x)):
                return size, 1  # the chunks one after another, with BLAS's own threads
            size = shared
        return size, threads

    def chunk_size(self, x):
        """How many images of ``x`` ``(N, ...)`` ``predict_proba`` runs per forward pass, and a
        training batch on one thread per part: as many as keep each layer's largest array
        within ``CHUNK_BYTES``, at most ``EVAL_BATCH``."""
        return int(min(EVAL_BATCH, max(1, CHUNK_BYTES // self.image_bytes(x))))

    def image_bytes(self, x):
        """Bytes of the largest array any layer makes per image of ``x`` ``(N, ...)``. Found once
        per image shape by a forward pass of one image in evaluation mode (the arrays grow in
        proportion to the images)."""
        key = (x.shape[1:], x.dtype.str)
        if key not in self.largest_per_image:
            try:
                with self.evaluating():
                    self.forward(x[:1])
            except ValueError as error:  # bad input, found on one image: say what the caller passed
                raise ValueError(f"{error} (in a pass over the first image of x, shape {x.shape})") from None
            arrays = [a for layer in self.layers for a in vars(layer).values() if isinstance(a, np.ndarray)]
            self.largest_per_image[key] = max(a.nbytes for a in arrays + self.outputs)
        return self.largest_per_image[key]

    def predict(self, x, batch_size=None):
        """Predicted classes ``(N,)``."""
        return self.predict_proba(x, batch_size).argmax(axis=1)

    def evaluate(self, x, labels, batch_size=None):
        """``(mean cross-entropy, accuracy)`` over ``x`` ``(N, ...)`` and ``labels`` ``(N,)``."""
        probs = self.predict_proba(x, batch_size)
        loss, _ = cross_entropy(probs, labels)
        return loss, float((probs.argmax(axis=1) == labels).mean())

    def accuracy(self, x, labels, batch_size=None):
        """Fraction of ``x`` classified as ``labels``."""
        labels = check_labels(labels, len(x), np.iinfo(np.int64).max)
        return float((self.predict(x, batch_size) == labels).mean())


def check_finite(x):
    """Refuse NaN or infinite input, which would silently poison every weight it touches."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = int(np.size(x) - np.isfinite(x).sum())
        raise ValueError(f"Network: input contains {bad} NaN or infinite values; clean or "
                         "normalise the data first")
