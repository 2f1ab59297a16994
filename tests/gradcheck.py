"""Finite-difference gradient checking (float64), shared by the layer tests."""
import numpy as np


def relative_error(a, b):
    """``||a - b|| / (||a|| + ||b||)``: scale-free, and 0 when both are 0."""
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def numerical_gradient(f, x, h=1e-6):
    """Central differences of the scalar ``f()`` w.r.t. every element of ``x`` (in place)."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = f()
        x[i] = old - h
        minus = f()
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def check_layer_gradients(layer, x, rng, before_forward=lambda: None):
    """Compare ``backward`` with finite differences for the input and every parameter.

    The loss is ``sum(forward(x) * R)`` for a fixed random ``R``, so ``d_out = R``.
    ``before_forward`` runs before each forward (e.g. to reseed a dropout mask).
    Returns ``{name: relative error}`` with ``"input"`` for the input gradient.
    """
    before_forward()
    out = layer.forward(x)
    projection = rng.standard_normal(out.shape)

    def loss():
        before_forward()
        return float(np.sum(layer.forward(x) * projection))

    before_forward()
    layer.forward(x)
    d_x = layer.backward(projection)
    analytic = {"input": d_x, **{name: g.copy() for name, g in layer.grads.items()}}
    errors = {"input": relative_error(analytic["input"], numerical_gradient(loss, x))}
    for name, param in layer.params.items():
        errors[name] = relative_error(analytic[name], numerical_gradient(loss, param))
    return errors
