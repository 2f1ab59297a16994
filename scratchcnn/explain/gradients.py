"""Explanations read off the gradient of a logit w.r.t. the pixels.

* ``saliency``: d logit_target / d image (Simonyan et al., 2014). Not the Backward view's map,
  which is the *loss's* gradient dL/dx: for the predicted class the two point the opposite way.
* ``gradient_times_input``: the saliency times the image.
* ``smoothgrad``: the mean saliency over noisy copies of the image (Smilkov et al., 2017).
* ``integrated_gradients``: (image - baseline) times the mean gradient on the straight path
  from the baseline to the image (Sundararajan et al., 2017), whose sum is the change of the
  logit along the path (completeness).

Every function returns a ``(28, 28)`` float64 map (the image's shape) and leaves the network it
is given unchanged: see ``common.explaining_copy``.
"""
import numpy as np

from .common import BLANK, check_amount, check_count, check_image, logit_gradients, one_hot, prepared


def saliency(network, image, target):
    """d logit_target / d image, ``(28, 28)``: how fast the class's logit changes with each pixel.

    Noisy and local: it says what a tiny change of each pixel does here, not what the pixel
    contributed; on a ReLU network it jumps from pixel to pixel.
    """
    net, image, target, classes = prepared(network, image, target)
    return _gradients(net, image[np.newaxis], target, classes)[0]


def gradient_times_input(network, image, target):
    """``saliency * image``, ``(28, 28)``. With inputs in [-0.5, 0.5], a blank pixel is -0.5, not
    0, so background pixels get weight too (the sign flips there): a baseline-free cousin of
    ``integrated_gradients``, exact only for a linear network."""
    net, image, target, classes = prepared(network, image, target)
    return _gradients(net, image[np.newaxis], target, classes)[0] * image


def smoothgrad(network, image, target, samples=50, noise=0.15, seed=0):
    """The mean saliency over ``samples`` copies of the image with Gaussian noise of standard
    deviation ``noise`` added (seeded by ``seed``), ``(28, 28)``: less speckled than one
    saliency map, but blurred, and the noise level is a choice that changes the picture."""
    samples = check_count(samples, "samples")
    noise = check_amount(noise, "noise")
    net, image, target, classes = prepared(network, image, target)
    noisy = image + noise * np.random.default_rng(seed).standard_normal((samples, *image.shape))
    return _gradients(net, noisy, target, classes).mean(axis=0)


def integrated_gradients(network, image, target, baseline=None, steps=64, with_gap=False,
                         tolerance=0.01, max_points=None):
    """Integrated Gradients, ``(28, 28)``: ``(image - baseline)`` times the mean of d
    logit_target / dx along the straight path from ``baseline`` to ``image``.

    ``baseline`` None is the blank image (-0.5 everywhere): the map then says how the logit got
    from "nothing drawn" to this drawing, pixel by pixel, and it depends on that choice.
    Completeness: the map's sum is ``logit_target(image) - logit_target(baseline)`` (the gap)
    when the mean is exact; with ``with_gap=True`` the function returns ``(map, gap)``.

    The mean is an adaptive trapezoid rule (``path_integral``): ``steps`` equal pieces, then the
    pieces whose gradients disagree most with their own change of the logit are halved until the
    sum is within ``tolerance`` of the gap (of 0.1 when the gap is smaller), at most
    ``max_points`` points in all (None: ``5 * steps + 1``). On a ReLU network the gradient jumps
    wherever a unit switches on or off along the path; equal pieces alone miss by a few percent.
    """
    steps = check_count(steps, "steps")
    tolerance = check_amount(tolerance, "tolerance")
    max_points = 5 * steps + 1 if max_points is None else check_count(max_points, "max_points", steps + 1)
    net, image, target, classes = prepared(network, image, target)
    baseline = np.full_like(image, BLANK) if baseline is None else check_image(baseline, "baseline")
    if baseline.shape != image.shape:
        raise ValueError(f"baseline must have the image's shape {image.shape}, got {baseline.shape}")

    def logit_and_gradient(alphas):                 # points on the path -> logits, gradients
        points = baseline + alphas[:, None, None] * (image - baseline)
        logits, _, grads = logit_gradients(net, points, one_hot(np.full(len(points), target), classes))
        return logits[:, target], grads

    mean_gradient, gap = path_integral(logit_and_gradient, image - baseline, steps, tolerance, max_points)
    attribution = (image - baseline) * mean_gradient
    return (attribution, gap) if with_gap else attribution


def path_integral(evaluate, delta, steps, tolerance, max_points):
    """The mean gradient along the path, ``(H, W)``, and the logit's change along it.

    ``evaluate(alphas)`` gives the logit and its gradient at the points ``baseline + alpha *
    delta``. A trapezoid rule on ``steps`` equal pieces; then, while the attributions' sum misses
    the gap by more than ``tolerance * max(|gap|, 0.1)`` and fewer than ``max_points`` points were
    taken, the quarter of the pieces whose trapezoids miss their own change of the logit the
    most are halved (a kink in the path, where a ReLU switches, lies inside them).
    """
    alphas = np.linspace(0.0, 1.0, steps + 1)
    logits, grads = evaluate(alphas)
    gap = float(logits[-1] - logits[0])
    allowed = tolerance * max(abs(gap), 0.1)
    while True:
        widths = np.diff(alphas)
        pieces = 0.5 * (grads[1:] + grads[:-1]) * widths[:, None, None]   # (pieces, H, W)
        misses = np.diff(logits) - (pieces * delta).sum(axis=(1, 2))
        room = max_points - len(alphas)
        if abs(misses.sum()) <= allowed or room <= 0:
            return pieces.sum(axis=0), gap
        worst = np.argsort(-np.abs(misses))[:min(room, max(1, len(widths) // 4))]
        new_alphas = alphas[worst] + widths[worst] / 2
        new_logits, new_grads = evaluate(new_alphas)
        order = np.argsort(np.concatenate([alphas, new_alphas]), kind="stable")
        alphas = np.concatenate([alphas, new_alphas])[order]
        logits = np.concatenate([logits, new_logits])[order]
        grads = np.concatenate([grads, new_grads])[order]


def _gradients(net, images, target, classes):
    """d logit_target / d image for every image ``(N, H, W)`` -> ``(N, H, W)``."""
    d_logits = one_hot(np.full(len(images), target), classes)
    return logit_gradients(net, images, d_logits)[2]
