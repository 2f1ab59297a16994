"""Routing: the table from ``(method, path)`` to the function that answers, and those functions.

A route is a function ``route(request)`` given the request's ``server.Handler``: it reads the
body with ``request.read_body()``, answers with ``request.send_json(obj)`` or
``request.send_body(status, bytes, content_type)`` (or streams: ``request.send_head(status,
content_type)``, then writes to ``request.wfile``), and refuses with ``raise RequestError(status,
message)``, which the client gets as ``{"error": message}``. Paths match exactly (the query
string is ignored); a known path asked with another method gets 405, anything else 404.

To add a route: write its function in a module of its own and add one line to ``ROUTES``.
"""
import importlib.resources
import traceback
from http import HTTPStatus

from . import backward, explain_routes, train_routes
from .networks import runner_for
from .parsing import RequestError, drawing_from, parse_json_object

# Every path a GET may ask for, and the packaged file it answers with. Nothing else is served.
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/train.js": ("train.js", "text/javascript; charset=utf-8"),
    "/static/backward.js": ("backward.js", "text/javascript; charset=utf-8"),
    "/static/explain_view.js": ("explain_view.js", "text/javascript; charset=utf-8"),
}


def load_static_files():
    """``{path: (bytes, content type)}`` for every entry of ``STATIC_FILES``, read now (from
    ``scratchcnn/static/``), so no request ever touches the file system."""
    folder = importlib.resources.files("scratchcnn") / "static"
    return {path: ((folder / name).read_bytes(), ctype) for path, (name, ctype) in STATIC_FILES.items()}


def get_page_file(request):
    """``GET /`` and the page's other files: the bytes loaded at start-up."""
    body, ctype = request.server.files[request.route_path]
    request.send_body(HTTPStatus.OK, body, ctype)


def get_model(request):
    """``GET /api/model``: the network, as ``describe.describe_network`` put it at start-up."""
    request.send_body(HTTPStatus.OK, request.server.model_json, "application/json")


def post_predict(request):
    """``POST /api/predict``: a drawing (``parsing.parse_drawing``) -> ``ModelRunner.run``, on the
    served network or, with ``"network": "training"``, the training job's latest snapshot. A
    training job waits between two steps meanwhile (``jobs.RequestsFirst``)."""
    with request.server.desk.requests_first.serving():
        drawing = parse_json_object(request.read_body())
        gray = drawing_from(drawing)
        runner = runner_for(request.server, drawing.get("network"))
        try:
            result = runner.run(gray)
        except Exception:  # a bug of ours: say so, keep serving
            traceback.print_exc()
            raise RequestError(HTTPStatus.INTERNAL_SERVER_ERROR, "the model failed on this drawing; "
                               "see the server's output") from None
        request.send_json(result)


ROUTES = {
    **{("GET", path): get_page_file for path in STATIC_FILES},
    ("GET", "/api/model"): get_model,
    ("POST", "/api/predict"): post_predict,
    ("POST", "/api/train"): train_routes.post_train,
    ("POST", "/api/train/stop"): train_routes.post_train_stop,
    ("GET", "/api/train"): train_routes.get_train,
    ("GET", "/api/train/events"): train_routes.get_train_events,
    ("POST", "/api/backward"): backward.post_backward,
    ("GET", "/api/test-image"): backward.get_test_image,
    ("GET", "/api/templates"): backward.get_templates,
    ("POST", "/api/explain"): explain_routes.post_explain,
    ("GET", "/api/class-models"): explain_routes.get_class_models,
}


def find_route(method, path):
    """The function for ``(method, path)``; ``RequestError`` 405 (naming the methods the path
    takes) or 404 when there is none."""
    route = ROUTES.get((method, path))
    if route is not None:
        return route
    allowed = [known_method for known_method, known_path in ROUTES if known_path == path]
    if allowed:
        raise RequestError(HTTPStatus.METHOD_NOT_ALLOWED, f"use {' or '.join(allowed)} for {path}",
                           allow=", ".join(allowed))
    kind = "page" if method == "GET" else "API"
    raise RequestError(HTTPStatus.NOT_FOUND, f"no such {kind}: {path[:100]}")
