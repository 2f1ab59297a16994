"""The engine (scratchcnn.engine): the fast path gives the plain path's numbers, however it cuts a
batch and on any thread count, repeats itself bit for bit, refuses what it can't split, and
leaves the plain network plain."""
import copy
import pickle
import threading
import time

import numpy as np
import pytest
import threadpoolctl

import scratchcnn as sc
from scratchcnn.engine import FastEngine, PlainEngine, blas, one_blas_thread
from scratchcnn.engine.chunks import CHUNK_BYTES, chunk_size
from scratchcnn.engine.split import BatchSplitter, part_sizes
from scratchcnn.engine.sync import Peers
from scratchcnn.models import MODEL_NAMES, build_model
from scratchcnn.network import EVAL_BATCH

from helpers import images_and_labels, parameters


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def threads(request, monkeypatch):
    """The thread count ``engine.configure`` set, as the command lines do."""
    monkeypatch.setattr(blas, "_threads_in_force", request.param)
    return request.param


def train_both(name, data, engine, dtype=np.float64):
    """The same network trained by the plain path and by ``engine`` on ``data``: their losses,
    counts correct and parameters, and the two networks."""
    plain, fast = build_model(name, dtype), build_model(name, dtype)
    opt_plain, opt_fast = sc.Adam(1e-3), sc.Adam(1e-3)
    results = [], []
    for x, labels in data:
        results[0].append(plain.train_step(x, labels, opt_plain))
        results[1].append(engine.train_step(fast, x, labels, opt_fast))
    return results, plain, fast


# ---------------------------------------------------------------------------------- the same numbers

@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fast_training_and_prediction_equal_the_plain_path(rng, name, threads):
    """float64, every model, as the command lines run it (the configured thread count) and with a
    part a thread forced: the losses, counts, parameters and predictions agree to 1e-10."""
    data = [images_and_labels(rng, n) for n in (40, 7)]
    for engine in (FastEngine(), FastEngine(threads=threads)):
        (plain_steps, fast_steps), plain, fast = train_both(name, data, engine)
        for (loss, correct), (fast_loss, fast_correct) in zip(plain_steps, fast_steps):
            assert fast_loss == pytest.approx(loss, rel=1e-10) and fast_correct == correct
        for a, b in zip(parameters(plain), parameters(fast)):
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10)
        x = data[0][0]
        np.testing.assert_allclose(engine.predict_proba(fast, x), plain.predict_proba(x), rtol=1e-10, atol=1e-12)
        assert engine.evaluate(fast, *data[1]) == pytest.approx(plain.evaluate(*data[1]), rel=1e-10)


@pytest.mark.parametrize("name", ["classic", "modern"])
@pytest.mark.parametrize("n, split_threads, part_size", [(23, 1, 5), (23, 2, None), (23, 2, 4), (7, 3, None),
                                                          (5, 2, 1)])
def test_however_a_batch_is_cut_the_gradients_are_the_whole_batchs(rng, name, n, split_threads, part_size):
    """float64: parts of any size on any number of threads give the whole batch's loss,
    probabilities and gradients (BatchNorm's and Dropout's parts share the whole batch)."""
    whole, split = build_model(name, np.float64), build_model(name, np.float64)
    x, labels = images_and_labels(rng, n)
    loss, probs = whole.loss_and_gradients(x, labels)
    split_loss, split_probs = BatchSplitter(split, split_threads).loss_and_gradients(x, labels, part_size)
    assert split_loss == pytest.approx(loss, rel=1e-10)
    np.testing.assert_allclose(split_probs, probs, rtol=1e-10, atol=1e-14)
    for a, b in zip(whole.layers, split.layers):
        for key in a.params:
            np.testing.assert_allclose(b.grads[key], a.grads[key], rtol=1e-8, atol=1e-12)
        if isinstance(a, sc.BatchNorm):
            np.testing.assert_allclose(b.running_mean, a.running_mean, rtol=1e-10, atol=1e-15)
            np.testing.assert_allclose(b.running_var, a.running_var, rtol=1e-10)
        if isinstance(a, sc.Dropout):
            assert a.rng.bit_generator.state == b.rng.bit_generator.state


@pytest.mark.parametrize("name", ["classic", "modern"])
def test_the_same_seed_and_threads_give_bit_identical_training(rng, name, threads):
    data = [images_and_labels(rng, 24, np.float32) for _ in range(2)]
    runs = [train_both(name, data, FastEngine(), np.float32)[2] for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(parameters(runs[0]), parameters(runs[1])))


