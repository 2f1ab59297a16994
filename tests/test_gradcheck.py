"""scratchcnn.gradcheck passes right backwards, and catches wrong ones and says where."""
import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn.gradcheck import (GradcheckReport, GradientCheckFailed, assert_gradients_correct, check_layer,
                                  elementwise_relative_error)


class LeakyReLU:
    """A layer written the way a reader would: no base class, no parameters."""

    def __init__(self, slope=0.1, backward_slope=None):
        self.slope = slope
        self.backward_slope = slope if backward_slope is None else backward_slope  # a bug when different

    def forward(self, x):
        self.last_input = x
        return np.where(x > 0, x, self.slope * x)

    def backward(self, d_out):
        return d_out * np.where(self.last_input > 0, 1.0, self.backward_slope)


class DenseWithBug(sc.Dense):
    """``Dense`` with one deliberately wrong element of the weight gradient."""

    def backward(self, d_out):
        d_x = super().backward(d_out)
        self.grads["weights"][2, 1] *= 1.01
        return d_x


def away_from_zero(rng, shape):
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-2] = 0.5  # no element near the kink at 0
    return x


def test_right_backwards_pass(rng):
    report = check_layer(LeakyReLU(), away_from_zero(rng, (3, 4, 5)))
    assert report.passed and report.failures == []
    assert list(report.checks) == ["input"]
    assert report["input"].max_error < 1e-7

    dense = sc.Dense(5, 3, dtype=np.float64, rng=rng)
    report = assert_gradients_correct(dense, rng.standard_normal((4, 5)))
    assert isinstance(report, GradcheckReport)
    assert list(report.checks) == ["input", "weights", "biases"]
    assert report["weights"].shape == (5, 3)
    assert "all 3 gradients match" in str(report)


def test_a_wrong_input_gradient_fails(rng):
    x = away_from_zero(rng, (2, 6))
    report = check_layer(LeakyReLU(slope=0.1, backward_slope=0.2), x)
    assert not report.passed
    assert [c.name for c in report.failures] == ["input"]
    check = report["input"]
    # The worst element is a negative input, where backward used twice the right slope.
    assert x[check.worst_index] < 0
    assert check.analytic == pytest.approx(2 * check.numeric, rel=1e-6)
    assert check.max_error == pytest.approx(1 / 3, rel=1e-6)  # |2n - n| / (|2n| + |n|)
    with pytest.raises(GradientCheckFailed, match=r"1 of 1 gradients do NOT match.*\n  input .*FAILED"):
        report.raise_if_failed()
    with pytest.raises(AssertionError):
        assert_gradients_correct(LeakyReLU(backward_slope=0.2), x)


def test_one_wrong_element_of_a_parameter_gradient_is_found(rng):
    layer = DenseWithBug(4, 3, dtype=np.float64, rng=rng)
    layer.params["biases"][:] = rng.standard_normal(3)
    report = check_layer(layer, rng.standard_normal((5, 4)))
    assert [c.name for c in report.failures] == ["weights"]
    assert report["weights"].worst_index == (2, 1)
    assert report["weights"].max_error == pytest.approx(0.01 / 2.01, rel=1e-4)
    assert report["input"].passed and report["biases"].passed
    assert "weights" in repr(report) and "FAILED" in str(report)


def test_tolerance_decides(rng):
    layer = DenseWithBug(4, 3, dtype=np.float64, rng=rng)
    x = rng.standard_normal((5, 4))
    assert not check_layer(layer, x, tolerance=1e-3).passed
    assert check_layer(layer, x, tolerance=1e-2).passed  # the 0.5% bug is within 1%


def test_input_and_parameters_are_left_as_they_were(rng):
    layer = sc.Conv3x3(2, bias=True, dtype=np.float64, rng=rng)
    before = {k: v.copy() for k, v in layer.params.items()}
    x = rng.standard_normal((1, 5, 5)).astype(np.float32)
    x_before = x.copy()
    assert check_layer(layer, x).passed  # a float32 input is checked in a float64 copy
    np.testing.assert_array_equal(x, x_before)
    for name, value in before.items():
        np.testing.assert_array_equal(layer.params[name], value)


def test_same_seed_same_report_and_dropout_with_a_fixed_mask(rng):
    x = rng.standard_normal((4, 6))
    layer = sc.Dropout(0.3)

    def same_mask():
        layer.rng = np.random.default_rng(7)

    first = check_layer(layer, x, seed=3, before_forward=same_mask)
    second = check_layer(layer, x, seed=3, before_forward=same_mask)
    assert first.passed and first["input"] == second["input"]
    # Without the fixed mask every forward draws a new one, and the check rightly fails.
    assert not check_layer(layer, x, seed=3).passed


def test_elementwise_error_judges_tiny_elements_on_the_gradients_scale():
    a = np.array([1.0, 0.0, 0.5])
    n = np.array([1.0, 1e-12, 0.5])  # rounding noise where the gradient is 0
    errors = elementwise_relative_error(a, n)
    assert errors[1] == pytest.approx(1e-12 / 2e-2)
    assert errors[0] == errors[2] == 0
    assert elementwise_relative_error(np.zeros(3), np.zeros(3)).tolist() == [0, 0, 0]


def test_bad_layers_get_clear_errors(rng):
    with pytest.raises(ValueError, match=r"params\['weights'\] is float32.*dtype=np.float64"):
        check_layer(sc.Dense(3, 2, rng=rng), rng.standard_normal((2, 3)))

    class ReturnsNothing(LeakyReLU):
        def backward(self, d_out):
            self.d_out = d_out

    with pytest.raises(ValueError, match=r"ReturnsNothing.backward returned None.*shape \(2, 3\)"):
        check_layer(ReturnsNothing(), rng.standard_normal((2, 3)))

    class WrongShape(LeakyReLU):
        def backward(self, d_out):
            return d_out.ravel()

    with pytest.raises(ValueError, match=r"returned shape \(6,\).*input's shape \(2, 3\)"):
        check_layer(WrongShape(), rng.standard_normal((2, 3)))

    class ForgetsBiases(sc.Dense):
        def backward(self, d_out):
            d_x = super().backward(d_out)
            del self.grads["biases"]
            return d_x

    with pytest.raises(ValueError, match=r"did not fill grads\['biases'\]"):
        check_layer(ForgetsBiases(3, 2, dtype=np.float64, rng=rng), rng.standard_normal((2, 3)))

    with pytest.raises(TypeError, match="no backward"):
        check_layer(type("OnlyForward", (), {"forward": lambda self, x: x})(), np.zeros(3))


def test_exported_from_the_package():
    assert sc.check_layer is check_layer and sc.assert_gradients_correct is assert_gradients_correct
