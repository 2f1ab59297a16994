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

from . import backward_routes, explain_routes, train_routes
from .describe import ARRAY_FORMATS
from .networks import runner_for
from .parsing import RequestError, bad_request, drawing_from, parse_json_object

# The page's JavaScript modules (scratchcnn/static/): main.js, which index.html loads, and every
# module it imports. A new module is one more name here. Browsers run a module only when it is
# served as JavaScript, hence text/javascript.
PAGE_SCRIPTS = (
    "main.js", "dom.js", "heatmap.js", "figures.js", "api.js", "page_state.js", "view_switch.js",
    "drawing_pad.js", "drawing_flow.js", "forward_view.js", "forward_inspector.js",
    "backward_view.js", "backward_state.js", "backward_stages.js", "backward_inspector.js",
    "weight_templates.js", "train_panel.js", "explain_view.js",
)

# Every path a GET may ask for, and the packaged file it answers with. Nothing else is served.
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
    **{f"/static/{name}": (name, "text/javascript; charset=utf-8") for name in PAGE_SCRIPTS},
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
    served network or, with ``"network": "training"``, the training job's latest snapshot; its
    layers as lists or, with ``"arrays": "float32"``, packed (``describe``). A training job
    waits between two steps meanwhile (``jobs.RequestsFirst``)."""
    with request.server.desk.requests_first.serving():
        drawing = parse_json_object(request.read_body())
        gray = drawing_from(drawing)
        runner = runner_for(request.server, drawing.get("network"))
        arrays = drawing.get("arrays", ARRAY_FORMATS[0])
        if arrays not in ARRAY_FORMATS:
            raise bad_request(f'"arrays" must be "lists" (the default) or "float32", got {arrays!r:.60}')
        try:
            result = runner.run(gray, arrays)
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
    ("POST", "/api/backward"): backward_routes.post_backward,
    ("GET", "/api/test-image"): backward_routes.get_test_image,
    ("GET", "/api/templates"): backward_routes.get_templates,
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
