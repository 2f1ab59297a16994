"""What a training run prints: the report objects a ``Trainer`` calls, and the epoch lines.

``Trainer`` only computes; at each point of a run it calls its report (``epoch_start``,
``step``, ``log``, ``epoch_end``, ``close``). ``SilentReport`` prints nothing (the default, for
code and tests); ``ConsoleReport`` is what ``python -m scratchcnn.train`` prints.

The progress bars come from ``tqdm.auto``: a widget in Jupyter, a text bar in a terminal.
"""
import sys
import warnings

from tqdm import TqdmWarning
from tqdm.std import tqdm as text_bar

with warnings.catch_warnings():
    # In a notebook without ipywidgets, tqdm.auto warns ("IProgress not found") and falls back
    # to text bars; a terminal gets those text bars without a word, so a notebook does too.
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm as progress_bar
    from tqdm.autonotebook import tqdm as _chosen  # what tqdm.auto chose (it adds asyncio)

IN_NOTEBOOK = _chosen is not text_bar  # tqdm.auto found a Jupyter kernel with widgets


class SilentReport:
    """The report interface; prints nothing."""

    def epoch_start(self, epoch, epochs, steps, start_step):
        """Epoch ``epoch`` of ``epochs`` (1-based) begins, at ``start_step`` of ``steps``."""

    def step(self, step, loss, running):
        """Step ``step`` is done; ``running`` holds the epoch's ``loss_sum``, ``correct``, ``seen``."""

    def log(self, point):
        """A "past N steps" point: ``step``, ``steps``, ``loss``, ``accuracy``."""

    def epoch_end(self, stats, epochs):
        """An epoch is done; ``stats`` is its history entry (see ``Trainer.fit``)."""

    def close(self):
        """The run stopped (finished or interrupted): tidy up what is on screen."""


def format_epoch(stats, epochs, val_name="val"):
    """``Epoch 1/3: train loss 0.2961 acc 91.43% | val loss ... | 8.2 s, 7,320 images/s``."""
    text = (f"Epoch {stats['epoch']}/{epochs}: train loss {stats['train_loss']:.4f} "
            f"acc {stats['train_accuracy']:.2%}")
    if stats.get("val_loss") is not None:
        text += f" | {val_name} loss {stats['val_loss']:.4f} acc {stats['val_accuracy']:.2%}"
    return text + f" | {stats['seconds']:.1f} s, {stats['images_per_second']:,.0f} images/s"


def format_partial_epoch(partial):
    """``Epoch 2 stopped at step 3/10: train loss 0.4012 acc 88.54%`` (``Trainer.partial_epoch``)."""
    return (f"Epoch {partial['epoch']} stopped at step {partial['step']}/{partial['steps']}: "
            f"train loss {partial['train_loss']:.4f} acc {partial['train_accuracy']:.2%}")


def format_log_point(point):
    """The tutorial's ``[Step 100] Past 100 steps: Average Loss 2.288 | Accuracy: 15%``."""
    return (f"[Step {point['step']}] Past {point['steps']} steps: Average Loss "
            f"{point['loss']:.3f} | Accuracy: {point['accuracy']:.0%}")


class ConsoleReport(SilentReport):
    """What ``python -m scratchcnn.train`` prints.

    A progress bar per epoch with the running loss and accuracy (when ``stream`` is a
    terminal, or as a widget in Jupyter), the tutorial's ``[Step 100] Past 100 steps: ...``
    line every ``log_every`` steps and a summary per epoch. ``quiet`` keeps only the summaries.
    """

    def __init__(self, quiet=False, stream=None, bars=None, val_name="val"):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        is_tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bars = ((is_tty or IN_NOTEBOOK) and not quiet) if bars is None else bars
        self.val_name = val_name
        self.bar = None

    def print(self, text):
        if self.bar is not None:
            self.bar.write(text, file=self.stream)  # above the bar, not through it
        else:
            print(text, file=self.stream, flush=True)

    def epoch_start(self, epoch, epochs, steps, start_step):
        if self.bars:
            self.bar = progress_bar(total=steps, initial=start_step, desc=f"Epoch {epoch}/{epochs}",
                                    unit="batch", file=self.stream, leave=False, dynamic_ncols=True)

    def step(self, step, loss, running):
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {running['loss_sum'] / running['seen']:.4f} "
                                     f"acc {running['correct'] / running['seen']:.2%}", refresh=False)
            self.bar.update(1)

    def log(self, point):
        if not self.quiet:
            self.print(format_log_point(point))

    def epoch_end(self, stats, epochs):
        self.close()
        self.print(format_epoch(stats, epochs, self.val_name))

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
