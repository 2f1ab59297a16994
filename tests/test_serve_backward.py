"""``POST /api/backward``, ``GET /api/test-image`` and ``GET /api/templates`` on a live server.

The served network is the tutorial network in float64 after a few training steps, so the API's
gradients can be checked against ``Network``'s own backward and against finite differences.
MNIST is replaced by a few random "test images" (no download, and mistakes are certain).
"""
import copy
import http.client
import json

import numpy as np
import pytest
from helpers import request, serving
from scratchcnn import gradcheck
from scratchcnn.gradcheck import relative_error

from helpers import trained_seed
from scratchcnn import serve
from scratchcnn.data import MnistUnavailableError, normalize
from scratchcnn.imaging import to_mnist
from scratchcnn.models import build_model
from scratchcnn.optim import SGD
from scratchcnn.serve import backward_routes as serve_backward

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server():
    with serving(trained_seed()) as srv:
        yield srv


FAKE_IMAGES = np.random.default_rng(1).integers(0, 256, (30, 28, 28), dtype=np.uint8)
FAKE_LABELS = np.arange(30, dtype=np.uint8) % 10


@pytest.fixture
def fake_mnist(monkeypatch):
    """Thirty random test images; counts how often MNIST is loaded."""
    calls = []

    def load(data_dir=None):
        calls.append(data_dir)
        return FAKE_IMAGES, FAKE_LABELS, FAKE_IMAGES, FAKE_LABELS

    monkeypatch.setattr(serve_backward, "load_mnist", load)
    monkeypatch.setattr(serve_backward, "_test_sets", {})
    return calls


def call(server, method, path, body=None, headers=None):
    """``(status, body bytes)``."""
    status, _, answer = request(server, method, path, body, headers)
    return status, answer


def post_backward(server, request, expect=200):
    status, body = call(server, "POST", "/api/backward", json.dumps(request), JSON)
    assert status == expect, body
    return json.loads(body)


def stroke(size=280):
    """A white-on-black drawing of a thick diagonal stroke, as the page sends it."""
    image = np.zeros((size, size))
    for t in np.linspace(0, 1, 200):
        y, x = int(60 + 160 * t), int(90 + 90 * t)
        image[y - 9:y + 9, x - 9:x + 9] = 255
    return image


def drawing_request(image, **extra):
    return {"width": image.shape[1], "height": image.shape[0], "pixels": image.astype(int).ravel().tolist(),
            **extra}


def own_backward(network, pixels, label):
    """``Network``'s own route: the fused loss and backward, then the general one through d_probs."""
    own = copy.deepcopy(network)
    x = normalize(pixels[None])
    loss, probs = own.loss_and_gradients(x, np.array([label]))
    grads = [{k: g.copy() for k, g in layer.grads.items()} for layer in own.layers]
    _, d_probs = own.cross_entropy(own.forward(x), np.array([label]))
    d_pool = own.layers[2].backward(d_probs)
    d_conv = own.layers[1].backward(d_pool)
    d_x = own.layers[0].backward(d_conv)
    return loss, probs[0], grads, [d_conv[0], d_pool[0], d_probs[0]], d_x[0]


def close(api, expected, rtol=1e-4):
    """The API rounds gradients to 5 significant digits of each array's largest value."""
    api, expected = np.asarray(api, np.float64), np.asarray(expected, np.float64)
    assert api.shape == expected.shape
    np.testing.assert_allclose(api, expected, rtol=0, atol=rtol * np.abs(expected).max())


# ----------------------------------------------------------------------------- POST /api/backward

