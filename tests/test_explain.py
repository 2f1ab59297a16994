"""``scratchcnn.explain``: every method checked against what it promises.

Small float64 networks with random weights (no download) for the exact checks: saliency against
finite differences, Integrated Gradients' completeness, occlusion against a plain loop, Grad-CAM
against a hand computation. A seed network trained on real MNIST (``seed_checkpoint``) for what
needs a network that reads digits: adversarial digits flipping its answers, class models.
"""

import numpy as np
import pytest

from scratchcnn import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2, Network, ReLU, Softmax, explain
from scratchcnn.checkpoint import load_checkpoint
from scratchcnn.data import normalize
from scratchcnn.models import build_model
from scratchcnn.optim import SGD

METHODS = {
    "saliency": lambda net, x: explain.saliency(net, x, 3),
    "gradient_times_input": lambda net, x: explain.gradient_times_input(net, x, 3),
    "smoothgrad": lambda net, x: explain.smoothgrad(net, x, 3, samples=8),
    "integrated_gradients": lambda net, x: explain.integrated_gradients(net, x, 3, steps=8),
    "occlusion": lambda net, x: explain.occlusion(net, x, 3, window=7, stride=7),
    "grad_cam": lambda net, x: explain.grad_cam(net, x, 3),
    "class_model": lambda net, x: explain.class_model(net, 3, steps=3),
    "adversarial": lambda net, x: explain.adversarial(net, x, eps=0.1, steps=3),
}


def small_net(seed=0, dtype=np.float64):
    """Conv(4, 3x3) -> ReLU -> MaxPool2 -> Softmax, random weights and biases, float64."""
    rng = np.random.default_rng(seed)
    net = Network([Conv2D(4, 3, dtype=dtype, rng=rng), ReLU(), MaxPool2(),
                   Softmax(13 * 13 * 4, 10, init="glorot", dtype=dtype, rng=rng)])
    net.layers[0].params["biases"][:] = rng.normal(0, 0.1, 4)
    net.layers[3].params["biases"][:] = rng.normal(0, 0.1, 10)
    return net


def logits(net, images):
    """The last Softmax's totals for ``images`` ``(N, 28, 28)``, on a float64 copy."""
    copy_ = explain.explaining_copy(net)
    copy_.forward(np.asarray(images, np.float64))
    return copy_.layers[-1].last_totals


@pytest.fixture
def image(rng):
    return rng.random((28, 28)) - 0.5


# ---------------------------------------------------------------- gradients

def test_saliency_matches_finite_differences(image):
    net, target, h = small_net(), 4, 1e-5
    nudges = np.eye(784).reshape(784, 28, 28) * h
    numeric = (logits(net, image + nudges)[:, target] - logits(net, image - nudges)[:, target]) / (2 * h)
    saliency = explain.saliency(net, image, target)
    assert saliency.shape == (28, 28) and saliency.dtype == np.float64
    np.testing.assert_allclose(saliency.reshape(-1), numeric, rtol=1e-6, atol=1e-9 * np.abs(numeric).max())


def test_gradient_times_input_and_smoothgrad_are_made_of_saliency(image):
    net = small_net()
    saliency = explain.saliency(net, image, 2)
    np.testing.assert_allclose(explain.gradient_times_input(net, image, 2), saliency * image)
    np.testing.assert_allclose(explain.smoothgrad(net, image, 2, samples=1, noise=0.0), saliency)
    noise = 0.2 * np.random.default_rng(5).standard_normal((6, 28, 28))
    mean = np.mean([explain.saliency(net, image + n, 2) for n in noise], axis=0)
    np.testing.assert_allclose(explain.smoothgrad(net, image, 2, samples=6, noise=0.2, seed=5), mean)


@pytest.mark.parametrize("target", [0, 7])
def test_integrated_gradients_is_complete(image, target):
    """The map's sum is the logit's change from the blank image to this one, within 1% of it at
    the default 64 steps, on a ReLU network whose gradient jumps along the path."""
    net = small_net(seed=3)
    attribution, gap = explain.integrated_gradients(net, image, target, with_gap=True)
    blank = np.full((28, 28), -0.5)
    expected = logits(net, image[None])[0, target] - logits(net, blank[None])[0, target]
    assert gap == pytest.approx(expected, rel=1e-12)
    assert abs(attribution.sum() - gap) <= 0.01 * max(abs(gap), 0.1)


