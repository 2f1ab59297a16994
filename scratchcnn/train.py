"""``python -m scratchcnn.train``: train a network on MNIST and test it.

    python -m scratchcnn.train                       # the tutorial network, 3 epochs, ~98% in seconds
    python -m scratchcnn.train --model classic       # the deeper network, > 99.2%
    python -m scratchcnn.train --model modern        # BatchNorm and affine augmentation, >= 99.6%
    python -m scratchcnn.train --resume run.npz --epochs 12 --lr 1e-4   # fine-tune a saved run
    python -m scratchcnn.train --train-size 1000 --test-size 1000 --loop   # the tutorial's way

This module is the command line only: parsing and checking options, loading the data,
building or resuming the run, and writing checkpoints, metrics and plots. The training loop
itself is ``scratchcnn.training.Trainer``, and what it prints while training
``scratchcnn.report.ConsoleReport``. Other code may call ``main([...])``; it returns an exit
code (0 done, 1 error, 2 bad option, 130 interrupted; ``scratchcnn.cli``) instead of exiting.
"""
import argparse
import contextlib
import json
import os
import signal
import sys
import threading

import numpy as np

from . import cli, loops
from . import resuming, runtime
from .atomic import atomic_write
from .checkpoint import CheckpointError, architecture_of, load_checkpoint, save_checkpoint
from .cli import TEST_SET_SIZE, TRAIN_SET_SIZE
from .data import MnistUnavailableError, first_n, load_mnist, normalize, train_val_split
from .exercises import learner
from .models import MODEL_NAMES, TRAINING_DEFAULTS, build_model
from .optim import OPTIMIZERS
from .report import ConsoleReport, format_epoch, format_partial_epoch
from .training import Trainer, TrainingDiverged, TrainingStopped

# Options that define a run; a resumed run takes them from its checkpoint.
RUN_OPTIONS = ("model", "batch_size", "lr", "optimizer", "lr_decay", "shift", "rotate", "scale",
               "seed", "dtype", "train_size", "val_size", "loop")


# ---------------------------------------------------------------------- options

def build_parser():
    defaults = "; ".join(f"{name}: {d['epochs']} epochs, batch {d['batch_size']}, {d['optimizer']} "
                         f"lr {d['lr']:g}" + (f" x{d['lr_decay']:g}/epoch" if d["lr_decay"] != 1 else "")
                         + "".join(f", {part}" for part in augmentation_parts(d))
                         for name, d in TRAINING_DEFAULTS.items())
    parser = argparse.ArgumentParser(
        prog="python -m scratchcnn.train",
        description="Train a from-scratch NumPy network on MNIST, then test it on the test set.",
        epilog=f"Defaults per model ({defaults}). A user should not need to tune them. "
               "Ctrl-C stops cleanly after the current step (and saves with --save).")
    add_model_options(parser.add_argument_group("what to train"))
    add_training_options(parser.add_argument_group("how to train (defaults depend on --model)"))
    add_data_options(parser.add_argument_group("data"))
    files = parser.add_argument_group("files")
    files.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) after every epoch")
    files.add_argument("--resume", metavar="PATH",
                       help="continue the run saved in this checkpoint (and keep saving to it "
                            "unless --save says otherwise); --lr, --lr-decay, --shift, --rotate, "
                            "--scale (and --batch-size between epochs) may change, to fine-tune")
    files.add_argument("--metrics", metavar="PATH", help="write the per-epoch and test metrics as JSON")
    files.add_argument("--plot", metavar="PATH", help="write the loss and accuracy curves as a PNG")
    out = parser.add_argument_group("output")
    out.add_argument("--log-every", metavar="N", type=cli.number(int, 0, what="a step count >= 0"), default=0,
                     help="print the tutorial's 'Past N steps' line every N steps (default: "
                          "a round number giving at most 5 lines per epoch)")
    out.add_argument("--quiet", action="store_true", help="print only the epoch summaries and the test result")
    return parser


