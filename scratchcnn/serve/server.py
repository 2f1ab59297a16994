"""The HTTP server and its request handler: reading bodies, sending answers, dispatching routes.

What each path answers is in ``routes.py``; this module only speaks HTTP.
"""
import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .parsing import MAX_BODY_BYTES, RequestError, declared_length, too_large
from .routes import find_route, load_static_files
from .runner import ModelRunner
from .training_desk import TrainingDesk


class ClientGone(Exception):
    """The client closed the connection before sending its whole body: there is no one to answer."""


class DigitServer(ThreadingHTTPServer):
    """The HTTP server: the served ``ModelRunner``, the page's files (loaded once) and the
    ``TrainingDesk`` (``desk``) whose finished jobs replace the served network."""

    daemon_threads = True      # Ctrl-C doesn't wait for open connections
    request_queue_size = 64    # the default 5 resets connections when many strokes arrive at once

    def __init__(self, address, runner, log_requests=False, save_dir=None, data_dir=None):
        self.use_runner(runner)
        self.log_requests = log_requests
        self.files = load_static_files()
        self.data_dir = data_dir   # MNIST's folder, for training jobs and GET /api/test-image
        self.desk = TrainingDesk(self.use_runner, save_dir=save_dir, data_dir=data_dir)
        super().__init__(address, Handler)

    def use_runner(self, runner):
        """Serve ``runner``'s network from now on (``/api/model`` describes it)."""
        self.model_json = json.dumps(runner.info).encode()
        self.runner = runner

    def server_close(self):
        self.desk.shutdown()   # a running job stops at its next step; event streams end
        super().server_close()

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


class Handler(BaseHTTPRequestHandler):
    """One request: its route (``routes.find_route``) is called with this handler, and offers
    routes ``read_body``, ``send_json``, ``send_body`` and, to stream, ``send_head``."""

    server_version = "scratchcnn"
    timeout = 30  # seconds a client may take to send its request

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method):
        self.route_path = urlsplit(self.path).path
        try:
            find_route(method, self.route_path)(self)
        except RequestError as e:
            self._refuse(e.status, e.message, e.allow)
        except ClientGone:
            pass  # nothing to answer

    def read_body(self):
        """The request body (bytes). ``RequestError`` for a missing, bad or too large length;
        ``ClientGone`` if the client closes the connection before sending all of it."""
        length = declared_length(self.headers)
        if length > MAX_BODY_BYTES:
            self._discard(length)
            raise too_large(length)
        body = self.rfile.read(length)
        if len(body) != length:
            raise ClientGone()
        return body

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

    def _refuse(self, status, message, allow=None):
        """Answer ``{"error": message}`` and close the connection."""
        self.close_connection = True
        headers = {"Allow": allow} if allow else {}
        self.send_body(status, json.dumps({"error": message}).encode(), "application/json", headers)

    def send_json(self, value, status=HTTPStatus.OK):
        """Answer ``value`` as JSON."""
        self.send_body(status, json.dumps(value).encode(), "application/json")

    def send_body(self, status, body, ctype, headers=None):
        """Answer ``body`` (bytes) of content type ``ctype``, with any extra ``headers``."""
        self.send_head(status, ctype, len(body), headers)
        self.wfile.write(body)

    def send_head(self, status, ctype, length=None, headers=None):
        """The status line and headers; without ``length``, a stream the route then writes to
        ``self.wfile`` until it closes the connection."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        # The page loads nothing from elsewhere, and this makes sure of it.
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def log_request(self, code="-", size="-"):
        # Quiet by default: one line per stroke would drown the URL. Errors are always shown.
        if self.server.log_requests or (isinstance(code, int) and code >= 400):
            super().log_request(code, size)


def make_server(network, host="127.0.0.1", port=8000, description="", log_requests=False,
                save_dir=None, data_dir=None):
    """A ``DigitServer`` bound to ``(host, port)`` (port 0 picks a free one); not yet serving.

    Jobs started from the page read MNIST from ``data_dir`` and, with ``save_dir``, save the
    networks they finish there."""
    return DigitServer((host, port), ModelRunner(network, description), log_requests,
                       save_dir, data_dir)
