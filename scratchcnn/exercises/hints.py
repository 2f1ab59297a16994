"""Known mistakes, recognised by their numbers: when a learner's result is exactly what a known
mistake would give, the check names the mistake.

A "signature" is what the result would be if the mistake had been made: the expected array
with its sign flipped, divided by the batch size, transposed, ... (``generic_signatures``),
or an array a layer's case computes for its own mistakes (``cases.py``: a flipped kernel, the
pooling gradient sent to every pixel, ...). ``name_mistake`` returns the hint of the first
signature the learner's array matches.
"""
import numpy as np

MATCH = 1e-4  # a result "is" a signature when it is within this share of the expected's scale

TRANSPOSED = ("the gradient is transposed (rows and columns swapped). A parameter's gradient "
              "has the parameter's own shape, element for element: grads[name][..., a, b] is the "
              "gradient of params[name][..., a, b], not of [..., b, a].")
TRANSPOSED_SHAPE = ("the gradient is transposed. A parameter's gradient has the parameter's own "
                    "shape, element for element: for weights (input_len, nodes), "
                    "grads['weights'] = x.T @ d_totals, not d_totals.T @ x.")
TRANSPOSED_FILTER = ("the filter is transposed (rows and columns swapped): filter weight "
                     "[a, b] multiplies the window's pixel at row a, column b; compare "
                     "x[n, i+a, j+b] * filters[f, a, b] in the comments with your indices.")
ONE_IMAGE = ("this is the gradient of image {image} alone. Every image of the batch uses the "
             "same parameters, so their gradient is the sum over the batch: add (+=) inside "
             "the loop over the images instead of assigning (=), or sum over the batch axis.")
MEAN = ("off by a factor of N = {n} (the batch size): this is the mean over the batch. "
        "scratchcnn's layers sum over the batch; the 1/N of the mean loss is already in the "
        "d_out that the loss sends back.")
TIMES_N = ("off by a factor of N = {n} (the batch size): the sum over the batch is taken "
           "twice, or each image's share is multiplied by the batch size.")
WRONG_SIGN = ("this is the right gradient with the wrong sign. backward returns the gradient "
              "itself (the direction that increases the loss; the optimizer subtracts it): look "
              "for a minus sign too many, or a - b written b - a.")
FLIPPED_FORWARD = ("the kernel is flipped (rotated 180 degrees): this is a true convolution. "
                   "scratchcnn, like the tutorial and every framework, computes "
                   "cross-correlation: output[n, i, j, f] = sum(x[n, i:i+3, j:j+3] * filters[f]), "
                   "the window's top-left pixel times filters[f, 0, 0], without flipping.")
FLIPPED_BACKWARD = ("the kernel is flipped (rotated 180 degrees) here. Each window's gradient "
                    "goes back to the pixels it came from through the filter as it is: add "
                    "d_out[n, i, j, f] * filters[f] to d_x[n, i:i+3, j:j+3] (and, for the "
                    "filters, d_out[n, i, j, f] * x[n, i:i+3, j:j+3] to grads['filters'][f]).")
EVERY_PIXEL = ("each window's gradient went to all four of its pixels. Only the maximum reached "
               "the output (nudging any other pixel of the window changes nothing), so only the "
               "maximum gets the gradient and the other three get 0.")
TIED = ("where a window's maximum is tied, the gradient went to every tied pixel (as the "
        "tutorial does), which multiplies it by the number of ties: on MNIST's flat background "
        "all four pixels tie, and the window's gradient arrives four times. Whichever tied "
        "pixels you nudge, the output moves by one nudge at most, so the gradients a window "
        "hands its pixels must add up to its own gradient: send it to exactly one of them, "
        "e.g. the first in row-major order (np.argmax's choice), as scratchcnn does.")
SPLIT_TIED = ("where a window's maximum is tied, the gradient was split among the tied pixels. "
              "scratchcnn (like PyTorch) sends all of it to exactly one of them, the first in "
              "row-major order (np.argmax's choice): do the same.")
BIAS_MISSING = ("grads['biases'] is all zeros: the bias gradient is missing. A bias is added to "
                "every image's totals, so its gradient is d_totals summed over the batch: "
                "grads['biases'] = d_totals.sum(axis=0).")
NO_MAX = ("no maximum subtracted in the softmax: exp(1000) overflows to inf, and inf / inf is "
          "nan. Subtract each row's maximum from its totals before exp (keepdims=True); "
          "softmax(t - max(t)) is exactly softmax(t).")
