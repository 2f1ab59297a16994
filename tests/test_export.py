"""scratchcnn.export: the PyTorch twin computes what the network computes, forward and backward."""
import copy
import sys

import numpy as np
import pytest

from scratchcnn import (SGD, AvgPool2, BatchNorm, Conv2D, Conv3x3, Dense, Dropout, Flatten, Layer, MaxPool2,
                        Network, ReLU, Softmax)
from helpers import F64, images_and_labels
from scratchcnn.export import from_torch, to_torch
from scratchcnn.models import MODEL_NAMES, build_model

torch = pytest.importorskip("torch")
TOL = dict(rtol=1e-10, atol=1e-10)


def batch(rng, n=6, shape=(28, 28)):
    return images_and_labels(rng, n, shape=shape)


def twin_probs(twin, x):
    with torch.no_grad():
        return torch.softmax(twin(torch.from_numpy(x[:, None])), dim=1).numpy()


def twin_sgd_step(twin, network, x, labels, lr):
    """One SGD step of the twin on the batch, each Dropout applying the mask that the same
    Dropout of ``network`` drew (so both train on exactly the same function). Returns the loss."""
    masks = [layer.last_mask for layer in network.layers if isinstance(layer, Dropout)]
    out, flattened_map = torch.from_numpy(x[:, None]), None  # (C, H, W) while flat values are a map's
    for module in twin:
        if isinstance(module, torch.nn.Dropout):
            mask = masks.pop(0)
            if mask is not None:
                mask = torch.from_numpy(mask)
                if mask.ndim == 4:      # ours (N, H, W, C)
                    mask = mask.permute(0, 3, 1, 2)
                elif flattened_map:     # ours in (h, w, c) order, PyTorch's in (c, h, w)
                    c, h, w = flattened_map
                    mask = mask.reshape(-1, h, w, c).permute(0, 3, 1, 2).reshape(len(mask), -1)
                out = out * mask
            continue
        if isinstance(module, torch.nn.Flatten) and out.ndim == 4:
            flattened_map = tuple(out.shape[1:])
        elif isinstance(module, torch.nn.Linear):
            flattened_map = None
        out = module(out)
    loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(labels))
    loss.backward()
    with torch.no_grad():
        for param in twin.parameters():
            param -= lr * param.grad
    return loss.item()


def gradients_as_network(twin, like, input_shape):
    """The twin's gradients, mapped back to our layouts: a copy of ``like`` holding them as weights."""
    holder = copy.deepcopy(twin)
    for param, source in zip(holder.parameters(), twin.parameters()):
        param.data = source.grad.clone()
    return from_torch(holder, like, input_shape)


def assert_same_step(network, x, labels, lr=0.1):
    """One SGD step on both sides: same loss, same gradients, same weights after."""
    input_shape = (1,) + x.shape[1:]
    twin = to_torch(network, input_shape)
    loss, _ = network.train_step(x, labels, SGD(lr))
    twin_loss = twin_sgd_step(twin, network, x, labels, lr)
    assert twin_loss == pytest.approx(loss, rel=1e-12)
    grads = gradients_as_network(twin, network, input_shape)
    stepped = from_torch(twin, network, input_shape)
    checked = 0
    for i, layer in enumerate(network.layers):
        for key in layer.params:
            np.testing.assert_allclose(grads.layers[i].params[key], layer.grads[key], **TOL,
                                       err_msg=f"gradient of layer {i} {key}")
            np.testing.assert_allclose(stepped.layers[i].params[key], layer.params[key], **TOL,
                                       err_msg=f"layer {i} {key} after the step")
            assert np.abs(layer.grads[key]).max() > 0  # a gradient that reached this layer
            checked += 1
    assert checked == sum(len(layer.params) for layer in network.layers) > 0
    return twin


MODELS = [(name, False) for name in MODEL_NAMES] + [("seed", True)]


