"""``TrainingJob``: the page's training run, the package's ``Trainer`` in a background thread.

The job builds the network, optimizer and ``Trainer`` exactly as ``python -m scratchcnn.train``
does for the same settings, and runs ``Trainer.fit`` in its own thread. It watches through the
trainer's report hooks (``JobReport``), which run between two steps, and turns what it sees
into events for ``events.EventHub``:

* ``start``: ``{"job", "settings", "steps_per_epoch"}``, first of every job;
* ``progress``: ``{"job", "epoch", "epochs", "step", "steps_per_epoch", "position", "loss",
  "accuracy", "images_per_second", "seconds"}``, at most every ``PROGRESS_SECONDS``: the mean
  loss and accuracy over the steps since the previous one; ``position`` is the epochs done,
  as a float (1.5 = halfway through epoch 2);
* ``epoch``: ``{"job", "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
  "seconds"}`` after every epoch (the test set is evaluated then);
* ``snapshot``: ``{"job", "epoch", "step", "position", "layer", "filters", "biases"}``: at the
  start, every ``SNAPSHOT_SECONDS`` and after every epoch, with the first convolution's filters
  ``(F, k, k, C)`` as ``/api/model`` lists them (``layer``, ``filters`` and ``biases`` null for a
  network without one);
* ``done``: ``{"job", "status", "test_accuracy", "seconds", "served", "message", "checkpoint"}``
  with status ``completed``, ``stopped``, ``diverged`` or ``failed``.

A snapshot is a ``copy.deepcopy`` of the network taken between two steps, never a half-updated
one; requests that ask for ``"network": "training"`` run it (``latest_runner``).
"""
import contextlib
import copy
import threading
import time
import traceback

import numpy as np

from .. import engine
from ..data import first_n, normalize
from ..network import TrainingDiverged
from ..trainer import TrainingStopped, build_trainer
from .runner import SERVING_BLAS_USE, ModelRunner

PROGRESS_SECONDS = 0.25   # at most four progress events a second
SNAPSHOT_SECONDS = 2.0    # a snapshot this often between the end-of-epoch ones


class RequestsFirst:
    """Requests go first: while any request is being answered (``serving``), the training job
    waits at its next step boundary (``wait``, at most ``MAX_WAIT_SECONDS`` per step, so a flood
    of requests slows training but can't stop it).

    Why: Python runs one thread at a time. Left to itself, a request thread waits up to the
    interpreter's switch interval (``sys.getswitchinterval()``, 5 ms by default) for
    its turn each time it gives the interpreter up (reading the socket, NumPy calls), and a
    prediction gives it up many times, so a training job would slow every answer
    (benchmarks/predict_while_training.py measures by how much; its record is in
    benchmarks/README.md).
    """

    MAX_WAIT_SECONDS = 0.25

    def __init__(self):
        self._in_flight = 0
        self._idle = threading.Condition()

    @contextlib.contextmanager
    def serving(self):
        with self._idle:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                if not self._in_flight:
                    self._idle.notify_all()

    def wait(self):
        with self._idle:
            self._idle.wait_for(lambda: not self._in_flight, self.MAX_WAIT_SECONDS)


class JobReport:
    """The trainer's report hooks (``epoch_start``, ``step``, ``log``, ``epoch_end``, ``close``),
    called between steps: they time the progress and snapshot events of ``job``."""

    def __init__(self, job):
        self.job = job
        self.epoch = 1
        self.window = None           # running sums at the last progress event
        self.last_progress = self.last_snapshot = time.monotonic()

    def epoch_start(self, epoch, epochs, steps, start_step):
        self.epoch = epoch
        self.window = dict(loss_sum=0.0, correct=0, seen=0, at=time.monotonic())

    def step(self, step, loss, running):
        self.job.between_steps()
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_SECONDS or step == self.job.steps_per_epoch:
            self.last_progress = now
            self.job.progress_event(self.epoch, step, running, self.window, now)
            self.window = dict(loss_sum=running["loss_sum"], correct=running["correct"],
                               seen=running["seen"], at=now)
        if now - self.last_snapshot >= SNAPSHOT_SECONDS and step < self.job.steps_per_epoch:
            self.job.snapshot(self.epoch, step)
            self.last_snapshot = time.monotonic()

    def log(self, point):
        pass

    def epoch_end(self, stats, epochs):
        self.job.epoch_event(stats)
        self.job.snapshot(stats["epoch"], self.job.steps_per_epoch)
        self.last_snapshot = time.monotonic()

    def close(self):
        pass


def first_filters(runner):
    """``(layer index, filters, biases)`` of the first layer with filters in ``runner.info``
    (``/api/model``'s format: filters ``(F, k, k, C)``), or ``(None, None, None)``."""
    for entry in runner.info["layers"]:
        if "filters" in entry:
            return entry["index"], entry["filters"], entry["biases"]
    return None, None, None


