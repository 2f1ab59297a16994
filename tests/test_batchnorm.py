"""BatchNorm: gradients, its loop twin, evaluation mode, running statistics (PyTorch as an
optional oracle), extra state and errors."""
import json

import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn import loops

from scratchcnn.gradcheck import check_layer
from helpers import F64

SHAPES = [(6, 5), (3, 4, 5, 2)]  # (N, C) and channels-last (N, H, W, C)


def layer_pair(channels, rng, momentum=0.1):
    """The vectorized layer and its loop twin, with the same random gamma and beta."""
    fast = sc.BatchNorm(channels, momentum=momentum, dtype=F64)
    slow = loops.BatchNorm(channels, momentum=momentum, dtype=F64)
    for layer in (fast, slow):
        layer.params["gamma"][:] = 1 + 0.5 * np.arange(channels)
        layer.params["beta"][:] = np.linspace(-1, 1, channels)
    return fast, slow


def channel_values(rng, shape):
    """Values with a per-channel offset and scale, so the normalisation has work to do."""
    c = shape[-1]
    return rng.standard_normal(shape) * (1 + np.arange(c)) + 3 * np.arange(c)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("twin", [False, True])
def test_gradients_match_finite_differences(rng, shape, training, twin):
    layer = layer_pair(shape[-1], rng)[twin]
    layer.forward(channel_values(rng, shape))  # running statistics away from 0 and 1
    layer.training = training
    report = check_layer(layer, channel_values(rng, shape), seed=rng, tolerance=1e-7)
    assert set(report.checks) == {"input", "gamma", "beta"}
    assert report.passed, report


@pytest.mark.parametrize("shape", SHAPES)
def test_loop_twin_agrees_forward_backward_and_running_statistics(rng, shape):
    fast, slow = layer_pair(shape[-1], rng, momentum=0.3)
    for training in (True, True, True, False):
        fast.training = slow.training = training
        x = channel_values(rng, shape)
        np.testing.assert_allclose(fast.forward(x), slow.forward(x.copy()), rtol=0, atol=1e-10)
        d_out = rng.standard_normal(shape)
        np.testing.assert_allclose(fast.backward(d_out), slow.backward(d_out.copy()), rtol=0, atol=1e-10)
        for name in ("gamma", "beta"):
            np.testing.assert_allclose(fast.grads[name], slow.grads[name], rtol=0, atol=1e-10)
        np.testing.assert_allclose(fast.running_mean, slow.running_mean, rtol=0, atol=1e-10)
        np.testing.assert_allclose(fast.running_var, slow.running_var, rtol=0, atol=1e-10)


def test_training_normalises_each_channel_over_the_batch(rng):
    layer = sc.BatchNorm(3, dtype=F64)
    y = layer.forward(channel_values(rng, (8, 5, 5, 3)))
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 1, 2)), 1, atol=1e-4)  # eps keeps it just under 1


def test_evaluation_uses_the_running_statistics(rng):
    layer = sc.BatchNorm(2, eps=1e-3, dtype=F64)
    layer.params["gamma"][:], layer.params["beta"][:] = [2.0, -1.0], [0.5, 0.25]
    layer.running_mean, layer.running_var = np.array([1.0, -2.0]), np.array([4.0, 0.25])
    network = sc.Network([layer]).eval()
    assert layer.training is False
    x = channel_values(rng, (5, 3, 3, 2))
    expected = [2.0, -1.0] * (x - [1.0, -2.0]) / np.sqrt(np.array([4.0, 0.25]) + 1e-3) + [0.5, 0.25]
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12)
    # One image alone gets the same answer as inside its batch, and nothing is updated.
    np.testing.assert_allclose(layer.forward(x[:1]), expected[:1], rtol=1e-12)
    assert layer.running_mean.tolist() == [1.0, -2.0] and layer.running_var.tolist() == [4.0, 0.25]
    with network.train().evaluating():
        assert layer.training is False
    assert layer.training is True


def test_running_statistics_follow_the_momentum_rule(rng):
    layer = sc.BatchNorm(2, momentum=0.25, dtype=F64)
    x = channel_values(rng, (4, 3, 3, 2))
    layer.forward(x)
    m = 4 * 3 * 3
    np.testing.assert_allclose(layer.running_mean, 0.25 * x.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, 0.75 + 0.25 * x.var(axis=(0, 1, 2)) * m / (m - 1),
                               rtol=1e-12)


def torch_layer(torch, shape, momentum):
    cls = torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d
    return cls(shape[-1], momentum=momentum, eps=1e-5, dtype=torch.float64)


def to_torch(torch, x):
    """Channels-last NumPy -> PyTorch's channels-first (N, C, H, W); (N, C) stays."""
    return torch.tensor(x if x.ndim == 2 else x.transpose(0, 3, 1, 2), requires_grad=True)


def from_torch(t):
    a = t.detach().numpy()
    return a if a.ndim == 2 else a.transpose(0, 2, 3, 1)


