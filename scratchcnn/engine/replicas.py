"""Replicas: copies of a network's layers that another thread can run.

A replica shares its layer's ``params`` dict (the very same arrays, so an optimizer's in-place
updates reach it) but has its own ``grads`` and its own caches (the names the layer declares in
``caches``), so two threads never overwrite each other's. A ``BatchNorm`` or ``Dropout`` replica
is their synchronised twin (``sync.py``), which can train on a part of a batch.
"""
import copy

from ..layers import AvgPool2, BatchNorm, Conv2D, Conv3x3, Dense, Dropout, Flatten, MaxPool2, ReLU, Softmax
from .sync import SYNCHRONISED

# The layers whose replicas give, on a part of a batch, that part of the whole batch's result.
# Exact types: a subclass (a loop twin, a learner's layer) may compute differently.
SPLITTABLE = (Conv2D, Conv3x3, Dense, Flatten, MaxPool2, AvgPool2, ReLU, Softmax, BatchNorm, Dropout)
METHODS = ("forward", "backward", "backward_from_logits")


def replica(layer, caches_from=None):
    """A shallow copy of ``layer`` sharing its ``params`` dict, with its own ``grads`` and its own
    caches: empty, or those of ``caches_from`` (an earlier replica, whose buffers, such as a
    convolution's window matrix, are then reused). ``BatchNorm`` and ``Dropout`` become their
    synchronised twins."""
    twin = copy.copy(layer)
    twin.grads = {}
    for name in layer.caches:
        setattr(twin, name, getattr(caches_from, name, None))
    if type(layer) in SYNCHRONISED:
        twin.__class__ = SYNCHRONISED[type(layer)]
    return twin


def why_unsplittable(layer):
    """Why ``layer`` can't run on part of a batch on another thread, or None if it can."""
    if type(layer) not in SPLITTABLE:
        return f"{type(layer).__name__} is not one of the engine's layers, whose parts it knows to combine"
    if methods_replaced(layer):
        return "its methods were replaced on the instance, and its copies would call the original's"
    return None


def methods_replaced(layer):
    """True if ``forward`` or ``backward`` was replaced on the instance (e.g. by
    benchmarks/where_time_goes.py's timers): a copy of the layer would call the original."""
    return any(name in vars(layer) for name in METHODS)


def unsplittable_layer(layers):
    """``(layer, reason)`` for the first layer that can't run on part of a batch, else None."""
    return next(((layer, why) for layer in layers if (why := why_unsplittable(layer))), None)


def shares_batch(layers):
    """True if a layer in training shares the batch between parts (``sync.py``): then the parts
    must all run at once, one per thread."""
    return any(type(layer) in SYNCHRONISED for layer in layers)
