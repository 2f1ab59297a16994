"""What a run will be, before any data is loaded: its settings, from the options or from the
checkpoint it resumes (``scratchcnn.resuming`` decides which settings may change), and the
network and optimizer it continues with."""
import contextlib
import os
from dataclasses import dataclass, field

import numpy as np

from .. import resuming
from ..checkpoint import CheckpointError, architecture_of, load_checkpoint
from ..exercises import learner
from ..models import MODEL_NAMES, build_model
from .options import RUN_OPTIONS, run_settings


@dataclass
class Plan:
    """A run's settings and where it starts from. ``network`` and ``optimizer`` are None for a
    fresh run (the trainer builds them from the settings); ``trainer_state`` is the resumed
    checkpoint's position (``Trainer.state_dict``) or None; ``changes`` the settings changed on
    resuming, oldest first; ``notes`` what to print before training."""
    settings: dict
    network: object = None
    optimizer: object = None
    trainer_state: dict = None
    changes: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def plan_run(args):
    """The ``Plan`` of the parsed options ``args``; raises CheckpointError for a checkpoint that
    can't be resumed, or ValueError for an output file that can't be written."""
    for option, path in (("--save", args.save), ("--metrics", args.metrics), ("--plot", args.plot)):
        check_writable(option, path)
    if not args.resume:
        plan = Plan(run_settings(args))
        if args.layers:  # the learner's own layers, checked first, with seed's first weights
            s = plan.settings
            plan.network = learner.build_network(args.layers, np.dtype(s["dtype"]), s["seed"])
    else:
        checkpoint = load_checkpoint(args.resume)
        with reading_training_state(args.resume):
            plan = resumed_plan(args, checkpoint)
    settle_epochs_and_test_size(plan.settings, args, checkpoint if args.resume else None)
    return plan


def resumed_plan(args, checkpoint):
    """The checkpoint's run settings, after checking it is a training run of ours, with the
    options given that may change on resuming applied (and added to the checkpoint's changes)."""
    path, meta = args.resume, checkpoint.meta
    if "trainer" not in meta or "hyperparameters" not in meta or meta.get("model") not in MODEL_NAMES:
        raise CheckpointError(f"{path!r} is a scratchcnn checkpoint but not one saved by "
                              "scratchcnn.train, so it can't be resumed")
    # Checkpoints from before rotation, scaling and schedule changes existed had none.
    settings = dict(dict(rotate=0.0, scale=0.0, lr_from_epoch=0), **meta["hyperparameters"])
    given = {key: value for key, value in vars(args).items() if key in RUN_OPTIONS and value is not None}
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
    plan = Plan(settings, checkpoint.network, checkpoint.make_optimizer(), meta["trainer"],
                changes=list(meta.get("changes", [])))
    if differing:
        previous_rate = resuming.rate_at(settings, epoch)
        new = resuming.apply_changes(settings, differing, epoch, step)
        plan.changes += new
        plan.notes.append(resuming.describe_changes(new, settings, previous_rate))
    return plan


def settle_epochs_and_test_size(settings, args, checkpoint):
    """``--epochs`` and ``--test-size`` may change on resuming; else the checkpoint's hold."""
    settings["test_size"] = args.test_size or settings.get("test_size")
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    elif checkpoint is not None:
        settings["epochs"] = checkpoint.meta.get("epochs", settings["epochs"])


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