def augmentation_parts(settings):
    """The augmentation a run uses, in words: e.g. ``["shifts up to 2 px", "turns up to 10
    degrees", "sizes 90% to 110%"]`` (empty without augmentation)."""
    shift, rotate, scale = settings["shift"], settings.get("rotate", 0), settings.get("scale", 0)
    return ([f"shifts up to {shift} px"] if shift else []) + \
           ([f"turns up to {rotate:g} degrees"] if rotate else []) + \
           ([f"sizes {1 - scale:.0%} to {1 + scale:.0%}"] if scale else [])


def add_model_options(group):
    group.add_argument("--model", choices=MODEL_NAMES, default=None,
                       help="seed: the tutorial's Conv3x3(8) -> MaxPool2 -> Softmax (default); "
                            "classic: conv-relu-conv-relu-pool-conv-relu-pool-dense; "
                            "modern: two blocks of (conv-batchnorm-relu) x2-pool, dense-batchnorm-"
                            "relu-dropout, trained on rotated, scaled and shifted images; "
                            "mlp: 784-512-512-10 with dropout")
    group.add_argument("--dtype", choices=("float32", "float64"), default=None,
                       help="parameter and input precision (default float32, faster)")
    group.add_argument("--loop", action="store_true", default=None,
                       help=f"seed model only: use the tutorial's per-image loop layers "
                            f"(scratchcnn.loops) to compare; slow, about {loops.MS_PER_TRAINING_IMAGE} ms "
                            "per training image (hours for all 60,000)")
    learner.add_option(group, "trained as --model seed is, saved (--save) as an ordinary checkpoint")


def add_training_options(group):
    group.add_argument("--epochs", metavar="N", type=cli.number(int, 0, what="an epoch count >= 0"),
                       help="total epochs (with --resume, including those already done)")
    group.add_argument("--batch-size", metavar="N", type=cli.number(int, 1, what="a batch size >= 1"))
    group.add_argument("--lr", metavar="RATE",
                       help="learning rate (with --resume, a different rate is the resumed "
                            "epoch's, decaying from there)",
                       type=cli.number(float, 0, low_open=True, what="a learning rate > 0"))
    group.add_argument("--optimizer", choices=sorted(OPTIMIZERS))
    group.add_argument("--lr-decay", metavar="FACTOR",
                       type=cli.number(float, 0, 1, low_open=True, what="a factor in (0, 1]"),
                       help="multiply the learning rate by this after every epoch")
    group.add_argument("--shift", metavar="N", type=cli.number(int, 0, 4, what="a pixel count from 0 to 4"),
                       help="augment: move training images by up to this many pixels")
    group.add_argument("--rotate", metavar="DEGREES",
                       type=cli.number(float, 0, 180, what="an angle in degrees from 0 to 180"),
                       help="augment: turn training images by up to this many degrees either way")
    group.add_argument("--scale", metavar="FRACTION",
                       type=cli.number(float, 0, 0.5, what="a fraction from 0 to 0.5"),
                       help="augment: resize training images by up to this fraction (0.1: 90%% to 110%%)")
    group.add_argument("--seed", metavar="N", type=cli.number(int, 0, what="a seed >= 0"),
                       help="seed for the initial weights, shuffling and dropout (default 0)")


def add_data_options(group):
    group.add_argument("--train-size", metavar="N", type=cli.image_count(TRAIN_SET_SIZE),
                       help=f"train on the first N training images (default all {TRAIN_SET_SIZE:,})")
    group.add_argument("--test-size", metavar="N", type=cli.image_count(TEST_SET_SIZE),
                       help=f"test on the first N test images (default all {TEST_SET_SIZE:,})")
    group.add_argument("--val-size", metavar="N", type=cli.image_count(TRAIN_SET_SIZE - 1, low=0),
                       help="hold out N random training images to validate on after each epoch "
                            "(default 0: train on all of them and report the test set each epoch)")
    group.add_argument("--data-dir", metavar="DIR", help=cli.DATA_DIR_HELP)


