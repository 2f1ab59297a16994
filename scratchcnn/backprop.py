"""One image's backward pass, stage by stage: what the page, the API and ``scripts/backward_figure.py`` show.

``backward_pass(network, image, label)`` runs one normalised image forward, takes the
cross-entropy loss ``L = -log p[label]`` and sends its gradient back through the layers' own
``backward`` (the same route as ``Network.loss_and_gradients``), keeping what a person wants to
look at on the way::

    probabilities (10,)  <- d_L_d_out: -1/p at the label, 0 elsewhere (the tutorial's)
    Softmax              <- fills grads["weights"] (1352, 10), grads["biases"] (10,)
    MaxPool2 (13, 13, 8) <- its output gradient; its input gradient is one pixel per window
    Conv3x3 (26, 26, 8)  <- fills grads["filters"] (8, 3, 3)
    input (28, 28)       <- dL/dx, the saliency map

Then one plain SGD step on a copy shows how the probabilities would move. The network passed in
is never run or changed: everything happens on a ``copy.deepcopy`` of it, in evaluation mode.
"""
import copy
from dataclasses import dataclass

import numpy as np

from .losses import cross_entropy, softmax_cross_entropy
from .network import check_finite
from .optim import SGD

DEFAULT_LR = 0.1


@dataclass
class LayerGradients:
    """One layer's part of the backward pass (a single image: no batch axis anywhere).

    ``layer``: the caller's layer (its ``params`` are those the gradients are taken at);
    ``output``: the layer's output, e.g. ``(26, 26, 8)`` or ``(10,)``; ``output_gradient``:
    dL/d(output), the same shape (for the last layer dL/d(probabilities)); ``param_gradients``:
    ``{name: array}`` shaped exactly like ``layer.grads[name]`` (empty for layers without
    parameters).
    """

    layer: object
    output: np.ndarray
    output_gradient: np.ndarray
    param_gradients: dict


@dataclass
class BackwardPass:
    """What ``backward_pass`` returns.

    ``input`` and ``input_gradient`` are ``(28, 28)`` for MNIST networks (the image's shape);
    ``probabilities`` and ``probabilities_after_step`` are ``(num_classes,)``; ``layers`` has one
    ``LayerGradients`` per layer, in order.
    """

    label: int
    loss: float
    probabilities: np.ndarray
    prediction: int
    input: np.ndarray
    input_gradient: np.ndarray
    layers: list
    lr: float
    probabilities_after_step: np.ndarray
    loss_after_step: float


def check_label(label, num_classes):
    """``label`` as an int in ``[0, num_classes)``, or a ValueError saying what was expected."""
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
        raise ValueError(f"label must be an integer from 0 to {num_classes - 1}, got {label!r}")
    if not 0 <= label < num_classes:
        raise ValueError(f"label must be from 0 to {num_classes - 1}, got {label}")
    return int(label)


def check_lr(lr):
    """``lr`` as a positive, finite float, or a ValueError."""
    if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, (int, float, np.integer, np.floating)) \
            or not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr (learning rate) must be a positive number, got {lr!r}")
    return float(lr)


def backward_pass(network, image, label, lr=DEFAULT_LR):
    """Loss, gradients of every stage and the effect of one SGD step, for one image.

    network: a ``Network`` ending in probabilities ``(N, num_classes)``; never changed.
    image: one example as the network takes it without the batch axis, normalised
    (``(28, 28)``, ``x/255 - 0.5``). label: the target class, ``0 <= label < num_classes``.
    lr: the learning rate of the one plain SGD step (``p -= lr * grad``) whose effect on the
    probabilities is reported. Returns a ``BackwardPass``.
    """
    image = np.asarray(image)
    check_finite(image)
    lr = check_lr(lr)
    net = copy.deepcopy(network).eval()        # layers cache state: never run the caller's
    probs = net.forward(image[np.newaxis])     # (1, ...) -> (1, num_classes)
    if probs.ndim != 2:
        raise ValueError(f"backward_pass: the network must output (N, num_classes) probabilities, "
                         f"got shape {probs.shape}")
    labels = np.array([check_label(label, probs.shape[1])])
    loss, gradients = backward_by_layer(net, probs, labels)
    layers = [LayerGradients(layer, np.array(out[0]), np.array(grad[0]),
                             {name: g.copy() for name, g in ran.grads.items()})
              for layer, ran, out, grad in zip(network.layers, net.layers, net.outputs[1:], gradients[1:])]
    probs, input_gradient = np.array(probs[0]), np.array(gradients[0][0]).reshape(image.shape)

    SGD(lr).step(net.layers)                   # on the copy; its gradients were copied above
    after = net.forward(image[np.newaxis])
    return BackwardPass(
        label=int(labels[0]), loss=loss, probabilities=probs, prediction=int(probs.argmax()),
        input=np.array(image), input_gradient=input_gradient, layers=layers, lr=lr,
        probabilities_after_step=np.array(after[0]), loss_after_step=cross_entropy(after, labels)[0])


def backward_by_layer(network, probs, labels):
    """The backward pass of ``Network.loss_and_gradients``, keeping every stage's gradient.

    ``network`` has just run forward to ``probs`` ``(N, K)``. Fills every layer's ``grads``
    and returns ``(loss, gradients)``: ``gradients[0]`` is dL/d(input), ``gradients[i + 1]``
    dL/d(output of layer i), the last one dL/d(probabilities) = -1/(N p) at each label.
    A last layer with ``backward_from_logits`` (Softmax) is fed ``(p - one_hot) / N`` on its
    logits, as in ``Network``: the same numbers as through ``d_probs``, without dividing by
    a probability that may have underflowed to 0.
    """
    loss, d_probs = cross_entropy(probs, labels)
    last = network.layers[-1]
    if hasattr(last, "backward_from_logits"):
        loss, d_logits = softmax_cross_entropy(last.last_totals, labels)
        d_out = last.backward_from_logits(d_logits)
    else:
        d_out = last.backward(d_probs)
    gradients = [d_probs, d_out]                # collected from the output back to the input
    for layer in reversed(network.layers[:-1]):
        d_out = layer.backward(d_out)
        gradients.append(d_out)
    return loss, gradients[::-1]
