"""Why did it say 7? The explanations of ``scratchcnn.explain`` over HTTP::

    POST /api/explain        a drawing (or a 28x28 "image") and a "method" -> its map
    GET  /api/class-models   what the network "thinks" each digit looks like (computed once)

Both run on the served network or, with ``"network": "training"`` (``?network=training``),
on the training job's latest snapshot; never on the network itself (``explain`` copies it).
Request and response shapes are in the README ("Why did it say 7?").
"""
import threading
import traceback
import weakref
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import numpy as np

from .. import explain
from ..data import normalize
from ..imaging import to_mnist
from .backward_routes import image_from, rounded_gradient
from .describe import rounded
from .jobs import RequestsFirst
from .networks import runner_for
from .parsing import RequestError, bad_request, drawing_from, parse_json_object

METHODS = ("saliency", "gradient_times_input", "smoothgrad", "integrated_gradients", "occlusion",
           "grad_cam", "adversarial")
# Each method's options: (kind, lowest, highest). Bounded so that no request runs for long.
OPTIONS = {
    "saliency": {},
    "gradient_times_input": {},
    "smoothgrad": {"samples": (int, 1, 256), "noise": (float, 0.0, 1.0), "seed": (int, 0, 2 ** 32 - 1)},
    "integrated_gradients": {"steps": (int, 1, 256), "baseline": ("image", None, None)},
    "occlusion": {"window": (int, 1, 28), "stride": (int, 1, 28)},
    "grad_cam": {"layer": (int, 0, 1000)},
    "adversarial": {"eps": (float, 0.0, 1.0), "steps": (int, 1, 256)},
}
COMMON_FIELDS = ("method", "target", "network", "image", "pixels", "width", "height")
EXPLAIN_EXAMPLE = '{"width": 280, "height": 280, "pixels": [...], "method": "saliency", "target": 7}'
CLASS_MODEL_STEPS = 100


# --------------------------------------------------------------------------- POST /api/explain

def explain_fields(request, num_classes):
    """A parsed ``POST /api/explain`` object -> ``(pixels (28, 28) uint8, method, target or None,
    options)``; ``RequestError`` 400 naming the field that is wrong."""
    method = request.get("method")
    if method not in METHODS:
        raise bad_request(f'"method" must be one of {", ".join(METHODS)}, got {method!r:.60}; '
                          f'e.g. {EXPLAIN_EXAMPLE}')
    allowed = OPTIONS[method]
    for key in request:
        if key not in COMMON_FIELDS and key not in allowed:
            takes = f"takes the options {', '.join(allowed)}" if allowed else "takes no options"
            raise bad_request(f'unknown field "{str(key)[:60]}": {method} {takes}')
    target = request.get("target")
    if target is not None and (type(target) is not int or not 0 <= target < num_classes):
        raise bad_request(f'"target" must be an integer from 0 to {num_classes - 1} (or left out: '
                          f'the prediction), got {target!r:.40}')
    options = {key: option_value(key, request[key], *allowed[key]) for key in allowed if key in request}
    return pixels_from(request), method, target, options


def pixels_from(request):
    """The drawing (``width``, ``height``, ``pixels``) after ``to_mnist``, or ``"image"``, 28 rows
    of 28 integers 0..255 used as they are, as ``POST /api/backward`` takes them."""
    if "image" in request:
        if "pixels" in request:
            raise bad_request('send either a drawing ("pixels") or a 28x28 "image", not both')
        return image_from(request["image"])
    return to_mnist(drawing_from(request))


def option_value(key, value, kind, low, high):
    """One option checked: an int or a number within ``[low, high]``, or an image; else a 400."""
    if kind == "image":
        try:
            return normalize(image_from(value), np.float64)
        except RequestError as error:
            raise bad_request(f'"{key}": {error.message}') from None
    if kind is int and (type(value) is not int or not low <= value <= high):   # not bool, not 3.0
        raise bad_request(f'"{key}" must be an integer from {low} to {high}, got {value!r:.40}')
    if kind is float and (type(value) not in (int, float) or not low <= value <= high):
        raise bad_request(f'"{key}" must be a number from {low:g} to {high:g}, got {value!r:.40}')
    return value


