"""What every explanation shares: argument checks, the float64 copy it runs on, and one pass
that gives the logits and the gradient of one logit per image w.r.t. the images.

"The logit" of a class is what the network's last ``Softmax`` computes before its exponential,
its ``last_totals`` (``x @ weights + biases``). Explanations differentiate it rather than the
probability: the probability of a confident answer is flat (its gradient vanishes as p -> 1),
the logit keeps saying which pixels push it up.
"""
import copy
import numbers

import numpy as np

BLANK = -0.5          # an empty pixel, as ``scratchcnn.data.normalize`` makes it (0 / 255 - 0.5)
BATCH = 64            # at most this many images per pass: a few large passes, bounded memory


def explaining_copy(network):
    """A float64 copy of ``network`` in evaluation mode; the network passed in is never run.

    Layers keep what ``backward`` needs on themselves during ``forward``, so running the caller's
    network would change it: every explanation runs a ``copy.deepcopy`` instead. float64 keeps the
    long chains of differences these methods take (paths, finite checks, tiny steps) clear of
    float32 rounding.
    """
    net = copy.deepcopy(network)
    for layer in net.layers:
        for name, value in vars(layer).items():
            if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
                setattr(layer, name, value.astype(np.float64))   # running statistics, caches
        layer.params = {name: p.astype(np.float64) for name, p in layer.params.items()}
        layer.grads = {name: g.astype(np.float64) for name, g in layer.grads.items()}
        if hasattr(layer, "dtype"):
            layer.dtype = np.dtype(np.float64)     # the dtype a layer casts its input to
        if hasattr(layer, "last_columns"):
            layer.last_columns = None              # a convolution's window matrix, remade in float64
    if not hasattr(net.layers[-1], "backward_from_logits"):
        raise ValueError(f"explain: the network must end in a Softmax layer, whose logits the "
                         f"explanations differentiate; it ends in {type(net.layers[-1]).__name__}")
    return net.eval()


def check_image(image, name="image"):
    """``image`` as a float64 ``(H, W)`` array (``(28, 28)`` for MNIST), or a ValueError."""
    array = np.asarray(image)
    if not np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_:
        raise ValueError(f"{name} must be an array of numbers, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{name} must be one image of shape (28, 28) (pixel / 255 - 0.5, as "
                         f"scratchcnn.data.normalize makes it), got shape {array.shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        bad = int(array.size - np.isfinite(array).sum())
        raise ValueError(f"{name} contains {bad} NaN or infinite values; pass finite pixels")
    return array


def check_target(target, num_classes=10):
    """``target`` as an int class from 0 to ``num_classes - 1``, or a ValueError."""
    if isinstance(target, (bool, np.bool_)) or not isinstance(target, numbers.Integral):
        raise ValueError(f"target must be a class, an integer from 0 to {num_classes - 1}, got {target!r}")
    if not 0 <= target < num_classes:
        raise ValueError(f"target must be from 0 to {num_classes - 1}, got {target}")
    return int(target)


def check_count(value, name, low=1):
    """``value`` as an int >= ``low`` (steps, samples, window, stride), or a ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_amount(value, name):
    """``value`` as a finite float >= 0 (eps, noise, a penalty), or a ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def logits_of(net, images):
    """Logits ``(N, classes)`` and probabilities ``(N, classes)`` of ``images`` ``(N, H, W)``,
    forward only, ``BATCH`` images per pass."""
    logits, probs = [], []
    for start in range(0, len(images), BATCH):
        probs.append(net.forward(images[start:start + BATCH]))
        logits.append(net.layers[-1].last_totals)
    return np.concatenate(logits), np.concatenate(probs)


def logit_gradients(net, images, d_logits):
    """The images' gradients of ``sum(d_logits * logits)``, through the layers' own ``backward``.

    images ``(N, H, W)``; d_logits ``(N, classes)``, e.g. one-hot rows for "d logit_target / d
    image". Returns ``(logits (N, classes), probabilities (N, classes), gradients (N, H, W))``,
    ``BATCH`` images per pass.
    """
    logits, probs, grads = [], [], []
    for start in range(0, len(images), BATCH):
        batch = slice(start, start + BATCH)
        probs.append(net.forward(images[batch]))
        logits.append(net.layers[-1].last_totals)
        grads.append(backward_to(net, d_logits[batch], 0))
    return np.concatenate(logits), np.concatenate(probs), np.concatenate(grads)


def backward_to(net, d_logits, stop):
    """After a forward pass: the gradient w.r.t. the input of layer ``stop`` (0: the images)
    of ``sum(d_logits * logits)``. The last layer is entered through ``backward_from_logits``."""
    d_out = net.layers[-1].backward_from_logits(d_logits)
    for layer in reversed(net.layers[stop:-1]):
        d_out = layer.backward(d_out)
    return d_out


def one_hot(targets, num_classes):
    """``(N,)`` class indices -> ``(N, num_classes)`` rows of 0 with a 1 at each target."""
    rows = np.zeros((len(targets), num_classes))
    rows[np.arange(len(targets)), targets] = 1.0
    return rows


def prepared(network, image, target):
    """The checks and the copy every explanation of one image starts with:
    ``(float64 copy, image (H, W) float64, target int, number of classes)``."""
    image = check_image(image)
    net = explaining_copy(network)
    try:
        num_classes = net.forward(image[np.newaxis]).shape[1]
    except ValueError as error:
        raise ValueError(f"image of shape {image.shape} does not fit the network: {error}") from None
    if target is not None:
        target = check_target(target, num_classes)
    return net, image, target, num_classes