def test_integrated_gradients_of_a_linear_network_is_exact_with_one_step(image, rng):
    """No ReLU: the gradient is the same everywhere, so (x - baseline) * gradient exactly."""
    net = Network([Softmax(784, 10, dtype=np.float64, rng=rng)])
    baseline = rng.random((28, 28)) - 0.5
    attribution = explain.integrated_gradients(net, image, 5, baseline=baseline, steps=1)
    np.testing.assert_allclose(attribution, (image - baseline) * net.layers[0].params["weights"][:, 5].reshape(28, 28))


# ---------------------------------------------------------------- occlusion

def plain_occlusion(net, image, target, window, stride):
    """The definition, one window at a time."""
    probability = lambda x: explain.explaining_copy(net).forward(x[None])[0, target]  # noqa: E731
    before = probability(image)
    total, count = np.zeros((28, 28)), np.zeros((28, 28))
    for top in range(0, 28 - window + 1, stride):
        for left in range(0, 28 - window + 1, stride):
            covered = image.copy()
            covered[top:top + window, left:left + window] = -0.5
            total[top:top + window, left:left + window] += before - probability(covered)
            count[top:top + window, left:left + window] += 1
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


@pytest.mark.parametrize("window, stride", [(4, 2), (5, 3), (9, 10)])
def test_occlusion_matches_a_plain_loop(image, window, stride):
    net = small_net(seed=1)
    np.testing.assert_allclose(explain.occlusion(net, image, 6, window, stride),
                               plain_occlusion(net, image, 6, window, stride), rtol=1e-10, atol=1e-15)
    if (28 - window) % stride:                       # the last rows and columns are never covered
        assert not explain.occlusion(net, image, 6, window, stride)[-1].any()


# ---------------------------------------------------------------- Grad-CAM

def test_grad_cam_matches_a_hand_computation(image):
    """Conv(2, 3x3) -> ReLU -> Softmax: A is the ReLU's (26, 26, 2) output, and d logit_t / dA is
    the Softmax's weight column t laid out like A."""
    rng = np.random.default_rng(7)
    net = Network([Conv2D(2, 3, dtype=np.float64, rng=rng), ReLU(),
                   Softmax(26 * 26 * 2, 10, dtype=np.float64, rng=rng)])
    net.layers[0].params["biases"][:] = [0.05, -0.05]
    filters, biases = net.layers[0].params["filters"], net.layers[0].params["biases"]
    maps = np.zeros((26, 26, 2))
    for k in range(2):
        for i in range(26):
            for j in range(26):
                maps[i, j, k] = max(0.0, (image[i:i + 3, j:j + 3] * filters[k]).sum() + biases[k])
    target = 8
    d_maps = net.layers[2].params["weights"][:, target].reshape(26, 26, 2)
    alpha = d_maps.mean(axis=(0, 1))
    expected = np.maximum(maps[..., 0] * alpha[0] + maps[..., 1] * alpha[1], 0)
    cam, layer = explain.grad_cam(net, image, target, with_layer=True)
    assert layer == 1                                 # the ReLU: the last output with maps
    np.testing.assert_allclose(cam, expected, rtol=1e-10, atol=1e-14)
    # At the convolution's output, before the ReLU: the gradient only where the ReLU passed it.
    conv = np.zeros((26, 26, 2))
    for k in range(2):
        for i in range(26):
            for j in range(26):
                conv[i, j, k] = (image[i:i + 3, j:j + 3] * filters[k]).sum() + biases[k]
    alpha = (d_maps * (conv > 0)).mean(axis=(0, 1))
    np.testing.assert_allclose(explain.grad_cam(net, image, target, layer=0),
                               np.maximum((conv * alpha).sum(axis=-1), 0), rtol=1e-10, atol=1e-14)