def test_part_sizes_cover_the_batch_larger_parts_first():
    assert part_sizes(64, 2) == [32, 32]
    assert part_sizes(5, 2) == [3, 2]
    assert part_sizes(7, 3) == [3, 2, 2]


# ---------------------------------------------------------------------------------- prediction

def chunk_by_chunk(network, x, size):
    """What a threaded prediction must equal: the engine's prediction of each chunk, one after the
    other, on one BLAS thread (folded BatchNorm included)."""
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        return FastEngine(threads=1).predict_proba(network, x, size)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_predicting_on_two_threads_equals_chunk_by_chunk(rng, name):
    """Bit-identical for every model, BatchNorm and Dropout included (evaluation mode)."""
    network, engine = build_model(name), FastEngine(threads=2)
    x = images_and_labels(rng, 23, np.float32)[0]
    assert engine.predict_plan(network, x, 4) == (4, 2)
    np.testing.assert_array_equal(engine.predict_proba(network, x, 4), chunk_by_chunk(network, x, 4))
    assert all(layer.training for layer in network.layers)  # modes restored


def test_the_threads_see_the_latest_weights_and_running_statistics(rng):
    """Training between two predictions (new weights, new BatchNorm running statistics) shows in
    the next one."""
    network, engine = build_model("modern", np.float64), FastEngine(threads=2)
    x = images_and_labels(rng, 9)[0]
    before = engine.predict_proba(network, x, 3)
    network.train_step(*images_and_labels(rng, 8), sc.Adam(1e-2))
    after = engine.predict_proba(network, x, 3)
    assert not np.allclose(after, before)
    np.testing.assert_array_equal(after, chunk_by_chunk(network, x, 3))


def test_predict_plan_is_how_predict_cuts(rng):
    """What ``predict_plan`` says (a benchmark reads it) is how ``predict_proba`` cuts."""
    network = build_model("mlp", np.float64)
    x = images_and_labels(rng, 10)[0]
    assert FastEngine(threads=2).predict_plan(network, x, 8) == (5, 2)  # every thread gets a share
    engine = FastEngine(threads=1)
    assert engine.predict_plan(network, x, 4) == (4, 1)
    sizes = []
    network.forward = lambda chunk: sizes.append(len(chunk)) or np.zeros((len(chunk), 10))
    engine.predict_proba(network, x, 4)
    assert sizes == [4, 4, 2]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_chunk_keeps_the_largest_array_within_chunk_bytes(name):
    network, engine = build_model(name), FastEngine(threads=1)
    size = chunk_size(engine.bytes_per_image(network, np.zeros((3, 28, 28), np.float32)))
    assert 1 <= size <= EVAL_BATCH
    network.predict_proba(np.zeros((size, 28, 28), np.float32), batch_size=size)  # one chunk
    largest = max(getattr(layer, cache).nbytes for layer in network.layers for cache in layer.caches
                  if isinstance(getattr(layer, cache, None), np.ndarray))
    assert largest <= CHUNK_BYTES or size == 1


# ---------------------------------------------------------------------------------- the network stays plain

def test_the_network_is_left_without_stale_caches(rng, threads):
    """After a step run in parts, or whole through the engine's fused steps, nothing on the network
    claims to be that step's: its outputs and caches are emptied; after a step run whole through
    the network's own methods (seed fuses nothing), they are the whole batch's."""
    network = build_model("classic")
    for engine in (FastEngine(threads=2), FastEngine(threads=1)):
        network.forward(images_and_labels(rng, 3, np.float32)[0])  # caches of an older call
        engine.train_step(network, *images_and_labels(rng, 64, np.float32), sc.SGD(1e-3))
        assert network.outputs == [] and network.layers[0].last_input is None
    seed = build_model("seed")
    FastEngine(threads=1).train_step(seed, *images_and_labels(rng, 64, np.float32), sc.SGD(1e-3))
    assert seed.outputs[0].shape == (64, 28, 28) and seed.layers[0].last_input.shape == (64, 28, 28)


def test_probing_the_chunk_size_leaves_the_network_as_it_was(rng):
    network, engine = build_model("seed"), FastEngine(threads=1)
    x = images_and_labels(rng, 5, np.float32)[0]
    network.forward(x)
    outputs = list(network.outputs)
    engine.bytes_per_image(network, images_and_labels(rng, 3, np.float32)[0])
    assert all(a is b for a, b in zip(network.outputs, outputs)) and network.layers[0].last_input is x


