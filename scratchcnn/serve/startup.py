"""The network to serve at start-up: a saved checkpoint, or the tutorial network, untrained (the
page trains it while you watch) or, with ``--train-first``, trained briefly before serving."""
import json
import os
import tempfile

from ..checkpoint import load_checkpoint
from ..cli import EXIT_INTERRUPTED, EXIT_OK
from ..models import build_model

BRIEF_TRAIN_SIZE = 20_000  # the tutorial network on this many images, 1 epoch: seconds, ~90%


class TrainingFailed(RuntimeError):
    """Training the tutorial network without --model did not finish."""


UNTRAINED_DESCRIPTION = "the tutorial network (seed), untrained: press Train to watch it learn"


def network_to_serve(model_path=None, data_dir=None, train_first=False):
    """``(network, description)``: the checkpoint at ``model_path``; without one the tutorial
    network, untrained, or with ``train_first`` trained for a few seconds (``train_briefly``).
    Raises ``CheckpointError``, ``MnistUnavailableError``, ``TrainingFailed`` or
    ``KeyboardInterrupt``."""
    if not model_path and train_first:
        return train_briefly(data_dir)
    if not model_path:
        print("No --model given: serving the tutorial network untrained. Press Train on the page "
              "to watch it learn (or start with --train-first to train it before serving).",
              flush=True)
        return build_model("seed", seed=0), UNTRAINED_DESCRIPTION
    checkpoint = load_checkpoint(model_path)
    name = checkpoint.meta.get("model") or "network"
    return checkpoint.network, f"{name} from {os.path.basename(model_path)}"


def train_briefly(data_dir=None):
    """Train the tutorial network for a few seconds; returns ``(network, description)``.

    Runs ``python -m scratchcnn.train`` (its progress bar included) for one epoch on the first
    ``BRIEF_TRAIN_SIZE`` images, into a temporary checkpoint that is then loaded.
    """
    print(f"No --model given: training the tutorial network (seed) for 1 epoch on the first "
          f"{BRIEF_TRAIN_SIZE:,} MNIST images first; this takes seconds.", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        path, metrics_path = os.path.join(folder, "seed.npz"), os.path.join(folder, "metrics.json")
        _run_trainer(["--model", "seed", "--epochs", "1", "--train-size", str(BRIEF_TRAIN_SIZE),
                      "--save", path, "--metrics", metrics_path]
                     + (["--data-dir", data_dir] if data_dir else []))
        network = load_checkpoint(path).network
        with open(metrics_path) as f:
            accuracy = json.load(f).get("test_accuracy")
    score = f": {accuracy:.1%} test accuracy" if isinstance(accuracy, float) else ""
    description = (f"tutorial network (seed), trained just now for 1 epoch on "
                   f"{BRIEF_TRAIN_SIZE:,} images{score}")
    print("To keep a network between runs: python -m scratchcnn.train --save model.npz, then "
          "python -m scratchcnn.serve --model model.npz", flush=True)
    return network, description


def _run_trainer(argv):
    """``python -m scratchcnn.train`` with ``argv``, in this process; ``KeyboardInterrupt`` when
    it was interrupted, ``TrainingFailed`` when it failed otherwise."""
    from .. import train  # imported here: serving a saved model needs none of it
    code = train.main(argv)
    if code == EXIT_INTERRUPTED:
        raise KeyboardInterrupt
    if code != EXIT_OK:
        raise TrainingFailed(f"training the tutorial network failed (exit code {code}, "
                             "see above); train one yourself and pass it with --model")