@pytest.mark.parametrize("name, loop", MODELS)
def test_twin_softmax_equals_predict_proba(name, loop, rng):
    network = build_model(name, dtype=F64, seed=3, loop=loop)
    x, _ = batch(rng)
    twin = to_torch(network).eval()
    assert next(twin.parameters()).dtype == torch.float64
    np.testing.assert_allclose(twin_probs(twin, x), network.predict_proba(x), **TOL)


@pytest.mark.parametrize("name, loop", MODELS)
def test_twin_gradients_after_one_step_equal_ours(name, loop, rng):
    network = build_model(name, dtype=F64, seed=3, loop=loop).train()
    x, labels = batch(rng)
    twin = assert_same_step(network, x, labels)
    # And the stepped networks still agree (eval mode: dropout off on both sides).
    np.testing.assert_allclose(twin_probs(twin.eval(), x), network.predict_proba(x), **TOL)


def every_layer_kind(rng):
    """Padding, stride, odd sizes, both pools, Dense after Flatten of a map, dropout on a map."""
    return Network([
        Conv2D(3, 3, stride=2, padding=1, dtype=F64, rng=rng),             # (N, 15, 13) -> (N, 8, 7, 3)
        ReLU(),
        Dropout(0.3, rng=np.random.default_rng(1)),
        Conv3x3(4, in_channels=3, padding="same", bias=True, dtype=F64, rng=rng),  # -> (N, 8, 7, 4)
        AvgPool2(),                                                        # -> (N, 4, 3, 4)
        Conv2D(5, 2, in_channels=4, dtype=F64, rng=rng),                   # -> (N, 3, 2, 5)
        MaxPool2(),                                                        # -> (N, 1, 1, 5)... odd: floors
        Flatten(),                                                         # -> (N, 5)
        Dense(5, 7, dtype=F64, rng=rng), ReLU(), Dropout(0.2, rng=np.random.default_rng(2)),
        Softmax(7, 10, dtype=F64, rng=rng),
    ])


def test_dropout_after_flattening_a_map_trains_like_pytorch(rng):
    network = Network([Conv2D(3, 3, dtype=F64, rng=rng), Flatten(), Dropout(0.5, rng=np.random.default_rng(3)),
                       Softmax(4 * 3 * 3, 10, dtype=F64, rng=rng)])
    x, labels = batch(rng, 8, (6, 5))
    assert_same_step(network, x, labels)


def test_every_layer_kind_converts(rng):
    x, labels = batch(rng, 8, (15, 13))
    network = every_layer_kind(rng)
    twin = to_torch(network, input_shape=(1, 15, 13)).eval()
    with torch.no_grad():
        probs = torch.softmax(twin(torch.from_numpy(x[:, None])), 1).numpy()
    np.testing.assert_allclose(probs, network.predict_proba(x), **TOL)
    assert_same_step(network.train(), x, labels)


def test_flatten_of_a_map_reorders_the_dense_rows(rng):
    """Dense after Flatten of (H, W, C) = (4, 3, 2): PyTorch flattens (C, H, W), so rows move."""
    network = Network([Conv2D(2, 3, dtype=F64, rng=rng), Flatten(), Dense(4 * 3 * 2, 10, dtype=F64, rng=rng),
                       ReLU(), Softmax(10, 10, dtype=F64, rng=rng)])
    x, labels = batch(rng, 8, (6, 5))
    twin = to_torch(network, input_shape=(1, 6, 5))
    assert not np.allclose(twin[2].weight.detach().numpy(), network.layers[2].params["weights"].T)
    np.testing.assert_allclose(twin_probs(twin.eval(), x), network.predict_proba(x), **TOL)
    network.train()
    assert_same_step(network, x, labels)


class EvalBatchNorm(Layer):
    """A stand-in with BatchNorm's interface, evaluation mode only: the converter duck-types it."""

    def __init__(self, channels, rng):
        super().__init__()
        self.params = {"gamma": rng.random(channels) + 0.5, "beta": rng.random(channels) - 0.5}
        self.running_mean, self.running_var = rng.random(channels) - 0.5, rng.random(channels) + 0.5
        self.momentum, self.eps = 0.1, 1e-5

    def forward(self, x):  # channels are the last axis, for (N, C) and (N, H, W, C) alike
        return (x - self.running_mean) / np.sqrt(self.running_var + self.eps) * self.params["gamma"] \
            + self.params["beta"]


