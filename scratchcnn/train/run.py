"""``Run``: one training run of the command line, from its plan (``settings.py``) to its
results: the data, the trainer, the checkpoints, the metrics and the plot."""
import json

import numpy as np

from ..atomic import atomic_write
from ..checkpoint import save_checkpoint
from ..data import first_n, load_mnist, normalize, train_val_split
from ..engine import ENGINES
from ..exercises import learner
from ..report import ConsoleReport
from ..trainer import build_trainer
from .options import augmentation_parts
from .settings import reading_training_state


class Run:
    """One training run: its settings, data and trainer (network, optimizer, engine)."""

    def __init__(self, args, plan):
        self.args, self.plan = args, plan
        self.settings = plan.settings
        self.checkpoint_path = args.save or args.resume
        # Fast, or the network's own plain steps; a learner's layers always run plainly.
        self.engine = ENGINES["plain" if args.layers else args.engine]()
        self.start_epoch = 0  # completed epochs when this process took over the run

    @property
    def notes(self):
        return self.plan.notes

    def prepare(self):
        """Load the data and make the trainer; raises MnistUnavailableError, or CheckpointError
        for a resumed position that can't be read."""
        self.load_data()
        self.trainer = self._make_trainer()
        self.start_epoch = self.trainer.epoch

    def load_data(self):
        """The training, validation and test images, as the settings ask, normalised."""
        s = self.settings
        dtype = np.dtype(s["dtype"])
        self.validate_on_test = not s["val_size"]
        train_x, train_y, test_x, test_y = load_mnist(self.args.data_dir)
        train_y, test_y = train_y.astype(np.int64), test_y.astype(np.int64)
        if s["val_size"]:
            train_x, train_y, val_x, val_y = train_val_split(train_x, train_y, s["val_size"], s["seed"])
            self.val = (normalize(val_x, dtype), val_y)
        if s["train_size"]:
            train_x, train_y = first_n(train_x, train_y, min(s["train_size"], len(train_y)))
        if s["test_size"]:
            test_x, test_y = first_n(test_x, test_y, min(s["test_size"], len(test_y)))
        self.train_x, self.train_y = normalize(train_x, dtype), train_y
        self.test_x, self.test_y = normalize(test_x, dtype), test_y
        if self.validate_on_test:
            self.val = (self.test_x, self.test_y)  # reported per epoch as "test"

    def _make_trainer(self):
        """The trainer of the plan's network (or a fresh one), reporting to the console, on the
        resumed checkpoint's position if there is one."""
        self.report = ConsoleReport(quiet=self.args.quiet, val_name="test" if self.validate_on_test else "val")
        plan = self.plan
        trainer = build_trainer(self.settings, (self.train_x, self.train_y), network=plan.network,
                                optimizer=plan.optimizer, val=self.val, report=self.report,
                                engine=self.engine, log_every=self.args.log_every)
        if plan.trainer_state is not None:
            with reading_training_state(self.args.resume):
                trainer.load_state_dict(plan.trainer_state)
        return trainer

    def describe(self):
        s, t = self.settings, self.trainer
        layers = " -> ".join(type(layer).__name__ for layer in t.network.layers)
        lines = [f"Model {s['model']}{' (loop layers)' if s['loop'] else ''}: {layers}",
                 f"Data: train {len(self.train_y):,}, " +
                 (f"test {len(self.test_y):,} (also reported after every epoch)" if self.validate_on_test
                  else f"validation {len(self.val[1]):,}, test {len(self.test_y):,}"),
                 f"Training: {plural(s['epochs'], 'epoch')}, batch {s['batch_size']}, {s['optimizer']} lr {s['lr']:g}"
                 + (f" from epoch {s['lr_from_epoch'] + 1}" if s["lr_from_epoch"] else "")
                 + (f" x{s['lr_decay']:g} per epoch" if s["lr_decay"] != 1 else "")
                 + "".join(f", {part}" for part in augmentation_parts(s)) + f", seed {s['seed']}"]
        if self.engine.name == "plain":
            lines.append("Engine: plain (the network's own train_step, whole batches on this thread)")
        if t.epoch or t.step:
            lines.append(f"Resuming after epoch {t.epoch}" + (f", step {t.step}" if t.step else ""))
        return "\n".join(lines)

    def metrics(self, status, test=None):
        t, s = self.trainer, self.settings
        return dict(model=s["model"], status=status, hyperparameters=s, changes=self.plan.changes,
                    epochs=t.history,
                    partial_epoch=t.partial_epoch(),
                    test_loss=test[0] if test else None, test_accuracy=test[1] if test else None,
                    train_seconds=t.train_seconds, train_size=len(self.train_y),
                    val_size=s["val_size"], test_size=len(self.test_y),
                    validation="test set" if self.validate_on_test else "held-out training images",
                    steps=t.step_log, numpy_version=np.__version__)

    def save(self, status):
        """Checkpoint the run (atomically) to ``--save`` / the resumed file."""
        if not self.checkpoint_path:
            return
        t = self.trainer
        network = learner.ordinary_network(t.network) if self.args.layers else t.network
        save_checkpoint(self.checkpoint_path, network, t.optimizer, model=self.settings["model"],
                        epoch=t.epoch, epochs=self.settings["epochs"],
                        hyperparameters=self.settings, changes=self.plan.changes, metrics=self.metrics(status),
                        trainer=t.state_dict())

    def fit(self):
        """Train epoch by epoch, saving after each; returns when done."""
        self.trainer.fit(self.settings["epochs"], on_epoch_end=lambda trainer: self.save("training"))

    @property
    def trained_this_run(self):
        """Whether this process trained an epoch, so the last history entry is of these weights
        on this run's test set (a resumed run with no epoch left has only older ones)."""
        return self.trainer.epoch > self.start_epoch

    def test(self):
        """``(loss, accuracy)`` on the test set (reusing the last epoch's if it was the test set)."""
        last = self.trainer.history[-1] if self.trainer.history else None
        if self.validate_on_test and last and self.trained_this_run and last["val_loss"] is not None:
            return last["val_loss"], last["val_accuracy"]
        return self.engine.evaluate(self.trainer.network, self.test_x, self.test_y)

    def write_outputs(self, status, test=None):
        metrics = self.metrics(status, test)
        if self.args.metrics:
            write_json(self.args.metrics, metrics)
        if self.args.plot and (metrics["epochs"] or metrics["steps"]):
            from ..viz import plot_training_curves  # matplotlib only when a plot is asked for
            plot_training_curves(metrics, path=self.args.plot)


def plural(count, word):
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def write_json(path, data):
    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=2)
