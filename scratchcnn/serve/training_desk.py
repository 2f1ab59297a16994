"""``TrainingDesk``: the server's training jobs, one at a time, and what happens when one ends.

It checks a request's settings (``parse_train_settings``), starts the job, refuses a second one
while the first runs, keeps the last job for ``GET /api/train`` and ``"network": "training"``,
and when a job ends ``completed`` or ``stopped``, makes its network the served one and, with a
save folder, writes it there as a checkpoint (atomic, and verified by reading it back before
it takes its final name), keeping the newest ``keep`` such files there (``retention``). A
diverged or failed job changes nothing that is served.
"""
import copy
import math
import os
import threading
from http import HTTPStatus

import numpy as np

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..data import TEST_SET_SIZE, TRAIN_SET_SIZE, load_mnist
from ..models import MODEL_NAMES, TRAINING_DEFAULTS
from .events import HEARTBEAT_SECONDS, MAX_LISTENERS, EventHub
from .jobs import RequestsFirst, TrainingJob
from .parsing import RequestError, bad_request
from .retention import KEEP_CHECKPOINTS, keep_newest, page_checkpoint_name
from .runner import ModelRunner

# The fields of POST /api/train and the integer ranges allowed.
LIMITS = {"epochs": (1, 50), "train_size": (100, TRAIN_SET_SIZE), "batch_size": (1, 1024)}
MAX_LR = 10.0    # as /api/backward's: larger steps only overflow
FIELDS = ("model", "epochs", "train_size", "lr", "batch_size")


def parse_train_settings(request):
    """A ``POST /api/train`` object -> the run's settings; ``RequestError`` 400 naming the field.

    ``model`` is required (one of ``MODEL_NAMES``); ``epochs``, ``batch_size`` and ``lr``
    default to the model's ``TRAINING_DEFAULTS`` and ``train_size`` to the whole training set.
    The rest (optimizer, decay, augmentation, seed 0) is what ``python -m scratchcnn.train`` uses.
    """
    unknown = [key for key in request if key not in FIELDS]
    if unknown:
        raise bad_request(f'unknown field "{str(unknown[0])[:60]}": POST /api/train takes '
                          f'{", ".join(FIELDS)}')
    model = request.get("model")
    if model not in MODEL_NAMES:
        raise bad_request(f'"model" must be one of {", ".join(map(repr, MODEL_NAMES))}, got '
                          f'{model!r:.60}')
    defaults = TRAINING_DEFAULTS[model]
    settings = {"model": model}
    for key, (low, high) in LIMITS.items():
        value = request.get(key, defaults.get(key, high))
        if type(value) is not int or not low <= value <= high:   # not bool, not 3.0
            raise bad_request(f'"{key}" must be an integer from {low} to {high}, got {value!r:.60}')
        settings[key] = value
    lr = request.get("lr", defaults["lr"])
    if type(lr) not in (int, float) or not (math.isfinite(lr) and 0 < lr <= MAX_LR):   # 1e999 is inf
        raise bad_request(f'"lr" (the learning rate) must be a finite number above 0 and at most '
                          f'{MAX_LR:g}, got {lr!r:.60}')
    settings.update(lr=lr, optimizer=defaults["optimizer"], lr_decay=defaults["lr_decay"],
                    shift=defaults["shift"], rotate=defaults["rotate"], scale=defaults["scale"], seed=0)
    return settings


