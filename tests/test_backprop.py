"""backward_pass: one image's gradients, stage by stage, equal Network's own and finite differences."""
import copy

import numpy as np
import pytest

from helpers import trained_seed
from scratchcnn.backprop import backward_pass
from scratchcnn.models import build_model
from scratchcnn.optim import SGD
from scratchcnn import gradcheck
from scratchcnn.gradcheck import relative_error


def digit(rng):
    """A random normalised image: no ties in any 2x2 window, so max-pooling is differentiable."""
    return rng.random((28, 28)) - 0.5


def loss_of(network, image, label):
    return float(-np.log(network.predict_proba(image[np.newaxis])[0, label]))


def test_shapes_of_the_tutorial_network(rng):
    result = backward_pass(trained_seed(rng, np.float32), digit(rng).astype(np.float32), 4)
    assert result.input_gradient.shape == result.input.shape == (28, 28)
    assert [(lg.output.shape, lg.output_gradient.shape) for lg in result.layers] == [
        ((26, 26, 8), (26, 26, 8)), ((13, 13, 8), (13, 13, 8)), ((10,), (10,))]
    assert [{k: g.shape for k, g in lg.param_gradients.items()} for lg in result.layers] == [
        {"filters": (8, 3, 3)}, {}, {"weights": (1352, 10), "biases": (10,)}]
    for lg in result.layers:
        for name, g in lg.param_gradients.items():
            assert g.shape == lg.layer.grads[name].shape == lg.layer.params[name].shape
    assert result.probabilities.shape == result.probabilities_after_step.shape == (10,)
    assert result.prediction == int(result.probabilities.argmax())