ZEROS = "grads['{name}'] is all zeros: does backward set it (self.grads['{name}'] = ...)?"
ACCUMULATES = ("this is the right gradient plus the one from the call before: backward adds to "
               "grads left from the previous call. Set self.grads[...] afresh in every backward "
               "(or start it from zeros there); the optimizer never clears it.")
TUTORIAL_SHORTCUT = ("backward used only the first entry of each row of d_out, the tutorial's "
                     "shortcut (right only when the loss sends a single nonzero gradient, as "
                     "cross-entropy does). The check sends a gradient for every probability: use "
                     "d_totals = p * (d_out - (d_out * p).sum(axis=1, keepdims=True)).")
RESHAPE = ("the right number of values in another shape, {shape} being expected: a gradient "
           "has the shape of what it is the gradient of (d_x: forward's input; grads[name]: "
           "params[name]); reshape it.")
AXES_ORDER = ("the right sizes in another order: scratchcnn keeps channels last, "
              "(N, H, W, C), the filter/channel axis at the end.")
NO_INPUT_GRADIENT = ("backward must return the gradient with respect to its input, d_x. (The "
                     "tutorial's Conv3x3 returns nothing, being the first layer; the check, the "
                     "page's saliency map and any layer placed before it need d_x.)")
NOT_FINITE = "the result holds nan or inf: an overflow, a division by zero, or an array left empty (np.empty)?"


def resembles(got, signature, scale):
    """Whether ``got`` equals ``signature`` to within ``MATCH`` of ``scale`` (same shape, finite)."""
    got, signature = np.asarray(got, dtype=np.float64), np.asarray(signature, dtype=np.float64)
    if got.shape != signature.shape or not np.isfinite(got).all():
        return False
    return float(np.max(np.abs(got - signature), initial=0.0)) <= MATCH * scale


def generic_signatures(name, expected, batch_size, before=None):
    """``[(hint, signature)]`` for the mistakes any gradient can make.

    name: ``"input"`` or the parameter's name; expected: the right gradient; batch_size: N;
    before: the learner's ``grads[name]`` before this backward (for the ``+=`` mistake)."""
    expected = np.asarray(expected, dtype=np.float64)
    zeros = np.zeros_like(expected)
    signatures = [(BIAS_MISSING if name == "biases" else ZEROS.format(name=name), zeros),
                  (WRONG_SIGN, -expected),
                  (MEAN.format(n=batch_size), expected / batch_size),
                  (TIMES_N.format(n=batch_size), expected * batch_size)]
    if expected.ndim >= 2 and expected.shape[-1] == expected.shape[-2]:
        signatures.append((TRANSPOSED, np.swapaxes(expected, -1, -2)))
    if before is not None and np.shape(before) == expected.shape and np.any(before):
        signatures.append((ACCUMULATES, np.asarray(before, dtype=np.float64) + expected))
    return signatures


def one_image_signatures(per_image):
    """``[(hint, signature)]``: a parameter's gradient taken from image ``b`` only, for each ``b``
    (``per_image[b]`` is image ``b``'s own gradient); the last image first, the usual culprit."""
    return [(ONE_IMAGE.format(image=b), gradient) for b, gradient in reversed(list(enumerate(per_image)))]


def name_mistake(got, expected, signatures):
    """The hint of the first of ``signatures`` that ``got`` matches, else None. A signature equal
    to the expected array itself (say, zeros when zeros are right) never matches."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = float(np.max(np.abs(expected), initial=0.0)) or 1.0
    for hint, signature in signatures:
        if resembles(got, signature, scale) and not resembles(expected, signature, scale):
            return hint
    return None


def shape_hint(got_shape, expected_shape):
    """The hint for an array of the wrong shape, or None: transposed, reordered or reshaped."""
    got_shape, expected_shape = tuple(got_shape), tuple(expected_shape)
    if len(got_shape) == len(expected_shape) == 2 and got_shape == expected_shape[::-1]:
        return TRANSPOSED_SHAPE
    if sorted(got_shape) == sorted(expected_shape) and len(got_shape) == len(expected_shape):
        return AXES_ORDER
    if int(np.prod(got_shape)) == int(np.prod(expected_shape)):
        return RESHAPE.format(shape=expected_shape)
    return None
