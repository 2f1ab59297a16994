"""What the checks need to know about each exercise layer: the arguments it is built with, its
test batch and parameters, scratchcnn's own layer to compare with, the signatures of the
mistakes peculiar to it (``hints.py``) and its own extra checks (the softmax's overflow, the
pooling's ties).

The batches are small, so that finite differences over every element take moments even for a
layer written with loops, and never square (6x7 images, 12 inputs to 5 nodes, ...), so that a
transposed result can't pass by having the right shape.
"""
import numpy as np

from .. import layers
from . import hints
from .checks import Outcome, compared, wrong_shape

BATCH = 3  # images per check batch: N in the hints' "off by a factor of N"


def with_params(layer, params):
    """``layer`` with copies of ``params`` in place of its own."""
    for name, value in params.items():
        layer.params[name] = np.array(value, dtype=np.float64)
    return layer


def distinct_values(rng, shape, spacing=0.05):
    """Random float64 values of ``shape``, every two at least ``spacing`` apart: no ties for a
    maximum to hesitate between, even when finite differences nudge them by 1e-4."""
    size = int(np.prod(shape))
    values = (rng.permutation(size) - size / 2) * spacing + rng.uniform(0, spacing / 4, size)
    return values.reshape(shape)


class Conv3x3Case:
    name, stem, args = "Conv3x3", "conv3x3", (3,)
    forward_checks = backward_checks = ()

    def make_input(self, rng):
        return rng.standard_normal((BATCH, 6, 7))           # (N, H, W)

    def make_params(self, rng):
        return {"filters": rng.standard_normal((3, 3, 3))}  # (F, 3, 3)

    def reference(self, params):
        return with_params(layers.Conv3x3(*self.args, dtype=np.float64), params)

    def forward_signatures(self, params, x):
        filters = params["filters"]
        flipped = self.reference({"filters": filters[:, ::-1, ::-1]}).forward(x)
        transposed = self.reference({"filters": filters.transpose(0, 2, 1)}).forward(x)
        return [(hints.FLIPPED_FORWARD, flipped), (hints.TRANSPOSED_FILTER, transposed)]

    def gradient_signatures(self, ctx, d_out):
        flipped = ctx.reference_gradients(ctx.x, d_out, {"filters": ctx.params["filters"][:, ::-1, ::-1]})
        exact = ctx.reference_gradients(ctx.x, d_out)
        return {"input": [(hints.FLIPPED_BACKWARD, flipped["input"])],
                "filters": [(hints.FLIPPED_BACKWARD, exact["filters"][:, ::-1, ::-1])]}


def windows(array):
    """``(N, H, W, C)`` -> ``(N, H//2, W//2, C, 4)``: each 2x2 window's four values, row-major."""
    n, h, w, c = array.shape
    return array.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, h // 2, w // 2, c, 4)


