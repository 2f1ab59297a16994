"""Which network a request runs on: the served one, or the latest snapshot of the one training.

``/api/predict`` (and any route that runs the network on a drawing, such as ``/api/backward``)
takes an optional ``"network"``: ``"served"`` (the default) or ``"training"``.
"""
from http import HTTPStatus

from .parsing import RequestError, bad_request

NETWORK_CHOICES = ("served", "training")


def runner_for(server, choice=None):
    """The ``ModelRunner`` a request asked for with ``"network": choice`` (None: the served one).

    ``"training"`` is the latest snapshot of the current or last training job (a copy taken
    between two steps). ``RequestError`` 400 for another value, 409 when no job has started.
    """
    if choice is None or choice == "served":
        return server.runner
    if choice != "training":
        raise bad_request(f'"network" must be "served" (the default) or "training", got '
                          f'{choice!r:.60}')
    runner = server.desk.training_runner()
    if runner is None:
        raise RequestError(HTTPStatus.CONFLICT, 'no network is being trained: start one with '
                           'POST /api/train, or leave out "network" to use the served one')
    return runner
