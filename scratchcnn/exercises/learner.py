"""The tutorial network built from a learner's own layers: ``--layers DIR`` of
``python -m scratchcnn.train`` and ``python -m scratchcnn.serve``.

    classes = checked_classes("my_layers")                  # the check first; LayersRefused if any fails
    network = learner_network(classes, build_model("seed"))  # their layers, these weights
    ordinary = ordinary_network(network)                    # scratchcnn's layers, their weights

The learner's network starts from exactly the weights ``--model seed`` starts from (same seed,
same dtype), so a run with correct layers follows the seed network's run. It trains on the
plain path: no threads, one whole batch per pass through the learner's code. A checkpoint of
it is an ordinary one (``ordinary_network``): it loads anywhere, without the learner's files.
"""
import copy
import os
import sys
import time

import numpy as np

from .. import cli
from ..checkpoint import CheckpointError, load_checkpoint
from ..models import build_model
from ..network import Network
from .cases import CASES
from .loading import LearnerError, load_classes
from .report import check_folder, report_lines

TUTORIAL_NETWORK = "Conv3x3(8) -> MaxPool2 -> Softmax(13 * 13 * 8, 10)"
LONG_RUN_SECONDS = 30 * 60   # an estimate above this suggests a smaller --train-size
TIMED_STEPS = 3              # at most this many steps are timed for the estimate (the fastest counts)


class LayersRefused(ValueError):
    """The learner's layers can't be used: they fail their checks, or the network built from
    them computes something else than the tutorial network. The message says what to do."""


def add_option(group, what):
    """``--layers DIR`` on an argparse parser or group; ``what`` ends the help text."""
    group.add_argument("--layers", metavar="DIR",
                       help=f"the tutorial network built from your own layers in DIR (`python -m "
                            f"scratchcnn.exercises start DIR` writes them to fill in; they are "
                            f"checked first): {what}")


# ---------------------------------------------------------------------- checking and building

def checked_classes(folder, out=None):
    """``{class name: class}`` of the three layers in ``folder``, after the check passes (one
    line printed to ``out``). Raises ``LayersRefused`` with the failing layers' checks printed."""
    out = out or sys.stdout
    if not os.path.isdir(folder):
        raise LayersRefused(f"--layers {folder}: no such folder; `python -m scratchcnn.exercises "
                            f"start {folder}` writes the layers to fill in")
    reports = check_folder(folder)
    failing = [report for report in reports if not report.passed]
    if failing:
        print("\n".join(report_lines(failing, folder)[:-1]), file=out, flush=True)
        names = ", ".join(report.name for report in failing)
        raise LayersRefused(f"your {names} in {folder} {'fails' if len(failing) == 1 else 'fail'} "
                            f"the checks above, so nothing was trained. Fix and check them with "
                            f"`python -m scratchcnn.exercises check {folder}`, then run this again.")
    checks = sum(len(report.outcomes) for report in reports)
    print(f"Your layers in {folder} pass all {checks} checks (python -m scratchcnn.exercises check "
          f"{folder} lists them).", file=out, flush=True)
    return load_classes(folder, [(case.stem, case.name) for case in CASES])


def learner_network(classes, weights_from):
    """The tutorial network of the learner's ``classes``, holding copies of the parameters of
    ``weights_from`` (a network of scratchcnn's with the same architecture, e.g. ``build_model
    ("seed")``). Raises ``LayersRefused`` when it doesn't compute what ``weights_from`` does."""
    folder = os.path.dirname(sys.modules[classes["Conv3x3"].__module__].__file__)
    try:
        layers = [classes["Conv3x3"](8), classes["MaxPool2"](), classes["Softmax"](13 * 13 * 8, 10)]
    except Exception as error:  # the learner's constructor: show where it failed
        raise LayersRefused(f"building {TUTORIAL_NETWORK} from your layers failed:\n"
                            + "\n".join(LearnerError(error, folder).lines)) from None
    for mine, theirs in zip(layers, weights_from.layers):
        for name, value in theirs.params.items():
            mine.params[name] = value.copy()
    network = Network(layers)  # trained on the plain path: the learner's code, whole batches
    check_same_outputs(network, weights_from)
    return network


