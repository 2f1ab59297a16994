"""The HTTP server and its request handler: reading bodies, sending answers, dispatching routes.

What each path answers is in ``routes.py``; this module only speaks HTTP.
"""
import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .classroom import hide_token, is_loopback, new_token
from .events import MAX_LISTENERS
from .parsing import MAX_BODY_BYTES, RequestError, declared_length, too_large
from .retention import KEEP_CHECKPOINTS
from .routes import find_route, load_static_files
from .runner import ModelRunner
from .training_desk import TrainingDesk


class ClientGone(Exception):
    """The client closed the connection before sending its whole body: there is no one to answer."""


class DigitServer(ThreadingHTTPServer):
    """The HTTP server: the served ``ModelRunner``, the page's files (loaded once) and the
    ``TrainingDesk`` (``desk``) whose finished jobs replace the served network.

    ``token``: the teacher's token (``classroom``), None when bound to loopback (no token is
    needed there); bound beyond it without one given, a fresh random one. ``max_listeners``:
    event streams open at once (more get 503); ``keep``: page checkpoints kept in ``save_dir``.
    """

    daemon_threads = True      # Ctrl-C doesn't wait for open connections
    request_queue_size = 128   # the default 5 resets connections when a class's strokes arrive at once

    def __init__(self, address, runner, log_requests=False, save_dir=None, data_dir=None,
                 token=None, max_listeners=MAX_LISTENERS, keep=KEEP_CHECKPOINTS):
        self.use_runner(runner)
        self.log_requests = log_requests
        self.files = load_static_files()
        self.data_dir = data_dir   # MNIST's folder, for training jobs and GET /api/test-image
        self.desk = TrainingDesk(self.use_runner, save_dir=save_dir, data_dir=data_dir, keep=keep,
                                 max_listeners=max_listeners)
        super().__init__(address, Handler)
        # The rule follows the bind address: bound beyond loopback, every client needs the token.
        self.token = None if is_loopback(self.server_address[0]) else (token or new_token())

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
            self._refuse(e.status, e.message, e.headers)
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

    def _refuse(self, status, message, headers=None):
        """Answer ``{"error": message}`` (with any extra ``headers``) and close the connection."""
        self.close_connection = True
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
        self.send_header("Referrer-Policy", "no-referrer")   # the teacher's ?token= stays in the address bar
        # The page loads nothing from elsewhere, and this makes sure of it.
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def log_request(self, code="-", size="-"):
        # Quiet by default: one line per stroke would drown the URL. Errors are always shown.
        if self.server.log_requests or (isinstance(code, int) and code >= 400):
            super().log_request(code, size)

    def log_message(self, format, *args):
        """Every line the server prints about a request, with the teacher's token hidden."""
        super().log_message("%s", hide_token(format % args))


def make_server(network, host="127.0.0.1", port=8000, description="", log_requests=False,
                save_dir=None, data_dir=None, token=None, max_listeners=MAX_LISTENERS,
                keep=KEEP_CHECKPOINTS):
    """A ``DigitServer`` bound to ``(host, port)`` (port 0 picks a free one); not yet serving.

    Jobs started from the page read MNIST from ``data_dir`` and, with ``save_dir``, save the
    networks they finish there (the newest ``keep`` kept). Bound beyond loopback, training needs
    ``token`` (a fresh one when None; see ``DigitServer``)."""
    return DigitServer((host, port), ModelRunner(network, description), log_requests,
                       save_dir, data_dir, token, max_listeners, keep)