def parse_args(argv=None):
    """Parsed options; raises ``cli.Usage`` (argparse has printed why, exit code 2) for a bad
    option or a combination that can't work."""
    parser = build_parser()
    args = cli.parse_args(parser, argv)
    if args.loop and args.model not in (None, "seed"):
        cli.refuse(parser, "--loop: loop layers exist only for the seed model")
    learner.refuse_train_conflicts(parser, args)
    if args.train_size and args.val_size and args.train_size + args.val_size > TRAIN_SET_SIZE:
        cli.refuse(parser, f"--train-size {args.train_size:,} plus --val-size {args.val_size:,} is more "
                           f"than the {TRAIN_SET_SIZE:,} training images")
    return args


def run_settings(args):
    """The run's settings: the model's defaults, overridden by the options given."""
    model = args.model or "seed"
    settings = dict(model=model, seed=0, dtype="float32", train_size=None, val_size=0, loop=False,
                    test_size=None, lr_from_epoch=0, **TRAINING_DEFAULTS[model])
    settings.update({key: value for key, value in vars(args).items()
                     if key in settings and value is not None})
    return settings


# ---------------------------------------------------------------------- the run

@contextlib.contextmanager
def reading_training_state(path):
    """Inside: a missing or malformed entry of the checkpoint at ``path`` becomes one clear
    CheckpointError (a CheckpointError raised inside passes through as it is)."""
    try:
        yield
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path!r}: the training state in it is incomplete "
                              f"or malformed ({e!r})") from None