def test_equals_the_networks_own_backward(rng):
    network, image, label = trained_seed(rng), digit(rng), 7
    result = backward_pass(network, image, label)

    own = copy.deepcopy(network)
    loss, probs = own.loss_and_gradients(image[np.newaxis], np.array([label]))
    assert result.loss == loss and result.label == label
    np.testing.assert_array_equal(result.probabilities, probs[0])
    for lg, layer in zip(result.layers, own.layers):
        assert lg.param_gradients.keys() == layer.grads.keys()
        for name, g in layer.grads.items():
            np.testing.assert_allclose(lg.param_gradients[name], g, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(lg.output, own.outputs[own.layers.index(layer) + 1][0], rtol=0, atol=0)

    # The general route through d_probs: the tutorial's d_L_d_out, then every layer's backward.
    _, d_probs = own.cross_entropy(own.forward(image[np.newaxis]), np.array([label]))
    np.testing.assert_array_equal(result.layers[-1].output_gradient, d_probs[0])
    assert result.layers[-1].output_gradient[label] == pytest.approx(-1 / probs[0, label])
    assert np.count_nonzero(result.layers[-1].output_gradient) == 1
    d_pool_out = own.layers[2].backward(d_probs)
    np.testing.assert_allclose(result.layers[1].output_gradient, d_pool_out[0], rtol=1e-9, atol=1e-13)
    d_conv_out = own.layers[1].backward(d_pool_out)
    np.testing.assert_allclose(result.layers[0].output_gradient, d_conv_out[0], rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(result.input_gradient, own.layers[0].backward(d_conv_out)[0],
                               rtol=1e-9, atol=1e-13)


def test_max_pooling_sends_each_window_gradient_to_one_pixel(rng):
    result = backward_pass(trained_seed(rng), digit(rng), 2)
    d_conv_out = result.layers[0].output_gradient                 # (26, 26, 8)
    windows = d_conv_out.reshape(13, 2, 13, 2, 8)
    assert (np.count_nonzero(windows, axis=(1, 3)) <= 1).all()
    np.testing.assert_allclose(windows.sum(axis=(1, 3)), result.layers[1].output_gradient, rtol=1e-12)


def test_finite_differences_agree_with_input_and_parameter_gradients(rng):
    network, image, label = trained_seed(rng), digit(rng), 3
    result = backward_pass(network, image, label)
    h = 1e-6

    def central_difference(array, index):  # one element's slope of the loss
        return gradcheck.central_difference(lambda: loss_of(network, image, label), array, index, h)

    strongest = np.unravel_index(np.abs(result.input_gradient).argmax(), image.shape)
    pixels = [strongest] + [tuple(rng.integers(1, 27, 2)) for _ in range(4)]
    numeric = [central_difference(image, p) for p in pixels]
    assert relative_error(np.array(numeric), result.input_gradient[tuple(np.transpose(pixels))]) < 1e-6

    checks = [(0, "filters", [(0, 0, 0), (3, 1, 2), (7, 2, 1)]),   # (8, 3, 3)
              (2, "weights", [(0, label), (700, 1), (1351, 9)]),   # (1352, 10)
              (2, "biases", [(label,), (0,)])]
    for layer_index, name, indices in checks:
        param = network.layers[layer_index].params[name]
        analytic = np.array([result.layers[layer_index].param_gradients[name][i] for i in indices])
        numeric = np.array([central_difference(param, i) for i in indices])
        assert relative_error(numeric, analytic) < 1e-6, name
    assert loss_of(network, image, label) == pytest.approx(result.loss, rel=1e-12)


def test_the_network_is_never_changed(rng):
    network = trained_seed(rng, np.float32).train()
    params = [{k: p.copy() for k, p in layer.params.items()} for layer in network.layers]
    grads = [{k: g.copy() for k, g in layer.grads.items()} for layer in network.layers]
    outputs = list(network.outputs)
    backward_pass(network, digit(rng).astype(np.float32), 0, lr=5.0)
    for layer, p, g in zip(network.layers, params, grads):
        assert layer.training  # its mode too
        for name in p:
            np.testing.assert_array_equal(layer.params[name], p[name])
            np.testing.assert_array_equal(layer.grads[name], g[name])
    assert len(network.outputs) == len(outputs) and all(a is b for a, b in zip(network.outputs, outputs))


@pytest.mark.parametrize("label", [0, 5, 9])
def test_one_small_step_lowers_the_loss_and_is_plain_sgd(rng, label):
    network, image = trained_seed(rng), digit(rng)
    result = backward_pass(network, image, label, lr=0.01)
    assert result.lr == 0.01
    assert result.loss_after_step < result.loss
    assert result.probabilities_after_step[label] > result.probabilities[label]

    stepped = copy.deepcopy(network)
    stepped.loss_and_gradients(image[np.newaxis], np.array([label]))
    SGD(0.01).step(stepped.layers)
    np.testing.assert_allclose(result.probabilities_after_step,
                               stepped.predict_proba(image[np.newaxis])[0], rtol=1e-12)


def test_the_loop_twins_and_other_networks(rng):
    image = digit(rng).astype(np.float32)
    fast = backward_pass(build_model("seed", seed=1), image, 6)
    loop = backward_pass(build_model("seed", seed=1, loop=True), image, 6)
    np.testing.assert_allclose(loop.input_gradient, fast.input_gradient, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(loop.layers[0].param_gradients["filters"],
                               fast.layers[0].param_gradients["filters"], rtol=1e-4, atol=1e-7)
    mlp = backward_pass(build_model("mlp", seed=0).train(), image, 1)   # dropout off inside
    assert mlp.input_gradient.shape == (28, 28) and len(mlp.layers) == 8
    assert mlp.loss == pytest.approx(loss_of(build_model("mlp", seed=0), image, 1), rel=1e-5)


@pytest.mark.parametrize("label, message", [(10, "from 0 to 9"), (-1, "from 0 to 9"),
                                            (True, "an integer"), (2.0, "an integer"), ("3", "an integer")])
def test_bad_labels(rng, label, message):
    with pytest.raises(ValueError, match=message):
        backward_pass(build_model("seed"), digit(rng), label)


@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf"), "0.1", None, True])
def test_bad_learning_rates(rng, lr):
    with pytest.raises(ValueError, match="lr .* positive number"):
        backward_pass(build_model("seed"), digit(rng), 1, lr=lr)


def test_bad_images(rng):
    with pytest.raises(ValueError, match="NaN"):
        backward_pass(build_model("seed"), np.full((28, 28), np.nan), 1)
    with pytest.raises(ValueError, match="Conv3x3: expected input"):
        backward_pass(build_model("seed"), np.zeros((28, 28, 28, 2)), 1)
