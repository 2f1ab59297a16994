"""The checks every exercise layer goes through, in order, stopping at the first failure.

    construct -> forward's shape -> forward's values (against scratchcnn's own layer)
    -> [the layer's own forward checks] -> backward's shapes -> each gradient against finite
    differences (``scratchcnn.gradcheck``) -> a batch's parameter gradients = the sum of its
    images' own -> [the layer's own backward checks]

Everything runs in float64 on a small batch (``cases.py`` says which, per layer), seeded, so a
learner sees the same numbers every time. A check is a generator of ``Outcome``s (one per
line printed); the learner's code is only ever called through ``Context``, which turns its
exceptions into ``LearnerError`` (``loading.py``).
"""
import inspect
from dataclasses import dataclass, field

import numpy as np

from ..gradcheck import compare, numerical_gradient
from ..layers import Layer
from . import hints
from .loading import LearnerError, call

TOLERANCE = 1e-6  # largest element-wise relative error that passes (gradcheck's measure)


@dataclass
class Outcome:
    """One printed line: what was checked, whether it passed, a short ``detail`` (numbers for a
    pass, why for a failure) and, for a failure, the ``lines`` under it (expected, got, worst
    element, hint, traceback)."""

    check: str
    passed: bool
    detail: str = ""
    lines: list = field(default_factory=list)


@dataclass
class LayerReport:
    """The outcomes of one exercise layer; ``passed`` only when every check ran and passed."""

    name: str
    path: str
    outcomes: list
    complete: bool

    @property
    def passed(self):
        return self.complete and all(outcome.passed for outcome in self.outcomes)


class Context:
    """One layer under check: the learner's class and instance, the case (``cases.py``), the
    batch ``x`` and the parameters the checks install, and seeded randomness."""

    def __init__(self, cls, case, folder, seed=0):
        self.cls, self.case, self.folder = cls, case, folder
        self.rng = np.random.default_rng(seed)
        self.x = case.make_input(self.rng)         # (N, ...) float64, no ties
        self.params = case.make_params(self.rng)   # {name: float64 array}
        self.layer = None

    def call(self, function, *args, **kwargs):
        return call(self.folder, function, *args, **kwargs)

    def install(self, params=None):
        """Put ``params`` (default: the check's) into the learner's layer: into its own arrays
        when they are float64 of the right shape (so a layer that kept a reference still sees
        them), else as new arrays."""
        for name, value in (params or self.params).items():
            current = self.layer.params.get(name)
            if isinstance(current, np.ndarray) and current.dtype == np.float64 and current.shape == value.shape:
                current[...] = value
            else:
                self.layer.params[name] = np.array(value, dtype=np.float64)

    def forward(self, x):
        """The learner's ``forward`` on a copy of ``x``, as a float64 array (None stays None)."""
        return self.as_array("forward", self.call(self.layer.forward, np.array(x, dtype=np.float64)))

    def backward(self, d_out):
        """The learner's ``backward`` on a copy of ``d_out``, as a float64 array (None stays None)."""
        return self.as_array("backward", self.call(self.layer.backward, np.array(d_out, dtype=np.float64)))

    def as_array(self, method, value):
        if value is None:
            return None
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            said = f"{method} returned a {type(value).__name__}, not an array of numbers"
            raise LearnerError(TypeError(said), self.folder, said) from None

    def grads(self):
        """A float64 copy of the learner's ``grads`` for every parameter (None when missing)."""
        grads = getattr(self.layer, "grads", None) or {}
        return {name: (np.array(grads[name], dtype=np.float64) if name in grads else None)
                for name in self.params}

    def reference(self, params=None):
        """scratchcnn's own layer in float64, holding ``params`` (default: the check's)."""
        return self.case.reference(params or self.params)

    def reference_gradients(self, x, d_out, params=None):
        """``{"input": d_x, name: grads[name]}`` of scratchcnn's own layer, exact."""
        layer = self.reference(params)
        layer.forward(x)
        d_x = layer.backward(d_out)
        return {"input": d_x, **{name: np.array(g) for name, g in layer.grads.items()}}


# ------------------------------------------------------------------------- reporting numbers

def preview(array, count=4):
    """The first ``count`` values of ``array``, e.g. ``[0.1235, -0.4412, 0.002132, 1.2, ...]``."""
    flat = np.asarray(array, dtype=np.float64).reshape(-1)
    values = ", ".join(f"{v:.4g}" for v in flat[:count])
    return f"[{values}{', ...' if flat.size > count else ''}]"