def check_same_outputs(network, reference, images=4):
    """Refuse a learner network whose probabilities on a few random images differ from
    ``reference``'s (same weights): its layers pass the checks, so they read their weights from
    somewhere else than ``params`` (a copy made in the constructor, say)."""
    dtype = cli.network_dtype(reference)
    x = np.random.default_rng(0).standard_normal((images, 28, 28)).astype(dtype)
    try:
        with np.errstate(all="ignore"):
            got = network.predict_proba(x)
    except Exception as error:
        raise LayersRefused(f"your layers pass the checks but fail in {TUTORIAL_NETWORK}: "
                            f"{type(error).__name__}: {error}") from None
    expected = reference.predict_proba(x)
    tolerance = 1e-4 if dtype == np.float32 else 1e-9
    if np.shape(got) != expected.shape or not np.allclose(got, expected, rtol=0, atol=tolerance):
        raise LayersRefused(f"your layers pass the checks, but {TUTORIAL_NETWORK} built from them "
                            "computes something else than scratchcnn's with the same weights. Do "
                            "they read their parameters from self.params at every call (not from a "
                            "copy made in the constructor)?")


def build_network(folder, dtype=np.float32, seed=0, out=None):
    """The tutorial network from the layers in ``folder``, checked, starting from the weights
    ``build_model("seed", dtype, seed)`` starts from."""
    return learner_network(checked_classes(folder, out), build_model("seed", dtype, seed))


def ordinary_network(network):
    """``network`` (the learner's tutorial network) as scratchcnn's own, with copies of its
    weights: what a checkpoint holds."""
    ordinary = build_model("seed", cli.network_dtype(network))
    for mine, theirs in zip(ordinary.layers, network.layers):
        for name, value in theirs.params.items():
            mine.params[name][...] = value
    return ordinary


# ---------------------------------------------------------------------- python -m scratchcnn.train

def refuse_train_conflicts(parser, args):
    """``--layers`` builds the tutorial network anew: refuse ``--model`` other than seed,
    ``--resume`` and ``--loop`` (exit 2, as argparse refuses an option)."""
    if not args.layers:
        return
    refuse_missing_folder(parser, args.layers)
    if args.model not in (None, "seed"):
        cli.refuse(parser, f"--layers builds the tutorial network (seed) from your layers, not "
                           f"--model {args.model}")
    if args.resume:
        cli.refuse(parser, "--layers can't --resume: it trains your layers from the start. (A "
                           "checkpoint it saves is an ordinary one: --resume it without --layers "
                           "to continue with scratchcnn's layers.)")
    if args.loop:
        cli.refuse(parser, "--layers trains your layers; --loop trains scratchcnn's loop layers: pick one")


def refuse_missing_folder(parser, folder):
    if not os.path.isdir(folder):
        cli.refuse(parser, f"--layers {folder}: no such folder; `python -m scratchcnn.exercises "
                           f"start {folder}` writes the layers to fill in")


def fastest_seconds(work, steps=TIMED_STEPS, enough=2.0):
    """The fastest of up to ``steps`` timed calls of ``work()``, stopping once ``enough`` seconds
    have gone (one call of a slow layer is plenty; a fast one's first call pays for warming up)."""
    best, spent = float("inf"), 0.0
    for _ in range(steps):
        started = time.perf_counter()
        work()
        took = time.perf_counter() - started
        best, spent = min(best, took), spent + took
        if spent >= enough:
            break
    return best


def duration_text(seconds):
    if seconds >= 90 * 60:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes" if seconds >= 120 else f"{max(seconds, 1):.0f} seconds"


