"""The training routes: start, stop, watch and ask about the page's training job.

    POST /api/train          {"model", "epochs", "train_size", "lr", "batch_size"} -> 202
                             {"job": id, ...settings}; 409 while a job runs; 400 naming the field
    POST /api/train/stop     stop at the next step boundary -> 202 {"job": id, "status": "stopping"}
    GET  /api/train          the current or last job (settings, status, history), the models'
                             defaults and the limits
    GET  /api/train/events   Server-Sent Events: start, progress, epoch, snapshot, done

The jobs themselves are ``training_desk.TrainingDesk`` (one at a time) and ``jobs.TrainingJob``.
"""
from http import HTTPStatus

from ..models import MODEL_NAMES, TRAINING_DEFAULTS
from .events import stream_events
from .parsing import parse_json_object
from .training_desk import LIMITS, parse_train_settings

TRAIN_EXAMPLE = '{"model": "seed", "epochs": 1, "train_size": 10000, "lr": 0.03}'


def post_train(request):
    """``POST /api/train``: check the settings, start the job, answer 202 at once."""
    settings = parse_train_settings(parse_json_object(request.read_body(), TRAIN_EXAMPLE))
    job = request.server.desk.start(settings)
    request.send_json({"job": job.id, **job.settings}, HTTPStatus.ACCEPTED)


def post_train_stop(request):
    """``POST /api/train/stop``: the running job stops between two steps (``done`` follows)."""
    if request.headers.get("Content-Length"):   # a body is allowed, and ignored
        request.read_body()
    job = request.server.desk.stop()
    request.send_json({"job": job.id, "status": "stopping"}, HTTPStatus.ACCEPTED)


def get_train(request):
    """``GET /api/train``: ``{"job": id or null, "status", "settings", "steps_per_epoch",
    "history", "progress", "result", "network", "models": {name: defaults}, "limits": {field:
    [lo, hi]}}``; ``status`` is ``"idle"`` before the first job; ``network`` describes the
    latest snapshot as ``GET /api/model`` describes the served network (null before one)."""
    desk = request.server.desk
    job, runner = desk.job, desk.training_runner()
    answer = job.describe() if job is not None else {"job": None, "status": "idle"}
    answer["network"] = runner.info if runner is not None else None
    answer["models"] = {name: {key: TRAINING_DEFAULTS[name][key] for key in ("epochs", "batch_size", "lr")}
                        for name in MODEL_NAMES}
    answer["limits"] = {key: list(bounds) for key, bounds in LIMITS.items()}
    request.send_json(answer)


def get_train_events(request):
    """``GET /api/train/events``: the event stream (``events.stream_events``)."""
    stream_events(request, request.server.desk.hub, request.server.desk.heartbeat_seconds)