def hint_lines(hint):
    return [f"hint: {hint}"] if hint else []


def compared(check, got, expected, expected_from, signatures=(), got_from="yours"):
    """An ``Outcome`` for ``got`` against ``expected`` (same shape) to ``TOLERANCE``: on a
    failure, both arrays' first values, the worst element and its index, and the hint of a
    known mistake whose ``signatures`` ``got`` matches."""
    result = compare(check, got, expected, TOLERANCE)
    detail = f"max relative error {result.max_error:.1e}"
    if result.passed:
        return Outcome(check, True, detail)
    index = "[" + ", ".join(map(str, result.worst_index)) + "]"
    lines = [f"expected {preview(expected)}  ({expected_from}, shape {tuple(np.shape(expected))})",
             f"got      {preview(got)}  ({got_from})",
             f"worst element {index}: expected {result.numeric:.6g}, got {result.analytic:.6g} "
             f"(relative error {result.max_error:.1e}; tolerance {TOLERANCE:.0e})"]
    hint = hints.name_mistake(got, expected, signatures)
    if hint is None and not np.isfinite(got).all():
        hint = hints.NOT_FINITE
    return Outcome(check, False, detail, lines + hint_lines(hint))


def wrong_shape(check, what, got, expected):
    """A failed ``Outcome``: ``what`` has shape ``got`` where ``expected`` was expected."""
    return Outcome(check, False, f"{what} has shape {tuple(got)}, expected {tuple(expected)}",
                   hint_lines(hints.shape_hint(got, expected)))


# ------------------------------------------------------------------------- the checks

def construct(ctx):
    """It is a ``Layer``, builds with the case's arguments, and has the parameters expected."""
    check, name = "constructs", ctx.case.name
    if not (isinstance(ctx.cls, type) and issubclass(ctx.cls, Layer)):
        yield Outcome(check, False, f"{name} is not a subclass of scratchcnn.layers.Layer",
                      [f"hint: write `class {name}(Layer):`, with `from scratchcnn.layers import Layer`"])
        return
    # scratchcnn's own layers take a dtype (float32 by default): the checks need float64.
    takes_dtype = "dtype" in inspect.signature(ctx.cls).parameters
    ctx.layer = ctx.call(ctx.cls, *ctx.case.args, **({"dtype": np.float64} if takes_dtype else {}))
    expected = {key: value.shape for key, value in ctx.params.items()}
    got = {key: np.shape(value) for key, value in (getattr(ctx.layer, "params", None) or {}).items()}
    built = f"{name}({', '.join(map(str, ctx.case.args))})"
    if got != expected:
        wrong = [key for key in expected if key in got and got[key] != expected[key]]
        hint = hints.shape_hint(got[wrong[0]], expected[wrong[0]]) if wrong else None
        yield Outcome(check, False, f"{built}: params should be {shapes_text(expected)}, are {shapes_text(got)}",
                      hint_lines(hint))
        return
    yield Outcome(check, True, f"{built}, params {shapes_text(expected)}")


def shapes_text(shapes):
    return ", ".join(f"{key} {tuple(shape)}" for key, shape in shapes.items()) or "none"


def forward_shape(ctx):
    check = "forward's shape"
    ctx.install()
    out = ctx.forward(ctx.x)
    expected = ctx.reference().forward(ctx.x).shape
    if out is None:
        yield Outcome(check, False, "forward returned None", ["hint: forward must return its output"])
    elif out.shape != expected:
        yield wrong_shape(check, "the output", out.shape, expected)
    else:
        yield Outcome(check, True, f"{ctx.x.shape} -> {out.shape}")


def forward_values(ctx):
    ctx.install()
    got = ctx.forward(ctx.x)
    expected = ctx.reference().forward(ctx.x)
    yield compared(f"forward equals scratchcnn.{ctx.case.name}'s on {len(ctx.x)} images", got, expected,
                   f"scratchcnn.{ctx.case.name}", ctx.case.forward_signatures(ctx.params, ctx.x))


