"""The training loop behind ``python -m scratchcnn.train``, usable on its own::

    trainer = Trainer(network, Adam(1e-3), train_x, train_y, batch_size=64, seed=0,
                      val=(val_x, val_y), report=ConsoleReport())   # scratchcnn.report
    history = trainer.fit(epochs=3)        # one dict per epoch, see ``Trainer.fit``

Each step is ``network.train_step``, on the calling thread with the whole batch, so a breakpoint
in a layer stops there. ``engine=FastEngine()`` (``scratchcnn.engine``) runs the same steps and
evaluations faster, as ``python -m scratchcnn.train`` does.

A ``Trainer`` walks the training set in shuffled minibatches, one epoch at a time, and keeps
everything needed to stop at any step and later continue *exactly* where it stopped
(``state_dict`` / ``load_state_dict``): the position in the epoch, the shuffle generator's
state at the start of the epoch (so the same order is drawn again), the running sums and the
history. Together with the network's weights, its dropout generators and the optimizer's
state (all in a checkpoint) this makes a resumed run end with the same weights and metrics as
an uninterrupted one.

What is printed is the job of a report object (``scratchcnn.report``); the trainer only computes.
"""
import copy
import math
import time

import numpy as np

from .data.augment import affine_augment, augment_rng
from .data.preprocess import random_shifts
from .engine import PlainEngine
from .models import build_model
from .network import TrainingDiverged
from .optim import OPTIMIZERS
from .report import SilentReport


class TrainingStopped(KeyboardInterrupt):
    """A stop was requested (Ctrl-C) and the trainer halted between two steps."""


def nice_log_every(steps_per_epoch, max_lines=5):
    """The smallest round step count (1, 2, 5, 10, 20, 50, ...) that logs at most ``max_lines``
    times per epoch, e.g. 500 for 1,875 steps (3 lines)."""
    for power in range(0, 12):
        for mantissa in (1, 2, 5):
            every = mantissa * 10 ** power
            if steps_per_epoch / every <= max_lines:
                return every
    return steps_per_epoch


