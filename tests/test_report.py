"""What a training run prints (``scratchcnn.report``), in a terminal, a pipe and a notebook."""
import io
import subprocess
import sys
import textwrap

import numpy as np

from scratchcnn.report import ConsoleReport, SilentReport, format_epoch, format_partial_epoch
from scratchcnn.trainer import Trainer
from scratchcnn.models import build_model
from scratchcnn.optim import SGD

STATS = dict(epoch=1, train_loss=0.29614, train_accuracy=0.91432, val_loss=0.1234,
             val_accuracy=0.9612, seconds=8.21, images_per_second=7320.4)


def test_format_epoch_and_partial_epoch():
    assert format_epoch(STATS, 3, "test") == ("Epoch 1/3: train loss 0.2961 acc 91.43% | test loss "
                                              "0.1234 acc 96.12% | 8.2 s, 7,320 images/s")
    assert "val loss" not in format_epoch(dict(STATS, val_loss=None), 3)
    partial = dict(epoch=2, step=3, steps=10, train_loss=0.40121, train_accuracy=0.88541)
    assert format_partial_epoch(partial) == "Epoch 2 stopped at step 3/10: train loss 0.4012 acc 88.54%"


class Tty(io.StringIO):
    def isatty(self):
        return True


def run_two_epochs(report):
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, (40, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 40)
    Trainer(build_model("seed"), SGD(0.01), x, y, batch_size=8, val=(x[:10], y[:10]),
            report=report, log_every=2).fit(2)


def test_console_report_in_a_pipe_prints_lines_without_bars():
    stream = io.StringIO()
    run_two_epochs(ConsoleReport(stream=stream))
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[Step 2] Past 2 steps: Average Loss ") and "| Accuracy: " in lines[0]
    assert [line[:9] for line in lines if line.startswith("Epoch")] == ["Epoch 1/2", "Epoch 2/2"]
    assert len(lines) == 2 * (2 + 1) and "\r" not in stream.getvalue()  # 2 logs + 1 summary per epoch


def test_console_report_in_a_terminal_draws_a_bar_per_epoch():
    stream = Tty()
    report = ConsoleReport(stream=stream)
    run_two_epochs(report)
    text = stream.getvalue()
    assert report.bars and "\r" in text and report.bar is None  # drawn in place, closed at the end
    assert "\rEpoch 1/2:   0%|" in text and "\rEpoch 2/2:   0%|" in text and "batch/s" in text
    shown = [line.split("\r")[-1] for line in text.split("\n")]  # what stays on screen
    assert [line[:21] for line in shown if line.startswith("Epoch")] == ["Epoch 1/2: train loss",
                                                                        "Epoch 2/2: train loss"]
    assert sum(line.startswith("[Step ") for line in shown) == 4  # above the bar, not through it


def test_quiet_and_silent_reports():
    stream = Tty()
    run_two_epochs(ConsoleReport(quiet=True, stream=stream))
    assert stream.getvalue().count("\n") == 2 and "Past" not in stream.getvalue()
    run_two_epochs(SilentReport())  # the interface: every call is accepted


def run_as_if_in(environment):
    """Import scratchcnn.report in a fresh interpreter made to look like ``environment`` (a
    terminal, or a Jupyter kernel with or without ipywidgets); returns what it printed: whether
    it draws widgets, whether a ConsoleReport writing to a pipe shows bars, the warnings raised."""
    kernel = textwrap.dedent("""
        import sys, types
        sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")  # a Jupyter kernel
        sys.modules["IPython"] = types.ModuleType("IPython")                         # its shell, whose
        shell = type("ZMQInteractiveShell", (), {"config": {"IPKernelApp": {}}})    # config older tqdm reads
        sys.modules["IPython"].get_ipython = shell
        sys.modules["ipywidgets"] = widgets = types.ModuleType("ipywidgets")
        widgets.HTML = widgets.FloatProgress = widgets.HBox = object
    """)
    setup = {"terminal": "",
             "notebook with ipywidgets": kernel,
             "notebook without ipywidgets": kernel + 'sys.modules["ipywidgets"] = None\n'}[environment]
    code = setup + textwrap.dedent("""
        import io, warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from scratchcnn import report
        print(report.IN_NOTEBOOK, report.ConsoleReport(stream=io.StringIO()).bars,
              [str(w.message) for w in caught])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout.strip()


def test_bars_are_widgets_in_jupyter_and_text_in_a_terminal_without_a_warning():
    assert run_as_if_in("terminal") == "False False []"  # text bars, only on a terminal
    assert run_as_if_in("notebook with ipywidgets") == "True True []"
    # tqdm.auto alone would warn "IProgress not found" here; a terminal gets no such warning.
    assert run_as_if_in("notebook without ipywidgets") == "False False []"