def backward_shapes(ctx):
    check = "backward's shapes"
    ctx.install()
    out = ctx.forward(ctx.x)
    d_x = ctx.backward(ctx.rng.standard_normal(out.shape))
    if d_x is None:
        yield Outcome(check, False, "backward returned None", hint_lines(hints.NO_INPUT_GRADIENT))
        return
    if d_x.shape != ctx.x.shape:
        yield wrong_shape(check, "d_x", d_x.shape, ctx.x.shape)
        return
    for name, grad in ctx.grads().items():
        if grad is None:
            hint = hints.BIAS_MISSING if name == "biases" else None
            yield Outcome(check, False, f"backward did not fill grads[{name!r}]", hint_lines(hint))
            return
        if grad.shape != ctx.params[name].shape:
            yield wrong_shape(check, f"grads[{name!r}]", grad.shape, ctx.params[name].shape)
            return
    grads = "".join(f", grads[{name!r}] {value.shape}" for name, value in ctx.params.items())
    yield Outcome(check, True, f"d_x {d_x.shape}{grads}")


def gradients(ctx):
    """Every gradient (the input's, then each parameter's) against central differences."""
    ctx.install()
    out = ctx.forward(ctx.x)
    d_out = ctx.rng.standard_normal(out.shape)  # loss = sum(out * d_out), so dL/d(out) = d_out
    before = ctx.grads()
    analytic = {"input": ctx.backward(d_out), **ctx.grads()}
    x = ctx.x.copy()                             # nudged in place by numerical_gradient

    def loss():
        return float(np.sum(ctx.forward(x) * d_out))

    numeric = {"input": numerical_gradient(loss, x)}
    numeric.update({name: numerical_gradient(loss, ctx.layer.params[name]) for name in ctx.params})
    exact = ctx.reference_gradients(ctx.x, d_out)
    own = ctx.case.gradient_signatures(ctx, d_out)
    per_image = per_image_gradients(ctx, d_out)
    for name in analytic:
        label = "d_x (backward's result)" if name == "input" else f"grads[{name!r}]"
        signatures = hints.generic_signatures(name, exact[name], len(ctx.x), before.get(name))
        signatures += own.get(name, []) + hints.one_image_signatures(per_image.get(name, []))
        yield compared(f"{label} matches finite differences", analytic[name], numeric[name],
                       "finite differences", signatures, got_from="your backward")


def per_image_gradients(ctx, d_out):
    """``{name: [image b's own gradient of scratchcnn's layer, for each b]}`` (parameters only)."""
    images = [ctx.reference_gradients(ctx.x[b:b + 1], d_out[b:b + 1]) for b in range(len(ctx.x))]
    return {name: [image[name] for image in images] for name in ctx.params}


def batch_sum(ctx):
    """A batch's parameter gradients equal the sum of its images' own (the learner's, one by one)."""
    if not ctx.params:
        return
    ctx.install()
    d_out = ctx.rng.standard_normal(ctx.forward(ctx.x).shape)
    ctx.backward(d_out)
    batch = ctx.grads()
    per_image = []
    for b in range(len(ctx.x)):
        ctx.forward(ctx.x[b:b + 1])
        ctx.backward(d_out[b:b + 1])
        per_image.append(ctx.grads())
    for name in ctx.params:
        images = [grads[name] for grads in per_image]
        total = np.sum(images, axis=0)
        n = len(ctx.x)
        signatures = [(hints.MEAN.format(n=n), total / n), (hints.TIMES_N.format(n=n), total * n),
                      *hints.one_image_signatures(images)]
        yield compared(f"a batch's grads[{name!r}] = the sum of its images' own", batch[name], total,
                       "the sum of your backward's, one image at a time", signatures,
                       got_from="your backward on the whole batch")


FORWARD_CHECKS = (("constructs", construct), ("forward's shape", forward_shape),
                  ("forward's values", forward_values))
BACKWARD_CHECKS = (("backward's shapes", backward_shapes), ("gradients", gradients),
                   ("the batch's sum", batch_sum))


def check_class(cls, case, folder):
    """Run every check of ``case`` on the learner's class ``cls``; returns the ``Outcome``s up
    to and including the first failure, and whether every check ran."""
    ctx = Context(cls, case, folder)
    outcomes = []
    for title, check in FORWARD_CHECKS + case.forward_checks + BACKWARD_CHECKS + case.backward_checks:
        try:
            for outcome in check(ctx):
                outcomes.append(outcome)
                if not outcome.passed:
                    return outcomes, False
        except LearnerError as error:
            lines = [] if error.not_implemented else error.lines
            outcomes.append(Outcome(title, False, error.summary(), lines))
            return outcomes, False
    return outcomes, True