@pytest.mark.parametrize("shape", SHAPES)
def test_agrees_with_pytorch_in_float64(rng, shape):
    torch = pytest.importorskip("torch")
    ours, theirs = sc.BatchNorm(shape[-1], momentum=0.2, dtype=F64), torch_layer(torch, shape, 0.2)
    with torch.no_grad():
        theirs.weight[:] = torch.tensor(rng.standard_normal(shape[-1]))
        theirs.bias[:] = torch.tensor(rng.standard_normal(shape[-1]))
    ours.params["gamma"][:] = theirs.weight.detach().numpy()
    ours.params["beta"][:] = theirs.bias.detach().numpy()
    for training in (True, True, True, False):
        ours.training = training
        theirs.train(training)
        x, d_out = channel_values(rng, shape), rng.standard_normal(shape)
        x_t = to_torch(torch, x)
        theirs.weight.grad = theirs.bias.grad = None
        y_t = theirs(x_t)
        y_t.backward(to_torch(torch, d_out).detach())
        np.testing.assert_allclose(ours.forward(x), from_torch(y_t), rtol=0, atol=1e-12)
        np.testing.assert_allclose(ours.backward(d_out), from_torch(x_t.grad), rtol=0, atol=1e-12)
        np.testing.assert_allclose(ours.grads["gamma"], theirs.weight.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.grads["beta"], theirs.bias.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extra_state_round_trips_exactly_through_json(rng, dtype):
    layer = sc.BatchNorm(4, dtype=dtype)
    for _ in range(3):
        layer.forward(channel_values(rng, (5, 3, 3, 4)).astype(dtype))
    state = json.loads(json.dumps(layer.get_extra_state()))
    restored = sc.BatchNorm(**json.loads(json.dumps(layer.config())))
    restored.set_extra_state(state)
    for name in ("running_mean", "running_var"):
        assert getattr(restored, name).dtype == dtype
        np.testing.assert_array_equal(getattr(restored, name), getattr(layer, name))
    assert not np.array_equal(layer.running_mean, np.zeros(4))  # the trip carried something


def test_extra_state_of_another_size_or_kind_is_refused():
    layer = sc.BatchNorm(3)
    state = sc.BatchNorm(5).get_extra_state()
    with pytest.raises(ValueError, match=r"running_mean .* shape \(5,\).* needs \(3,\)"):
        layer.set_extra_state(state)
    with pytest.raises(ValueError, match="lacks \\['running_var'\\]"):
        layer.set_extra_state({"running_mean": [0.0] * 3})


@pytest.mark.parametrize("x, words", [
    (np.zeros((2, 5, 5)), r"expected input of shape \(N, 3\) or \(N, H, W, 3\).*got shape \(2, 5, 5\)"),
    (np.zeros((2, 5, 5, 4)), r"got shape \(2, 5, 5, 4\); num_features must equal the number of channels"),
    (np.zeros((1, 3)), r"more than one value per channel.*network.eval\(\)"),
    ("text", "expected input of shape"),
])
def test_bad_input_is_explained(x, words):
    with pytest.raises(ValueError, match=words):
        sc.BatchNorm(3).forward(x)


@pytest.mark.parametrize("kwargs, words", [
    (dict(num_features=0), "integer >= 1"),
    (dict(num_features=2.5), "integer >= 1"),
    (dict(num_features=3, momentum=1.5), "0 <= momentum <= 1"),
    (dict(num_features=3, eps=0), "eps > 0"),
])
def test_bad_constructor_arguments_are_explained(kwargs, words):
    with pytest.raises(ValueError, match=words):
        sc.BatchNorm(**kwargs)


def test_float32_stays_float32(rng):
    layer = sc.BatchNorm(3)
    y = layer.forward(channel_values(rng, (4, 2, 2, 3)).astype(np.float32))
    d_x = layer.backward(np.ones_like(y))
    assert {y.dtype, d_x.dtype, layer.running_mean.dtype, layer.running_var.dtype,
            layer.grads["gamma"].dtype} == {np.dtype(np.float32)}


@pytest.mark.parametrize("twin", [False, True])
def test_checkpoint_keeps_the_running_statistics(tmp_path, rng, twin):
    from scratchcnn.checkpoint import load_checkpoint, save_checkpoint
    norm = (loops.BatchNorm if twin else sc.BatchNorm)(3, dtype=np.float64)
    network = sc.Network([sc.Conv3x3(3, dtype=np.float64, rng=rng), norm,
                          sc.Flatten(), sc.Softmax(26 * 26 * 3, 10, dtype=np.float64, rng=rng)])
    for _ in range(3):  # move the running statistics away from their initial 0 and 1
        network.forward(rng.standard_normal((4, 28, 28)))
    save_checkpoint(tmp_path / "bn.npz", network)
    restored = load_checkpoint(tmp_path / "bn.npz").network.layers[1]
    assert type(restored) is type(norm)
    np.testing.assert_array_equal(restored.running_mean, norm.running_mean)
    np.testing.assert_array_equal(restored.running_var, norm.running_var)
    assert not np.allclose(norm.running_var, 1.0)
    x = rng.standard_normal((2, 28, 28))
    np.testing.assert_array_equal(load_checkpoint(tmp_path / "bn.npz").network.predict_proba(x),
                                  network.predict_proba(x))
