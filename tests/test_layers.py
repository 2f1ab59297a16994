"""Shapes, the tutorial's worked example, max-pool ties, dtypes and bad input."""
import json

import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn import loops

SOBEL_VERTICAL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)


@pytest.mark.parametrize("conv_cls", [sc.Conv3x3, loops.Conv3x3])
def test_tutorial_sobel_example(conv_cls):
    """The tutorial's 4x4 image convolved with the vertical Sobel filter: 29 at the top-left."""
    image = np.array([[0, 50, 0, 29], [0, 80, 31, 2], [33, 90, 0, 75], [0, 9, 0, 95]], dtype=np.float64)
    conv = conv_cls(1, dtype=np.float64)
    conv.params["filters"][0] = SOBEL_VERTICAL
    out = conv.forward(image[None])
    assert out.shape == (1, 2, 2, 1)
    assert out[0, 0, 0, 0] == 29
    np.testing.assert_array_equal(out[0, :, :, 0], [[29, -192], [-35, -22]])


def test_tutorial_network_shapes(rng):
    """(28, 28) -> (26, 26, 8) -> (13, 13, 8) -> (10,), per image."""
    net = sc.Network([sc.Conv3x3(8, rng=rng), sc.MaxPool2(), sc.Softmax(13 * 13 * 8, 10, rng=rng)])
    probs = net.forward(rng.random((5, 28, 28), dtype=np.float32) - 0.5)
    assert [o.shape[1:] for o in net.outputs] == [(28, 28), (26, 26, 8), (13, 13, 8), (10,)]
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize("k, s, p, size, expected", [
    (3, 1, 0, 28, 26), (3, 1, 1, 28, 28), (4, 1, 0, 6, 3), (3, 2, 1, 7, 4), (5, 2, 2, 28, 14),
])
def test_conv2d_output_size_formula(rng, k, s, p, size, expected):
    """(I - F + 2P) / S + 1."""
    out = sc.Conv2D(2, k, stride=s, padding=p, rng=rng).forward(np.zeros((1, size, size), np.float32))
    assert out.shape == (1, expected, expected, 2)


def test_filter_shapes_follow_the_interface(rng):
    assert sc.Conv3x3(8, rng=rng).params["filters"].shape == (8, 3, 3)
    assert sc.Conv3x3(8, in_channels=4, rng=rng).params["filters"].shape == (8, 3, 3, 4)
    assert "biases" not in sc.Conv3x3(8, rng=rng).params  # the tutorial's conv has no bias
    assert sc.Conv3x3(8, bias=True, rng=rng).params["biases"].shape == (8,)
    soft = sc.Softmax(1352, 10, rng=rng)
    assert soft.params["weights"].shape == (1352, 10) and soft.params["biases"].shape == (10,)
    for layer, x in ((sc.Conv3x3(8, bias=True, rng=rng), rng.random((2, 6, 6), dtype=np.float32)),
                     (soft, rng.random((2, 1352), dtype=np.float32)),
                     (sc.Dense(4, 2, rng=rng), rng.random((2, 4), dtype=np.float32))):
        assert layer.params.keys() == layer.grads.keys() and layer.params, layer
        layer.backward(np.ones_like(layer.forward(x)))  # backward fills one gradient per parameter
        assert {k: g.shape for k, g in layer.grads.items()} == {k: p.shape for k, p in layer.params.items()}
    pool = sc.MaxPool2()  # nothing to learn: no parameters, and backward leaves no gradients
    pool.backward(np.ones_like(pool.forward(rng.random((2, 4, 4, 3)))))
    assert pool.params == {} and pool.grads == {}


@pytest.mark.parametrize("pool_cls", [sc.MaxPool2, loops.MaxPool2])
def test_maxpool_ties_route_to_first_maximum_only(pool_cls):
    x = np.zeros((1, 4, 4, 1))  # four windows, each an exact 4-way tie
    x[0, 2:, 2:, 0] = [[1, 5], [5, 5]]  # bottom-right window: a 3-way tie at 5
    pool = pool_cls()
    pool.forward(x)
    d_x = pool.backward(np.ones((1, 2, 2, 1)))[0, :, :, 0]
    np.testing.assert_array_equal(d_x, [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]])