class TrainingDesk:
    """Starts and stops jobs for one server. ``serve(runner)`` replaces the served network;
    ``save_dir``: where finished networks are saved (None: nowhere); ``test_size``: test images
    evaluated after every epoch; ``data_dir``: MNIST's folder (``load_mnist``); ``keep``: page
    checkpoints kept in ``save_dir``; ``max_listeners``: event streams open at once."""

    def __init__(self, serve, save_dir=None, data_dir=None, test_size=TEST_SET_SIZE,
                 keep=KEEP_CHECKPOINTS, max_listeners=MAX_LISTENERS):
        self.serve, self.save_dir, self.data_dir, self.test_size = serve, save_dir, data_dir, test_size
        self.keep = keep
        self.hub = EventHub(max_listeners)
        self.heartbeat_seconds = HEARTBEAT_SECONDS
        self.requests_first = RequestsFirst()   # requests that run a network: `with desk.requests_first.serving():`
        self.job = None              # the current or last job
        self._lock = threading.Lock()
        self._data = None

    def data(self):
        """MNIST as ``load_mnist`` returns it, loaded on first use and kept."""
        if self._data is None:
            self._data = load_mnist(self.data_dir)
        return self._data

    def start(self, settings):
        """Start a job with ``settings`` (``parse_train_settings``); ``RequestError`` 409 while one runs."""
        with self._lock:
            if self.job is not None and self.job.running:
                raise RequestError(HTTPStatus.CONFLICT, f"job {self.job.id} is still training "
                                   f"({self.job.settings['model']}); wait for it to finish or "
                                   "stop it with POST /api/train/stop")
            settings = dict(settings, test_size=self.test_size)
            job_id = self.job.id + 1 if self.job else 1
            self.job = TrainingJob(job_id, settings, self.data(), self.hub.publish, self._finish,
                                   self.requests_first.wait)
            self.job.start()
            return self.job

    def stop(self):
        """Ask the running job to stop; ``RequestError`` 409 when none runs."""
        job = self.job
        if job is None or not job.running:
            raise RequestError(HTTPStatus.CONFLICT, "no training job is running")
        job.stop()
        return job

    def training_runner(self):
        """The ``ModelRunner`` of the current (or last) job's latest snapshot, or None."""
        return self.job.latest_runner if self.job is not None else None

    def _finish(self, job):
        """In the job's thread, before ``done`` is sent: serve and save a kept network."""
        if job.final_status not in ("completed", "stopped"):
            return
        description = served_description(job)
        self.serve(ModelRunner(copy.deepcopy(job.network), description))
        job.served = True
        job.message = (f"the page now serves the network just trained: {description}")
        if self.save_dir:
            job.checkpoint = save_verified(self.save_dir, job)
            job.message += f"; saved as {job.checkpoint} in the server's save folder"
            keep_newest(self.save_dir, self.keep)

    def shutdown(self, timeout=30.0):
        """Stop a running job at its next step and wait for it (at most ``timeout`` seconds),
        then end every event stream. For Ctrl-C: the job skips its final test."""
        job = self.job
        if job is not None and job.running:
            job.skip_final_test = True
            job.stop()
            job.thread.join(timeout)
        self.hub.close()


def served_description(job):
    """``seed trained on the page (job 2): 3 epochs on 60,000 images, 97.9% test accuracy``."""
    s, trainer = job.settings, job.trainer
    done = f"{trainer.epoch} epoch{'s' if trainer.epoch != 1 else ''}"
    if job.final_status == "stopped" and trainer.step:
        done += f" and {trainer.step} of {job.steps_per_epoch} steps"
    score = "" if job.final_test_accuracy is None else \
        f", {job.final_test_accuracy:.1%} test accuracy"
    return f"{s['model']} trained on the page (job {job.id}): {done} on {s['train_size']:,} images{score}"


def save_verified(folder, job):
    """Write ``job``'s network to ``folder`` as ``<model>-<time>-job<id>.npz`` with
    ``save_checkpoint`` (atomic), read it back and compare every parameter before it takes its
    final name; returns that name. Raises ``OSError`` or ``CheckpointError``."""
    name = page_checkpoint_name(job.settings["model"], job.id)
    path = os.path.join(folder, name)
    unverified = os.path.join(folder, f".{name}.unverified.npz")
    trainer, s = job.trainer, job.settings
    hyperparameters = dict(s, dtype="float32", val_size=0, loop=False)
    save_checkpoint(unverified, trainer.network, trainer.optimizer, model=s["model"],
                    epoch=trainer.epoch, epochs=s["epochs"], hyperparameters=hyperparameters,
                    metrics={"status": job.final_status, "epochs": job.history,
                             "test_accuracy": job.final_test_accuracy},
                    trainer=trainer.state_dict())
    try:
        loaded = load_checkpoint(unverified).network
        for saved, layer in zip(loaded.layers, trainer.network.layers):
            for key, param in layer.params.items():
                if not np.array_equal(saved.params[key], param):
                    raise CheckpointError(f"{name}: parameter {key} read back differs from the "
                                          "network's; not saved")
        os.replace(unverified, path)
    finally:
        if os.path.exists(unverified):
            os.unlink(unverified)
    return name
