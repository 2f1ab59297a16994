"""Which run settings may change when ``python -m scratchcnn.train --resume`` continues a run.

A resumed run with the settings it was saved with ends exactly as an uninterrupted run would.
Some settings may still change, to fine-tune: the learning rate, its decay and the
augmentation take effect from the step where the run continues (and the batch size at an
epoch boundary). The run then no longer matches an uninterrupted one, so every change is
recorded (``changes`` in the checkpoint and the metrics JSON) and announced. Settings that
define the network, its state or its data can't change (``REFUSED``, with the reason).

The learning rate of epoch ``e`` (counting from 0) is ``lr * lr_decay ** (e - lr_from_epoch)``;
``lr_from_epoch`` is 0 until a resumed run changes the rate or the decay, when it becomes the
epoch being resumed, so the schedule restarts there.
"""

CHANGEABLE = ("lr", "lr_decay", "shift", "rotate", "scale", "batch_size")

# Why each other run option must stay as the checkpoint has it.
REFUSED = {
    "model": "the checkpoint holds another network",
    "loop": "loop layers are another implementation of the network in the checkpoint",
    "dtype": "the weights and the optimizer's state are stored in the checkpoint's precision",
    "optimizer": "the optimizer's state (velocities, Adam's moments) does not carry over to another one",
    "seed": "the seed fixed the run's shuffling, dropout and augmentation draws; start a new run "
            "(without --resume) for another seed",
    "train_size": "the training images were chosen when the run started",
    "val_size": "the validation images were held out when the run started; another split would "
                "validate on images the network has trained on",
}


def option_name(key):
    return "--" + key.replace("_", "-")


def refusals(settings, differing, epoch, step):
    """Why the options in ``differing`` (``{key: new value}``) can't change on resuming at
    ``step`` of epoch index ``epoch``: a list of strings, empty when all of them can."""
    reasons = []
    for key, value in differing.items():
        given = f"{option_name(key)} {value} (checkpoint: {settings.get(key)})"
        if key == "batch_size" and step:
            reasons.append(f"{given}: the run stopped after step {step} of epoch {epoch + 1}, a "
                           f"position counted in batches of {settings[key]}; finish the epoch with "
                           "that batch size (it may change at an epoch boundary)")
        elif key not in CHANGEABLE:
            reasons.append(f"{given}: {REFUSED.get(key, 'it defines the run')}")
    return reasons


def rate_at(settings, epoch):
    """The learning rate of epoch index ``epoch`` under ``settings``' schedule."""
    return settings["lr"] * settings["lr_decay"] ** (epoch - settings.get("lr_from_epoch", 0))


def apply_changes(settings, differing, epoch, step):
    """Change ``settings`` in place to the options in ``differing`` (all in ``CHANGEABLE``),
    restarting the learning-rate schedule at ``epoch`` if the rate or the decay changes.

    Returns the changes as recorded: ``[{"epoch": 1-based epoch, "step": steps done in it,
    "option": key, "old": value, "new": value}, ...]``.
    """
    changes = [dict(epoch=epoch + 1, step=step, option=key, old=settings.get(key), new=value)
               for key, value in differing.items()]
    if "lr" in differing or "lr_decay" in differing:
        # The rate this epoch would have had carries on unless --lr gives another one.
        settings.update(lr=differing.get("lr", rate_at(settings, epoch)), lr_from_epoch=epoch)
    settings.update({key: value for key, value in differing.items() if key != "lr"})
    return changes


def describe_changes(changes, settings, previous_rate):
    """The note printed when a resumed run continues with changed settings (``settings`` as
    changed; ``previous_rate``: what the epoch's rate was before, ``rate_at``)."""
    listed = ", ".join(f"{option_name(c['option'])} {c['old']} -> {c['new']}" for c in changes)
    first = changes[0]
    was = f" (was {previous_rate:g})" if settings["lr"] != previous_rate else ""
    rate = (f"; the learning rate is {settings['lr']:g}{was} from epoch {settings['lr_from_epoch'] + 1}"
            + (f", x{settings['lr_decay']:g} per epoch after" if settings["lr_decay"] != 1 else "")
            if any(c["option"] in ("lr", "lr_decay") for c in changes) else "")
    return (f"note: continuing at epoch {first['epoch']}, step {first['step']} with changed settings "
            f"({listed}){rate}. The result no longer matches an uninterrupted run; the changes "
            "are recorded in the checkpoint and the metrics.")
