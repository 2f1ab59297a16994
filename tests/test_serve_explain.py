"""``POST /api/explain`` and ``GET /api/class-models`` on a live server: answers equal
``scratchcnn.explain``'s on the same image; every bad field is a 400 naming it; the server keeps
serving. The served network is the tutorial network after a few training steps (no download)."""
import json

import numpy as np
import pytest

from helpers import request, serving, trained_seed
from scratchcnn import explain
from scratchcnn.data import normalize
from scratchcnn.models import build_model
from scratchcnn.serve import explain_routes

JSON = {"Content-Type": "application/json"}
IMAGE = np.random.default_rng(3).integers(0, 256, (28, 28)) * (np.random.default_rng(4).random((28, 28)) < 0.3)


@pytest.fixture(scope="module")
def server():
    with serving(trained_seed(dtype=np.float32)) as srv:
        yield srv


def call(server, method, path, body=None):
    """``(status, parsed JSON answer)``."""
    status, _, answer = request(server, method, path, body, JSON if body is not None else {}, timeout=60)
    return status, json.loads(answer)


def post(server, request, expect=200):
    status, answer = call(server, "POST", "/api/explain", json.dumps(request))
    assert status == expect, answer
    return answer


def close(api, expected):
    """The API keeps 5 significant digits of each map's largest value."""
    api, expected = np.asarray(api, np.float64), np.asarray(expected, np.float64)
    assert api.shape == expected.shape
    np.testing.assert_allclose(api, expected, rtol=0, atol=1e-4 * max(np.abs(expected).max(), 1e-12))


IMAGE_REQUEST = {"image": IMAGE.tolist()}
X = normalize(IMAGE, np.float64)


@pytest.mark.parametrize("method, options", [
    ("saliency", {}), ("gradient_times_input", {}), ("smoothgrad", {"samples": 5, "noise": 0.1, "seed": 2}),
    ("occlusion", {"window": 6, "stride": 3})])
def test_maps_equal_the_library_s(server, method, options):
    answer = post(server, {**IMAGE_REQUEST, "method": method, "target": 4, **options})
    assert set(answer) == {"method", "target", "prediction", "probabilities", "attribution", "input", "blank"}
    assert answer["method"] == method and answer["target"] == 4
    net = server.runner.network
    close(answer["attribution"], getattr(explain, method)(net, X, 4, **options))
    probs = explain.explaining_copy(net).forward(X[None])[0]
    np.testing.assert_allclose(answer["probabilities"], probs, rtol=1e-12)
    assert answer["prediction"] == int(probs.argmax()) and answer["input"] == IMAGE.tolist()


def test_the_target_defaults_to_the_prediction(server):
    answer = post(server, {**IMAGE_REQUEST, "method": "saliency"})
    assert answer["target"] == answer["prediction"]
    close(answer["attribution"], explain.saliency(server.runner.network, X, answer["prediction"]))


def test_integrated_gradients_gives_its_two_numbers(server):
    answer = post(server, {**IMAGE_REQUEST, "method": "integrated_gradients", "target": 2, "steps": 32})
    attribution, gap = explain.integrated_gradients(server.runner.network, X, 2, steps=32, with_gap=True)
    close(answer["attribution"], attribution)
    assert answer["sum"] == pytest.approx(attribution.sum(), rel=1e-9)
    assert answer["logit_gap"] == pytest.approx(gap, rel=1e-12)
    assert abs(answer["sum"] - answer["logit_gap"]) <= 0.01 * max(abs(gap), 0.1)


def test_grad_cam_gives_the_map_and_its_spread_over_the_image(server):
    answer = post(server, {**IMAGE_REQUEST, "method": "grad_cam", "target": 1})
    net = server.runner.network
    cam = explain.grad_cam(net, X, 1)
    assert answer["layer"] == 1 and answer["layer_type"] == "MaxPool2"
    close(answer["map"], cam)
    close(answer["attribution"], explain.cam_on_image(net, cam, 1))
    assert post(server, {**IMAGE_REQUEST, "method": "grad_cam", "layer": 0})["layer"] == 0


def test_adversarial_gives_the_new_image_and_its_prediction(server):
    answer = post(server, {**IMAGE_REQUEST, "method": "adversarial", "eps": 0.2, "steps": 8})
    assert answer["target"] is None
    adv = explain.adversarial(server.runner.network, X, eps=0.2, steps=8)
    close(answer["image"], adv)
    close(answer["attribution"], adv - X)
    assert np.abs(np.array(answer["attribution"])).max() <= 0.2 + 1e-4
    after = explain.explaining_copy(server.runner.network).forward(adv[None])[0]
    assert answer["prediction_after"] == int(after.argmax())
    np.testing.assert_allclose(answer["probabilities_after"], after, rtol=1e-12)
    towards = post(server, {**IMAGE_REQUEST, "method": "adversarial", "target": 6})
    assert towards["target"] == 6


