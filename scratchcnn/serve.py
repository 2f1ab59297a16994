"""``python -m scratchcnn.serve``: draw a digit in the browser and watch it flow through the network.

Serves one page (``scratchcnn/static/``) and a small JSON API with the standard library's
threading HTTP server::

    GET  /              the page (index.html; its style.css and app.js under /static/)
    GET  /api/model     the network: every layer, its output shape, its window, conv filters
    POST /api/predict   a drawing -> the 28x28 input, every layer's output, the 10 probabilities

The drawing goes through ``imaging.to_mnist``, exactly as ``python -m scratchcnn.predict``
does, then ``data.normalize``. Request and response shapes are in the README ("Draw a digit,
watch it flow") and in ``parse_drawing`` and ``ModelRunner.run`` below.

Safety, in brief: binds 127.0.0.1 unless told otherwise; request bodies over ``MAX_BODY_BYTES``
are refused (413) before they are read; the page's files are read into memory at start-up and
served from a fixed table, so no request ever touches the file system; the shared network is
never run, each request runs its own copy (layers cache state in ``forward``).
"""
import argparse
import copy
import errno
import importlib.resources
import json
import os
import tempfile
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import numpy as np

from .checkpoint import CheckpointError, load_checkpoint
from .data import MnistUnavailableError, normalize
from .imaging import MNIST_SIZE, to_mnist
from .layers import Conv2D

MAX_BODY_BYTES = 1024 * 1024   # 1 MiB: a 280x280 drawing as JSON is 160-320 KB
MAX_SIDE = 1024                # largest accepted drawing width or height, in pixels
DEFAULT_SIDE = 280             # the page's canvas
DECIMALS = 4                   # layer outputs are rounded to this many decimals in responses

# Every path a GET may ask for, and the packaged file it answers with. Nothing else is served.
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
}