class Trainer:
    """Minibatch training of a ``Network`` with an optimizer.

    ``train_x`` ``(N, 28, 28)`` normalised floats, ``train_y`` ``(N,)`` int64. ``val`` is an
    optional ``(images, labels)`` pair evaluated after every epoch. The learning rate of epoch
    ``e`` (counting from 0) is ``lr * lr_decay ** (e - lr_from_epoch)``, ``lr`` the optimizer's
    rate when the trainer is made (``lr_from_epoch`` > 0: a resumed run restarted its schedule
    there, see ``scratchcnn.resuming``). Augmentation: ``shift`` > 0 moves every
    training image by up to that many pixels, ``rotate`` turns it by up to that many degrees and
    ``scale`` resizes it by up to that fraction (``scratchcnn.data.augment``), each image drawn
    afresh at every step. ``engine`` runs the steps and evaluations (None: ``PlainEngine``, the
    network's own methods).
    """

    def __init__(self, network, optimizer, train_x, train_y, *, batch_size, seed=0, lr_decay=1.0,
                 lr_from_epoch=0, shift=0, rotate=0.0, scale=0.0, val=None, report=None, log_every=0,
                 engine=None):
        self.network, self.optimizer = network, optimizer
        self.engine = engine if engine is not None else PlainEngine()
        self.train_x, self.train_y = train_x, train_y
        self.batch_size, self.seed, self.lr_decay = batch_size, seed, lr_decay
        self.shift, self.rotate, self.scale = shift, rotate, scale
        self.base_lr, self.lr_from_epoch = optimizer.lr, lr_from_epoch
        self.val = val
        self.report = report or SilentReport()
        self.steps_per_epoch = math.ceil(len(train_y) / batch_size)
        self.log_every = log_every or nice_log_every(self.steps_per_epoch)
        self.shuffle_rng = np.random.default_rng(seed)
        self.stop_requested = False   # set from a signal handler; checked between steps
        # What a checkpoint must hold to continue exactly (see state_dict):
        self.epoch = 0                # completed epochs
        self.step = 0                 # completed steps of the current epoch
        self.epoch_rng_state = None   # shuffle generator state before this epoch's order was drawn
        self.running = dict(loss_sum=0.0, correct=0, seen=0, seconds=0.0)  # this epoch so far
        self.history = []             # one dict per completed epoch
        self.step_log = []            # the logged "past N steps" points, for curves

    # ------------------------------------------------------------------ training

    def fit(self, epochs, on_epoch_end=None):
        """Train until ``epochs`` epochs are complete in total; returns ``history``.

        ``on_epoch_end(trainer)``, if given, is called after each epoch (to save a checkpoint).

        Each history entry: ``epoch`` (1-based), ``train_loss``, ``train_accuracy``,
        ``val_loss``, ``val_accuracy`` (None without ``val``), ``seconds`` (training time),
        ``images_per_second``, ``lr``. Raises ``TrainingDiverged`` on a NaN or infinite loss
        and ``TrainingStopped`` when ``stop_requested`` is set; in both cases the network and
        ``state_dict()`` describe the last completed step.
        """
        while self.epoch < epochs:
            self._run_epoch(epochs)
            if on_epoch_end is not None:
                on_epoch_end(self)
        return self.history

    def _run_epoch(self, epochs):
        n = len(self.train_y)
        if self.epoch_rng_state is None:  # a fresh epoch (a resumed one keeps its saved state)
            self.epoch_rng_state = copy.deepcopy(self.shuffle_rng.bit_generator.state)
        self.shuffle_rng.bit_generator.state = copy.deepcopy(self.epoch_rng_state)
        order = self.shuffle_rng.permutation(n)
        self.optimizer.lr = self.base_lr * self.lr_decay ** (self.epoch - self.lr_from_epoch)
        self.network.train()
        self.report.epoch_start(self.epoch + 1, epochs, self.steps_per_epoch, self.step)
        window = dict(loss_sum=0.0, correct=0, seen=0, steps=0)

        while self.step < self.steps_per_epoch:
            if self.stop_requested:
                raise TrainingStopped()
            started = time.perf_counter()
            batch = order[self.step * self.batch_size:(self.step + 1) * self.batch_size]
            x, labels = self.augment(self.train_x[batch]), self.train_y[batch]
            loss, correct = self._train_step(x, labels)
            self.step += 1
            for sums in (self.running, window):
                sums["loss_sum"] += loss * len(batch)
                sums["correct"] += correct
                sums["seen"] += len(batch)
            window["steps"] += 1
            self.running["seconds"] += time.perf_counter() - started
            self.report.step(self.step, loss, self.running)
            if self.step % self.log_every == 0:
                self._log_window(window)

        self.epoch += 1
        self.step = 0
        self.epoch_rng_state = None
        self.history.append(self._epoch_stats())
        self.running = dict(loss_sum=0.0, correct=0, seen=0, seconds=0.0)
        self.report.epoch_end(self.history[-1], epochs)

    def augment(self, x):
        """The minibatch ``x`` ``(B, 28, 28)`` as this step trains on it, ``(B, 28, 28)``.

        Seeded by ``(seed, epoch, step)``, so a resumed run draws the same images. Shifts alone
        take whole pixels from ``random_shifts`` (the runs before rotation and scaling existed
        stay exactly as they were); with rotation or scaling, ``affine_augment`` does all three
        in one bilinear resampling.
        """
        rng = augment_rng(self.seed, self.epoch, self.step)
        if self.rotate or self.scale:
            return affine_augment(x, rng, self.rotate, self.scale, self.shift)
        if self.shift:
            return random_shifts(x, self.shift, rng)
        return x

    def _train_step(self, x, labels):
        """``Network.train_step``, with where it happened added to a divergence."""
        try:
            return self.engine.train_step(self.network, x, labels, self.optimizer)
        except TrainingDiverged as e:
            where = (f" at epoch {self.epoch + 1}, step {self.step + 1} "
                     f"(learning rate {self.optimizer.lr:g})")
            raise TrainingDiverged(e.loss, where) from None

    def _log_window(self, window):
        """Record and report the tutorial's "Past N steps" line, then start a new window."""
        point = dict(epoch=round(self.epoch + self.step / self.steps_per_epoch, 6),
                     step=self.step, steps=window["steps"],
                     loss=window["loss_sum"] / window["seen"],
                     accuracy=window["correct"] / window["seen"])
        self.step_log.append(point)
        self.report.log(point)
        window.update(loss_sum=0.0, correct=0, seen=0, steps=0)

    def _epoch_stats(self):
        r = self.running
        stats = dict(epoch=self.epoch, train_loss=r["loss_sum"] / r["seen"],
                     train_accuracy=r["correct"] / r["seen"], val_loss=None, val_accuracy=None,
                     seconds=r["seconds"], images_per_second=r["seen"] / max(r["seconds"], 1e-9),
                     lr=self.optimizer.lr)
        if self.val is not None:
            stats["val_loss"], stats["val_accuracy"] = self.engine.evaluate(self.network, *self.val)
        return stats

    def partial_epoch(self):
        """Stats of the epoch in progress (after an interruption), or None at an epoch boundary."""
        r = self.running
        if not r["seen"]:
            return None
        return dict(epoch=self.epoch + 1, step=self.step, steps=self.steps_per_epoch,
                    train_loss=r["loss_sum"] / r["seen"], train_accuracy=r["correct"] / r["seen"],
                    seconds=r["seconds"], images_per_second=r["seen"] / max(r["seconds"], 1e-9))

    @property
    def train_seconds(self):
        return sum(e["seconds"] for e in self.history) + self.running["seconds"]

    # ------------------------------------------------------------------ resuming

    def state_dict(self):
        """JSON-able position of the run (for checkpoint meta). Weights are not included."""
        rng_state = self.epoch_rng_state or self.shuffle_rng.bit_generator.state
        return dict(epoch=self.epoch, step=self.step, shuffle_rng_state=copy.deepcopy(rng_state),
                    running=dict(self.running), history=copy.deepcopy(self.history),
                    step_log=copy.deepcopy(self.step_log))

    def load_state_dict(self, state):
        """Continue from ``state_dict()``'s output."""
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.shuffle_rng.bit_generator.state = copy.deepcopy(state["shuffle_rng_state"])
        self.epoch_rng_state = copy.deepcopy(state["shuffle_rng_state"])
        self.running = dict(state["running"])
        self.history = list(state["history"])
        self.step_log = list(state.get("step_log", []))