def test_a_drawing_is_explained_as_the_page_sends_it(server):
    drawing = np.zeros((140, 140), int)
    drawing[20:120, 60:80] = 255
    answer = post(server, {"width": 140, "height": 140, "pixels": drawing.ravel().tolist(), "method": "saliency"})
    assert np.array(answer["attribution"]).shape == (28, 28) and not answer["blank"]


BAD = [
    ({"method": "nope"}, '"method" must be one of saliency'),
    ({}, '"method" must be one of'),
    ({"method": "saliency", "target": 10}, '"target" must be an integer from 0 to 9'),
    ({"method": "saliency", "target": "3"}, '"target" must be an integer'),
    ({"method": "saliency", "samples": 4}, 'unknown field "samples": saliency takes no options'),
    ({"method": "smoothgrad", "samples": 0}, '"samples" must be an integer from 1 to 256'),
    ({"method": "smoothgrad", "samples": 257}, '"samples" must be an integer from 1 to 256'),
    ({"method": "smoothgrad", "noise": 2}, '"noise" must be a number from 0 to 1'),
    ({"method": "integrated_gradients", "steps": 300}, '"steps" must be an integer from 1 to 256'),
    ({"method": "integrated_gradients", "baseline": [[0]]}, '"baseline": "image" must be 28 lists'),
    ({"method": "occlusion", "window": 29}, '"window" must be an integer from 1 to 28'),
    ({"method": "occlusion", "stride": 0}, '"stride" must be an integer from 1 to 28'),
    ({"method": "occlusion", "window": 2.5}, '"window" must be an integer'),
    ({"method": "grad_cam", "layer": 2}, "layer 2 \\(Softmax\\)"),
    ({"method": "adversarial", "eps": 1.5}, '"eps" must be a number from 0 to 1'),
    ({"method": "adversarial", "eps": -0.1}, '"eps" must be a number from 0 to 1'),
    ({"method": "adversarial", "steps": 0}, '"steps" must be an integer from 1 to 256'),
    ({"method": "saliency", "network": "other"}, '"network" must be "served"'),
    ({"method": "saliency", "image": [[1] * 28] * 27}, '"image" must be 28 lists'),
    ({"method": "saliency", "image": [[256] * 28] * 28}, '"image"\\[0\\]\\[0\\] is 256'),
]


@pytest.mark.parametrize("change, message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_requests_are_400_naming_the_field(server, change, message):
    request = {**IMAGE_REQUEST, **change}
    answer = post(server, request, expect=400)
    assert __import__("re").search(message, answer["error"]), answer["error"]


def test_bad_bodies_and_routes(server):
    status, answer = call(server, "POST", "/api/explain", "[1, 2]")
    assert status == 400 and "expected a JSON object" in answer["error"]
    status, answer = call(server, "POST", "/api/explain", json.dumps({"method": "saliency"}))
    assert status == 400 and '"pixels"' in answer["error"]
    status, _ = call(server, "GET", "/api/explain")
    assert status == 405
    status, answer = call(server, "POST", "/api/explain", json.dumps({"method": "saliency", "network": "training"}))
    assert status == 409 and "no network is being trained" in answer["error"]
    assert post(server, {**IMAGE_REQUEST, "method": "saliency"})["method"] == "saliency"   # still serving


def test_grad_cam_on_an_mlp_is_a_400_saying_so():
    with serving(build_model("mlp", seed=0)) as srv:
        answer = post(srv, {**IMAGE_REQUEST, "method": "grad_cam"}, expect=400)
        assert "MLP" in answer["error"]
        assert post(srv, {**IMAGE_REQUEST, "method": "integrated_gradients", "steps": 4})["method"]


def test_class_models_are_computed_once_per_served_network(server, monkeypatch):
    calls = []
    real = explain.class_models
    monkeypatch.setattr(explain_routes.explain, "class_models",
                        lambda *args, **kw: calls.append(args) or real(*args, **kw))
    monkeypatch.setattr(explain_routes, "CLASS_MODEL_STEPS", 5)
    monkeypatch.setattr(explain_routes, "_class_models", explain_routes.weakref.WeakKeyDictionary())
    status, first = call(server, "GET", "/api/class-models")
    assert status == 200 and set(first) == {"images", "predictions", "probabilities", "steps"}
    images = np.array(first["images"])
    assert images.shape == (10, 28, 28) and images.min() >= -0.5 and images.max() <= 0.5
    close(images, real(server.runner.network, range(10), 5))
    assert call(server, "GET", "/api/class-models")[1] == first and len(calls) == 1
    status, answer = call(server, "GET", "/api/class-models?digit=3")
    assert status == 400 and "unknown parameter" in answer["error"]
    status, answer = call(server, "GET", "/api/class-models?network=training")
    assert status == 409