class Run:
    """One training run: its settings, data, network, optimizer and trainer."""

    def __init__(self, args):
        self.args = args
        self.checkpoint_path = args.save or args.resume
        self.start_epoch = 0  # completed epochs when this process took over the run
        self.changes = []     # settings changed on resuming (scratchcnn.resuming), oldest first
        self.notes = []       # printed before training

    def prepare(self):
        """Build a fresh run or restore one from ``--resume``; raises CheckpointError, or
        ValueError for an output file that can't be written."""
        args = self.args
        for option, path in (("--save", args.save), ("--metrics", args.metrics), ("--plot", args.plot)):
            check_writable(option, path)
        checkpoint = load_checkpoint(args.resume) if args.resume else None
        if checkpoint is not None:
            with reading_training_state(args.resume):
                self.settings = self._settings_from(checkpoint)
                network, optimizer = checkpoint.network, checkpoint.make_optimizer()
        else:
            self.settings = run_settings(args)
            network, optimizer = self._build()
        self._settle_epochs_and_test_size(checkpoint)
        self.load_data()
        self.trainer = self._make_trainer(network, optimizer)
        if checkpoint is not None:
            with reading_training_state(args.resume):
                self.trainer.load_state_dict(checkpoint.meta["trainer"])
        self.start_epoch = self.trainer.epoch

    def _settings_from(self, checkpoint):
        """The checkpoint's run settings, after checking it is a training run of ours, with the
        options given that may change on resuming (``scratchcnn.resuming``) applied; the
        changes go to ``self.changes`` (after the checkpoint's earlier ones)."""
        path, meta = self.args.resume, checkpoint.meta
        if "trainer" not in meta or "hyperparameters" not in meta or meta.get("model") not in MODEL_NAMES:
            raise CheckpointError(f"{path!r} is a scratchcnn checkpoint but not one saved by "
                                  "scratchcnn.train, so it can't be resumed")
        # Checkpoints from before rotation, scaling and schedule changes existed had none.
        settings = dict(dict(rotate=0.0, scale=0.0, lr_from_epoch=0), **meta["hyperparameters"])
        given = {key: value for key, value in vars(self.args).items()
                 if key in RUN_OPTIONS and value is not None}
        if "model" in given and given["model"] != settings["model"]:
            raise CheckpointError(f"{path!r} holds a {settings['model']!r} network, another "
                                  f"architecture than --model {given['model']}")
        expected = build_model(settings["model"], np.dtype(settings["dtype"]), loop=settings["loop"])
        if architecture_of(expected) != meta["architecture"]:
            raise CheckpointError(f"{path!r}: its architecture is not the one this scratchcnn "
                                  f"builds for {settings['model']!r}, so it can't be resumed")
        differing = {key: value for key, value in given.items() if settings.get(key) != value}
        epoch, step = int(meta["trainer"]["epoch"]), int(meta["trainer"]["step"])
        refused = resuming.refusals(settings, differing, epoch, step)
        if refused:
            raise CheckpointError(f"a resumed run keeps these settings of {path!r}: " + "; ".join(refused))
        self.changes = list(meta.get("changes", []))
        if differing:
            previous_rate = resuming.rate_at(settings, epoch)
            new = resuming.apply_changes(settings, differing, epoch, step)
            self.changes += new
            self.notes.append(resuming.describe_changes(new, settings, previous_rate))
        return settings

    def _build(self):
        """A fresh network and optimizer from the settings."""
        s = self.settings
        network = (learner.build_network(self.args.layers, np.dtype(s["dtype"]), s["seed"]) if self.args.layers
                   else build_model(s["model"], np.dtype(s["dtype"]), s["seed"], loop=s["loop"]))
        return network, OPTIMIZERS[s["optimizer"]](s["lr"])

    def _settle_epochs_and_test_size(self, checkpoint):
        """``--epochs`` and ``--test-size`` may change on resuming; else the checkpoint's hold."""
        s, args = self.settings, self.args
        s["test_size"] = args.test_size or s.get("test_size")
        if args.epochs is not None:
            s["epochs"] = args.epochs
        elif checkpoint is not None:
            s["epochs"] = checkpoint.meta.get("epochs", s["epochs"])

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

    def _make_trainer(self, network, optimizer):
        """The trainer of ``network``, reporting to the console."""
        s = self.settings
        self.report = ConsoleReport(quiet=self.args.quiet, val_name="test" if self.validate_on_test else "val")
        optimizer.lr = s["lr"]  # the trainer sets each epoch's decayed rate from this one
        return Trainer(network, optimizer, self.train_x, self.train_y,
                       batch_size=s["batch_size"], seed=s["seed"], lr_decay=s["lr_decay"],
                       lr_from_epoch=s["lr_from_epoch"], shift=s["shift"], rotate=s["rotate"], scale=s["scale"], val=self.val, report=self.report,
                       log_every=self.args.log_every)

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
        if t.epoch or t.step:
            lines.append(f"Resuming after epoch {t.epoch}" + (f", step {t.step}" if t.step else ""))
        return "\n".join(lines)

    def metrics(self, status, test=None):
        t, s = self.trainer, self.settings
        return dict(model=s["model"], status=status, hyperparameters=s, changes=self.changes,
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
                        hyperparameters=self.settings, changes=self.changes, metrics=self.metrics(status),
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
        return self.trainer.network.evaluate(self.test_x, self.test_y)

    def write_outputs(self, status, test=None):
        metrics = self.metrics(status, test)
        if self.args.metrics:
            write_json(self.args.metrics, metrics)
        if self.args.plot and (metrics["epochs"] or metrics["steps"]):
            from .viz import plot_training_curves  # matplotlib only when a plot is asked for
            plot_training_curves(metrics, path=self.args.plot)


def check_writable(option, path):
    """Refuse, before training, an output path whose folder can't be made or written to."""
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{option} {path}: can't create the folder {folder!r} ({e.strerror})") from None
    if not os.access(folder, os.W_OK) or os.path.isdir(path):
        raise ValueError(f"{option} {path}: can't write there")


def plural(count, word):
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def write_json(path, data):
    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=2)


class StopOnCtrlC:
    """First Ctrl-C: ask the trainer to stop after the current step (weights stay consistent).
    A second one interrupts at once. Only in the main thread (signals can't be set elsewhere)."""

    def __init__(self, trainer, stream):
        self.trainer, self.stream, self.previous = trainer, stream, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self.handle)
        return self

    def handle(self, signum, frame):
        if self.trainer.stop_requested:
            raise KeyboardInterrupt
        self.trainer.stop_requested = True
        print("\nStopping after this step (Ctrl-C again to quit at once)...", file=self.stream, flush=True)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


# ---------------------------------------------------------------------- what main prints

def announce(run, out):
    """Before training: the run's description and the warnings that apply."""
    # Now that the model is known: the seed network trains fastest on one BLAS thread, the
    # larger ones on two (scratchcnn/runtime.py has the measurements).
    blas = runtime.configure("train" if run.settings["model"] == "seed" else "train-large")["blas_threads"]
    print(run.describe(), file=out, flush=True)
    for warning in (*run.notes, runtime.contention_warning(blas), loop_warning(run), learner.estimate_line(run)):
        if warning:
            print(warning, file=out, flush=True)


