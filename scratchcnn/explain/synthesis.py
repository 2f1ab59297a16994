"""Images made *for* the network: what it thinks a digit looks like, and digits that fool it.

* ``class_model``: gradient ascent on a class's logit from a blank image, with an L2 penalty on
  the ink (Simonyan et al., 2014): the pattern the class's logit likes most, nearby. Not what
  the digit looks like, nor what the network saw in training: a picture of its weights.
* ``adversarial``: iterative FGSM, i.e. projected gradient descent in the max norm (Goodfellow
  et al., 2015; Madry et al., 2018): every pixel moves by at most ``eps``, yet the answer
  changes. That a few faint pixels do it says the network's evidence is not what a person's is.
"""
import numpy as np

from .common import (BLANK, backward_to, check_amount, check_count, check_target, explaining_copy, logit_gradients,
                     one_hot, prepared)

CLASS_MODEL_STEP = 0.05    # the largest pixel change of one ascent step
CLASS_MODEL_L2 = 0.05      # the weight of the penalty on the ink, per pixel


def class_model(network, target, steps=100, l2=CLASS_MODEL_L2, image_shape=(28, 28)):
    """An image ``(28, 28)`` in [-0.5, 0.5] that the network classifies as ``target``: ``steps``
    steps of gradient ascent on ``logit_target(x) - l2 * ||x - blank||^2`` from the blank image.

    Each step moves the pixels along that objective's gradient, scaled so the largest change is
    ``CLASS_MODEL_STEP`` (the logits' scale differs from network to network), then clips them
    to [-0.5, 0.5]. The penalty keeps the ink to what the logit needs."""
    return class_models(network, [target], steps, l2, image_shape)[0]


def class_models(network, targets=range(10), steps=100, l2=CLASS_MODEL_L2, image_shape=(28, 28),
                 between_steps=None):
    """``class_model`` of every class in ``targets``, all in one batch: ``(len(targets), 28, 28)``.

    ``between_steps``: called with no arguments after every step (a server lets the requests
    waiting for an answer go first there)."""
    steps = check_count(steps, "steps")
    l2 = check_amount(l2, "l2")
    net = explaining_copy(network)
    images = np.full((len(targets), *image_shape), BLANK)
    classes = net.forward(images[:1]).shape[1]
    targets = [check_target(t, classes) for t in targets]
    d_logits = one_hot(targets, classes)
    for _ in range(steps):
        grads = logit_gradients(net, images, d_logits)[2] - 2 * l2 * (images - BLANK)
        largest = np.abs(grads).max(axis=(1, 2), keepdims=True)
        images += CLASS_MODEL_STEP * grads / np.maximum(largest, 1e-12)
        np.clip(images, -0.5, 0.5, out=images)
        if between_steps is not None:
            between_steps()
    return images


def adversarial(network, image, target=None, eps=0.1, steps=10, step_size=None):
    """An image ``(28, 28)`` within ``eps`` of ``image`` in every pixel and within [-0.5, 0.5],
    made by ``steps`` steps of iterative FGSM (PGD in the max norm).

    ``target`` None: each step moves every pixel by ``step_size`` along the sign of the gradient
    of the cross-entropy loss at the predicted class (away from it); a class: against the sign
    of the loss at that class (towards it). Then back within the bounds. ``step_size`` None:
    ``2.5 * eps / steps``, so the steps can cross the allowed box and still settle (Madry et al.).
    """
    eps = check_amount(eps, "eps")
    steps = check_count(steps, "steps")
    step_size = 2.5 * eps / steps if step_size is None else check_amount(step_size, "step_size")
    net, image, target, classes = prepared(network, image, target)
    goal = int(net.layers[-1].last_output[0].argmax()) if target is None else target
    away = 1.0 if target is None else -1.0          # ascend the loss at the prediction, or descend
    low, high = np.maximum(image - eps, -0.5), np.minimum(image + eps, 0.5)
    x = image.copy()
    for _ in range(steps):
        probs = net.forward(x[np.newaxis])
        # d loss / d logits of the cross-entropy at `goal`: probabilities minus the one-hot row.
        grad = backward_to(net, probs - one_hot([goal], classes), 0)[0]
        x = np.clip(x + away * step_size * np.sign(grad), low, high)
    return x