def test_grad_cam_picks_the_last_map_and_refuses_flat_layers(image):
    net = small_net()
    cam, layer = explain.grad_cam(net, image, 1, with_layer=True)
    assert layer == 2 and cam.shape == (13, 13) and (cam >= 0).all()
    assert explain.grad_cam(net, image, 1, layer=-2).shape == (13, 13)
    with pytest.raises(ValueError, match="layer 3 .*not maps"):
        explain.grad_cam(net, image, 1, layer=3)
    with pytest.raises(ValueError, match="MLP"):
        explain.grad_cam(build_model("mlp", dtype=np.float64), image, 1)


def test_cam_on_image_spreads_each_cell_over_the_pixels_it_sees():
    """In the seed network a pooled cell (i, j) sees input rows and columns 2i .. 2i + 3."""
    net = build_model("seed")
    cam = np.zeros((13, 13))
    cam[4, 6] = 1.0
    on_image = explain.cam_on_image(net, cam, 1)
    assert on_image.shape == (28, 28)
    assert set(zip(*np.nonzero(on_image))) == {(r, c) for r in range(8, 12) for c in range(12, 16)}
    # Each pixel gets the mean of the cells that see it: inside the image, four cells see each.
    assert np.all(on_image[8:12, 12:16] == 0.25)
    corner = np.zeros((13, 13))
    corner[0, 0] = 1.0
    corner_on_image = explain.cam_on_image(net, corner, 1)
    assert corner_on_image[0, 0] == 1.0 and corner_on_image[0, 2] == 0.5 and corner_on_image[2, 2] == 0.25
    np.testing.assert_allclose(explain.cam_on_image(net, np.full((13, 13), 3.0), 1), 3.0)
    classic = build_model("classic")                  # 5x5 cells, 12x12 windows, every 4 pixels
    assert explain.cam_on_image(classic, np.eye(5), 7).shape == (28, 28)


# ---------------------------------------------------------------- adversarial digits and class models

def test_adversarial_stays_within_its_bounds(image):
    net = small_net()
    for target, eps in [(None, 0.1), (2, 0.05), (None, 0.0)]:
        adv = explain.adversarial(net, image, target, eps=eps, steps=5)
        assert np.abs(adv - image).max() <= eps + 1e-12
        assert adv.min() >= -0.5 and adv.max() <= 0.5
    assert np.array_equal(explain.adversarial(net, image, eps=0.0), image)


def test_adversarial_towards_a_class_raises_its_probability(image):
    net = small_net()
    before = logits(net, image[None])[0]
    target = int(before.argmin())
    after = logits(net, explain.adversarial(net, image, target, eps=0.05)[None])[0]
    assert after[target] - after.max() > before[target] - before.max()


@pytest.fixture(scope="module")
def reader(request):
    """The seed network trained for an epoch on 5,000 real MNIST images, and 20 test images."""
    path = request.getfixturevalue("seed_checkpoint")
    _, _, images, labels = request.getfixturevalue("real_mnist")
    return load_checkpoint(path).network, normalize(images[:20], np.float64), labels[:20]


@pytest.mark.network
def test_adversarial_flips_most_answers_at_a_modest_eps(reader):
    net, images, _ = reader
    before = net.predict(images)
    after = net.predict(np.stack([explain.adversarial(net, x, eps=0.15) for x in images]))
    assert (after != before).mean() >= 0.8


@pytest.mark.network
def test_class_models_are_read_as_their_class(reader):
    net = reader[0]
    images = explain.class_models(net)
    assert images.shape == (10, 28, 28) and images.min() >= -0.5 and images.max() <= 0.5
    assert list(net.predict(images)) == list(range(10))
    np.testing.assert_allclose(explain.class_model(net, 3), images[3])


@pytest.mark.network
def test_integrated_gradients_is_complete_on_a_trained_network(reader):
    net, images, labels = reader
    for x, label in zip(images[:5], labels[:5]):
        for target in (int(label), (int(label) + 1) % 10):
            attribution, gap = explain.integrated_gradients(net, x, target, with_gap=True)
            assert abs(attribution.sum() - gap) <= 0.01 * max(abs(gap), 0.1)


# ---------------------------------------------------------------- the network is left as it was

