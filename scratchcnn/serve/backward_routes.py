"""The backward pass over HTTP, and MNIST test images to look at::

    POST /api/backward     a drawing (or a 28x28 image) and a target label -> the loss, every
                           stage's gradient, the probabilities after one SGD step
    GET  /api/test-image   ?index=N, or ?mistake=1[&after=N]: a test image, its label
    GET  /api/templates    the last layer's weights per class, shaped like its input maps

The gradients come from ``scratchcnn.backprop.backward_pass``, that is from the layers' own
``backward``, on a copy of the served network (which never changes). Request and response
shapes are in the README ("Watch the gradients flow back").
"""
import copy
import math
import threading
import traceback
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import numpy as np

from ..backprop import DEFAULT_LR, backward_pass
from ..data import MnistUnavailableError, load_mnist, normalize
from ..imaging import MNIST_SIZE, to_mnist
from ..engine import one_blas_thread
from .describe import DECIMALS, describe_array, describe_stage
from .networks import runner_for
from .parsing import RequestError, bad_request, drawing_from, parse_json_object

MAX_LR = 10.0         # larger steps only overflow; nobody learns anything from them
SIGNIFICANT = 5       # gradients keep this many digits of their array's largest magnitude
MISTAKE_BATCH = 500   # test images per forward pass when looking for a mistake
BACKWARD_EXAMPLE = '{"width": 280, "height": 280, "pixels": [...], "label": 3, "lr": 0.1}'


# --------------------------------------------------------------------------- POST /api/backward

def parse_backward(body, num_classes):
    """The body of ``POST /api/backward`` -> ``(pixels, label, lr)``.

    ``pixels``: the ``(28, 28)`` uint8 image the network sees: the drawing (``width``,
    ``height``, ``pixels`` as for ``/api/predict``) after ``to_mnist``, or ``"image"``, 28 rows
    of 28 integers 0..255 used as they are (an MNIST test image). ``label``: an integer from 0
    to ``num_classes - 1``, required. ``lr``: a number in ``(0, MAX_LR]``, default 0.1.
    Raises ``RequestError`` (400) saying what is wrong.
    """
    return backward_fields(parse_json_object(body, BACKWARD_EXAMPLE), num_classes)


def backward_fields(request, num_classes):
    """A parsed ``POST /api/backward`` object -> ``(pixels, label, lr)``; see ``parse_backward``."""
    if "label" not in request:
        raise bad_request(f'missing "label": the target digit of the loss, an integer from 0 to '
                          f'{num_classes - 1}, e.g. {BACKWARD_EXAMPLE}')
    label = request["label"]
    if type(label) is not int or not 0 <= label < num_classes:   # not bool, not 3.0
        raise bad_request(f'"label" must be an integer from 0 to {num_classes - 1}, got {label!r:.40}')
    lr = request.get("lr", DEFAULT_LR)
    if type(lr) not in (int, float) or not 0 < lr <= MAX_LR:
        raise bad_request(f'"lr" (the learning rate of the one SGD step) must be a number above 0 '
                          f'and at most {MAX_LR:g}, got {lr!r:.40}')
    if "image" in request:
        if "pixels" in request:
            raise bad_request('send either a drawing ("pixels") or a 28x28 "image", not both')
        return image_from(request["image"]), label, float(lr)
    return to_mnist(drawing_from(request)), label, float(lr)


def image_from(rows):
    """``"image"``: 28 lists of 28 integers 0..255 -> ``(28, 28)`` uint8, or a 400."""
    if not isinstance(rows, list) or len(rows) != MNIST_SIZE or \
            not all(isinstance(row, list) and len(row) == MNIST_SIZE for row in rows):
        raise bad_request(f'"image" must be {MNIST_SIZE} lists of {MNIST_SIZE} integers from 0 to 255 '
                          f'(an MNIST-style image, used as it is)')
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if type(value) is not int or not 0 <= value <= 255:
                raise bad_request(f'"image"[{i}][{j}] is {value!r:.40}, not an integer from 0 to 255')
    return np.array(rows, dtype=np.uint8)


