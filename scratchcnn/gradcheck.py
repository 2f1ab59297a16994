"""Is ``backward`` right? Finite-difference gradient checks for any layer.

    import numpy as np
    import scratchcnn as sc
    from scratchcnn.gradcheck import check_layer

    layer = sc.Conv3x3(4, dtype=np.float64)                 # float64: see "Why float64" below
    report = check_layer(layer, np.random.randn(2, 8, 8))   # x: (N, H, W)
    print(report)             # a line per gradient: its worst element, where, and both values
    report.raise_if_failed()  # or, in a test: assert_gradients_correct(layer, x)

Any object with the layer interface works: ``forward(x) -> y``, ``backward(d_y) -> d_x`` and,
if it has parameters, ``params`` and ``grads`` (dicts of arrays with the same keys).

**How.** The layer's output is turned into one number, ``loss = sum(forward(x) * R)`` for a
fixed random ``R`` of the output's shape, so that ``d loss / d output = R``. Then:

* analytic: ``backward(R)`` must return ``d loss / d x`` and fill ``grads``;
* numeric: each element of ``x`` and of every parameter is nudged by ``+h`` and ``-h`` and the
  loss recomputed; ``(loss(+h) - loss(-h)) / 2h`` approximates the derivative (central
  differences: the error shrinks like ``h**2``).

**Relative error.** Element by element, ``|a - n| / max(|a| + |n|, floor)`` for the analytic
``a`` and numeric ``n``. ``floor`` is 1% of the gradient's largest ``|a| + |n|``, so an element
that should be 0 (or nearly) is judged against the gradient's scale instead of against its own
rounding noise. A correct float64 layer stays below about ``1e-7``; a wrong one is near
``1e-2`` or worse. The check passes when every element is below ``tolerance`` (``1e-6``).

**Why float64.** The numeric derivative divides a difference of two nearly equal losses by
``2h``. In float32 (7 digits) that difference is mostly rounding; in float64 (16 digits) it
is exact to about ``1e-10``.

**Kinks.** ``max`` and ``ReLU`` have no derivative where inputs tie or sit at 0: nudging such
an element changes which branch is taken, and the numeric value is meaningless there. Check
them on random inputs away from ties and zeros.
"""
from dataclasses import dataclass

import numpy as np

DEFAULT_STEP = 1e-4        # h: small enough for a tiny h**2 error, large enough to beat rounding
DEFAULT_TOLERANCE = 1e-6   # largest element-wise relative error that passes
FLOOR_FRACTION = 1e-2      # elements below this share of the largest are judged on that scale


@dataclass(frozen=True)
class GradientCheck:
    """How one gradient (``"input"`` or a parameter name) compares with finite differences."""

    name: str
    shape: tuple
    max_error: float       # the worst element's relative error
    worst_index: tuple     # where it is
    analytic: float        # backward's value there
    numeric: float         # the finite-difference value there
    overall_error: float   # ||a - n|| / (||a|| + ||n||) over the whole array
    tolerance: float

    @property
    def passed(self):
        return self.max_error <= self.tolerance

    def __str__(self):
        verdict = "ok" if self.passed else f"FAILED (tolerance {self.tolerance:.0e})"
        return (f"{self.name:<8} {str(self.shape):<16} max relative error {self.max_error:.1e} "
                f"at {self.worst_index}: backward {self.analytic:.6g}, numeric {self.numeric:.6g}  {verdict}")


class GradcheckReport:
    """The result of ``check_layer``: one ``GradientCheck`` per gradient, input first.

    ``report.passed``; ``report.failures`` (the checks that failed); ``report["filters"]`` one
    check; ``str(report)`` a line per gradient; ``report.raise_if_failed()``.
    """

    def __init__(self, layer_name, checks):
        self.layer_name = layer_name
        self.checks = {check.name: check for check in checks}

    @property
    def passed(self):
        return all(check.passed for check in self.checks.values())

    @property
    def failures(self):
        return [check for check in self.checks.values() if not check.passed]

    def __getitem__(self, name):
        return self.checks[name]

    def __str__(self):
        if self.passed:
            count = "its gradient matches" if len(self.checks) == 1 else f"all {len(self.checks)} gradients match"
            head = f"{self.layer_name}: {count} finite differences"
        else:
            head = (f"{self.layer_name}: {len(self.failures)} of {len(self.checks)} gradients do NOT "
                    f"match finite differences ({', '.join(c.name for c in self.failures)})")
        return "\n".join([head] + [f"  {check}" for check in self.checks.values()])

    def __repr__(self):
        state = "passed" if self.passed else f"failed: {', '.join(c.name for c in self.failures)}"
        return f"<GradcheckReport {self.layer_name} {state}>"

    def _repr_pretty_(self, printer, cycle):  # IPython shows the table for a bare `report`
        printer.text(str(self))

    def raise_if_failed(self):
        """Raise ``GradientCheckFailed`` (an ``AssertionError``) with the table if a check failed."""
        if not self.passed:
            raise GradientCheckFailed(str(self))
        return self


class GradientCheckFailed(AssertionError):
    """A layer's backward disagrees with finite differences; the message is the report."""


def relative_error(a, b):
    """``||a - b|| / (||a|| + ||b||)`` over whole arrays: scale-free, and 0 when both are 0."""
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def elementwise_relative_error(a, b):
    """``|a - b| / max(|a| + |b|, floor)`` per element, same shape as ``a``; see the module doc."""
    magnitude = np.abs(a) + np.abs(b)
    floor = FLOOR_FRACTION * magnitude.max() if magnitude.size else 0.0
    return np.abs(a - b) / np.maximum(magnitude, max(floor, np.finfo(np.float64).tiny))