class RequestError(Exception):
    """A request we refuse: an HTTP status and a message for the client."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


# --------------------------------------------------------------------------- the model

def layer_window(layer, in_shape, out_shape):
    """How one output pixel of ``layer`` maps back to its input maps, or None.

    ``{"size": k, "stride": s, "padding": p}``: output pixel ``(i, j)`` was computed from input
    rows ``i*s - p .. i*s - p + k - 1`` (and the same for columns). Convolutions and 2x2 pools
    have one; element-wise layers on maps (ReLU) have a 1x1 window; flat layers have none.
    """
    if len(out_shape) != 3 or len(in_shape) not in (2, 3):
        return None
    if isinstance(layer, Conv2D):
        return {"size": layer.kernel_size, "stride": layer.stride, "padding": layer.padding}
    if type(layer).__name__ in ("MaxPool2", "AvgPool2"):
        return {"size": 2, "stride": 2, "padding": 0}
    if tuple(in_shape[:2]) == tuple(out_shape[:2]):
        return {"size": 1, "stride": 1, "padding": 0}
    return None


def rounded(array):
    """An array as nested lists of Python floats, rounded to ``DECIMALS``."""
    return np.round(np.asarray(array, dtype=np.float64), DECIMALS).tolist()


class ModelRunner:
    """Runs one shared network for many threads.

    Layers keep what backward needs (``last_input``, ...) on themselves during ``forward``, so
    two threads running the same network would overwrite each other's state. The shared
    network here is never run: each call to ``run`` works on its own ``copy.deepcopy`` of it
    (well under a millisecond for the tutorial network), so requests can't interfere.
    """

    def __init__(self, network, description=""):
        self._network = network.eval()
        self.description = description
        probe = self._fresh_copy()
        try:
            probe.forward(np.zeros((1, MNIST_SIZE, MNIST_SIZE), np.float32))
        except ValueError as e:
            raise CheckpointError(f"this network doesn't take 28x28 MNIST images: {e}") from None
        self.output_shapes = [tuple(out.shape[1:]) for out in probe.outputs]  # stage 0 = input
        self.num_classes = self.output_shapes[-1][0]
        self.info = self._describe()

    def _fresh_copy(self):
        network = copy.deepcopy(self._network)
        network.eval()
        return network

    def _describe(self):
        """What ``GET /api/model`` returns (computed once: the network never changes)."""
        layers = []
        for i, layer in enumerate(self._network.layers):
            entry = {
                "index": i,
                "type": type(layer).__name__,
                "config": layer.config(),
                "input_shape": list(self.output_shapes[i]),
                "output_shape": list(self.output_shapes[i + 1]),
                "window": layer_window(layer, self.output_shapes[i], self.output_shapes[i + 1]),
            }
            if isinstance(layer, Conv2D):
                filters = layer.params["filters"]
                if filters.ndim == 3:                   # (F, k, k): one input channel
                    filters = filters[..., None]
                entry["filters"] = rounded(filters)     # (F, k, k, C)
                biases = layer.params.get("biases")
                entry["biases"] = rounded(biases) if biases is not None else None
            layers.append(entry)
        return {"description": self.description, "input_shape": [MNIST_SIZE, MNIST_SIZE],
                "num_classes": self.num_classes, "layers": layers}

    def run(self, gray):
        """``gray`` ``(H, W)`` in ``[0, 1]``, either polarity -> what ``POST /api/predict`` returns.

        ``input``: ``(28, 28)`` uint8 as lists, the image after ``to_mnist``; ``layers``: per
        layer ``{"shape", "maps"}`` for map outputs ``(H, W, C)`` (maps listed channel-first,
        ``(C, H, W)``, for drawing) or ``{"shape", "values"}`` for flat ones ``(D,)``.
        """
        image = to_mnist(gray)                              # (28, 28) uint8, MNIST-style
        network = self._fresh_copy()                         # never the shared one
        probs = network.forward(normalize(image[None]))[0]  # (1, 28, 28) -> (1, classes)
        layers = []
        for out in network.outputs[1:]:
            out = out[0]
            entry = {"shape": list(out.shape), "min": round(float(out.min()), DECIMALS),
                     "max": round(float(out.max()), DECIMALS)}
            if out.ndim == 3:
                entry["maps"] = rounded(np.moveaxis(out, -1, 0))   # (H, W, C) -> (C, H, W)
            else:
                entry["values"] = rounded(out.reshape(-1))
            layers.append(entry)
        return {"prediction": int(probs.argmax()),
                "probabilities": [float(p) for p in probs],
                "blank": not image.any(),
                "input": image.tolist(),
                "layers": layers}


# --------------------------------------------------------------------------- requests

def _reject_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_drawing(body):
    """The request body of ``POST /api/predict`` -> ``(height, width)`` float32 in ``[0, 1]``.

    Expected: a JSON object ``{"width": W, "height": H, "pixels": [...]}`` with ``pixels`` a
    flat, row-major list of ``W * H`` numbers from 0 (black) to 255 (white); ``width`` and
    ``height`` default to 280. Either polarity works (white on black, as the page draws, or
    black on white), like ``predict``. Raises ``RequestError`` (400) saying what is wrong.
    """
    def bad(message):
        return RequestError(HTTPStatus.BAD_REQUEST, message)

    try:
        request = json.loads(body, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise bad("request body is not UTF-8 text") from None
    except (ValueError, RecursionError) as e:
        raise bad(f"request body is not valid JSON: {e}") from None
    if not isinstance(request, dict):
        raise bad('expected a JSON object like {"width": 280, "height": 280, "pixels": [...]}')
    if "pixels" not in request:
        raise bad('missing "pixels": a flat list of width*height numbers from 0 to 255')
    size = {}
    for key in ("width", "height"):
        value = request.get(key, DEFAULT_SIDE)
        if type(value) is not int or not 1 <= value <= MAX_SIDE:
            raise bad(f'"{key}" must be an integer from 1 to {MAX_SIDE}, got {value!r}'[:200])
        size[key] = value
    pixels = request["pixels"]
    if not isinstance(pixels, list):
        raise bad(f'"pixels" must be a flat list of numbers, got {type(pixels).__name__}')
    expected = size["width"] * size["height"]
    if len(pixels) != expected:
        raise bad(f'"pixels" has {len(pixels)} values, but width {size["width"]} x height '
                  f'{size["height"]} needs {expected}')
    for index, value in enumerate(pixels):
        if type(value) not in (int, float):     # not bool, str, list, None
            raise bad(f'"pixels"[{index}] is {json.dumps(value)[:40]}, not a number')
        if not 0 <= value <= 255:
            raise bad(f'"pixels"[{index}] is {value!r:.40}, outside 0..255')
    gray = np.array(pixels, dtype=np.float64)
    return (gray / 255).astype(np.float32).reshape(size["height"], size["width"])


class DigitServer(ThreadingHTTPServer):
    """The HTTP server: a ``ModelRunner`` and the page's files, both loaded once."""

    daemon_threads = True      # Ctrl-C doesn't wait for open connections
    request_queue_size = 64    # the default 5 resets connections when many strokes arrive at once

    def __init__(self, address, runner, log_requests=False):
        self.runner = runner
        self.log_requests = log_requests
        self.files = load_static_files()
        self.model_json = json.dumps(runner.info).encode()
        super().__init__(address, Handler)

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


