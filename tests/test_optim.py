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


# --- an optimizer belongs to the parameters it first stepped ------------------------------------

@pytest.mark.parametrize("make", [lambda: sc.SGD(0.1), lambda: sc.Momentum(0.1), lambda: sc.Adam(0.1)])
def test_another_networks_layers_are_refused(make):
    """Same shapes, other arrays: stepping them would apply one network's moments to another."""
    mine, other = OneParam([1.0, 2.0], [0.5, 0.5]), OneParam([1.0, 2.0], [0.5, 0.5])
    opt = make()
    opt.step([mine])
    state_before = {k: np.copy(v) for k, v in opt.state_dict().items()}
    with pytest.raises(ValueError, match=r"parameter 0\.w is not the array this optimizer is bound "
                                         r"to.*make a new optimizer for each network"):
        opt.step([other])
    np.testing.assert_array_equal(other.params["w"], [1.0, 2.0])  # refused before any update
    assert opt.state_dict().keys() == state_before.keys()
    for key, value in state_before.items():  # Adam's step count included
        np.testing.assert_array_equal(opt.state_dict()[key], value)
    opt.step([mine])  # its own layers still step


def test_a_list_with_other_parameters_is_refused():
    first, second = OneParam([1.0], [0.5]), OneParam([2.0], [0.5])
    opt = sc.Momentum(0.1).bind([first, second])  # bound before any step
    with pytest.raises(ValueError, match=r"parameters \['0\.w'\], but this optimizer is bound to a "
                                         r"network with \['0\.w', '1\.w'\]"):
        opt.step([first])


def test_a_replaced_parameter_is_refused_with_how_to_fix_it():
    layer = OneParam([1.0], [0.5])
    opt = sc.Adam(0.1)
    opt.step([layer])
    layer.params["w"] = layer.params["w"] * 2  # a new array, not an in-place update
    with pytest.raises(ValueError, match=r"replaced instead of updated in place \(write `param\[...\] = value`\)"):
        opt.step([layer])


def test_binding_to_a_network_or_its_layer_list_is_the_same():
    net = sc.Network([sc.Flatten(), sc.Dense(4, 2, dtype=np.float64, rng=np.random.default_rng(0))])
    net.loss_and_gradients(np.ones((3, 2, 2)), np.array([0, 1, 0]))
    opt = sc.SGD(0.1).bind(net)
    opt.step(net.layers)  # Network.train_step passes the list
    assert opt.parameters == {"1.weights": net.layers[1].params["weights"],
                              "1.biases": net.layers[1].params["biases"]}


def test_loaded_state_must_fit_the_parameters_it_is_bound_to():
    layer = OneParam([0.5, 0.1], [0.2, -0.3])
    trained = sc.Adam(0.01)
    trained.step([layer])
    state = trained.state_dict()

    elsewhere = sc.Adam(0.01)  # state for "0.w", bound to a list whose only parameter is "1.w"
    elsewhere.load_state_dict(state)
    with pytest.raises(ValueError, match=r"its state has 'm/0\.w', for a parameter these layers "
                                         r"don't have \(they have \['1\.w'\]\)"):
        elsewhere.step([sc.ReLU(), OneParam([0.5, 0.1], [0.2, -0.3])])

    bound = sc.Adam(0.01).bind([OneParam([0.5], [0.2])])  # one value where the state has two
    with pytest.raises(ValueError, match=r"its state 'm/0\.w' has shape \(2,\), the parameter has \(1,\)"):
        bound.load_state_dict(state)
    assert bound.state_dict() == {"t": 0}  # the refused state was not taken