def estimate_line(run):
    """What ``python -m scratchcnn.train --layers`` prints before training: how long the run
    will take, from timed steps of a copy of the network (the run itself is untouched). None
    without ``--layers``."""
    if not getattr(run.args, "layers", None):
        return None
    trainer, s = run.trainer, run.settings
    network, optimizer = copy.deepcopy((trainer.network, trainer.optimizer))
    x, labels = run.train_x[:s["batch_size"]], run.train_y[:s["batch_size"]]
    step = fastest_seconds(lambda: network.train_step(x, labels, optimizer))
    with network.evaluating():
        forward = fastest_seconds(lambda: network.forward(x))
    evaluated = len(run.val[1])                  # after every epoch
    tested = 0 if run.validate_on_test else len(run.test_y)  # once, at the end
    epochs = s["epochs"] - trainer.epoch
    seconds = epochs * (trainer.steps_per_epoch * step + evaluated / len(x) * forward) + tested / len(x) * forward
    line = (f"Your layers: a training step of {len(x)} images takes {step * 1000:,.1f} ms, so this "
            f"run ({epochs} epoch{'s' if epochs != 1 else ''} of {len(run.train_y):,} images, "
            f"evaluating {evaluated:,} after each) needs about {duration_text(seconds)}.")
    if seconds > LONG_RUN_SECONDS:
        line += (" That is long: layers that loop over pixels in Python are hundreds of times "
                 "slower than whole-array NumPy. See them learn on fewer images first, with "
                 "--train-size 1000 --test-size 1000, or vectorize them (the comments in the "
                 "skeletons say how; scratchcnn/layers/ shows one way).")
    return line


# ---------------------------------------------------------------------- python -m scratchcnn.serve

def refuse_serve_conflicts(parser, args):
    """``--layers`` with ``--train-first`` would train scratchcnn's layers, not the learner's."""
    if args.layers:
        refuse_missing_folder(parser, args.layers)
    if args.layers and args.train_first:
        cli.refuse(parser, f"--train-first trains scratchcnn's own layers, not yours: train yours "
                           f"with `python -m scratchcnn.train --layers {args.layers} --save run.npz`, "
                           f"then serve --layers {args.layers} --model run.npz")


def network_to_serve(folder, model_path=None, out=None):
    """``(network, description)``: the tutorial network from the learner's layers in ``folder``,
    checked, with the weights of the checkpoint at ``model_path`` (a tutorial network's), or
    untrained (``build_model("seed")``'s). Raises ``LayersRefused`` or ``CheckpointError``."""
    classes = checked_classes(folder, out)
    if model_path:
        weights = load_checkpoint(model_path).network
        check_tutorial_architecture(weights, model_path, folder)
        description = f"your layers from {folder}, with the weights of {os.path.basename(model_path)}"
    else:
        weights = build_model("seed", seed=0)
        description = f"your layers from {folder}, untrained"
    network = learner_network(classes, weights)
    notes = fill_page_gaps(network, weights)
    notes.append("Train on the page trains scratchcnn's own layers (and then serves them). To "
                 f"watch yours trained: python -m scratchcnn.train --layers {folder} --save run.npz, "
                 f"then python -m scratchcnn.serve --layers {folder} --model run.npz")
    print("\n".join(notes), file=out or sys.stdout, flush=True)
    return network, description


def check_tutorial_architecture(network, path, folder):
    """Refuse a checkpoint whose layers don't hold the tutorial network's parameters."""
    expected = [{name: p.shape for name, p in layer.params.items()} for layer in build_model("seed").layers]
    got = [{name: p.shape for name, p in layer.params.items()} for layer in network.layers]
    if got != expected:
        raise CheckpointError(f"{path!r} is not a checkpoint of the tutorial network "
                              f"{TUTORIAL_NETWORK}, so your layers can't take its weights; make one "
                              f"with python -m scratchcnn.train --layers {folder} --save run.npz")


def fill_page_gaps(network, reference):
    """Give the learner's layers what the page reads from a layer and theirs lack, saying so:
    ``window`` (the page outlines each pixel's input window, and explains the backward pass,
    with it) is taken from scratchcnn's layer of the same place. A ``config()`` without the
    constructor's arguments only leaves the page's label without them. Returns the notes."""
    notes = []
    for mine, theirs in zip(network.layers, reference.layers):
        name = type(mine).__name__
        if getattr(mine, "window", None) != theirs.window:
            mine.window = theirs.window
            notes.append(f"note: your {name} has no `window` (size, stride, padding), which the page "
                         f"needs to outline each pixel's input window: it gets {theirs.window}, "
                         "scratchcnn's.")
        missing = sorted(set(theirs.config()) & {"num_filters", "input_len", "nodes"} - set(mine.config()))
        if missing:
            notes.append(f"note: your {name}.config() lacks {', '.join(missing)}: the page's label "
                         "of the layer goes without them.")
    return notes