def build_trainer(settings, train, *, network=None, optimizer=None, val=None, report=None,
                  engine=None, log_every=0):
    """The ``Trainer`` of a run's ``settings`` on ``train`` = ``(images (N, 28, 28) normalised,
    labels (N,) int64)``: what ``python -m scratchcnn.train`` and the page's training jobs both
    train with.

    ``settings`` has ``model``, ``seed``, ``optimizer``, ``lr``, ``batch_size``, ``lr_decay`` and
    ``shift``, and may have ``dtype`` (float32), ``loop`` (False), ``rotate``, ``scale`` and
    ``lr_from_epoch`` (0). The network and optimizer are built afresh from them unless given
    (a resumed run's); the optimizer's rate is set to ``settings["lr"]`` either way, since the
    trainer decays each epoch's rate from it.
    """
    s = settings
    if network is None:
        network = build_model(s["model"], np.dtype(s.get("dtype", "float32")), s["seed"],
                              loop=s.get("loop", False))
    if optimizer is None:
        optimizer = OPTIMIZERS[s["optimizer"]](s["lr"])
    optimizer.lr = s["lr"]
    train_x, train_y = train
    return Trainer(network, optimizer, train_x, train_y, batch_size=s["batch_size"], seed=s["seed"],
                   lr_decay=s["lr_decay"], lr_from_epoch=s.get("lr_from_epoch", 0), shift=s["shift"],
                   rotate=s.get("rotate", 0.0), scale=s.get("scale", 0.0), val=val, report=report,
                   log_every=log_every, engine=engine)
