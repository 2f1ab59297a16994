"""The engine's fused and folded steps (scratchcnn.engine.fused, folded, algorithms) give the plain
layers' numbers in float64, whatever algorithm and chunk the rule picks for a shape."""
import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn.engine import FastEngine, algorithms
from scratchcnn.engine.folded import FoldedNetwork
from scratchcnn.engine.fused import ConvStep, FusedNetwork, fuse
from scratchcnn.engine.replicas import replica
from scratchcnn.models import build_model

from helpers import images_and_labels


def conv_block(rng, channels, size, padding="valid", stride=1, bias=True, norm=True, relu=True, pool=False):
    """``Conv2D`` [-> BatchNorm] [-> ReLU [-> MaxPool2]] in float64, on an input ``(5, size, size,
    channels)``, with a BatchNorm whose parameters and running statistics are not their defaults."""
    layers = [sc.Conv2D(6, 3, in_channels=channels, padding=padding, stride=stride, bias=bias,
                        dtype=np.float64, rng=rng)]
    if norm:
        bn = sc.BatchNorm(6, dtype=np.float64)
        bn.params["gamma"][:] = rng.uniform(0.5, 2, 6)
        bn.params["beta"][:] = rng.normal(size=6)
        bn.running_mean[:], bn.running_var[:] = rng.normal(size=6), rng.uniform(0.5, 2, 6)
        layers.append(bn)
    if relu:
        layers.append(sc.ReLU())
    if pool:
        layers.append(sc.MaxPool2())
    x = rng.normal(size=(5, size, size, channels))
    if pool:  # ties in the windows, as on MNIST's blank margins: the pool's first maximum must agree
        x[:, :4, :4] = 0.5
    return layers, x


def run_plain(layers, x, d_out):
    """Forward and backward through the plain layers: ``(output, input gradient)``."""
    for layer in layers:
        x = layer.forward(x)
    for layer in reversed(layers):
        d_out = layer.backward(d_out)
    return x, d_out


CASES = {  # (channels, size, padding, stride, bias, norm, relu[, pool]): the algorithm the rule picks
    "shifted, BatchNorm and ReLU": (16, 20, "valid", 1, False, True, True),
    "shifted, BatchNorm, ReLU, then a pool (ReLU after it)": (16, 20, "valid", 1, False, True, True, True),
    "col2im: an odd map, ReLU then a pool": (3, 13, "valid", 1, True, False, True, True),
    "shifted, same padding, bias, ReLU only": (16, 20, "same", 1, True, False, True),
    "col2im: a small map": (16, 5, "valid", 1, True, True, True),
    "col2im: stride 2": (16, 11, 1, 2, True, True, False),
    "col2im: few channels": (3, 12, "valid", 1, True, True, True),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
@pytest.mark.parametrize("chunk_bytes", [algorithms.WINDOW_CHUNK_BYTES, 1], ids=["whole", "image by image"])
def test_a_fused_convolution_equals_its_plain_layers(rng, monkeypatch, case, chunk_bytes):
    """Output, input gradient, weight and BatchNorm gradients and running statistics agree to 1e-10,
    in training and in evaluation, however the batch is chunked."""
    monkeypatch.setattr(algorithms, "WINDOW_CHUNK_BYTES", chunk_bytes)
    for training in (True, False):
        plain, x = conv_block(np.random.default_rng(3), *CASES[case])
        twins = [replica(layer) for layer in conv_block(np.random.default_rng(3), *CASES[case])[0]]
        for layer in plain + twins:
            layer.training = training
        norm = next((layer for layer in twins if isinstance(layer, sc.BatchNorm)), None)
        relu = next((layer for layer in twins if isinstance(layer, sc.ReLU)), None)
        pool = next((layer for layer in twins if isinstance(layer, sc.MaxPool2)), None)
        step = ConvStep(twins[0], norm, relu, pool)
        assert algorithms.input_gradient_algorithm(twins[0], x.shape) == case.split(",")[0].split(":")[0]
        y = step.forward(x)
        d_out = rng.normal(size=y.shape)
        y_plain, d_x_plain = run_plain(plain, x, d_out)
        np.testing.assert_allclose(y, y_plain, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(step.backward(d_out), d_x_plain, rtol=1e-10, atol=1e-12)
        for a, b in zip(plain, twins):
            for name in a.params:
                np.testing.assert_allclose(b.grads[name], a.grads[name], rtol=1e-10, atol=1e-12)
            if isinstance(a, sc.BatchNorm):
                np.testing.assert_allclose(b.running_mean, a.running_mean, rtol=1e-10, atol=1e-12)
                np.testing.assert_allclose(b.running_var, a.running_var, rtol=1e-10)


def test_the_rule_picks_by_shape():
    """Stride-1 convolutions with many channels on large maps take the shifted products."""
    classic = build_model("classic")
    assert algorithms.input_gradient_algorithm(classic.layers[2], (64, 26, 26, 16)) == "shifted"
    assert algorithms.input_gradient_algorithm(classic.layers[5], (64, 12, 12, 32)) == "col2im"
    assert algorithms.input_gradient_algorithm(classic.layers[0], (64, 28, 28)) == "col2im"
    assert 1 <= algorithms.window_chunk(classic.layers[2], (64, 26, 26, 16), 4) < 64


def test_fuse_groups_each_convolution_with_what_follows_it():
    names = [str(step) if isinstance(step, ConvStep) else type(step).__name__ for step in fuse(build_model("modern").layers)]
    assert names[:3] == ["Conv2D+BatchNorm+ReLU", "Conv2D+BatchNorm+ReLU+MaxPool2", "Conv2D+BatchNorm+ReLU"]
    classic = [str(step) if isinstance(step, ConvStep) else type(step).__name__ for step in fuse(build_model("classic").layers)]
    assert classic == ["Conv2D+ReLU", "Conv2D+ReLU+MaxPool2", "Conv2D+ReLU+MaxPool2", "Softmax"]
    seed = build_model("seed").layers
    assert fuse(seed) == seed  # a one-channel convolution with nothing to fuse runs as itself


@pytest.mark.parametrize("name", ["classic", "modern"])
def test_a_fused_network_gives_the_plain_loss_and_gradients(rng, name):
    plain = build_model(name, np.float64)
    fused = FusedNetwork([replica(layer) for layer in build_model(name, np.float64).layers])
    x, labels = images_and_labels(rng, 9)
    loss, probs = plain.loss_and_gradients(x, labels)
    fused_loss, fused_probs = fused.loss_and_gradients(x, labels)
    assert fused_loss == pytest.approx(loss, rel=1e-10)
    np.testing.assert_allclose(fused_probs, probs, rtol=1e-10, atol=1e-14)
    for a, b in zip(plain.layers, fused.layers):
        for key in a.params:
            np.testing.assert_allclose(b.grads[key], a.grads[key], rtol=1e-8, atol=1e-12)


def test_a_folded_network_predicts_as_the_plain_one_after_training(rng):
    """Running statistics away from their defaults, folded into the weights."""
    network = build_model("modern", np.float64)
    for _ in range(3):
        network.train_step(*images_and_labels(rng, 16), sc.Adam(1e-2))
    x = images_and_labels(rng, 6)[0]
    with network.evaluating():
        folded = FoldedNetwork([replica(layer) for layer in network.layers])
    np.testing.assert_allclose(folded.forward(x), network.predict_proba(x), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(FastEngine(threads=1).predict_proba(network, x), network.predict_proba(x),
                               rtol=1e-10, atol=1e-13)