def state(network):
    """Everything on the network and its layers: arrays copied (with dtypes), the rest as repr."""
    def frozen(value):
        if isinstance(value, np.ndarray):
            return (value.dtype.str, value.copy())
        if isinstance(value, dict):
            return {k: frozen(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [frozen(v) for v in value]
        return repr(value) if not hasattr(value, "bit_generator") else repr(value.bit_generator.state)
    return [frozen(vars(network))] + [frozen(vars(layer)) for layer in network.layers]


def same(a, b):
    if isinstance(a, tuple) and len(a) == 2 and isinstance(a[1], np.ndarray):
        return a[0] == b[0] and np.array_equal(a[1], b[1])
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("method", sorted(METHODS))
def test_the_network_is_left_exactly_as_it_was(method, image, rng):
    """Weights, dtypes, modes (the dropout layer in evaluation, the rest training), BatchNorm's
    running statistics and every cache of a float32 network that has trained a step: untouched."""
    net = Network([Conv2D(4, 3, rng=rng), ReLU(), MaxPool2(), Flatten(), Dense(13 * 13 * 4, 16, rng=rng),
                   BatchNorm(16), ReLU(), Dropout(0.3, rng=np.random.default_rng(1)), Softmax(16, 10, rng=rng)])
    net.train_step(rng.random((8, 28, 28), dtype=np.float32) - 0.5, rng.integers(0, 10, 8), SGD(0.1))
    net.layers[7].training = False
    before = state(net)
    METHODS[method](net, image)
    assert same(state(net), before)


# ---------------------------------------------------------------- bad arguments

BAD = [
    ("saliency", dict(target=10), "target must be from 0 to 9"),
    ("saliency", dict(target=-1), "target must be from 0 to 9"),
    ("saliency", dict(target=2.0), "target must be a class"),
    ("saliency", dict(target=True), "target must be a class"),
    ("saliency", dict(image=np.zeros(784)), "shape \\(784,\\)"),
    ("saliency", dict(image=np.zeros((1, 28, 28))), "shape \\(1, 28, 28\\)"),
    ("saliency", dict(image=np.zeros((27, 27))), "does not fit the network"),
    ("saliency", dict(image=np.full((28, 28), np.nan)), "784 NaN"),
    ("gradient_times_input", dict(target=11), "target must be from 0 to 9"),
    ("smoothgrad", dict(samples=0), "samples must be an integer >= 1"),
    ("smoothgrad", dict(noise=-0.1), "noise must be a number >= 0"),
    ("integrated_gradients", dict(steps=0), "steps must be an integer >= 1"),
    ("integrated_gradients", dict(baseline=np.zeros((28, 27))), "baseline must have the image's shape"),
    ("integrated_gradients", dict(baseline=np.full((28, 28), np.inf)), "baseline contains 784 NaN"),
    ("occlusion", dict(window=0), "window must be an integer >= 1"),
    ("occlusion", dict(stride=0), "stride must be an integer >= 1"),
    ("occlusion", dict(window=29), "window must be at most the image's side, 28"),
    ("grad_cam", dict(layer=9), "layer must be a layer index from 0 to 3"),
    ("class_model", dict(target=10), "target must be from 0 to 9"),
    ("class_model", dict(steps=0), "steps must be an integer >= 1"),
    ("adversarial", dict(eps=-0.01), "eps must be a number >= 0"),
    ("adversarial", dict(eps=float("nan")), "eps must be a number >= 0"),
    ("adversarial", dict(steps=0), "steps must be an integer >= 1"),
    ("adversarial", dict(target=10), "target must be from 0 to 9"),
]


@pytest.mark.parametrize("method, change, message", BAD, ids=[f"{m}-{list(c)[0]}" for m, c, _ in BAD])
def test_every_bad_argument_is_a_value_error_saying_what(method, change, message, image):
    net = small_net()
    args = dict(image=image, target=3)
    args.update(change)
    if method == "class_model":
        args.pop("image")
    if method == "adversarial" and "target" not in change:
        args.pop("target")
    with pytest.raises(ValueError, match=message):
        getattr(explain, method)(net, **args)