def test_gradients_equal_the_networks_own_backward(server):
    image = stroke()
    answer = post_backward(server, drawing_request(image, label=3))
    assert set(answer) == {"label", "loss", "prediction", "probabilities", "blank", "input",
                           "input_gradient", "layers", "after_step"}
    pixels = to_mnist(image / 255)
    assert np.array_equal(np.array(answer["input"], np.uint8), pixels)
    loss, probs, grads, output_grads, d_x = own_backward(server.runner.network, pixels, 3)

    assert answer["label"] == 3 and answer["loss"] == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(answer["probabilities"], probs, rtol=1e-12)
    assert answer["prediction"] == int(probs.argmax())
    close(answer["input_gradient"], d_x)
    assert np.array(answer["input_gradient"]).shape == (28, 28)

    conv, pool, softmax = answer["layers"]
    assert [set(entry) for entry in answer["layers"]] == [
        {"output", "output_gradient", "param_gradients"}, {"output", "output_gradient"},
        {"output", "output_gradient", "param_gradients"}]
    for entry, expected in zip(answer["layers"], output_grads):
        gradient = entry["output_gradient"]
        assert gradient["shape"] == list(expected.shape)
        assert gradient["min"] == pytest.approx(expected.min()) and gradient["max"] == pytest.approx(expected.max())
        if expected.ndim == 3:
            close(gradient["maps"], np.moveaxis(expected, -1, 0))          # (C, H, W)
        else:
            close(gradient["values"], expected)
    assert softmax["output_gradient"]["values"][3] == pytest.approx(-1 / probs[3], rel=1e-4)
    assert np.count_nonzero(softmax["output_gradient"]["values"]) == 1
    for entry, layer_grads in zip((conv, softmax), (grads[0], grads[2])):
        assert entry["param_gradients"].keys() == layer_grads.keys()
        for name, expected in layer_grads.items():
            close(entry["param_gradients"][name], expected)
    assert np.array(conv["param_gradients"]["filters"]).shape == (8, 3, 3)
    assert np.array(softmax["param_gradients"]["weights"]).shape == (1352, 10)
    assert np.array(softmax["param_gradients"]["biases"]).shape == (10,)
    # The forward outputs are /api/predict's layer entries.
    status, body = call(server, "POST", "/api/predict", json.dumps(drawing_request(image)), JSON)
    assert [entry["output"] for entry in answer["layers"]] == json.loads(body)["layers"]


def test_finite_differences_agree_with_the_api(server):
    pixels = FAKE_IMAGES[4]
    label, h = 6, 1e-6
    answer = post_backward(server, {"image": pixels.tolist(), "label": label})
    network = copy.deepcopy(server.runner.network)
    x = normalize(pixels, np.float64)

    def loss():
        return float(-np.log(network.predict_proba(x[None])[0, label]))

    def central_difference(array, index):  # one element's slope of the loss
        return gradcheck.central_difference(lambda: loss(), array, index, h)

    saliency = np.array(answer["input_gradient"])
    pixels_checked = [np.unravel_index(np.abs(saliency).argmax(), (28, 28)), (5, 9), (14, 14), (20, 3)]
    numeric = [central_difference(x, p) for p in pixels_checked]
    assert relative_error(np.array(numeric), np.array([saliency[p] for p in pixels_checked])) < 1e-4

    filters = network.layers[0].params["filters"]
    api_filters = np.array(answer["layers"][0]["param_gradients"]["filters"])
    indices = [(0, 0, 0), (2, 1, 1), (7, 2, 0)]
    numeric = [central_difference(filters, i) for i in indices]
    assert relative_error(np.array(numeric), np.array([api_filters[i] for i in indices])) < 1e-4


def test_one_step_is_plain_sgd_on_a_copy(server):
    before = [{k: p.copy() for k, p in layer.params.items()} for layer in server.runner.network.layers]
    answer = post_backward(server, {"image": FAKE_IMAGES[7].tolist(), "label": 2, "lr": 0.01})
    assert answer["after_step"]["lr"] == 0.01
    after = np.array(answer["after_step"]["probabilities"])
    assert after[2] > answer["probabilities"][2]
    stepped = copy.deepcopy(server.runner.network)
    stepped.loss_and_gradients(normalize(FAKE_IMAGES[7][None]), np.array([2]))
    SGD(0.01).step(stepped.layers)
    np.testing.assert_allclose(after, stepped.predict_proba(normalize(FAKE_IMAGES[7][None]))[0], rtol=1e-9)

    assert post_backward(server, {"image": FAKE_IMAGES[7].tolist(), "label": 2})["after_step"]["lr"] == 0.1
    post_backward(server, {"image": FAKE_IMAGES[7].tolist(), "label": 2, "lr": 10})
    for layer, params in zip(server.runner.network.layers, before):   # the served network never changes
        for name, value in params.items():
            np.testing.assert_array_equal(layer.params[name], value)


