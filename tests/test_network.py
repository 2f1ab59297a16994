"""Network: the fused loss path, learning a small problem, prediction helpers."""
import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn import loops


def tutorial_network(rng, dtype=np.float64, size=8):
    out = (size - 2) // 2
    return sc.Network([sc.Conv3x3(4, dtype=dtype, rng=rng), sc.MaxPool2(),
                       sc.Softmax(out * out * 4, 3, dtype=dtype, rng=rng)])


def test_fused_and_general_loss_paths_agree(rng):
    net = tutorial_network(rng)
    x = rng.standard_normal((5, 8, 8))
    labels = rng.integers(0, 3, 5)
    loss_fused, probs = net.loss_and_gradients(x, labels)
    fused = [{k: g.copy() for k, g in layer.grads.items()} for layer in net.layers]
    loss, d_probs = net.cross_entropy(net.forward(x), labels)
    net.backward(d_probs)
    assert loss == pytest.approx(loss_fused, rel=1e-12)
    for layer, grads in zip(net.layers, fused):
        for name in grads:
            np.testing.assert_allclose(layer.grads[name], grads[name], rtol=1e-9, atol=1e-14)


def test_cross_entropy_value_and_gradient():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    loss, d = sc.cross_entropy(probs, np.array([0, 2]))
    assert loss == pytest.approx(-(np.log(0.7) + np.log(0.8)) / 2)
    np.testing.assert_allclose(d, [[-1 / (2 * 0.7), 0, 0], [0, 0, -1 / (2 * 0.8)]])


def make_stripes(rng, n):
    """A separable synthetic task: which third of an 8x8 image holds a bright vertical bar."""
    labels = rng.integers(0, 3, n)
    x = rng.normal(0, 0.1, (n, 8, 8))
    for i, label in enumerate(labels):
        column = 1 + 2 * label + rng.integers(0, 2)
        x[i, :, column] += 1.0
    return x.astype(np.float32), labels


@pytest.mark.parametrize("optimizer", [sc.SGD(0.5), sc.Momentum(0.05), sc.Adam(0.01)])
def test_network_learns_a_separable_problem(rng, optimizer):
    net = tutorial_network(rng, np.float32)
    x, labels = make_stripes(rng, 300)
    test_x, test_labels = make_stripes(rng, 200)
    loss_before, acc_before = net.evaluate(test_x, test_labels)
    for epoch in range(8):
        for i in range(0, 300, 20):
            net.train_step(x[i:i + 20], labels[i:i + 20], optimizer)
    loss_after, acc_after = net.evaluate(test_x, test_labels)
    assert loss_after < loss_before / 3
    assert acc_before < 0.6 and acc_after > 0.95
    assert net.accuracy(test_x, test_labels) == pytest.approx(acc_after)
    assert net.predict(test_x[:7]).shape == (7,)


def test_eval_mode_turns_dropout_off_and_predict_restores_mode(rng):
    net = sc.Network([sc.Flatten(), sc.Dropout(0.5, rng=rng), sc.Softmax(4, 2, rng=rng)])
    x = rng.random((6, 2, 2), dtype=np.float32)
    first = net.predict_proba(x)
    np.testing.assert_array_equal(first, net.predict_proba(x))  # deterministic in evaluation
    assert net.layers[1].training  # predict_proba put the network back in training mode


def test_a_diverging_step_raises_before_touching_the_weights(rng):
    net = tutorial_network(rng, np.float32)
    x, labels = make_stripes(rng, 20)
    with pytest.raises(sc.TrainingDiverged, match="lower learning rate"):
        for _ in range(20):
            before = [p.copy() for layer in net.layers for p in layer.params.values()]
            net.train_step(x, labels, sc.SGD(1e30))
    after = [p for layer in net.layers for p in layer.params.values()]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert all(np.isfinite(p).all() for p in after)


