"""The train command's ``main``: plan the run, train it, and say what happened.

``main([...])`` returns an exit code (0 done, 1 error, 2 bad option, 130 interrupted;
``scratchcnn.cli``) instead of exiting, so tests and the page's startup can call it.
"""
import copy
import signal
import sys
import threading
import time

from .. import cli
from ..checkpoint import CheckpointError
from ..data import MnistUnavailableError
from .. import engine
from ..exercises import learner
from ..report import format_epoch, format_partial_epoch
from ..trainer import TrainingDiverged, TrainingStopped
from .options import parse_args
from .run import Run, plural
from .settings import plan_run


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


def announce(run, out):
    """Before training: the run's description and the warnings that apply."""
    # Now that the model is known: its BLAS thread count (scratchcnn/engine/blas.py says why).
    blas = engine.configure(engine.training_use(run.settings["model"]))["blas_threads"]
    print(run.describe(), file=out, flush=True)
    for warning in (*run.notes, engine.contention_warning(blas), loop_warning(run),
                    learner.estimate_line(run)):
        if warning:
            print(warning, file=out, flush=True)


def loop_warning(run):
    """How long ``--loop`` will take, from a timed step on a few images, or None without it."""
    if not run.settings["loop"]:
        return None
    ms_per_image = loop_ms_per_image(run.trainer.network, run.train_x, run.train_y)
    remaining = (run.settings["epochs"] - run.trainer.epoch) * len(run.train_y)
    minutes = remaining * ms_per_image / 60000
    duration = (f"{minutes / 60:.1f} hours" if minutes > 90 else
                f"{minutes:.0f} minutes" if minutes >= 2 else f"{minutes * 60:.0f} seconds")
    return (f"warning: --loop trains about {1000 / ms_per_image:.0f} images per second here "
            f"(~{ms_per_image:.0f} ms each, timed on {PROBE_IMAGES} images just now), so this run "
            f"needs about {duration}; the vectorized layers need seconds.")


PROBE_IMAGES = 4  # images in loop_ms_per_image's timed step


def loop_ms_per_image(network, images, labels):
    """Milliseconds per image of a training step (forward and backward) of ``network``, timed on
    a copy of it with the first ``PROBE_IMAGES`` images, so the run itself is untouched: the
    faster of two steps (the first pays for warming up)."""
    probe = copy.deepcopy(network)
    count = min(PROBE_IMAGES, len(labels))
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        probe.loss_and_gradients(images[:count], labels[:count])
        seconds.append(time.perf_counter() - started)
    return max(min(seconds) * 1000 / count, 1e-3)


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
        args = parse_args(argv)
        run = Run(args, plan_run(args))
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
