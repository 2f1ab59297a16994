"""The training routes: start, stop, watch and ask about the page's training job.

    POST /api/train          {"model", "epochs", "train_size", "lr", "batch_size"} -> 202
                             {"job": id, ...settings}; 409 while a job runs; 400 naming the field
    POST /api/train/stop     stop at the next step boundary -> 202 {"job": id, "status": "stopping"}
    GET  /api/train          the current or last job (settings, status, history), the models'
                             defaults, the limits, and whether this client may train
    GET  /api/train/events   Server-Sent Events: start, progress, epoch, snapshot, done

Starting and stopping are the teacher's when the server is open beyond this computer: 403
without the token (``classroom``). The jobs themselves are ``training_desk.TrainingDesk`` (one
at a time) and ``jobs.TrainingJob``.
"""
from http import HTTPStatus

from ..models import MODEL_NAMES, TRAINING_DEFAULTS
from .classroom import TEACHERS_ONLY, is_teacher, require_teacher
from .events import stream_events
from .parsing import parse_json_object
from .training_desk import LIMITS, parse_train_settings

TRAIN_EXAMPLE = '{"model": "seed", "epochs": 1, "train_size": 10000, "lr": 0.03}'


def post_train(request):
    """``POST /api/train``: the teacher's (403 otherwise); check the settings, start the job,
    answer 202 at once."""
    body = request.read_body()     # read before refusing, so the client reads our answer
    require_teacher(request)
    settings = parse_train_settings(parse_json_object(body, TRAIN_EXAMPLE))
    job = request.server.desk.start(settings)
    request.send_json({"job": job.id, **job.settings}, HTTPStatus.ACCEPTED)


def post_train_stop(request):
    """``POST /api/train/stop``: the teacher's (403 otherwise); the running job stops between
    two steps (``done`` follows)."""
    if request.headers.get("Content-Length"):   # a body is allowed, and ignored
        request.read_body()
    require_teacher(request)
    job = request.server.desk.stop()
    request.send_json({"job": job.id, "status": "stopping"}, HTTPStatus.ACCEPTED)


def get_train(request):
    """``GET /api/train``: ``{"job": id or null, "status", "settings", "steps_per_epoch",
    "history", "progress", "result", "network", "models": {name: defaults}, "limits": {field:
    [lo, hi]}, "can_train": bool, "why_not": str or null}``; ``status`` is ``"idle"`` before
    the first job; ``network`` describes the latest snapshot as ``GET /api/model`` describes the
    served network (null before one); ``can_train``: whether this request may start and stop
    jobs (``why_not`` says why not)."""
    desk = request.server.desk
    job, runner = desk.job, desk.training_runner()
    answer = job.describe() if job is not None else {"job": None, "status": "idle"}
    answer["network"] = runner.info if runner is not None else None
    answer["models"] = {name: {key: TRAINING_DEFAULTS[name][key] for key in ("epochs", "batch_size", "lr")}
                        for name in MODEL_NAMES}
    answer["limits"] = {key: list(bounds) for key, bounds in LIMITS.items()}
    answer["can_train"] = is_teacher(request)
    answer["why_not"] = None if answer["can_train"] else TEACHERS_ONLY
    request.send_json(answer)


def get_train_events(request):
    """``GET /api/train/events``: the event stream (``events.stream_events``)."""
    stream_events(request, request.server.desk.hub, request.server.desk.heartbeat_seconds)