def loop_warning(run):
    """How long ``--loop`` will take, or None without it."""
    if not run.settings["loop"]:
        return None
    ms_per_image = loops.MS_PER_TRAINING_IMAGE
    remaining = (run.settings["epochs"] - run.trainer.epoch) * len(run.train_y)
    minutes = remaining * ms_per_image / 60000
    duration = (f"{minutes / 60:.1f} hours" if minutes > 90 else
                f"{minutes:.0f} minutes" if minutes >= 2 else f"{minutes * 60:.0f} seconds")
    return (f"warning: --loop trains about {1000 / ms_per_image:.0f} images per second "
            f"(~{ms_per_image} ms each, measured on a 2-core machine), so this run needs about "
            f"{duration}; the vectorized layers need seconds.")


def report_divergence(run, error):
    """Training stopped on a NaN or infinite loss: say so, write what there is; returns 1."""
    run.report.close()
    where = f"; the last good checkpoint {run.checkpoint_path!r} was left as it was" \
        if run.checkpoint_path else ""
    code = cli.fail(f"training stopped: {error} (--lr){where}")
    run.write_outputs("diverged")
    return code


def report_interruption(run, interruption, out):
    """Ctrl-C: what was trained, and a checkpoint to resume from if the stop came between two
    steps (``TrainingStopped``); returns 130."""
    run.report.close()
    trainer, status = run.trainer, "interrupted"
    print(f"\nInterrupted after {trainer.train_seconds:.1f} s of training.", file=out)
    for stats in trainer.history:
        print("  " + format_epoch(stats, run.settings["epochs"], run.report.val_name), file=out)
    partial = trainer.partial_epoch()
    if partial:
        print("  " + format_partial_epoch(partial), file=out)
    if run.checkpoint_path and isinstance(interruption, TrainingStopped):
        run.save(status)
        print(f"Saved {run.checkpoint_path}; continue with --resume {run.checkpoint_path}", file=out)
    elif run.checkpoint_path:
        print(f"Not saved (stopped in the middle of a step); {run.checkpoint_path!r} holds the "
              "last completed epoch.", file=out)
    run.write_outputs(status)
    return cli.EXIT_INTERRUPTED


def report_result(run, out):
    """After training: the test result and the speed, then the checkpoint and outputs; returns
    the exit code."""
    trainer, status = run.trainer, "completed"
    test = run.test()
    print(f"Test Loss: {test[0]:.4f} | Test Accuracy: {test[1]:.2%}", file=out)
    if trainer.history:
        images = len(run.train_y) * len(trainer.history)
        print(f"Trained {plural(len(trainer.history), 'epoch')} in {trainer.train_seconds:.1f} s "
              f"({images / max(trainer.train_seconds, 1e-9):,.0f} images/s)", file=out, flush=True)
    try:
        run.save(status)
        run.write_outputs(status, test)
    except OSError as e:
        return cli.fail(e)
    return cli.EXIT_OK


def main(argv=None):
    """Run the command line; returns the exit code."""
    try:
        cli.configure_runtime("train")  # BLAS threads and allocator, before any computation
        run = Run(parse_args(argv))
        run.prepare()
    except cli.Usage as e:  # --help, or a refused option (argparse printed why)
        return e.code
    except (CheckpointError, MnistUnavailableError, ValueError) as e:
        return cli.fail(e)
    except KeyboardInterrupt:
        print("\nInterrupted before training started.", file=sys.stderr)
        return cli.EXIT_INTERRUPTED
    out = sys.stdout
    announce(run, out)
    try:
        with StopOnCtrlC(run.trainer, out):
            run.fit()
    except TrainingDiverged as e:
        return report_divergence(run, e)
    except KeyboardInterrupt as e:
        return report_interruption(run, e, out)
    except OSError as e:
        return cli.fail(e)
    return report_result(run, out)


if __name__ == "__main__":
    sys.exit(main())
