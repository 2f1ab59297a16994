"""Checkpoints: a whole training state in one ``.npz`` file, with no pickle inside.

Layout of the archive (every entry a plain array, so ``np.load(path, allow_pickle=False)``
reads it):

* ``meta``: a JSON string (0-d unicode array) with ``format``, ``version``, ``architecture``
  (a list of ``{"type", "config"}``), ``extra_state`` (``{"<layer index>": the layer's
  get_extra_state()}`` for the layers that have some, e.g. Dropout's generator), the
  optimizer's name and hyperparameters, and anything the caller adds (model name, epoch,
  metrics, the trainer's state, ...);
* ``param/<layer index>.<name>``: every parameter;
* ``optim/<key>``: the optimizer's state (velocities, Adam moments and step);
* ``digest``: SHA-256 over ``meta`` and every array, checked on load, so a damaged file is
  refused rather than silently trained on.

Files are written atomically (a temporary file in the same folder, then a rename), so an
interrupted save leaves the previous checkpoint intact. Version 1 files (before layers kept
their own extra state) stored Dropout's generators as ``dropout_rng_states``; they still load.
"""
import hashlib
import json
import os
import zipfile

import numpy as np

from . import layers as layer_module
from .atomic import atomic_write
from . import loops
from .network import Network
from .optim import OPTIMIZERS

FORMAT = "scratchcnn-checkpoint"
VERSION = 2
READABLE_VERSIONS = (1, 2)

# Layer classes a checkpoint may name: vectorized ones by name, loop twins as "loops.<name>".
LAYER_TYPES = {name: getattr(layer_module, name) for name in layer_module.__all__ if name != "Layer"}
LAYER_TYPES.update({f"loops.{name}": getattr(loops, name) for name in ("Conv3x3", "MaxPool2", "Softmax", "BatchNorm")})


class CheckpointError(ValueError):
    """A checkpoint that can't be used: missing, damaged, not ours, or for another network."""


def layer_type_name(layer):
    name = type(layer).__name__
    return f"loops.{name}" if type(layer).__module__ == loops.__name__ else name


def architecture_of(network):
    """``[{"type": "Conv3x3", "config": {...}}, ...]``: enough to rebuild the network's layers."""
    return [{"type": layer_type_name(layer), "config": layer.config()} for layer in network.layers]


def build_network(architecture):
    """A network with freshly initialised layers, from ``architecture_of``'s description."""
    built = []
    for entry in architecture:
        cls = LAYER_TYPES.get(entry.get("type"))
        if cls is None:
            raise CheckpointError(f"unknown layer type {entry.get('type')!r} in checkpoint")
        built.append(cls(**entry.get("config", {})))
    return Network(built)


def _digest(meta_json, arrays):
    h = hashlib.sha256(meta_json.encode())
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_checkpoint(path, network, optimizer=None, **meta):
    """Write ``network`` (and ``optimizer``'s state, and JSON-able ``meta``) to ``path`` atomically."""
    meta = dict(meta, format=FORMAT, version=VERSION, architecture=architecture_of(network))
    meta["extra_state"] = {str(i): state for i, layer in enumerate(network.layers)
                           if (state := layer.get_extra_state())}
    arrays = {f"param/{i}.{name}": p for i, layer in enumerate(network.layers)
              for name, p in layer.params.items()}
    if optimizer is not None:
        meta["optimizer"] = {"name": type(optimizer).__name__.lower(),
                             "hyperparameters": optimizer.hyperparameters()}
        arrays.update({f"optim/{key}": np.asarray(v) for key, v in optimizer.state_dict().items()})
    meta_json = json.dumps(meta)
    arrays["digest"] = np.array(_digest(meta_json, arrays))
    arrays["meta"] = np.array(meta_json)

    with atomic_write(path) as f:
        np.savez(f, **arrays)


class Checkpoint:
    """What ``load_checkpoint`` returns: ``network`` (parameters loaded), ``meta`` (dict),
    ``optimizer_state`` (dict of arrays) and ``make_optimizer()``."""

    def __init__(self, network, meta, optimizer_state):
        self.network, self.meta, self.optimizer_state = network, meta, optimizer_state

    def make_optimizer(self):
        """The saved optimizer with its state restored and bound to ``network``, or None if
        none was saved."""
        saved = self.meta.get("optimizer")
        if saved is None:
            return None
        optimizer = OPTIMIZERS[saved["name"]](**saved["hyperparameters"])
        optimizer.load_state_dict(self.optimizer_state)
        try:
            return optimizer.bind(self.network)
        except ValueError as e:
            raise CheckpointError(f"the optimizer state in this checkpoint does not fit its "
                                  f"network: {e}") from None


def load_checkpoint(path):
    """Read and verify a checkpoint; raises ``CheckpointError`` saying what is wrong."""
    meta, arrays = _read_verified(path)
    try:
        network = build_network(meta["architecture"])
        _restore_parameters(path, network, arrays)
        _restore_extra_state(path, network, _extra_state_of(meta))
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path!r}: checkpoint is incomplete ({e} missing or malformed)") from None
    optimizer_state = {key[len("optim/"):]: a for key, a in arrays.items() if key.startswith("optim/")}
    return Checkpoint(network, meta, optimizer_state)


def _read_verified(path):
    """``(meta, arrays)`` of a checkpoint file whose format, version and digest check out."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    if not zipfile.is_zipfile(path):
        # Checked first: np.load would otherwise guess "pickle" and advise allow_pickle=True.
        raise CheckpointError(f"{path!r} is not a scratchcnn checkpoint: it is not a complete .npz "
                              "archive (another kind of file, or truncated); checkpoints are "
                              "written by `python -m scratchcnn.train --save PATH`")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise CheckpointError(f"{path!r} is not a readable scratchcnn checkpoint "
                              f"(damaged, truncated or another kind of file: {e})") from None
    try:
        meta_json = str(arrays.pop("meta"))
        meta = json.loads(meta_json)
        stored_digest = str(arrays.pop("digest"))
    except (KeyError, ValueError):
        raise CheckpointError(f"{path!r} is a .npz file but not a scratchcnn checkpoint") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is a .npz file but not a scratchcnn checkpoint")
    if meta.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(f"{path!r} has checkpoint version {meta.get('version')}, "
                              f"this scratchcnn reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    if _digest(meta_json, arrays) != stored_digest:
        raise CheckpointError(f"{path!r} is damaged: its contents don't match the digest "
                              "written with them")
    return meta, arrays


def _restore_parameters(path, network, arrays):
    for i, layer in enumerate(network.layers):
        for name, param in layer.params.items():
            saved = arrays[f"param/{i}.{name}"]
            if saved.shape != param.shape:
                raise CheckpointError(f"{path!r}: parameter {i}.{name} has shape {saved.shape}, "
                                      f"the architecture needs {param.shape}")
            param[...] = saved


def _extra_state_of(meta):
    """``{"<layer index>": extra state}``; version 1 kept only Dropout's generators, apart."""
    if meta["version"] == 1:
        return {i: {"rng": state} for i, state in meta.get("dropout_rng_states", {}).items()}
    return meta["extra_state"]


def _restore_extra_state(path, network, extra_state):
    """Give each layer the ``get_extra_state()`` saved for it (layers with none keep theirs)."""
    for index, state in extra_state.items():
        try:
            if not 0 <= int(index) < len(network.layers):
                raise ValueError("the architecture has no such layer")
            network.layers[int(index)].set_extra_state(state)
        except (ValueError, TypeError) as e:
            raise CheckpointError(f"{path!r}: the extra state saved for layer {index} does not "
                                  f"fit it ({e})") from None
