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


def assert_split_equals_whole(whole, split, x, labels, grad_rtol=1e-9, grad_atol=1e-15):
    """float64: ``split``'s splitter gives ``whole``'s loss, probabilities and gradients for the
    batch, up to rounding."""
    loss, probs = whole.loss_and_gradients(x, labels)
    splitter, part_size = split._splitter_for(x)
    split_loss, split_probs = splitter.loss_and_gradients(x, labels, part_size)
    assert isinstance(split.splitter, parallel.BatchSplitter)
    assert split_loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(split_probs, probs, rtol=1e-10, atol=1e-14)
    for a, b in zip(whole.layers, split.layers):
        for name in a.params:
            np.testing.assert_allclose(b.grads[name], a.grads[name], rtol=grad_rtol, atol=grad_atol)


def test_part_sizes_cover_the_batch_larger_parts_first():
    assert parallel.part_sizes(64, 2) == [32, 32]
    assert parallel.part_sizes(5, 2) == [3, 2]
    assert parallel.part_sizes(7, 3) == [3, 2, 2]


@pytest.mark.parametrize("n, threads", [(8, 2), (5, 2), (7, 3)])
def test_split_gradients_equal_the_whole_batch(rng, n, threads):
    """float64: the parts' weighted mean gradients are the whole batch's, up to rounding."""
    whole, split = build_model("classic", dtype=np.float64), build_model("classic", dtype=np.float64)
    split.batch_threads = threads
    assert_split_equals_whole(whole, split, *batch(rng, n))


def test_split_training_follows_whole_batch_training(rng):
    """Several Adam steps: the workers see the optimizer's in-place updates of the shared arrays."""
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


class BatchMean(sc.Layer):
    """Not a layer of the package: subtracts the batch's mean, so its output couples the batch
    and it can't run on parts."""

    def forward(self, x):
        return x - x.mean(axis=0)

    def backward(self, d_out):
        return d_out - d_out.mean(axis=0)


def test_the_runtime_thread_count_splits_when_every_layer_can(rng, monkeypatch):
    monkeypatch.setattr(runtime, "_threads_in_force", 2)
    classic, coupled = build_model("classic"), build_model("classic")
    coupled.layers.insert(1, BatchMean())
    for network in (classic, coupled):
        network.train_step(*batch(rng, 8), sc.SGD(1e-3))
    assert classic.splitter is not None
    assert coupled.splitter is None  # the whole batch on one thread
    monkeypatch.setattr(runtime, "_threads_in_force", 1)
    assert build_model("classic")._splitter_for(np.zeros((4, 28, 28), np.float32)) == (None, None)


@pytest.mark.parametrize("name, n, split", [("classic", 8, True), ("classic", 4, False),
                                             ("seed", 128, True), ("seed", 32, False),
                                             ("modern", 64, True), ("mlp", 1024, False)])
def test_the_runtime_thread_count_splits_only_where_it_pays(monkeypatch, name, n, split):
    """Two threads: one part a thread for a convolutional network with parts of at least
    MIN_PART_BYTES, else the whole batch (BLAS's own threads); batch_threads=2 always splits."""
    monkeypatch.setattr(runtime, "_threads_in_force", 2)
    network, x = build_model(name), np.zeros((n, 28, 28), np.float32)
    part_bytes = n // 2 * network.image_bytes(x)
    assert parallel.worth_splitting(network.layers, part_bytes) == split
    splitter, part_size = network._splitter_for(x)
    assert (splitter is not None) == split and part_size is None
    network.batch_threads = 2
    assert network._splitter_for(x)[0] is not None


def test_predicting_uses_the_chunk_runner_only_where_it_pays(rng, monkeypatch):
    monkeypatch.setattr(runtime, "_threads_in_force", 2)
    x = (rng.random((40, 28, 28)) - 0.5).astype(np.float32)
    mlp, classic = build_model("mlp"), build_model("classic")
    for network in (mlp, classic):
        network.predict(x)
    assert mlp.chunk_runner is None and isinstance(classic.chunk_runner, parallel.ChunkRunner)


