"""``Network``: a sequence of layers with a loss, trained by an optimizer.

The wiring of the tutorial network, for example::

    Network([Conv3x3(8),              # (N, 28, 28)     -> (N, 26, 26, 8)
             MaxPool2(),              # (N, 26, 26, 8)  -> (N, 13, 13, 8)
             Softmax(13 * 13 * 8, 10)])  # (N, 13, 13, 8) -> (N, 10)
"""
import contextlib

import numpy as np

from .losses import check_labels, cross_entropy, softmax_cross_entropy

EVAL_BATCH = 500  # images per forward pass when predicting or evaluating


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
        """One minibatch of training: forward, loss, backward, then the optimizer's update.
        Returns ``(mean loss, number correct)``.

        Raises ``TrainingDiverged`` *before* updating if the loss is NaN or infinite, so the
        weights stay those of the last good step. (``scratchcnn.engine.FastEngine`` runs the same
        step faster, in parts and on several threads.)
        """
        # Overflow is reported once below, with advice, instead of as NumPy warnings.
        with np.errstate(over="ignore", invalid="ignore"):
            loss, probs = self.loss_and_gradients(x, labels)
        if not np.isfinite(loss):
            raise TrainingDiverged(loss)
        optimizer.step(self.layers)
        return loss, int((probs.argmax(axis=1) == labels).sum())

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
        forward pass (None: ``EVAL_BATCH``). ``outputs`` and the caches are then the last
        pass's."""
        x = np.asarray(x)
        if len(x) == 0:
            raise ValueError(f"Network: nothing to predict, x has shape {x.shape}; pass at least one image")
        size = batch_size or EVAL_BATCH
        with self.evaluating():
            return np.concatenate([self.forward(x[i:i + size]) for i in range(0, len(x), size)])

    def predict(self, x, batch_size=None):
        """Predicted classes ``(N,)``."""
        return self.predict_proba(x, batch_size).argmax(axis=1)

    def evaluate(self, x, labels, batch_size=None):
        """``(mean cross-entropy, accuracy)`` over ``x`` ``(N, ...)`` and ``labels`` ``(N,)``."""
        return score(self.predict_proba(x, batch_size), labels)

    def accuracy(self, x, labels, batch_size=None):
        """Fraction of ``x`` classified as ``labels``."""
        labels = check_labels(labels, len(x), np.iinfo(np.int64).max)
        return float((self.predict(x, batch_size) == labels).mean())


def score(probs, labels):
    """``(mean cross-entropy, accuracy)`` of probabilities ``(N, K)`` for ``labels`` ``(N,)``."""
    loss, _ = cross_entropy(probs, labels)
    return loss, float((probs.argmax(axis=1) == labels).mean())


def check_finite(x):
    """Refuse NaN or infinite input, which would silently poison every weight it touches."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = int(np.size(x) - np.isfinite(x).sum())
        raise ValueError(f"Network: input contains {bad} NaN or infinite values; clean or "
                         "normalise the data first")