def central_difference(f, x, index, h=DEFAULT_STEP):
    """``(f(x + h) - f(x - h)) / 2h`` moving only ``x[index]``: the slope of the scalar ``f()``
    along that one element. ``x`` is changed in place (``f`` reads it) and restored exactly."""
    old = x[index]
    x[index] = old + h
    plus = f()
    x[index] = old - h
    minus = f()
    x[index] = old
    return (plus - minus) / (2 * h)


def numerical_gradient(f, x, h=DEFAULT_STEP):
    """Central differences of the scalar ``f()`` w.r.t. every element of ``x``, same shape as ``x``.

    ``x`` is changed in place one element at a time (``f`` reads it) and restored exactly.
    """
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        grad[i] = central_difference(f, x, i, h)
    return grad


def compare(name, analytic, numeric, tolerance=DEFAULT_TOLERANCE):
    """A ``GradientCheck`` of two same-shaped arrays: ``analytic`` (backward's) and ``numeric``."""
    errors = elementwise_relative_error(analytic, numeric)
    worst = np.unravel_index(int(np.argmax(errors)), errors.shape) if errors.size else ()
    worst = tuple(int(i) for i in worst)
    return GradientCheck(name=name, shape=tuple(analytic.shape),
                         max_error=float(errors.max()) if errors.size else 0.0, worst_index=worst,
                         analytic=float(analytic[worst]) if errors.size else 0.0,
                         numeric=float(numeric[worst]) if errors.size else 0.0,
                         overall_error=relative_error(analytic, numeric), tolerance=tolerance)


def check_layer(layer, x, *, seed=0, h=DEFAULT_STEP, tolerance=DEFAULT_TOLERANCE, before_forward=None):
    """Compare ``layer.backward`` with finite differences for the input and every parameter.

    layer: any object with ``forward``, ``backward`` and (optionally) ``params``/``grads``, its
    parameters float64. x: the input, any shape the layer takes (copied to float64, never
    changed). seed: an int or a ``np.random.Generator`` for the projection ``R``.
    before_forward: called before every forward, e.g. to reseed a dropout mask so all forwards
    draw the same one. Returns a ``GradcheckReport``; parameters are left as they were.
    """
    params = _float64_params(layer)
    x = np.array(x, dtype=np.float64)  # our own copy, nudged in place
    before_forward = before_forward or (lambda: None)

    def forward():
        before_forward()
        return np.asarray(layer.forward(x))

    out = forward()
    projection = np.random.default_rng(seed).standard_normal(out.shape)  # R = d loss / d out
    d_x = layer.backward(projection)
    analytic = {"input": _checked_input_gradient(layer, d_x, x)}
    analytic.update(_checked_param_gradients(layer, params))

    def loss():
        return float(np.sum(forward() * projection))

    checks = [compare("input", analytic["input"], numerical_gradient(loss, x, h), tolerance)]
    for name, param in params.items():
        checks.append(compare(name, analytic[name], numerical_gradient(loss, param, h), tolerance))
    return GradcheckReport(type(layer).__name__, checks)


def assert_gradients_correct(layer, x, **kwargs):
    """``check_layer(layer, x, **kwargs)``, raising ``GradientCheckFailed`` (an
    ``AssertionError``, so pytest shows the table) unless every gradient passes. Returns the report."""
    return check_layer(layer, x, **kwargs).raise_if_failed()


def _float64_params(layer):
    """``layer.params`` (``{}`` if it has none), refusing anything but float64 arrays."""
    name = type(layer).__name__
    for method in ("forward", "backward"):
        if not callable(getattr(layer, method, None)):
            raise TypeError(f"check_layer: {name} has no {method}() method; a layer needs "
                            f"forward(x) -> y and backward(d_y) -> d_x")
    params = getattr(layer, "params", None) or {}
    for key, value in params.items():
        dtype = getattr(value, "dtype", None)
        if dtype != np.float64:
            raise ValueError(f"check_layer: {name}.params[{key!r}] is {dtype or type(value).__name__}, "
                             f"expected a float64 array: finite differences drown in float32 rounding. "
                             f"Build the layer with dtype=np.float64.")
    return params


def _checked_input_gradient(layer, d_x, x):
    """backward's return value, which must be an array shaped like the input."""
    name = type(layer).__name__
    if d_x is None:
        raise ValueError(f"check_layer: {name}.backward returned None; it must return the gradient "
                         f"with respect to its input, shape {x.shape}")
    d_x = np.asarray(d_x, dtype=np.float64)
    if d_x.shape != x.shape:
        raise ValueError(f"check_layer: {name}.backward returned shape {d_x.shape}; the gradient with "
                         f"respect to the input must have the input's shape {x.shape}")
    return d_x.copy()


def _checked_param_gradients(layer, params):
    """A copy of ``layer.grads`` for every parameter, each shaped like its parameter."""
    name = type(layer).__name__
    grads = getattr(layer, "grads", None) or {}
    copies = {}
    for key, param in params.items():
        if key not in grads:
            raise ValueError(f"check_layer: {name}.backward did not fill grads[{key!r}]; it must set a "
                             f"gradient for every key of params ({', '.join(map(repr, params))})")
        grad = np.asarray(grads[key], dtype=np.float64)
        if grad.shape != param.shape:
            raise ValueError(f"check_layer: {name}.grads[{key!r}] has shape {grad.shape}, expected the "
                             f"parameter's shape {param.shape}")
        copies[key] = grad.copy()
    return copies


__all__ = ["check_layer", "assert_gradients_correct", "GradcheckReport", "GradientCheck",
           "GradientCheckFailed", "numerical_gradient", "relative_error", "elementwise_relative_error",
           "compare"]