def rounded_gradient(array):
    """Nested lists keeping ``SIGNIFICANT`` digits of the array's largest magnitude (at least
    ``DECIMALS`` decimals): gradients are often thousandths, which 4 decimals would erase."""
    array = np.asarray(array, dtype=np.float64)
    largest = float(np.abs(array).max()) if array.size else 0.0
    decimals = DECIMALS if largest == 0 else max(DECIMALS, SIGNIFICANT - 1 - math.floor(math.log10(largest)))
    return np.round(array, decimals).tolist()


def describe_gradient(values):
    """A gradient shaped like a layer's output -> the format of ``/api/predict``'s layer
    entries: ``{"shape", "min", "max"}`` plus ``"maps"`` ``(C, H, W)`` or ``"values"`` ``(D,)``.
    Gradients keep significant digits (``rounded_gradient``) and their exact min and max."""
    return describe_array(values, rounded_gradient, float)


def describe_backward(pixels, result):
    """What ``POST /api/backward`` returns for ``pixels`` ``(28, 28)`` uint8 and the
    ``BackwardPass`` of ``normalize(pixels)``; see the README for the keys."""
    layers = []
    for lg in result.layers:
        entry = {"output": describe_stage(lg.output), "output_gradient": describe_gradient(lg.output_gradient)}
        if lg.param_gradients:
            entry["param_gradients"] = {name: rounded_gradient(g) for name, g in lg.param_gradients.items()}
        layers.append(entry)
    return {"label": result.label, "loss": result.loss, "prediction": result.prediction,
            "probabilities": [float(p) for p in result.probabilities],
            "blank": not pixels.any(), "input": pixels.tolist(),
            "input_gradient": rounded_gradient(result.input_gradient),
            "layers": layers,
            "after_step": {"lr": result.lr,
                           "probabilities": [float(p) for p in result.probabilities_after_step]}}


def post_backward(request):
    """``POST /api/backward``: ``parse_backward`` -> ``backward_pass`` -> ``describe_backward``, on
    the served network or, with ``"network": "training"``, the training job's latest snapshot
    (``networks.runner_for``); a training job waits between two steps meanwhile."""
    with request.server.desk.requests_first.serving():
        fields = parse_json_object(request.read_body(), BACKWARD_EXAMPLE)
        runner = runner_for(request.server, fields.get("network"))
        pixels, label, lr = backward_fields(fields, runner.num_classes)
        try:
            with one_blas_thread():     # one image: as ModelRunner.run, one BLAS thread
                result = backward_pass(runner.network, normalize(pixels), label, lr)
        except Exception:  # a bug of ours: say so, keep serving
            traceback.print_exc()
            raise RequestError(HTTPStatus.INTERNAL_SERVER_ERROR, "the backward pass failed on this "
                               "drawing; see the server's output") from None
        if not np.isfinite(result.probabilities_after_step).all():
            raise bad_request(f"one SGD step with lr {lr:g} made the probabilities overflow; try a smaller lr")
        request.send_json(describe_backward(pixels, result))


# --------------------------------------------------------------------------- GET /api/test-image

_test_sets = {}                 # data_dir -> (images (N, 28, 28) uint8, labels (N,) int)
_test_sets_lock = threading.Lock()


def mnist_test_set(data_dir=None):
    """The MNIST test images and labels, loaded on first use (then kept), or a 503."""
    with _test_sets_lock:
        if data_dir not in _test_sets:
            try:
                _, _, images, labels = load_mnist(data_dir)
            except MnistUnavailableError as e:
                raise RequestError(HTTPStatus.SERVICE_UNAVAILABLE, f"no MNIST test set here: {e}") from None
            _test_sets[data_dir] = images, labels.astype(int)
        return _test_sets[data_dir]