class TrainingJob:
    """One training run. ``settings``: ``{"model", "epochs", "train_size", "lr", "batch_size",
    "optimizer", "lr_decay", "shift", "seed", "test_size"}``, and ``"rotate"``, ``"scale"`` (0 if
    absent); ``data``: MNIST as ``load_mnist`` returns it (uint8 images); ``publish(name, data,
    new_job=False)``: where events go; ``finish(job)``: called in the job's thread once it has
    ended, before ``done`` is sent (it may set ``served``, ``checkpoint``, ``message``)."""

    def __init__(self, job_id, settings, data, publish, finish, between_steps=lambda: None):
        self.id, self.settings, self.publish, self.finish = job_id, settings, publish, finish
        self.between_steps = between_steps
        self.status = "running"
        self.history = []            # the epoch events
        self.progress = None         # the latest progress event
        self.result = None           # the done event
        self.latest_runner = None    # a ModelRunner of the latest snapshot
        self.served = False
        self.checkpoint = None
        self.message = ""
        self.skip_final_test = False  # set when the server shuts down: end fast
        self.started = time.monotonic()
        self._stop = False
        self.trainer = self._build_trainer(data)
        self.steps_per_epoch = self.trainer.steps_per_epoch
        self.thread = threading.Thread(target=self._run, name=f"training-job-{job_id}", daemon=True)

    def _build_trainer(self, data):
        """The ``Trainer`` for the settings, as ``python -m scratchcnn.train`` builds it, on the
        fast engine; the test set (first ``test_size`` images) is evaluated after every epoch."""
        s = self.settings
        train_x, train_y, test_x, test_y = data
        train_x, train_y = first_n(train_x, train_y, s["train_size"])
        test_x, test_y = first_n(test_x, test_y, s["test_size"])
        self.test = (normalize(test_x), test_y.astype(np.int64))
        return build_trainer(s, (normalize(train_x), train_y.astype(np.int64)), val=self.test,
                             report=JobReport(self), engine=engine.FastEngine())

    @property
    def network(self):
        return self.trainer.network

    @property
    def running(self):
        return self.status == "running"

    def start(self):
        """Send ``start`` and the first snapshot (so ``latest_runner`` is never None once the
        job is known), then train in the job's thread."""
        self.publish("start", {"job": self.id, "settings": self.settings,
                               "steps_per_epoch": self.steps_per_epoch}, new_job=True)
        self.snapshot(1, 0)
        self.thread.start()

    def stop(self):
        """Ask the trainer to stop at the next step boundary (``done`` follows, status ``stopped``)."""
        self._stop = True
        self.trainer.stop_requested = True

    # ------------------------------------------------------------------ in the job's thread

    def _run(self):
        # BLAS threads as `python -m scratchcnn.train` uses them for this model (one for the seed
        # network: two threads spinning beside the request threads slow both, see
        # benchmarks/README.md); the count is process-wide, so the server's own setting
        # (SERVING_BLAS_USE) comes back when the job ends.
        engine.configure(engine.training_use(self.settings["model"]))
        try:
            self.trainer.fit(self.settings["epochs"])
            status = "completed"
        except TrainingStopped:
            status = "stopped"
        except TrainingDiverged as e:
            status, self.message = "diverged", f"{e}; the page still serves the network it had"
        except Exception as e:  # a bug of ours: say so in the event, keep serving
            traceback.print_exc()
            status, self.message = "failed", f"training failed: {e!r} (see the server's output)"
        self._finish(status)

    def _finish(self, status):
        test_accuracy = self.history[-1]["test_accuracy"] if self.history else None
        if status == "stopped":
            self.snapshot(self.trainer.epoch + 1, self.trainer.step)  # the network kept
            if not self.skip_final_test:
                test_accuracy = float(self.trainer.engine.evaluate(self.network, *self.test)[1])
        self.final_test_accuracy = test_accuracy
        self.final_status = status
        try:
            self.finish(self)
        except Exception as e:  # serving or saving failed: report it, the job still ends
            traceback.print_exc()
            self.message = f"{self.message} {e}".strip()
        self.result = {"job": self.id, "status": status, "test_accuracy": test_accuracy,
                       "seconds": round(time.monotonic() - self.started, 3), "served": self.served,
                       "checkpoint": self.checkpoint, "message": self.message}
        engine.configure(SERVING_BLAS_USE)
        self.status = status
        self.publish("done", self.result)

    def progress_event(self, epoch, step, running, window, now):
        seen = running["seen"] - window["seen"]
        if not seen:
            return
        self.progress = {
            "job": self.id, "epoch": epoch, "epochs": self.settings["epochs"], "step": step,
            "steps_per_epoch": self.steps_per_epoch,
            "position": round(epoch - 1 + step / self.steps_per_epoch, 5),
            "loss": (running["loss_sum"] - window["loss_sum"]) / seen,
            "accuracy": (running["correct"] - window["correct"]) / seen,
            "images_per_second": round(seen / max(now - window["at"], 1e-6), 1),
            "seconds": round(now - self.started, 3)}
        self.publish("progress", self.progress)

    def epoch_event(self, stats):
        event = {"job": self.id, "epoch": stats["epoch"], "train_loss": stats["train_loss"],
                 "train_accuracy": stats["train_accuracy"], "test_loss": stats["val_loss"],
                 "test_accuracy": stats["val_accuracy"], "seconds": round(stats["seconds"], 3)}
        self.history.append(event)
        self.publish("epoch", event)

    def snapshot(self, epoch, step):
        """Copy the network (we are between two steps), make it ``latest_runner``, send its filters."""
        runner = ModelRunner(copy.deepcopy(self.network),
                             f"{self.settings['model']} being trained (job {self.id})")
        self.latest_runner = runner
        layer, filters, biases = first_filters(runner)
        self.publish("snapshot", {"job": self.id, "epoch": epoch, "step": step,
                                  "position": round(epoch - 1 + step / self.steps_per_epoch, 5),
                                  "layer": layer, "filters": filters, "biases": biases})

    def describe(self):
        """What ``GET /api/train`` returns about this job."""
        return {"job": self.id, "status": self.status, "settings": self.settings,
                "steps_per_epoch": self.steps_per_epoch, "history": self.history,
                "progress": self.progress, "result": self.result}
