"""Occlusion (Zeiler and Fergus, 2014): grey out a square, see how much the answer drops.

Unlike the gradient methods it asks about a real, large change (a whole window blanked), not an
infinitesimal one; but the map is only as sharp as the window, and a blanked window is itself
an odd image the network never saw in training.
"""
import numpy as np

from .common import BLANK, check_count, logits_of, prepared


def occlusion(network, image, target, window=4, stride=2):
    """For each pixel, the mean over the windows that cover it of ``p_target(image) -
    p_target(image with that window set to -0.5)``; 0 where no window covers. ``(28, 28)``.

    Windows are ``window x window`` squares whose top-left corners step by ``stride`` from the
    image's top-left corner while the square fits; every occluded image is run forward, in a
    few large batches. Positive: the window helped the answer.
    """
    window, stride = check_count(window, "window"), check_count(stride, "stride")
    net, image, target, _ = prepared(network, image, target)
    height, width = image.shape
    if window > min(height, width):
        raise ValueError(f"window must be at most the image's side, {min(height, width)}, got {window}")
    corners = [(top, left) for top in range(0, height - window + 1, stride)
               for left in range(0, width - window + 1, stride)]
    occluded = np.repeat(image[np.newaxis], len(corners) + 1, axis=0)   # the last one intact
    for n, (top, left) in enumerate(corners):
        occluded[n, top:top + window, left:left + window] = BLANK
    _, probs = logits_of(net, occluded)
    drops = probs[-1, target] - probs[:-1, target]                       # (windows,)
    total, count = np.zeros_like(image), np.zeros_like(image)
    for drop, (top, left) in zip(drops, corners):
        total[top:top + window, left:left + window] += drop
        count[top:top + window, left:left + window] += 1
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)