def load_static_files():
    """``{path: (bytes, content type)}`` for every entry of ``STATIC_FILES``, read now."""
    folder = importlib.resources.files("scratchcnn") / "static"
    return {path: ((folder / name).read_bytes(), ctype) for path, (name, ctype) in STATIC_FILES.items()}


class Handler(BaseHTTPRequestHandler):
    """One request. Routes by exact path; every answer is a fixed file or JSON."""

    server_version = "scratchcnn"
    timeout = 30  # seconds a client may take to send its request

    def do_GET(self):
        path = urlsplit(self.path).path
        if path in self.server.files:
            body, ctype = self.server.files[path]
            self._send(HTTPStatus.OK, body, ctype)
        elif path == "/api/model":
            self._send(HTTPStatus.OK, self.server.model_json, "application/json")
        elif path == "/api/predict":
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "use POST for /api/predict", allow="POST")
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such page: {path[:100]}")

    def do_POST(self):
        path = urlsplit(self.path).path
        if path != "/api/predict":
            if path in self.server.files or path == "/api/model":
                self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"use GET for {path}", allow="GET")
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such API: {path[:100]}")
            return
        try:
            body = self._read_body()
            if body is None:
                return  # the client went away
            result = self.server.runner.run(parse_drawing(body))
        except RequestError as e:
            self._error(e.status, e.message)
            return
        except Exception:  # a bug of ours: say so, keep serving
            traceback.print_exc()
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "the model failed on this drawing; "
                        "see the server's output")
            return
        self._send(HTTPStatus.OK, json.dumps(result).encode(), "application/json")

    def _read_body(self):
        """The request body, or ``RequestError`` for a missing, bad or too large length."""
        if self.headers.get("Transfer-Encoding"):
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "Content-Length header required")
        if not length.strip().isdigit():
            raise RequestError(HTTPStatus.BAD_REQUEST, f"bad Content-Length: {length[:40]!r}")
        length = int(length)
        if length > MAX_BODY_BYTES:
            self._discard(length)
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"request body of {length} bytes is over the {MAX_BODY_BYTES}-byte "
                               "limit; send a 280x280 drawing or smaller")
        body = self.rfile.read(length)
        return body if len(body) == length else None

    def _discard(self, length, at_most=16 * MAX_BODY_BYTES, chunk=64 * 1024):
        """Read and drop a refused body (a bounded amount, a chunk at a time), so the client
        has finished sending and reads our 413 instead of a reset connection."""
        remaining = min(length, at_most)
        self.connection.settimeout(2)  # a client that claims more than it sends isn't waited for
        try:
            while remaining > 0:
                data = self.rfile.read(min(chunk, remaining))
                if not data:
                    break
                remaining -= len(data)
        except OSError:  # timed out or reset: answer anyway
            pass

    def _error(self, status, message, allow=None):
        self.close_connection = True
        headers = {"Allow": allow} if allow else {}
        self._send(status, json.dumps({"error": message}).encode(), "application/json", headers)

    def _send(self, status, body, ctype, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        # The page loads nothing from elsewhere, and this makes sure of it.
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code="-", size="-"):
        # Quiet by default: one line per stroke would drown the URL. Errors are always shown.
        if self.server.log_requests or (isinstance(code, int) and code >= 400):
            super().log_request(code, size)


