"""``python -m scratchcnn.serve``: draw a digit in the browser and watch it flow through the network.

Serves one page (``scratchcnn/static/``) and a small JSON API with the standard library's
threading HTTP server::

    GET  /              the page (index.html; its style.css and JavaScript modules under /static/)
    GET  /api/model     the network: every layer, its output shape, its window, conv filters
    POST /api/predict   a drawing -> the 28x28 input, every layer's output, the 10 probabilities
    POST /api/backward  a drawing and a target label -> the loss, every stage's gradient, one SGD step
    GET  /api/test-image, /api/templates   an MNIST test image (or a mistake); the last layer's weights
    POST /api/train, POST /api/train/stop, GET /api/train   start, stop, ask about a training job
    GET  /api/train/events   the job's progress, epochs, snapshots and end, as Server-Sent Events

``/api/predict`` also takes the drawing as a base64 PNG (``"png"``) and answers with packed float32
arrays on request (``"arrays": "float32"``): the page's compact form. ``/api/predict`` and
``/api/backward`` take ``"network": "training"`` to run the latest snapshot
of the network being trained (``networks.runner_for``); a finished job's network becomes the
served one.

The drawing goes through ``imaging.to_mnist``, exactly as ``python -m scratchcnn.predict``
does, then ``data.normalize``. Request and response shapes are in the README ("Draw a digit,
watch it flow") and in the docstrings of ``parsing.parse_drawing``, ``describe.describe_network``
and ``describe.describe_prediction``.

One module per concern:

* ``server``: the HTTP server and handler (reading bodies, sending answers, streaming);
* ``routes``: the ``(method, path) -> function`` table and the functions that answer;
* ``parsing``: request bodies -> checked values, or a ``RequestError`` with status and message;
* ``describe`` and ``runner``: the network as JSON, and running it safely for many threads;
* ``backward_routes``: the backward pass (``scratchcnn.backprop``), test images and weight templates;
* ``train_routes``, ``training_desk``, ``jobs`` and ``events``: training from the page (the
  routes; one job at a time and what its end changes; the ``Trainer`` in a thread; the event
  broadcast); ``networks``: which network a request runs on;
* ``startup`` and ``command``: the network to serve (a checkpoint, untrained, or brief training), the CLI;
* ``classroom``: the teacher's token when the server listens beyond loopback; ``retention``: the
  page's checkpoints in ``--save-dir`` and how many are kept.

Safety, in brief: binds 127.0.0.1 unless told otherwise, and beyond it only the teacher (with the
token) starts and stops training; request bodies over ``MAX_BODY_BYTES``
are refused (413) before they are read; the page's files are read into memory at start-up and
served from a fixed table, so no request ever touches the file system; the shared network is
never run, each request runs its own copy (layers cache state in ``forward``).
"""
from .command import main
from .parsing import MAX_BODY_BYTES, RequestError, parse_drawing
from .runner import ModelRunner
from .server import DigitServer, make_server
from .startup import BRIEF_TRAIN_SIZE, TrainingFailed, train_briefly

__all__ = ["main", "make_server", "DigitServer", "ModelRunner", "parse_drawing", "RequestError",
           "MAX_BODY_BYTES", "BRIEF_TRAIN_SIZE", "TrainingFailed", "train_briefly"]
