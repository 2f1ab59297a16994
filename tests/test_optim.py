"""Optimizers against steps computed by hand."""
import numpy as np
import pytest

import scratchcnn as sc


class OneParam(sc.Layer):
    """A stand-in layer holding one parameter and a gradient we choose."""

    def __init__(self, value, grad):
        super().__init__()
        self.params = {"w": np.array(value, dtype=np.float64)}
        self.grads = {"w": np.array(grad, dtype=np.float64)}


def test_sgd_step():
    layer = OneParam([1.0, -2.0], [0.5, 0.25])
    sc.SGD(0.1).step([layer])
    np.testing.assert_allclose(layer.params["w"], [0.95, -2.025])


def test_momentum_steps():
    layer = OneParam([1.0], [1.0])
    opt = sc.Momentum(0.1, momentum=0.9)
    opt.step([layer])   # v = 1           -> w = 1 - 0.1
    opt.step([layer])   # v = 0.9 + 1 = 1.9 -> w = 0.9 - 0.19
    layer.grads["w"][:] = -2.0
    opt.step([layer])   # v = 1.71 - 2 = -0.29 -> w = 0.71 + 0.029
    np.testing.assert_allclose(layer.params["w"], [0.739])


def test_adam_steps_with_bias_correction():
    layer = OneParam([0.5], [0.2])
    opt = sc.Adam(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8)
    w = 0.5
    m = v = 0.0
    for t, g in enumerate([0.2, -0.1, 0.3], start=1):
        layer.grads["w"][:] = g
        opt.step([layer])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        m_hat, v_hat = m / (1 - 0.9 ** t), v / (1 - 0.999 ** t)
        w -= 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8)
        np.testing.assert_allclose(layer.params["w"], [w], rtol=1e-12)
    # The first step of Adam moves each weight by about lr, whatever the gradient's scale.
    fresh = OneParam([0.0], [1e-4])
    sc.Adam(lr=0.01).step([fresh])
    np.testing.assert_allclose(fresh.params["w"], [-0.01], rtol=1e-3)


def test_adam_state_round_trips():
    layer = OneParam([0.5, 0.1], [0.2, -0.3])
    opt = sc.Adam(0.01)
    opt.step([layer])
    restored = sc.Adam(0.01)
    restored.load_state_dict(opt.state_dict())
    twin = OneParam(layer.params["w"].copy(), layer.grads["w"])
    opt.step([layer])
    restored.step([twin])
    np.testing.assert_array_equal(layer.params["w"], twin.params["w"])
    assert restored.t == 2


@pytest.mark.parametrize("opt", [sc.SGD(0.1), sc.Momentum(0.1), sc.Adam(0.1)])
def test_optimizers_keep_float32(opt):
    layer = OneParam([1.0], [0.5])
    layer.params["w"] = layer.params["w"].astype(np.float32)
    layer.grads["w"] = layer.grads["w"].astype(np.float32)
    opt.step([layer])
    assert layer.params["w"].dtype == np.float32