def test_batch_norm_by_duck_typing_on_maps_and_reordered_flat_features(rng):
    network = Network([Conv2D(3, 3, dtype=F64, rng=rng), EvalBatchNorm(3, rng), ReLU(), Flatten(),
                       EvalBatchNorm(4 * 3 * 3, rng), Softmax(4 * 3 * 3, 10, dtype=F64, rng=rng)])
    x, _ = batch(rng, 5, (6, 5))
    twin = to_torch(network, input_shape=(1, 6, 5)).eval()
    assert [type(m).__name__ for m in twin][1:5] == ["BatchNorm2d", "ReLU", "Flatten", "BatchNorm1d"]
    np.testing.assert_allclose(twin_probs(twin, x), network.predict_proba(x), **TOL)
    back = from_torch(twin, network, input_shape=(1, 6, 5))
    np.testing.assert_array_equal(back.layers[4].running_var, network.layers[4].running_var)


def test_batch_norm_layer_trains_like_pytorch(rng):
    network = Network([Conv2D(3, 3, dtype=F64, rng=rng), BatchNorm(3, dtype=F64), ReLU(), MaxPool2(),
                       Flatten(), BatchNorm(2 * 2 * 3, dtype=F64), Softmax(2 * 2 * 3, 10, dtype=F64, rng=rng)])
    x, labels = batch(rng, 8, (6, 6))
    twin = assert_same_step(network.train(), x, labels)
    back_network = from_torch(twin, network, input_shape=(1, 6, 6))
    for index in (1, 5):
        back = back_network.layers[index]
        np.testing.assert_allclose(back.running_mean, network.layers[index].running_mean, **TOL)
        np.testing.assert_allclose(back.running_var, network.layers[index].running_var, **TOL)
    np.testing.assert_allclose(twin_probs(twin.eval(), x), network.predict_proba(x), **TOL)


def test_twin_follows_the_network_mode():
    network = build_model("mlp", seed=0)
    assert to_torch(network.train()).training
    assert not to_torch(network.eval()).training
    assert to_torch(network)[1].weight.dtype == torch.float32  # float32 network: float32 twin


def test_from_torch_brings_back_trained_weights_and_leaves_like_alone(rng):
    network = build_model("classic", dtype=F64, seed=1)
    before = copy.deepcopy(network)
    twin = to_torch(network)
    x, labels = batch(rng)
    twin_sgd_step(twin, network.eval(), x, labels, lr=0.5)
    back = from_torch(twin, like=network)
    np.testing.assert_allclose(back.predict_proba(x), twin_probs(twin.eval(), x), **TOL)
    for old, new in zip(before.layers, network.layers):
        for key in old.params:
            np.testing.assert_array_equal(old.params[key], new.params[key])


def test_from_torch_refuses_a_sequential_of_another_shape():
    with pytest.raises(ValueError, match="not a twin of `like`.*Conv2d"):
        from_torch(to_torch(build_model("mlp")), like=build_model("seed"))


def test_unconvertible_layer_is_named_with_its_position(rng):
    class Sigmoid(Layer):
        def forward(self, x):
            return 1 / (1 + np.exp(-x))

    network = Network([Flatten(), Sigmoid(), Softmax(784, 10, rng=rng)])
    with pytest.raises(ValueError, match=r"cannot convert layer 1 \(Sigmoid\).*no PyTorch equivalent"):
        to_torch(network)


def test_dense_on_a_map_asks_for_a_flatten(rng):
    network = Network([Conv3x3(2, rng=rng), Dense(26 * 26 * 2, 10, rng=rng)])
    with pytest.raises(ValueError, match=r"layer 1 \(Dense\).*put a Flatten before it"):
        to_torch(network)


def test_missing_torch_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ImportError, match="pip install torch"):
        to_torch(build_model("seed"))