IMAGE = np.zeros((28, 28), int).tolist()


@pytest.mark.parametrize("request_body, message", [
    ({"image": IMAGE}, 'missing "label"'),
    ({"image": IMAGE, "label": 10}, '"label" must be an integer from 0 to 9, got 10'),
    ({"image": IMAGE, "label": -1}, '"label" must be an integer from 0 to 9'),
    ({"image": IMAGE, "label": True}, '"label" must be an integer'),
    ({"image": IMAGE, "label": 2.0}, '"label" must be an integer'),
    ({"image": IMAGE, "label": "3"}, '"label" must be an integer'),
    ({"image": IMAGE, "label": None}, '"label" must be an integer'),
    ({"image": IMAGE, "label": 1, "lr": 0}, '"lr" (the learning rate of the one SGD step) must be a number above 0'),
    ({"image": IMAGE, "label": 1, "lr": -0.1}, '"lr"'),
    ({"image": IMAGE, "label": 1, "lr": "0.1"}, '"lr"'),
    ({"image": IMAGE, "label": 1, "lr": True}, '"lr"'),
    ({"image": IMAGE, "label": 1, "lr": 11}, "at most 10"),
    ({"image": IMAGE[:27], "label": 1}, '"image" must be 28 lists of 28 integers'),
    ({"image": [[0] * 28] * 27 + [[0] * 27 + [256]], "label": 1}, '"image"[27][27] is 256'),
    ({"image": [[0.5] * 28] * 28, "label": 1}, '"image"[0][0] is 0.5'),
    ({"image": IMAGE, "pixels": [0], "label": 1}, "not both"),
    ({"label": 1}, 'missing "pixels"'),
    ({"width": 2, "height": 2, "pixels": [0, 0, 0], "label": 1}, '"pixels" has 3 values'),
])
def test_bad_requests_get_400_with_a_message(server, request_body, message):
    status, body = call(server, "POST", "/api/backward", json.dumps(request_body), JSON)
    assert status == 400
    assert message in json.loads(body)["error"]


def test_sizes_methods_and_lengths_as_predict(server):
    status, body = call(server, "POST", "/api/backward", b"x" * (serve.MAX_BODY_BYTES + 1), JSON)
    assert status == 413 and "limit" in json.loads(body)["error"]
    assert call(server, "POST", "/api/backward", b"[1, 2]", JSON)[0] == 400
    assert call(server, "POST", "/api/backward", b'{"label": NaN}', JSON)[0] == 400
    assert call(server, "GET", "/api/backward")[0] == 405
    assert call(server, "POST", "/api/test-image")[0] == 405
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    conn.putrequest("POST", "/api/backward")
    conn.endheaders()
    assert conn.getresponse().status == 411
    conn.close()


def test_the_page_loads_its_backward_view(server):
    status, body = call(server, "GET", "/static/backward_view.js")
    assert status == 200 and b"/api/backward" in body and b"http" not in body
    assert b'from "./backward_view.js"' in call(server, "GET", "/static/main.js")[1]


# ----------------------------------------------------------------------------- GET /api/test-image

def get_json(server, path, expect=200):
    status, body = call(server, "GET", path)
    assert status == expect, body
    return json.loads(body)


def test_a_test_image_by_index_loads_mnist_once(server, fake_mnist):
    assert fake_mnist == []   # nothing is loaded until asked
    answer = get_json(server, "/api/test-image?index=5")
    assert answer == {"index": 5, "label": 5, "pixels": FAKE_IMAGES[5].tolist(), "count": 30}
    get_json(server, "/api/test-image?index=29")
    assert len(fake_mnist) == 1