def make_server(network, host="127.0.0.1", port=8000, description="", log_requests=False):
    """A ``DigitServer`` bound to ``(host, port)`` (port 0 picks a free one); not yet serving."""
    return DigitServer((host, port), ModelRunner(network, description), log_requests)


# --------------------------------------------------------------------------- the command

BRIEF_TRAIN_SIZE = 20_000  # the tutorial network on this many images, 1 epoch: seconds, ~90%


def train_briefly(data_dir=None):
    """Train the tutorial network for a few seconds; returns ``(network, description)``.

    Runs ``python -m scratchcnn.train`` (its progress bar included) for one epoch on the first
    ``BRIEF_TRAIN_SIZE`` images, into a temporary checkpoint that is then loaded.
    """
    print(f"No --model given: training the tutorial network (seed) for 1 epoch on the first "
          f"{BRIEF_TRAIN_SIZE:,} MNIST images first; this takes seconds.", flush=True)
    from . import train  # imported here: serving a saved model needs none of it
    with tempfile.TemporaryDirectory() as folder:
        path, metrics_path = os.path.join(folder, "seed.npz"), os.path.join(folder, "metrics.json")
        args = ["--model", "seed", "--epochs", "1", "--train-size", str(BRIEF_TRAIN_SIZE),
                "--save", path, "--metrics", metrics_path]
        if data_dir:
            args += ["--data-dir", data_dir]
        code = train.main(args)
        if code == 130:
            raise KeyboardInterrupt
        if code != 0:
            raise TrainingFailed(f"training the tutorial network failed (exit code {code}, "
                                 "see above); train one yourself and pass it with --model")
        network = load_checkpoint(path).network
        with open(metrics_path) as f:
            accuracy = json.load(f).get("test_accuracy")
    score = f": {accuracy:.1%} test accuracy" if isinstance(accuracy, float) else ""
    description = (f"tutorial network (seed), trained just now for 1 epoch on "
                   f"{BRIEF_TRAIN_SIZE:,} images{score}")
    print("To keep a network between runs: python -m scratchcnn.train --save model.npz, then "
          "python -m scratchcnn.serve --model model.npz", flush=True)
    return network, description


class TrainingFailed(RuntimeError):
    """Training the tutorial network without --model did not finish."""


def port_number(text):
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535 (0 picks a free one), got {port}")
    return port


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m scratchcnn.serve",
        description="Draw a digit in your browser and watch it flow through the network: the "
                    "28x28 input it sees, every layer's feature maps, the 10 probabilities.")
    parser.add_argument("--model", metavar="PATH",
                        help="checkpoint from `python -m scratchcnn.train --save PATH`; without it "
                             "the tutorial network is trained for a few seconds first")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: only this computer; "
                             "0.0.0.0 lets your network in)")
    parser.add_argument("--port", type=port_number, default=8000,
                        help="port to listen on (default 8000; 0 picks a free one)")
    parser.add_argument("--data-dir", metavar="DIR", help="MNIST folder, for training without --model")
    parser.add_argument("--log", action="store_true", help="log every request, not just errors")
    args = parser.parse_args(argv)

    try:
        if args.model:
            checkpoint = load_checkpoint(args.model)
            meta = checkpoint.meta
            name = meta.get("model") or "network"
            description = f"{name} from {os.path.basename(args.model)}"
            network = checkpoint.network
        else:
            network, description = train_briefly(args.data_dir)
        server = make_server(network, args.host, args.port, description, args.log)
    except (CheckpointError, MnistUnavailableError, TrainingFailed) as e:
        parser.exit(1, f"error: {e}\n")
    except KeyboardInterrupt:
        parser.exit(130, "\nStopped.\n")
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            parser.exit(1, f"error: port {args.port} on {args.host} is already in use; pick "
                           "another with --port (0 picks a free one)\n")
        parser.exit(1, f"error: can't listen on {args.host}:{args.port}: {e.strerror or e}\n")

    where = ("only this computer can open it" if args.host in ("127.0.0.1", "localhost", "::1")
             else "WARNING: other computers on your network can open it too")
    print(f"Serving {description}\nListening on {args.host}:{server.server_address[1]} ({where}).\n"
          f"Open {server.url} and draw a digit. Ctrl-C stops.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nStopped.")
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