def test_a_copied_network_trains_with_its_own_replicas(rng):
    """Networks are deep-copied (snapshots, the page's runners) and pickled; the engine keeps
    nothing on them, and gives a copy replicas of its own parameters."""
    network, engine = build_model("classic"), FastEngine(threads=2)
    engine.train_step(network, *images_and_labels(rng, 8, np.float32), sc.SGD(1e-3))
    for twin in (copy.deepcopy(network), pickle.loads(pickle.dumps(network))):
        before = parameters(network)
        engine.train_step(twin, *images_and_labels(rng, 8, np.float32), sc.SGD(1e-3))
        plan = engine.split_plan(twin, np.zeros((8, 28, 28), np.float32))
        assert plan[0].workers[0].layers[0].params is twin.layers[0].params
        assert all(np.array_equal(a, b) for a, b in zip(before, parameters(network)))


def test_new_layers_get_new_replicas(rng):
    network, engine = build_model("classic", np.float64), FastEngine(threads=2)
    x = np.zeros((4, 28, 28))
    engine.train_step(network, *images_and_labels(rng, 4), sc.SGD(1e-3))
    network.layers[-1] = sc.Softmax(5 * 5 * 64, 10, dtype=np.float64)
    engine.train_step(network, *images_and_labels(rng, 4), sc.SGD(1e-3))
    assert engine.split_plan(network, x)[0].workers[0].layers[-1].params is network.layers[-1].params


def test_plain_engine_is_the_networks_own_methods(rng):
    network, x = build_model("seed", np.float64), images_and_labels(rng, 6)
    loss, correct = PlainEngine().train_step(network, *x, sc.SGD(1e-3))
    assert network.outputs[0].shape == (6, 28, 28)
    assert PlainEngine().predict(network, x[0]).shape == (6,)


# ---------------------------------------------------------------------------------- what can't be split

class BatchMean(sc.Layer):
    """Not a layer of the engine's: subtracts the batch's mean, so its output couples the batch
    and it can't run on parts."""

    def forward(self, x):
        return x - x.mean(axis=0)

    def backward(self, d_out):
        return d_out - d_out.mean(axis=0)


def test_layers_the_engine_does_not_know_run_whole_or_are_refused(rng, threads):
    network = sc.Network([sc.Conv2D(2, 3), BatchMean(), sc.Flatten(), sc.Softmax(26 * 26 * 2, 10)])
    x, labels = images_and_labels(rng, 40)
    assert FastEngine().split_plan(network, x) is None  # the configured count: the whole batch
    FastEngine().train_step(network, x, labels, sc.SGD(1e-3))
    with pytest.raises(ValueError, match="BatchMean.*engine's layers.*plain path"):
        FastEngine(threads=2).train_step(network, x, labels, sc.SGD(1e-3))


def test_loop_twins_are_never_split(rng):
    """A loop twin subclasses a vectorized layer but is not one of the engine's layers."""
    network = build_model("seed", np.float64, loop=True)
    assert FastEngine().split_plan(network, np.zeros((40, 28, 28))) is None


def test_layers_with_methods_replaced_on_the_instance_run_whole(rng, threads):
    """A profiler's timers wrap the original layer's methods: copies would call the original's."""
    network, calls = build_model("classic"), []
    conv = network.layers[2]
    original = conv.forward
    conv.forward = lambda x: calls.append(len(x)) or original(x)
    FastEngine().train_step(network, *images_and_labels(rng, 64, np.float32), sc.SGD(1e-3))
    assert calls == [64]  # the whole batch, through the wrapped method
    with pytest.raises(ValueError, match="replaced on the instance"):
        FastEngine(threads=2).train_step(network, *images_and_labels(rng, 4), sc.SGD(1e-3))
    FastEngine(threads=2).predict_proba(network, images_and_labels(rng, 6, np.float32)[0], 2)
    assert calls[-3:] == [2, 2, 2]


def test_a_failing_part_does_not_leave_its_peers_waiting(rng):
    """The second part fails after the forward pass's exchanges; the first waits at a
    BatchNorm's backward exchange and must be released, and the real error reported."""
    network, engine = build_model("modern"), FastEngine(threads=2)
    x, labels = images_and_labels(rng, 4, np.float32)
    labels[-1] = 10
    with pytest.raises(ValueError, match="label"):
        engine.train_step(network, x, labels, sc.SGD(1e-3))
    labels[-1] = 3  # and the next step runs
    engine.train_step(network, x, labels, sc.SGD(1e-3))