def explanation(network, image, method, target, options):
    """``image`` (28, 28) float64 explained by ``method``: what ``POST /api/explain`` returns
    apart from the input. Raises ``ValueError`` for options the network can't take."""
    net = explain.explaining_copy(network)
    probs = net.forward(image[np.newaxis])[0]
    prediction = int(probs.argmax())
    answer = {"method": method, "target": target, "prediction": prediction,
              "probabilities": [float(p) for p in probs]}
    if method == "adversarial":
        after = explain.adversarial(network, image, target, **options)
        after_probs = net.forward(after[np.newaxis])[0]
        return {**answer, "attribution": rounded_gradient(after - image), "image": rounded(after),
                "prediction_after": int(after_probs.argmax()),
                "probabilities_after": [float(p) for p in after_probs]}
    target = prediction if target is None else target
    answer["target"] = target
    if method == "integrated_gradients":
        attribution, gap = explain.integrated_gradients(network, image, target, with_gap=True, **options)
        return {**answer, "attribution": rounded_gradient(attribution), "sum": float(attribution.sum()),
                "logit_gap": gap}
    if method == "grad_cam":
        cam, layer = explain.grad_cam(network, image, target, with_layer=True, **options)
        on_image = explain.cam_on_image(network, cam, layer, image.shape)
        return {**answer, "attribution": rounded_gradient(on_image), "map": rounded_gradient(cam),
                "layer": layer, "layer_type": type(network.layers[layer]).__name__}
    attribution = getattr(explain, method)(network, image, target, **options)
    return {**answer, "attribution": rounded_gradient(attribution)}


# Explanations go first: class models, seconds of work, wait between their steps while one is
# being answered, as a training job does for every request (jobs.RequestsFirst).
explanations_first = RequestsFirst()


def post_explain(request):
    """``POST /api/explain``: ``explain_fields`` -> ``explanation``, on the served network or the
    training job's latest snapshot; a training job, and class models being grown, wait meanwhile."""
    with request.server.desk.requests_first.serving(), explanations_first.serving():
        fields = parse_json_object(request.read_body(), EXPLAIN_EXAMPLE)
        runner = runner_for(request.server, fields.get("network"))
        pixels, method, target, options = explain_fields(fields, runner.num_classes)
        try:
            answer = explanation(runner.network, normalize(pixels, np.float64), method, target, options)
        except ValueError as error:      # an option this network can't take (grad_cam on an MLP)
            raise bad_request(str(error)) from None
        except Exception:  # a bug of ours: say so, keep serving
            traceback.print_exc()
            raise RequestError(HTTPStatus.INTERNAL_SERVER_ERROR, f"{method} failed on this drawing; "
                               "see the server's output") from None
        request.send_json({**answer, "input": pixels.tolist(), "blank": not pixels.any()})


# --------------------------------------------------------------------------- GET /api/class-models

_class_models = weakref.WeakKeyDictionary()   # ModelRunner -> its answer, kept while it lives
_class_models_lock = threading.Lock()


def class_models_of(runner):
    """``GET /api/class-models``'s answer for ``runner``'s network, computed on first use (one
    request at a time computes; the others then find it) and kept with the runner."""
    with _class_models_lock:
        if runner not in _class_models:
            images = explain.class_models(runner.network, range(runner.num_classes), CLASS_MODEL_STEPS,
                                          between_steps=explanations_first.wait)
            probs = explain.explaining_copy(runner.network).forward(images)
            _class_models[runner] = {"images": rounded(images), "steps": CLASS_MODEL_STEPS,
                                     "predictions": [int(p) for p in probs.argmax(axis=1)],
                                     "probabilities": [float(p[d]) for d, p in enumerate(probs)]}
        return _class_models[runner]


def get_class_models(request):
    """``GET /api/class-models[?network=training]`` -> ``{"images": (classes, 28, 28) in [-0.5,
    0.5], "predictions": [class per image], "probabilities": [p of its own class per image],
    "steps"}``: ``explain.class_models`` of the served network (or the training snapshot)."""
    query = parse_qs(urlsplit(request.path).query, keep_blank_values=True)
    unknown = sorted(set(query) - {"network"})
    if unknown:
        raise bad_request(f'unknown parameter "{unknown[0][:40]}": GET /api/class-models takes only '
                          '?network=training')
    with request.server.desk.requests_first.serving():
        runner = runner_for(request.server, query["network"][-1] if "network" in query else None)
        request.send_json(class_models_of(runner))