def query_index(query, key, count, default=None):
    """``?key=N`` as an int from 0 to ``count - 1`` (or ``default`` when absent), or a 400."""
    values = query.get(key)
    if values is None:
        return default
    text = values[-1]
    if not (text.isascii() and text.isdigit()) or int(text) >= count:
        raise bad_request(f'"{key}" must be an integer from 0 to {count - 1}, got {text[:40]!r}')
    return int(text)


def next_mistake(network, images, labels, after):
    """``(index, prediction)`` of the first test image after ``after`` (wrapping around) that
    ``network`` gets wrong, or None if it gets them all right. Runs a copy, a batch at a time."""
    network = copy.deepcopy(network)
    order = np.roll(np.arange(len(labels)), -(after + 1))
    for start in range(0, len(order), MISTAKE_BATCH):
        batch = order[start:start + MISTAKE_BATCH]
        predictions = network.predict(normalize(images[batch]))
        wrong = np.flatnonzero(predictions != labels[batch])
        if len(wrong):
            return int(batch[wrong[0]]), int(predictions[wrong[0]])
    return None


def get_test_image(request):
    """``GET /api/test-image?index=N`` or ``?mistake=1[&after=N]`` -> ``{"index", "label",
    "pixels": (28, 28) ints, "count"}``, plus ``"prediction"`` for a mistake."""
    query = parse_qs(urlsplit(request.path).query, keep_blank_values=True)
    unknown = sorted(set(query) - {"index", "mistake", "after"})
    if unknown or ("index" in query) == ("mistake" in query):
        raise bad_request("ask for ?index=N (a test image, 0 to 9999) or ?mistake=1 (the next test "
                          "image the network gets wrong; &after=N starts after image N)"
                          + (f"; unknown parameter {unknown[0][:40]!r}" if unknown else ""))
    images, labels = mnist_test_set(getattr(request.server, "data_dir", None))
    count = len(labels)
    answer = {"count": count}
    if "index" in query:
        index = query_index(query, "index", count)
    else:
        if query["mistake"][-1] not in ("1", "true"):
            raise bad_request(f'"mistake" must be 1, got {query["mistake"][-1][:40]!r}')
        found = next_mistake(request.server.runner.network, images, labels,
                             query_index(query, "after", count, default=-1))
        if found is None:
            raise RequestError(HTTPStatus.NOT_FOUND, "the network gets every test image right")
        index, answer["prediction"] = found
    request.send_json({"index": index, "label": int(labels[index]), "pixels": images[index].tolist(), **answer})


# --------------------------------------------------------------------------- GET /api/templates

def get_templates(request):
    """``GET /api/templates``: the last layer's weights ``(input_len, classes)``, each class's
    column reshaped like the layer's input ``(H, W, C)`` and listed channel-first, as
    ``{"layer": index, "input_shape": [H, W, C], "templates": (classes, C, H, W), "min", "max"}``;
    ``"templates": null`` (and ``"why"``) when there are none to draw."""
    runner = request.server.runner
    layer = runner.network.layers[-1]
    index, in_shape = len(runner.network.layers) - 1, runner.output_shapes[-2]
    answer = {"layer": index, "type": type(layer).__name__, "input_shape": list(in_shape)}
    weights = layer.params.get("weights")
    if weights is None or len(in_shape) != 3 or weights.shape[0] != math.prod(in_shape):
        why = "its last layer has no weights" if weights is None else \
            f"its last layer's input {tuple(in_shape)} is not a stack of maps"
        request.send_json({**answer, "templates": None, "why": f"this network has no templates to draw: {why}"})
        return
    templates = np.moveaxis(weights.T.reshape(-1, *in_shape), -1, 1)   # (classes, C, H, W)
    request.send_json({**answer, "templates": rounded_gradient(templates),
                       "min": float(weights.min()), "max": float(weights.max())})