def test_training_skips_only_the_images_gradient(rng):
    """loss_and_gradients leaves the first layer's d_x out and every parameter gradient as the
    full backward computes it; Network.backward and the layer on its own still give d_x."""
    net = tutorial_network(rng)
    x = rng.standard_normal((5, 8, 8))
    labels = rng.integers(0, 3, 5)
    net.loss_and_gradients(x, labels)
    skipped = [{k: g.copy() for k, g in layer.grads.items()} for layer in net.layers]
    _, d_probs = net.cross_entropy(net.forward(x), labels)
    d_x = net.backward(d_probs)
    assert d_x.shape == x.shape and np.abs(d_x).sum() > 0
    for layer, grads in zip(net.layers, skipped):
        for name in grads:
            np.testing.assert_allclose(layer.grads[name], grads[name], rtol=1e-9, atol=1e-14)
    conv = net.layers[0]
    assert conv.needs_input_grad  # restored after training: the layer on its own returns d_x
    conv.forward(x)
    np.testing.assert_array_equal(conv.backward(net.layers[1].backward(
        net.layers[2].backward(d_probs))), d_x)
    assert net.backward(d_probs, input_grad=False) is None


@pytest.mark.parametrize("first", [sc.Conv3x3, loops.Conv3x3])
def test_first_layer_is_asked_for_no_input_gradient(rng, first, monkeypatch):
    net = sc.Network([first(2, dtype=np.float64, rng=rng), sc.MaxPool2(),
                      sc.Softmax(3 * 3 * 2, 3, dtype=np.float64, rng=rng)])
    returned = []
    backward = type(net.layers[0]).backward
    monkeypatch.setattr(type(net.layers[0]), "backward",
                        lambda self, d: returned.append(backward(self, d)) or returned[-1])
    net.loss_and_gradients(rng.standard_normal((2, 8, 8)), np.array([0, 2]))
    assert returned == [None]


def test_parameter_free_layers_before_the_first_dense_are_not_stepped(rng, monkeypatch):
    net = sc.Network([sc.Flatten(), sc.Dense(4, 3, dtype=np.float64, rng=rng),
                      sc.Softmax(3, 2, dtype=np.float64, rng=rng)])
    monkeypatch.setattr(net.layers[0], "backward", lambda d: pytest.fail("Flatten was stepped"))
    net.loss_and_gradients(rng.standard_normal((3, 2, 2)), np.array([0, 1, 1]))
    assert net.layers[1].grads["weights"].any()
    assert net.backward(rng.standard_normal((3, 2)), input_grad=False) is None


# ---------------------------------------------------------------------------------- what a learner inspects

@pytest.fixture(params=[1, 2], ids=["1 BLAS thread", "2 BLAS threads"])
def blas_threads(request):
    """The network as a command line would find it, with BLAS on 1 or 2 threads."""
    import threadpoolctl
    from scratchcnn.engine import blas
    with threadpoolctl.threadpool_limits(limits=request.param, user_api="blas"):
        previous, blas._threads_in_force = blas._threads_in_force, request.param
        try:
            yield request.param
        finally:
            blas._threads_in_force = previous


@pytest.mark.parametrize("name", ["seed", "classic", "modern", "mlp"])
def test_after_a_step_every_output_and_cache_is_that_steps(rng, name, blas_threads):
    """``train_step`` runs the whole batch through the network's own layers on this thread: no
    part, no copy, no hidden pass, whatever the thread count."""
    from scratchcnn.models import build_model
    net = build_model(name)
    x = (rng.random((64, 28, 28)) - 0.5).astype(np.float32)
    calls = []
    for layer in net.layers:  # count the layers' own passes (on the class: a copy would miss them)
        layer.forward = (lambda f: lambda x: calls.append(len(x)) or f(x))(layer.forward)
    net.train_step(x, rng.integers(0, 10, 64), sc.SGD(1e-3))
    assert calls == [64] * len(net.layers)
    assert net.outputs[0] is x and len(net.outputs) == len(net.layers) + 1
    assert all(len(out) == 64 for out in net.outputs)
    for layer in net.layers:
        for cache in layer.caches:
            value = getattr(layer, cache)
            if isinstance(value, np.ndarray) and value.ndim and cache == "last_input":
                assert len(value) == 64, (type(layer).__name__, cache)


@pytest.mark.parametrize("name", ["seed", "classic", "modern", "mlp"])
def test_after_predict_the_outputs_are_its_last_chunks(rng, name, blas_threads):
    from scratchcnn.models import build_model
    from scratchcnn.network import EVAL_BATCH
    net = build_model(name)
    x = (rng.random((EVAL_BATCH + 7, 28, 28)) - 0.5).astype(np.float32)
    probs = net.predict_proba(x)
    assert probs.shape == (EVAL_BATCH + 7, 10)
    assert all(len(out) == 7 for out in net.outputs) and net.outputs[0].base is x
    assert net.predict_proba(x[:7]).shape == (7, 10) and len(net.outputs[-1]) == 7
