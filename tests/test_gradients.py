"""Finite-difference gradient checks in float64 for every layer, parameter and input."""
import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn import loops
from scratchcnn.gradcheck import check_layer, numerical_gradient, relative_error
from helpers import F64

TOLERANCE = 1e-6


def assert_gradients_match(layer, x, rng, **kwargs):
    """Every gradient within TOLERANCE, element by element and over the whole array."""
    report = check_layer(layer, x, seed=rng, tolerance=TOLERANCE, **kwargs)
    assert set(report.checks) == {"input", *layer.params}
    assert report.passed, f"{layer!r}:\n{report}"
    for name, check in report.checks.items():
        error = check.overall_error
        assert error < TOLERANCE, f"{layer!r}: gradient of {name} off by relative error {error:.2e}"


CONV_CASES = [
    # (kernel, in_channels, stride, padding, bias, input shape)
    (3, 1, 1, "valid", True, (2, 6, 7)),          # tutorial-style (N, H, W), odd sizes
    (3, 1, 1, "valid", False, (1, 5, 5)),         # batch 1, no bias
    (3, 2, 1, "same", True, (2, 5, 6, 2)),        # multi-channel, same padding
    (3, 3, 2, 1, True, (2, 7, 6, 3)),             # stride 2 with padding 1
    (4, 1, 1, 0, True, (2, 6, 6, 1)),             # even kernel (the seeds' 4x4 filters)
    (2, 2, 2, 0, True, (1, 5, 5, 2)),             # stride 2 that skips the last column
    (1, 3, 1, "same", True, (2, 3, 4, 3)),        # 1x1 kernel
]


@pytest.mark.parametrize("k, c, s, p, bias, shape", CONV_CASES)
def test_conv2d_gradients(rng, k, c, s, p, bias, shape):
    layer = sc.Conv2D(3, k, in_channels=c, stride=s, padding=p, bias=bias, dtype=F64, rng=rng)
    if bias:
        layer.params["biases"][:] = rng.standard_normal(3)
    assert_gradients_match(layer, rng.standard_normal(shape), rng)


@pytest.mark.parametrize("padding, shape", [("valid", (2, 5, 6)), ("same", (1, 4, 5, 2))])
def test_conv3x3_gradients(rng, padding, shape):
    channels = 1 if len(shape) == 3 else shape[-1]
    layer = sc.Conv3x3(4, in_channels=channels, padding=padding, bias=True, dtype=F64, rng=rng)
    assert_gradients_match(layer, rng.standard_normal(shape), rng)


@pytest.mark.parametrize("shape", [(2, 4, 6, 3), (1, 5, 7, 2), (3, 2, 2, 1)])
@pytest.mark.parametrize("pool", [sc.MaxPool2, sc.AvgPool2, loops.MaxPool2])
def test_pool_gradients(rng, shape, pool):
    # A permutation keeps every value distinct (gaps >> h), so max is differentiable here.
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(F64) / 10
    assert_gradients_match(pool(), x, rng)


@pytest.mark.parametrize("softmax", [sc.Softmax, loops.Softmax])
@pytest.mark.parametrize("shape", [(3, 2, 3, 2), (1, 5)])
def test_softmax_gradients(rng, softmax, shape):
    layer = softmax(int(np.prod(shape[1:])), 4, dtype=F64, rng=rng)
    layer.params["biases"][:] = rng.standard_normal(4)
    assert_gradients_match(layer, rng.standard_normal(shape), rng)


def test_loop_conv3x3_gradients(rng):
    layer = loops.Conv3x3(2, in_channels=2, padding="same", bias=True, dtype=F64, rng=rng)
    assert_gradients_match(layer, rng.standard_normal((2, 4, 5, 2)), rng)


def test_dense_gradients(rng):
    layer = sc.Dense(5, 3, dtype=F64, rng=rng)
    layer.params["biases"][:] = rng.standard_normal(3)
    assert_gradients_match(layer, rng.standard_normal((4, 5)), rng)


def test_relu_gradients(rng):
    x = rng.standard_normal((3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink at 0
    assert_gradients_match(sc.ReLU(), x, rng)


def test_flatten_gradients(rng):
    assert_gradients_match(sc.Flatten(), rng.standard_normal((2, 3, 4, 2)), rng)


def test_dropout_gradients(rng):
    layer = sc.Dropout(0.3)

    def same_mask():
        layer.rng = np.random.default_rng(7)

    assert_gradients_match(layer, rng.standard_normal((4, 6)), rng, before_forward=same_mask)


def test_network_input_gradient_through_fused_loss(rng):
    """The whole tutorial network, fused softmax+cross-entropy path, against finite differences:
    the gradient w.r.t. the input images, and w.r.t. the first layer's filters."""
    net = sc.Network([sc.Conv3x3(2, bias=True, dtype=F64, rng=rng), sc.MaxPool2(),
                      sc.Softmax(3 * 3 * 2, 3, dtype=F64, rng=rng)])
    assert hasattr(net.layers[-1], "backward_from_logits")  # so the fused path is the one taken
    first = net.layers[0]
    x = rng.standard_normal((2, 8, 8))
    labels = np.array([0, 2])
    net.loss_and_gradients(x, labels, input_grad=True)
    analytic_input, analytic_filters = net.input_gradient.copy(), first.grads["filters"].copy()

    def loss():
        return net.loss_and_gradients(x, labels)[0]

    assert analytic_input.shape == x.shape
    assert relative_error(analytic_input, numerical_gradient(loss, x)) < TOLERANCE
    assert relative_error(analytic_filters, numerical_gradient(loss, first.params["filters"])) < TOLERANCE
    assert net.input_gradient is None  # training steps skip it