@pytest.mark.parametrize("pool_cls", [sc.MaxPool2, loops.MaxPool2])
def test_maxpool_worked_example(pool_cls):
    """The 4x4 example of scratchcnn/layers/pool.py's docstring, step by step."""
    x = np.array([[1, 3, 2, 2],
                  [4, 0, 7, 9],
                  [5, 5, 0, 1],
                  [5, 6, 1, 0]], dtype=np.float64).reshape(1, 4, 4, 1)
    pool = pool_cls()
    np.testing.assert_array_equal(pool.forward(x)[0, :, :, 0], [[4, 9], [6, 1]])
    d_x = pool.backward(np.array([[10, 20], [30, 40]], np.float64).reshape(1, 2, 2, 1))
    np.testing.assert_array_equal(d_x[0, :, :, 0], [[0, 0, 0, 0],
                                                    [10, 0, 0, 20],   # 4 at x[1, 0], 9 at x[1, 3]
                                                    [0, 0, 0, 40],    # the 1 = 1 tie goes up
                                                    [0, 30, 0, 0]])   # 6 at x[3, 1]


def test_maxpool_odd_sizes_floor(rng):
    x = rng.standard_normal((2, 5, 7, 3))
    pool = sc.MaxPool2()
    assert pool.forward(x).shape == (2, 2, 3, 3)
    d_x = pool.backward(np.ones((2, 2, 3, 3)))
    assert d_x.shape == x.shape and not d_x[:, 4].any() and not d_x[:, :, 6].any()