def test_predicting_judges_each_threads_share_not_the_whole_chunk(monkeypatch):
    """Like a training step, prediction splits only where each thread's share is worth it."""
    monkeypatch.setattr(runtime, "_threads_in_force", 2)
    seed = build_model("seed")
    images = lambda n: np.zeros((n, 28, 28), np.float32)  # noqa: E731
    per_image = seed.image_bytes(images(1))
    n = parallel.MIN_PART_BYTES // per_image + 2  # the whole chunk is worth splitting, each half is not
    assert n * per_image >= parallel.MIN_PART_BYTES > -(-n // 2) * per_image and n <= seed.chunk_size(images(1))
    assert seed.predict_chunking(images(n)) == (seed.chunk_size(images(n)), 1)
    assert seed.predict_chunking(images(2 * n))[1] == 2


def test_layers_that_couple_the_batch_are_refused(rng):
    network = sc.Network([sc.Conv2D(2, 3), BatchMean(), sc.Flatten(), sc.Softmax(26 * 26 * 2, 10)])
    network.batch_threads = 2
    with pytest.raises(ValueError, match="BatchMean.*whole batch.*batch_threads=1"):
        network.train_step(*batch(rng, 4), sc.SGD(1e-3))


@pytest.mark.parametrize("n", [8, 7])
def test_batchnorm_and_dropout_split_as_the_whole_batch(rng, n):
    """float64, modern (BatchNorm after convolutions and a dense layer, Dropout): the parts share
    the batch statistics, the backward sums and the dropout mask, so loss, probabilities,
    gradients, running statistics and the generators end as on one thread."""
    whole, split = build_model("modern", dtype=np.float64), build_model("modern", dtype=np.float64)
    whole.batch_threads, split.batch_threads = 1, 2
    assert_split_equals_whole(whole, split, *batch(rng, n), grad_rtol=1e-8, grad_atol=1e-13)
    for a, b in zip(whole.layers, split.layers):
        if isinstance(a, sc.BatchNorm):
            np.testing.assert_allclose(b.running_mean, a.running_mean, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(b.running_var, a.running_var, rtol=1e-12)
        if isinstance(a, sc.Dropout):
            assert a.rng.bit_generator.state == b.rng.bit_generator.state


def test_split_modern_training_follows_and_repeats(rng):
    """Adam steps of modern on two threads: close to one thread's, and bit-identical run to run."""
    data = [batch(rng, 6) for _ in range(3)]
    runs = {}
    for threads, run in ((1, 0), (2, 0), (2, 1)):
        network, optimizer = build_model("modern", dtype=np.float64), sc.Adam(1e-3)
        network.batch_threads = threads
        losses = [network.train_step(x, labels, optimizer)[0] for x, labels in data]
        runs[threads, run] = losses, parameters(network)
    assert runs[2, 0][0] == runs[2, 1][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs[2, 0][1], runs[2, 1][1]))
    np.testing.assert_allclose(runs[2, 0][0], runs[1, 0][0], rtol=1e-10)
    for a, b in zip(runs[1, 0][1], runs[2, 0][1]):
        np.testing.assert_allclose(b, a, rtol=1e-8, atol=1e-9)  # the dense bias before BatchNorm: noise


def test_a_failing_part_does_not_leave_its_peers_waiting(rng):
    """The second part fails after the forward pass's exchanges; the first waits at a
    BatchNorm's backward exchange and must be released, and the real error reported."""
    network = build_model("modern")
    network.batch_threads = 2
    x, labels = batch(rng, 4)
    labels[-1] = 10
    with pytest.raises(ValueError, match="label"):
        network.train_step(x.astype(np.float32), labels, sc.SGD(1e-3))
    labels[-1] = 3  # and the next step runs
    network.train_step(x.astype(np.float32), labels, sc.SGD(1e-3))


def test_new_layers_get_new_workers(rng):
    network = build_model("classic", dtype=np.float64)
    network.batch_threads = 2
    network.train_step(*batch(rng, 4), sc.SGD(1e-3))
    first = network.splitter
    network.train_step(*batch(rng, 4), sc.SGD(1e-3))
    assert network.splitter is first  # kept (with its buffers) while the layers are the same
    network.layers[-1] = sc.Softmax(5 * 5 * 64, 10, dtype=np.float64)
    network.train_step(*batch(rng, 4), sc.SGD(1e-3))
    assert network.splitter is not first
    assert network.splitter.workers[0].layers[-1].params is network.layers[-1].params


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
        assert twin.splitter.workers[0].layers[0].params is twin.layers[0].params


# ----------------------------------------------------------------------------------------------
# Predicting on several threads (parallel.ChunkRunner) and in cache-sized chunks.

def chunk_by_chunk(network, x, size):
    """What predict_proba must equal: forward of each chunk, one after the other, one BLAS thread."""
    with runtime.threadpoolctl.threadpool_limits(1, user_api="blas"), network.evaluating():
        return np.concatenate([network.forward(x[i:i + size]) for i in range(0, len(x), size)])


@pytest.mark.parametrize("name", ["seed", "classic", "modern", "mlp"])
def test_predicting_on_two_threads_equals_chunk_by_chunk(rng, name):
    """Bit-identical for every model, BatchNorm and Dropout included (evaluation mode)."""
    network = build_model(name)
    x = (rng.random((23, 28, 28)) - 0.5).astype(np.float32)
    network.batch_threads = 2
    probs = network.predict_proba(x, batch_size=4)
    assert isinstance(network.chunk_runner, parallel.ChunkRunner)
    np.testing.assert_array_equal(probs, chunk_by_chunk(network, x, 4))
    assert all(layer.training for layer in network.layers)  # modes restored


def test_chunks_are_shared_between_the_threads_when_few(rng):
    """Fewer images than a chunk: each thread still gets its share."""
    network = build_model("mlp", dtype=np.float64)
    network.batch_threads = 2
    x = rng.random((7, 28, 28)) - 0.5
    calls = []
    probs = network.predict_proba(x)
    network.chunk_runner.forward = lambda chunks: calls.append([len(c) for c in chunks]) or [
        network.forward(c) for c in chunks]
    network.predict_proba(x)
    assert calls == [[4, 3]]
    with network.evaluating():
        np.testing.assert_allclose(probs, network.forward(x), rtol=1e-12)


def test_the_threads_see_the_latest_weights_and_running_statistics(rng):
    """Replicas are made afresh at each call: training in between (new BatchNorm running
    statistics, updated weights) shows in the next prediction."""
    network = build_model("modern", dtype=np.float64)
    network.batch_threads = 2
    x = rng.random((9, 28, 28)) - 0.5
    before = network.predict_proba(x, batch_size=3)
    network.batch_threads = 1  # BatchNorm trains on the whole batch
    network.train_step(*batch(rng, 8), sc.Adam(1e-2))
    network.batch_threads = 2
    after = network.predict_proba(x, batch_size=3)
    assert not np.allclose(after, before)
    np.testing.assert_array_equal(after, chunk_by_chunk(network, x, 3))


def test_an_error_in_a_chunk_reaches_the_caller(rng, monkeypatch):
    network = build_model("classic")
    network.batch_threads = 2
    x = (rng.random((8, 28, 28)) - 0.5).astype(np.float32)
    network.predict_proba(x, batch_size=2)
    monkeypatch.setattr(sc.Softmax, "forward", lambda self, x: 1 / 0 if len(x) else None)
    with pytest.raises(ZeroDivisionError):
        network.predict_proba(x, batch_size=2)


def test_prediction_with_replaced_methods_runs_on_one_thread(rng):
    network, calls = build_model("classic"), []
    network.batch_threads = 2
    conv = network.layers[2]
    original = conv.forward
    conv.forward = lambda x: calls.append(len(x)) or original(x)
    network.predict_proba((rng.random((6, 28, 28)) - 0.5).astype(np.float32), batch_size=2)
    assert calls[-3:] == [2, 2, 2] and network.chunk_runner is None


def test_predict_chunking_is_the_plan_predict_follows(rng):
    """What ``predict_chunking`` says (a benchmark reads it) is how ``predict_proba`` cuts."""
    network = build_model("mlp", dtype=np.float64)
    x = rng.random((10, 28, 28)) - 0.5
    network.batch_threads = 2
    assert network.predict_chunking(x, 8) == (5, 2)  # every thread gets a share
    network.batch_threads = 1
    assert network.predict_chunking(x, 4) == (4, 1)
    assert network.predict_chunking(x) == (network.chunk_size(x), 1)
    sizes = []
    network.forward = lambda chunk: sizes.append(len(chunk)) or np.zeros((len(chunk), 10))
    network.predict_proba(x, 4)
    assert sizes == [4, 4, 2]


@pytest.mark.parametrize("name", ["seed", "classic", "modern", "mlp"])
def test_chunk_size_keeps_the_largest_array_within_chunk_bytes(name):
    from scratchcnn.network import CHUNK_BYTES, EVAL_BATCH
    network = build_model(name)
    x = np.zeros((3, 28, 28), np.float32)
    size = network.chunk_size(x)
    assert 1 <= size <= EVAL_BATCH
    network.predict_proba(np.zeros((size, 28, 28), np.float32), batch_size=size)  # one chunk
    largest = max(a.nbytes for layer in network.layers for a in vars(layer).values()
                  if isinstance(a, np.ndarray))
    assert largest <= CHUNK_BYTES or size == 1
    if size < EVAL_BATCH:  # and one image more would not fit
        assert largest * (size + 1) / size > CHUNK_BYTES


def test_predicting_nothing_is_refused():
    with pytest.raises(ValueError, match="nothing to predict.*shape \\(0, 28, 28\\)"):
        build_model("seed").predict(np.zeros((0, 28, 28), np.float32))


# ----------------------------------------------------------------------------------------------
# Cache-sized parts in training (no layer sharing the batch): each thread runs several.

@pytest.mark.parametrize("threads", [1, 2])
def test_training_in_cache_sized_parts_equals_the_whole_batch(rng, monkeypatch, threads):
    """One thread: parts of chunk_size, one after another. Two threads: one part a thread, as
    Network chooses, and several (the splitter given a part size), as the splitter can."""
    monkeypatch.setattr(runtime, "_threads_in_force", threads)
    whole, split = build_model("classic", dtype=np.float64), build_model("classic", dtype=np.float64)
    whole.batch_threads = 1
    x, labels = batch(rng, 23)
    assert split.chunk_size(x) < 23 / 2
    assert_split_equals_whole(whole, split, x, labels)
    if threads == 2:
        splitter, _ = split._splitter_for(x)
        loss, probs = splitter.loss_and_gradients(x, labels, part_size=split.chunk_size(x))
        assert loss == pytest.approx(whole.loss_and_gradients(x, labels)[0], rel=1e-12)
        for a, b in zip(whole.layers, split.layers):
            for name in a.params:
                np.testing.assert_allclose(b.grads[name], a.grads[name], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("threads", [1, 2])
def test_training_in_parts_repeats_bit_for_bit(rng, monkeypatch, threads):
    monkeypatch.setattr(runtime, "_threads_in_force", threads)
    data = [(x.astype(np.float32), labels) for x, labels in (batch(rng, 40) for _ in range(2))]
    runs = []
    for _ in range(2):
        network, optimizer = build_model("classic"), sc.Adam(1e-3)
        losses = [network.train_step(x, labels, optimizer)[0] for x, labels in data]
        runs.append((losses, parameters(network)))
    assert network.splitter is not None  # in parts: of chunk_size on one thread, halves on two
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_layers_sharing_the_batch_run_one_part_a_thread(rng, monkeypatch):
    """BatchNorm's parts must all run at once: one thread runs the whole batch, two run halves."""
    monkeypatch.setattr(runtime, "_threads_in_force", 1)
    network = build_model("modern")
    x, labels = batch(rng, 40)
    assert network._splitter_for(x) == (None, None)
    monkeypatch.setattr(runtime, "_threads_in_force", 2)
    calls = []
    conv = type(network.layers[0])
    original = conv.forward
    monkeypatch.setattr(conv, "forward", lambda self, x: calls.append(len(x)) or original(self, x))
    network.train_step(x.astype(np.float32), labels, sc.SGD(1e-3))
    assert sorted(calls[-8:]) == [20] * 8  # the four convolutions of each half


def test_predicting_after_the_layers_change_uses_the_new_layers(rng):
    network = build_model("classic", dtype=np.float64)
    network.batch_threads = 2
    x = rng.random((6, 28, 28)) - 0.5
    network.predict_proba(x, batch_size=2)
    network.layers[-1:] = [sc.Flatten(), sc.Dense(5 * 5 * 64, 3, dtype=np.float64, rng=rng)]  # one more layer
    np.testing.assert_array_equal(network.predict_proba(x, batch_size=2), chunk_by_chunk(network, x, 2))
    assert network.predict_proba(x, batch_size=2).shape == (6, 3)


def test_one_blas_thread_restores_the_count_when_the_last_user_leaves():
    """Two users whose stays overlap (a request predicting while a job trains): the first to leave
    must not restore the count under the other, and the last must restore it."""
    import threadpoolctl

    def blas_threads():
        return {pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"}

    if not blas_threads():
        pytest.skip("threadpoolctl controls no BLAS library in this process")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        first, second = parallel.one_blas_thread(), parallel.one_blas_thread()
        first.__enter__()
        second.__enter__()
        assert blas_threads() == {1}
        first.__exit__(None, None, None)
        assert blas_threads() == {1}
        second.__exit__(None, None, None)
        assert blas_threads() == {2}


@pytest.mark.parametrize("threads", [1, 2])
def test_errors_name_the_callers_batch_not_a_part(rng, monkeypatch, threads):
    """Labels that don't match the batch, and images of the wrong shape, are reported with the
    sizes the caller passed, not those of a part or of the one-image probe."""
    monkeypatch.setattr(runtime, "_threads_in_force", threads)
    network = build_model("classic")
    x = np.zeros((40, 28, 28), np.float32)
    with pytest.raises(ValueError, match=r"expected shape \(40,\) to match the batch of 40, got shape \(39,\)"):
        network.train_step(x, np.zeros(39, int), sc.SGD(1e-3))
    with pytest.raises(ValueError, match=r"Conv2D: expected input .* first image of x, shape \(3, 28\)"):
        network.predict(np.zeros((3, 28), np.float32))