def test_an_error_in_a_chunk_reaches_the_caller(rng, monkeypatch):
    network, engine = build_model("classic"), FastEngine(threads=2)
    x = images_and_labels(rng, 8, np.float32)[0]
    engine.predict_proba(network, x, 2)
    monkeypatch.setattr(sc.Softmax, "forward", lambda self, x: 1 / 0 if len(x) else None)
    with pytest.raises(ZeroDivisionError):
        engine.predict_proba(network, x, 2)


def test_errors_name_the_callers_batch_not_a_part(threads):
    """Labels that don't match the batch, and images of the wrong shape, are reported with the
    sizes the caller passed, not those of a part or of the one-image probe."""
    network, engine = build_model("classic"), FastEngine()
    x = np.zeros((40, 28, 28), np.float32)
    with pytest.raises(ValueError, match=r"expected shape \(40,\) to match the batch of 40, got shape \(39,\)"):
        engine.train_step(network, x, np.zeros(39, int), sc.SGD(1e-3))
    with pytest.raises(ValueError, match=r"Conv2D: expected input .* first image of x, shape \(3, 28\)"):
        engine.predict(network, np.zeros((3, 28), np.float32))
    with pytest.raises(ValueError, match="nothing to predict.*shape \\(0, 28, 28\\)"):
        engine.predict(network, np.zeros((0, 28, 28), np.float32))


def test_a_bad_thread_count_is_refused():
    with pytest.raises(ValueError, match="threads must be None or an integer >= 1, got 0"):
        FastEngine(threads=0)


def blas_pool_threads():
    """The thread counts of the BLAS libraries threadpoolctl finds in this process."""
    return {pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"}


def test_one_blas_thread_restores_the_count_when_the_last_user_leaves():
    """Two users whose stays overlap (a request predicting while a job trains): the first to leave
    must not restore the count under the other, and the last must restore it."""
    blas_threads = blas_pool_threads
    if not blas_threads():
        pytest.skip("threadpoolctl controls no BLAS library in this process")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        first, second = one_blas_thread(), one_blas_thread()
        first.__enter__()
        second.__enter__()
        assert blas_threads() == {1}
        first.__exit__(None, None, None)
        assert blas_threads() == {1}
        second.__exit__(None, None, None)
        assert blas_threads() == {2}


def test_on_one_thread_fused_networks_run_whole_and_others_in_parts(monkeypatch):
    """A fused convolution fills its window matrix in cache-sized chunks itself; a network the
    engine doesn't fuse (seed) is cut in cache-sized parts instead."""
    monkeypatch.setattr(blas, "_threads_in_force", 1)
    x = np.zeros((256, 28, 28), np.float32)
    assert FastEngine().split_plan(build_model("classic"), x) is None
    splitter, part_size = FastEngine().split_plan(build_model("seed"), x)
    assert splitter.threads == 1 and part_size < len(x)


def test_peers_hand_every_part_every_value_of_each_exchange():
    """Parts that run ahead must not overwrite values a slower part hasn't read yet."""
    sizes, rounds = [3, 2, 2], 300
    all_peers, seen = Peers.for_parts(sizes), [[] for _ in sizes]

    def part(i):
        jitter = np.random.default_rng(i)
        for r in range(rounds):
            if jitter.random() < 0.1:
                time.sleep(jitter.random() * 1e-4)  # one part late now and then
            seen[i].append(all_peers[i]._exchange((r, i)))

    threads = [threading.Thread(target=part, args=(i,)) for i in range(len(sizes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = [[(r, i) for i in range(len(sizes))] for r in range(rounds)]
    assert all(values == expected for values in seen)


def test_one_blas_thread_holds_when_entered_from_another_thread():
    """A page job trains on a worker thread: its halves must run on one BLAS thread each too,
    while another thread set the count (recent threadpoolctl ignores the others unless told)."""
    if not blas_pool_threads():
        pytest.skip("threadpoolctl controls no BLAS library in this process")
    seen = []

    def job():
        with one_blas_thread():
            seen.append(blas_pool_threads())
        seen.append(blas_pool_threads())

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):  # set on the main thread
        worker = threading.Thread(target=job)
        worker.start()
        worker.join()
        assert seen == [{1}, {2}]
