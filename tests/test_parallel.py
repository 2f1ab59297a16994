"""Training on several threads (scratchcnn.parallel): parts of a batch at once, the same gradients
as the whole batch, bit-identical run to run, and refused where a layer couples the batch."""
import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn import parallel, runtime
from scratchcnn.models import build_model


def batch(rng, n):
    return rng.random((n, 28, 28)) - 0.5, rng.integers(0, 10, n)


def parameters(network):
    return [p.copy() for layer in network.layers for p in layer.params.values()]


def test_part_sizes_cover_the_batch_larger_parts_first():
    assert parallel.part_sizes(64, 2) == [32, 32]
    assert parallel.part_sizes(5, 2) == [3, 2]
    assert parallel.part_sizes(7, 3) == [3, 2, 2]


@pytest.mark.parametrize("n, threads", [(8, 2), (5, 2), (7, 3)])
def test_split_gradients_equal_the_whole_batch(rng, n, threads):
    """float64: the parts' weighted mean gradients are the whole batch's, up to rounding."""
    whole, split = build_model("classic", dtype=np.float64), build_model("classic", dtype=np.float64)
    split.batch_threads = threads
    x, labels = batch(rng, n)
    loss, probs = whole.loss_and_gradients(x, labels)
    split_loss, split_probs = split._batch_runner().loss_and_gradients(x, labels)
    assert isinstance(split.splitter, parallel.BatchSplitter)
    assert split_loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(split_probs, probs, rtol=1e-10, atol=1e-14)
    for a, b in zip(whole.layers, split.layers):
        for name in a.params:
            np.testing.assert_allclose(b.grads[name], a.grads[name], rtol=1e-9, atol=1e-15)


def test_split_training_follows_whole_batch_training(rng):
    """Several Adam steps: the halves see the optimizer's in-place updates of the shared arrays."""
    whole, split = build_model("classic", dtype=np.float64), build_model("classic", dtype=np.float64)
    split.batch_threads = 2
    opt_whole, opt_split = sc.Adam(1e-3), sc.Adam(1e-3)
    for _ in range(3):
        x, labels = batch(rng, 6)
        loss, correct = whole.train_step(x, labels, opt_whole)
        split_loss, split_correct = split.train_step(x, labels, opt_split)
        assert split_loss == pytest.approx(loss, rel=1e-10) and split_correct == correct
    for a, b in zip(parameters(whole), parameters(split)):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)


def test_same_seed_and_threads_give_bit_identical_training(rng):
    data = [batch(rng, 16) for _ in range(3)]
    runs = []
    for _ in range(2):
        network, optimizer = build_model("classic"), sc.Adam(1e-3)
        network.batch_threads = 2
        losses = [network.train_step(x.astype(np.float32), labels, optimizer)[0] for x, labels in data]
        runs.append((losses, parameters(network)))
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_the_runtime_thread_count_splits_when_every_layer_can(rng, monkeypatch):
    monkeypatch.setattr(runtime, "_threads_in_force", 2)
    classic, mlp = build_model("classic"), build_model("mlp")
    for network in (classic, mlp):
        network.train_step(*batch(rng, 4), sc.SGD(1e-3))
    assert classic.splitter is not None
    assert mlp.splitter is None  # Dropout: the whole batch on one thread, as before
    monkeypatch.setattr(runtime, "_threads_in_force", 1)
    assert build_model("classic")._batch_runner().__class__ is sc.Network


@pytest.mark.parametrize("coupling", [lambda: sc.BatchNorm(2),
                                      lambda: sc.Dropout(0.5, rng=np.random.default_rng(0))])
def test_layers_that_couple_the_batch_are_refused(rng, coupling):
    network = sc.Network([sc.Conv2D(2, 3), coupling(), sc.Flatten(), sc.Softmax(26 * 26 * 2, 10)])
    network.batch_threads = 2
    with pytest.raises(ValueError, match=type(coupling()).__name__ + ".*batch_threads=1"):
        network.train_step(*batch(rng, 4), sc.SGD(1e-3))


def test_new_layers_get_new_halves(rng):
    network = build_model("classic", dtype=np.float64)
    network.batch_threads = 2
    network.train_step(*batch(rng, 4), sc.SGD(1e-3))
    first = network.splitter
    network.train_step(*batch(rng, 4), sc.SGD(1e-3))
    assert network.splitter is first  # kept (with its buffers) while the layers are the same
    network.layers[-1] = sc.Softmax(5 * 5 * 64, 10, dtype=np.float64)
    network.train_step(*batch(rng, 4), sc.SGD(1e-3))
    assert network.splitter is not first
    assert network.splitter.halves[0].layers[-1].params is network.layers[-1].params


def test_an_error_in_a_part_reaches_the_caller(rng):
    network = build_model("classic")
    network.batch_threads = 2
    x, labels = batch(rng, 4)
    labels[-1] = 10  # in the second part, run by the worker thread
    with pytest.raises(ValueError, match="label"):
        network.train_step(x, labels, sc.SGD(1e-3))


def test_layers_with_methods_replaced_on_the_instance_run_whole(rng, monkeypatch):
    """A profiler's timers wrap the original layer's methods: copies would call the original's."""
    monkeypatch.setattr(runtime, "_threads_in_force", 2)
    network, calls = build_model("classic"), []
    network.train_step(*batch(rng, 4), sc.SGD(1e-3))  # split, before the timers
    conv = network.layers[2]
    original = conv.forward
    conv.forward = lambda x: calls.append(len(x)) or original(x)
    network.train_step(*batch(rng, 4), sc.SGD(1e-3))
    assert calls == [4]  # the whole batch, through the wrapped method
    network.batch_threads = 2
    with pytest.raises(ValueError, match="replaced on the instance"):
        network.train_step(*batch(rng, 4), sc.SGD(1e-3))


def test_a_copied_network_makes_its_own_splitter(rng):
    """Networks are deep-copied (snapshots, the page's runners); threads can't be."""
    import copy
    import pickle
    network = build_model("classic")
    network.batch_threads = 2
    network.train_step(*batch(rng, 4), sc.SGD(1e-3))
    for twin in (copy.deepcopy(network), pickle.loads(pickle.dumps(network))):
        assert twin.splitter is None
        twin.train_step(*batch(rng, 4), sc.SGD(1e-3))
        assert twin.splitter.halves[0].layers[0].params is twin.layers[0].params