@pytest.mark.parametrize("query, message", [
    ("", "ask for ?index=N"), ("?index=30", '"index" must be an integer from 0 to 29, got \'30\''),
    ("?index=-1", '"index" must be'), ("?index=abc", '"index" must be'), ("?index=", '"index" must be'),
    ("?index=1&mistake=1", "ask for ?index=N"), ("?indx=3", "unknown parameter 'indx'"),
    ("?mistake=2", '"mistake" must be 1'), ("?mistake=1&after=99", '"after" must be'),
])
def test_bad_test_image_queries(server, fake_mnist, query, message):
    assert message in get_json(server, f"/api/test-image{query}", expect=400)["error"]


def test_show_me_a_mistake(server, fake_mnist):
    predictions = server.runner.network.predict(normalize(FAKE_IMAGES))
    wrong = np.flatnonzero(predictions != FAKE_LABELS)
    assert len(wrong) >= 2
    first = get_json(server, "/api/test-image?mistake=1")
    assert first["index"] == wrong[0] and first["prediction"] == predictions[wrong[0]]
    assert first["label"] == FAKE_LABELS[wrong[0]] and first["pixels"] == FAKE_IMAGES[wrong[0]].tolist()
    second = get_json(server, f"/api/test-image?mistake=1&after={wrong[0]}")
    assert second["index"] == wrong[1]
    wrapped = get_json(server, f"/api/test-image?mistake=1&after={wrong[-1]}")
    assert wrapped["index"] == wrong[0]


def test_no_mistakes_and_no_mnist(server, monkeypatch):
    labels = server.runner.network.predict(normalize(FAKE_IMAGES))
    monkeypatch.setattr(serve_backward, "_test_sets", {None: (FAKE_IMAGES, labels)})
    assert "every test image right" in get_json(server, "/api/test-image?mistake=1", expect=404)["error"]

    def unavailable(data_dir=None):
        raise MnistUnavailableError("MNIST is not in the cache and could not be fetched")

    monkeypatch.setattr(serve_backward, "_test_sets", {})
    monkeypatch.setattr(serve_backward, "load_mnist", unavailable)
    error = get_json(server, "/api/test-image?index=0", expect=503)["error"]
    assert "no MNIST test set" in error and "could not be fetched" in error


# ----------------------------------------------------------------------------- GET /api/templates

def test_templates_are_the_softmax_weights_per_digit(server):
    answer = get_json(server, "/api/templates")
    weights = server.runner.network.layers[2].params["weights"]           # (1352, 10)
    templates = np.array(answer["templates"])
    assert answer["layer"] == 2 and answer["type"] == "Softmax" and answer["input_shape"] == [13, 13, 8]
    assert templates.shape == (10, 8, 13, 13)
    digit, channel, row, col = 4, 6, 3, 11
    assert templates[digit, channel, row, col] == pytest.approx(
        weights[(row * 13 + col) * 8 + channel, digit], abs=1e-4 * np.abs(weights).max())
    close(templates, np.moveaxis(weights.T.reshape(10, 13, 13, 8), -1, 1))
    assert answer["min"] == pytest.approx(weights.min()) and answer["max"] == pytest.approx(weights.max())


def test_networks_without_templates_and_deeper_ones():
    with serving(build_model("mlp", seed=0)) as srv:
        answer = get_json(srv, "/api/templates")
        assert answer["templates"] is None and "(512,) is not a stack of maps" in answer["why"]
        result = post_backward(srv, {"image": FAKE_IMAGES[0].tolist(), "label": 3})
        assert len(result["layers"]) == 8 and "param_gradients" not in result["layers"][0]   # Flatten
        assert np.array(result["layers"][1]["param_gradients"]["weights"]).shape == (784, 512)  # Dense
        assert np.array(result["input_gradient"]).shape == (28, 28)