def test_maxpool_routes_alike_when_the_batch_shape_changes(rng):
    """The routing patterns kept between steps are remade for a new shape (a last, smaller batch)."""
    pool, twin = sc.MaxPool2(), loops.MaxPool2()
    for shape in [(4, 6, 6, 3), (3, 6, 6, 3), (2, 8, 6, 3), (4, 6, 6, 3)]:
        x = np.round(rng.random(shape) * 3)  # small integers: many ties
        d_out = rng.standard_normal((shape[0], shape[1] // 2, shape[2] // 2, shape[3]))
        pool.forward(x), twin.forward(x)
        np.testing.assert_array_equal(pool.backward(d_out), twin.backward(d_out))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_example_rows_copies_strided_runs_exactly(rng, dtype):
    from scratchcnn.layers.base import example_rows
    x = (rng.random((3, 6, 6, 5)) * 100).astype(dtype)
    for view in (x, x[:, ::2, ::2], x[:, ::2, ::2, 1:4], x.transpose(0, 2, 1, 3), x[:, :, :, ::2]):
        rows = example_rows(view)
        assert rows.shape == (len(view), view[0].size) and rows.flags.c_contiguous
        np.testing.assert_array_equal(rows, view.reshape(len(view), -1))


def test_avgpool_values():
    x = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(sc.AvgPool2().forward(x)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_softmax_is_stable_for_huge_logits(rng):
    soft = sc.Softmax(2, 3, dtype=np.float32, rng=rng)
    soft.params["weights"][:] = [[1000, 0, -1000], [0, 0, 0]]
    probs = soft.forward(np.array([[1.0, 0.0], [-1.0, 0.0]], np.float32))
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs, [[1, 0, 0], [0, 0, 1]], atol=1e-6)


def test_float32_layers_stay_float32(rng):
    net = sc.Network([sc.Conv2D(4, 3, padding="same", rng=rng), sc.ReLU(), sc.AvgPool2(),
                      sc.Conv3x3(4, in_channels=4, rng=rng), sc.MaxPool2(), sc.Flatten(),
                      sc.Dropout(0.2, rng=rng), sc.Dense(16, 6, rng=rng), sc.Softmax(6, 10, rng=rng)])
    x = rng.random((3, 12, 12), dtype=np.float32)
    net.loss_and_gradients(x, np.array([1, 2, 3]))
    assert all(o.dtype == np.float32 for o in net.outputs)
    for layer in net.layers:
        assert all(g.dtype == np.float32 for g in layer.grads.values()), layer


def test_dropout_scales_and_switches_off(rng):
    layer = sc.Dropout(0.25, rng=rng)
    x = np.ones((200, 100), np.float32)
    y = layer.forward(x)
    assert set(np.unique(y)) == {0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    layer.training = False
    assert layer.forward(x) is x


def test_dropout_extra_state_restores_the_masks_to_come(rng):
    """What a checkpoint keeps: a layer restored from it draws the masks the original draws next."""
    x = np.ones((4, 50), np.float32)
    layer = sc.Dropout(0.5, rng=np.random.default_rng(1))
    layer.forward(x)
    state = layer.get_extra_state()
    assert json.loads(json.dumps(state)) == state  # JSON-able, as the Layer interface says
    restored = sc.Dropout(0.5, rng=np.random.default_rng(2))
    restored.set_extra_state(state)
    np.testing.assert_array_equal(restored.forward(x), layer.forward(x))
    with pytest.raises(ValueError, match="Dropout: extra state must have exactly the key 'rng'"):
        restored.set_extra_state({"generator": state["rng"]})
    assert sc.ReLU().get_extra_state() == {}  # layers without extra state say so


# --- bad input: a ValueError naming the layer, the expected and the received shape ---------

@pytest.mark.parametrize("layer, x, words", [
    (sc.Conv3x3(8), np.zeros((28, 28)), ["Conv3x3", "(N, H, W)", "(28, 28)"]),
    (sc.Conv3x3(8, in_channels=3), np.zeros((2, 28, 28)), ["Conv3x3", "(N, H, W, 3)", "(2, 28, 28)"]),
    (sc.Conv3x3(8), np.zeros((2, 28, 28, 2)), ["Conv3x3", "(2, 28, 28, 2)"]),
    (sc.Conv3x3(8), np.zeros((2, 2, 5)), ["Conv3x3", "2x5", "smaller than the 3x3 kernel"]),
    (sc.MaxPool2(), np.zeros((2, 26, 26)), ["MaxPool2", "(N, H, W, C)", "(2, 26, 26)"]),
    (sc.MaxPool2(), np.zeros((2, 1, 26, 8)), ["MaxPool2", "(2, 1, 26, 8)"]),
    (sc.Softmax(1352, 10), np.zeros((2, 26, 26, 8)), ["Softmax", "input_len=1352", "(2, 26, 26, 8)"]),
    (sc.Dense(10, 2), np.zeros((2, 9)), ["Dense", "(N, 10)", "(2, 9)"]),
    (sc.Conv3x3(8), [[1, 2], [3]], ["Conv3x3", "list"]),
    (loops.Conv3x3(8), np.zeros((28, 28)), ["Conv3x3", "(28, 28)"]),
    (loops.MaxPool2(), np.zeros((2, 26, 26)), ["MaxPool2", "(2, 26, 26)"]),
])
def test_bad_input_shapes_are_explained(layer, x, words):
    with pytest.raises(ValueError) as info:
        layer.forward(x)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("labels, words", [
    ([0, 1], ["labels", "(3,)", "(2,)"]),
    ([0, 1, 10], ["labels", "[0, 9]", "10"]),
    ([0, -1, 2], ["labels", "-1"]),
    ([0.5, 1, 2], ["labels", "integer"]),
])
def test_bad_labels_are_explained(rng, labels, words):
    net = sc.Network([sc.Flatten(), sc.Softmax(4, 10, rng=rng)])
    with pytest.raises(ValueError) as info:
        net.loss_and_gradients(np.zeros((3, 2, 2), np.float32), np.array(labels))
    for word in words:
        assert word in str(info.value)


def test_non_finite_input_is_refused(rng):
    net = sc.Network([sc.Flatten(), sc.Softmax(4, 10, rng=rng)])
    x = np.zeros((3, 2, 2), np.float32)
    x[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        net.loss_and_gradients(x, np.array([1, 2, 3]))


@pytest.mark.parametrize("make, words", [
    (lambda: sc.Conv2D(4, 4, padding="same"), ["same", "odd kernel"]),
    (lambda: sc.Conv2D(4, 3, padding="full"), ["padding", "'full'"]),
    (lambda: sc.Conv2D(0, 3), ["num_filters"]),
    (lambda: sc.Conv3x3(8, dtype=np.int32), ["dtype", "float32 or float64"]),
    (lambda: sc.Dropout(1.0), ["Dropout", "[0, 1)"]),
    (lambda: sc.SGD(0), ["learning rate", "> 0"]),
    (lambda: sc.Conv3x3(8, init="xavier"), ["init", "xavier"]),
])
def test_bad_constructor_arguments_are_explained(make, words):
    with pytest.raises(ValueError) as info:
        make()
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("channels, bias", [(1, False), (1, True), (3, True), (3, False)])
def test_conv_reuses_its_window_matrix_only_for_the_same_shape(rng, channels, bias):
    """Forward refills the window matrix of the last call of the same shape; a new batch size
    gets a new one; results always equal a fresh layer's."""
    layer = sc.Conv2D(4, 3, in_channels=channels, bias=bias, dtype=np.float64, rng=rng)
    if bias:
        layer.params["biases"][:] = rng.standard_normal(4)
    fresh = sc.Conv2D(4, 3, in_channels=channels, bias=bias, dtype=np.float64)
    fresh.params = layer.params
    batches = [rng.standard_normal((n, 6, 6, channels)) for n in (3, 3, 2, 3)]
    matrices = []
    for x in batches:
        np.testing.assert_array_equal(layer.forward(x), fresh.forward(x))
        matrices.append(layer.last_columns)
        d_out = rng.standard_normal((len(x), 4, 4, 4))
        np.testing.assert_allclose(layer.backward(d_out), fresh.backward(d_out), rtol=0, atol=1e-12)
        for name in layer.grads:
            np.testing.assert_array_equal(layer.grads[name], fresh.grads[name])
        fresh.last_columns = None  # a fresh window matrix every time
    assert matrices[0] is matrices[1] and matrices[2] is not matrices[1]
    assert matrices[3].shape[0] == 3 * 4 * 4


# ---------------------------------------------------------------------------------- declared caches

def every_layer(rng):
    """One of each layer, vectorized and loop twin, with an input it takes."""
    from scratchcnn import loops
    image, maps, flat = rng.random((3, 8, 8)) - 0.5, rng.random((3, 6, 6, 4)) - 0.5, rng.random((3, 12))
    return [(sc.Conv2D(2, 3, in_channels=4, dtype=np.float64, rng=rng), maps), (sc.Conv3x3(2, dtype=np.float64), image),
            (sc.MaxPool2(), maps), (sc.AvgPool2(), maps), (sc.ReLU(), maps), (sc.Flatten(), maps),
            (sc.Softmax(12, 5, dtype=np.float64), flat), (sc.Dense(12, 5, dtype=np.float64), flat),
            (sc.Dropout(0.5, rng=rng), maps), (sc.BatchNorm(4, dtype=np.float64), maps),
            (loops.Conv3x3(2, dtype=np.float64), image), (loops.MaxPool2(), maps),
            (loops.Softmax(12, 5, dtype=np.float64), flat), (loops.BatchNorm(4, dtype=np.float64), maps)]


def test_every_layer_declares_the_caches_its_passes_keep(rng):
    """What forward and backward keep on a layer is named in ``caches`` (the engine gives each
    thread's copy its own of exactly those), and every name there is kept."""
    for layer, x in every_layer(rng):
        before = set(vars(layer))
        y = layer.forward(x)
        layer.backward(np.ones_like(y))
        kept = set(vars(layer)) - before - {"grads"}
        assert kept <= set(layer.caches), (type(layer).__name__, kept - set(layer.caches))
        assert all(hasattr(layer, name) for name in layer.caches), type(layer).__name__