def from_windows(values, shape):
    """The inverse of ``windows``: ``(N, H//2, W//2, C, 4)`` -> ``(N, H, W, C)``."""
    n, h, w, c = shape
    return values.reshape(n, h // 2, w // 2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(shape)


def tied_input(rng, shape=(2, 4, 4, 2)):
    """``(N, H, W, C)`` whose windows take turns: four equal values (MNIST's background), two
    tied maxima, three tied maxima, and one maximum."""
    values = windows(distinct_values(rng, shape))       # (N, H/2, W/2, C, 4)
    flat = values.reshape(-1, 4)
    for k, window in enumerate(flat):
        kind = k % 4
        if kind == 0:
            window[:] = -0.5
        elif kind in (1, 2):
            top = window.max()
            window[rng.choice(4, size=kind + 1, replace=False)] = top
    return from_windows(values, shape)


def ties(ctx):
    """MaxPool2 on windows with tied maxima: each window's gradient goes to exactly one of them."""
    check = "ties: each window's gradient goes to one of its tied maxima"
    x = tied_input(ctx.rng)
    d_out = ctx.rng.uniform(0.5, 1.5, (2, 2, 2, 2)) * ctx.rng.choice([-1, 1], (2, 2, 2, 2))
    ctx.forward(x)
    got = ctx.backward(d_out)
    expected = ctx.reference_gradients(x, d_out)["input"]
    if got is None or got.shape != x.shape:
        yield wrong_shape(check, "d_x", () if got is None else got.shape, x.shape)
        return
    values, grads = windows(x), windows(got)
    is_max = values == values.max(axis=-1, keepdims=True)
    receivers = grads != 0
    one_each = (receivers.sum(axis=-1) == 1) & ~(receivers & ~is_max).any(axis=-1) \
        & np.isclose(grads.sum(axis=-1), d_out)
    if one_each.all():
        which = "the first, as scratchcnn's" if np.allclose(got, expected) else \
            "not always the first (scratchcnn's choice), which is right too"
        yield Outcome(check, True, f"{int((is_max.sum(axis=-1) > 1).sum())} tied windows: {which}")
        return
    every = from_windows(is_max * d_out[..., None], x.shape)
    split = from_windows(is_max * (d_out / is_max.sum(axis=-1))[..., None], x.shape)
    yield compared(check, got, expected, "scratchcnn.MaxPool2: the first maximum",
                   [(hints.TIED, every), (hints.SPLIT_TIED, split)], got_from="your backward")


class MaxPool2Case:
    name, stem, args = "MaxPool2", "maxpool2", ()
    forward_checks = ()
    backward_checks = (("ties", ties),)

    def make_input(self, rng):
        return distinct_values(rng, (BATCH, 4, 6, 2))       # (N, H, W, C), no ties

    def make_params(self, rng):
        return {}

    def reference(self, params):
        return layers.MaxPool2()

    def forward_signatures(self, params, x):
        mean = windows(x).mean(axis=-1)
        return [("this is the mean of each window (average pooling); MaxPool2 keeps its largest "
                 "value.", mean)]

    def gradient_signatures(self, ctx, d_out):
        every_pixel = np.repeat(np.repeat(d_out, 2, axis=1), 2, axis=2)
        return {"input": [(hints.EVERY_PIXEL, every_pixel)]}


def stays_finite(ctx):
    """Softmax on totals around +-1000: finite probabilities, each row summing to 1."""
    check = "stays finite and sums to 1 for totals around +-1000"
    params = dict(ctx.params, weights=ctx.params["weights"] * 1e-3,
                  biases=np.array([1000.0, -1000.0, 999.5, 0.0, -998.0]))
    ctx.install(params)
    got = ctx.forward(ctx.x)
    expected = ctx.reference(params).forward(ctx.x)
    if not np.isfinite(got).all():
        outcome = compared(check, got, expected, f"scratchcnn.{ctx.case.name}")
        if overflows_like_no_max(got, ctx.x, params):
            outcome.lines = [line for line in outcome.lines if not line.startswith("hint: ")]
            outcome.lines.append(f"hint: {hints.NO_MAX}")
        yield outcome
        return
    sums = got.sum(axis=1)
    if not np.allclose(sums, 1, rtol=0, atol=1e-9):
        yield Outcome(check, False, f"rows sum to {preview_sums(sums)}, not 1",
                      ["hint: softmax divides each row's exp(totals) by that row's sum (axis=1)"])
        return
    outcome = compared(check, got, expected, f"scratchcnn.{ctx.case.name}")
    if outcome.passed:
        outcome.detail = "no overflow, rows sum to 1"
    yield outcome


def overflows_like_no_max(got, x, params):
    """Whether ``got`` is non-finite exactly where a softmax without the maximum subtracted is."""
    totals = x.reshape(len(x), -1) @ params["weights"] + params["biases"]
    with np.errstate(all="ignore"):
        exp = np.exp(totals)
        naive = exp / exp.sum(axis=1, keepdims=True)
    return np.array_equal(np.isfinite(got), np.isfinite(naive))


def preview_sums(sums):
    return ", ".join(f"{s:.4g}" for s in sums[:3]) + (", ..." if len(sums) > 3 else "")


class SoftmaxCase:
    name, stem, args = "Softmax", "softmax", (12, 5)
    forward_checks = (("totals around +-1000", stays_finite),)
    backward_checks = ()

    def make_input(self, rng):
        return rng.standard_normal((BATCH, 2, 3, 2))        # (N, ...) with 12 values per image

    def make_params(self, rng):
        return {"weights": rng.standard_normal((12, 5)) * 0.5, "biases": rng.standard_normal(5)}

    def reference(self, params):
        return with_params(layers.Softmax(*self.args, dtype=np.float64), params)

    def forward_signatures(self, params, x):
        totals = x.reshape(len(x), -1) @ params["weights"] + params["biases"]
        exp = np.exp(totals - totals.max(axis=0))
        return [("each column sums to 1 instead of each row: the softmax of one image is over "
                 "its classes, axis=1 of (N, nodes).", exp / exp.sum(axis=0))]

    def gradient_signatures(self, ctx, d_out):
        first_only = np.zeros_like(d_out)
        first_only[:, 0] = d_out[:, 0]
        shortcut = ctx.reference_gradients(ctx.x, first_only)
        return {name: [(hints.TUTORIAL_SHORTCUT, gradient)] for name, gradient in shortcut.items()}


CASES = (Conv3x3Case(), MaxPool2Case(), SoftmaxCase())
