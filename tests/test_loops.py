"""The loop twins in scratchcnn.loops and the vectorized layers agree, forward and backward."""
import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn import loops
from helpers import F64

EXACT = 1e-10


def twin_pair(vectorized_cls, loop_cls, *args, **kwargs):
    """The same layer twice, the loop twin holding copies of the vectorized one's parameters."""
    fast = vectorized_cls(*args, dtype=F64, rng=np.random.default_rng(0), **kwargs)
    slow = loop_cls(*args, dtype=F64, rng=np.random.default_rng(99), **kwargs)
    slow.params = {k: v.copy() for k, v in fast.params.items()}
    return fast, slow


def assert_twins_agree(fast, slow, x, rng):
    y_fast, y_slow = fast.forward(x), slow.forward(x.copy())
    assert y_fast.shape == y_slow.shape
    np.testing.assert_allclose(y_fast, y_slow, rtol=0, atol=EXACT)
    d_out = rng.standard_normal(y_fast.shape)
    np.testing.assert_allclose(fast.backward(d_out), slow.backward(d_out.copy()), rtol=0, atol=EXACT)
    assert fast.grads.keys() == slow.grads.keys()
    for name in fast.grads:
        np.testing.assert_allclose(fast.grads[name], slow.grads[name], rtol=0, atol=EXACT)


@pytest.mark.parametrize("shape, channels, padding, bias", [
    ((3, 28, 28), 1, "valid", False),   # the tutorial's shapes
    ((1, 7, 9), 1, "same", True),
    ((2, 6, 5, 3), 3, "valid", True),
    ((2, 5, 5, 2), 2, "same", False),
])
def test_conv3x3_twins_agree(rng, shape, channels, padding, bias):
    fast, slow = twin_pair(sc.Conv3x3, loops.Conv3x3, 8, in_channels=channels, padding=padding, bias=bias)
    if bias:
        fast.params["biases"][:] = slow.params["biases"][:] = rng.standard_normal(8)
    assert_twins_agree(fast, slow, rng.standard_normal(shape), rng)


@pytest.mark.parametrize("shape", [(2, 26, 26, 8), (1, 7, 5, 3), (3, 4, 4, 1)])
def test_maxpool_twins_agree_with_ties(rng, shape):
    x = rng.integers(-2, 3, size=shape).astype(F64)  # few distinct values: many ties
    assert_twins_agree(sc.MaxPool2(), loops.MaxPool2(), x, rng)


@pytest.mark.parametrize("shape", [(4, 13, 13, 8), (1, 10)])
def test_softmax_twins_agree(rng, shape):
    fast, slow = twin_pair(sc.Softmax, loops.Softmax, int(np.prod(shape[1:])), 10)
    assert_twins_agree(fast, slow, rng.standard_normal(shape), rng)
    d_logits = rng.standard_normal((shape[0], 10))
    np.testing.assert_allclose(fast.backward_from_logits(d_logits), slow.backward_from_logits(d_logits),
                               rtol=0, atol=EXACT)


def test_loop_and_vectorized_networks_train_identically(rng):
    """The whole tutorial network, a few SGD steps: both versions end with the same weights."""
    def build(mod):
        return sc.Network([mod.Conv3x3(8, dtype=F64, rng=np.random.default_rng(1)), mod.MaxPool2(),
                           mod.Softmax(13 * 13 * 8, 10, dtype=F64, rng=np.random.default_rng(2))])

    fast, slow = build(sc), build(loops)
    x = rng.random((4, 28, 28)) - 0.5
    labels = rng.integers(0, 10, 4)
    opt_fast, opt_slow = sc.SGD(0.1), sc.SGD(0.1)
    for _ in range(3):
        loss_fast, _ = fast.train_step(x, labels, opt_fast)
        loss_slow, _ = slow.train_step(x, labels, opt_slow)
        assert loss_fast == pytest.approx(loss_slow, abs=EXACT)
    for a, b in zip(fast.layers, slow.layers):
        for name in a.params:
            np.testing.assert_allclose(a.params[name], b.params[name], rtol=0, atol=EXACT)
