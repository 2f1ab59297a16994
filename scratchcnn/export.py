"""PyTorch twins of scratchcnn networks: ``to_torch`` builds one, ``from_torch`` comes back.

    from scratchcnn.export import to_torch
    twin = to_torch(network)                              # a torch.nn.Sequential
    logits = twin(torch.from_numpy(images[:, None]))      # (N, 1, 28, 28) -> (N, 10) logits

The twin has the same layers and the same weights, so it computes the same function: its
softmax equals ``network.predict_proba`` and its gradients equal ours (``tests/test_export.py``).
The benchmarks time it against scratchcnn, so the comparison is always of identical work.

Two layouts meet here. scratchcnn is channels-last, ``(N, H, W, C)``, with filters
``(F, k, k, C)``; PyTorch is channels-first, ``(N, C, H, W)``, with weights ``(F, C, k, k)``.
Flattening a map therefore orders its values differently: ours ``(h, w, c)``, PyTorch's
``(c, h, w)``. Rather than transposing activations, the twin keeps PyTorch's order and the
first fully connected layer after a flatten gets its weight rows reordered to match.

PyTorch is optional: it is imported inside these functions only.
"""
import copy
from typing import Callable, NamedTuple

import numpy as np

from . import loops
from .layers import AvgPool2, Conv2D, Dense, Dropout, Flatten, MaxPool2, ReLU, Softmax
from .layers.conv import output_size

MNIST_INPUT = (1, 28, 28)  # (C, H, W) of the twin's input images


class Link(NamedTuple):
    """One array shared by a scratchcnn layer and a PyTorch module, and how to convert it."""
    layer_index: int                       # position in network.layers
    key: str                               # a params key, or an attribute (running statistics)
    module_index: int                      # position in the Sequential
    torch_name: str                        # "weight", "bias", "running_mean", ...
    to_torch: Callable = lambda a: a       # our layout -> PyTorch's
    to_ours: Callable = lambda a: a        # PyTorch's layout -> ours


class Features(NamedTuple):
    """What flows between two layers, in PyTorch's terms: a map ``(C, H, W)``, or ``F`` flat
    features where PyTorch's feature ``i`` is scratchcnn's feature ``order[i]``."""
    shape: tuple
    order: np.ndarray = None

    @property
    def is_map(self):
        return len(self.shape) == 3


class Unconvertible(ValueError):
    """A layer that has no PyTorch equivalent here, or does not fit the input it receives."""


def to_torch(network, input_shape=MNIST_INPUT):
    """A ``torch.nn.Sequential`` twin of ``network``: same layers, same weights, same mode.

    Takes ``(N, *input_shape)`` (``(N, 1, 28, 28)`` for MNIST) and returns logits
    ``(N, classes)``: a final ``Softmax`` becomes a ``Linear`` (apply ``softmax`` or
    ``cross_entropy`` to its output, as usual in PyTorch). Parameters are in the network's
    dtype. Raises ``ValueError`` naming the first layer it cannot convert.
    """
    torch = import_torch()
    modules, links = plan(network, torch, input_shape)
    twin = torch.nn.Sequential(*modules)
    with torch.no_grad():
        for link in links:
            value = link.to_torch(get_array(network.layers[link.layer_index], link.key))
            getattr(twin[link.module_index], link.torch_name).copy_(
                torch.from_numpy(np.ascontiguousarray(value)))
    return twin.train(all(layer.training for layer in network.layers))


def from_torch(sequential, like, input_shape=MNIST_INPUT):
    """A copy of the network ``like`` holding the weights of ``sequential``, a twin of it (as
    ``to_torch(like)`` makes, trained or changed since). ``like`` itself is left unchanged."""
    torch = import_torch()
    expected, links = plan(like, torch, input_shape)
    got = list(sequential)
    if [type(m) for m in got] != [type(m) for m in expected]:
        raise ValueError("from_torch: the Sequential is not a twin of `like`: expected modules "
                         f"{[type(m).__name__ for m in expected]}, got {[type(m).__name__ for m in got]}")
    network = copy.deepcopy(like)
    for link in links:
        layer = network.layers[link.layer_index]
        tensor = getattr(got[link.module_index], link.torch_name)
        value = link.to_ours(tensor.detach().cpu().numpy())
        if value.shape != np.shape(get_array(layer, link.key)):
            raise ValueError(f"from_torch: module {link.module_index} ({type(got[link.module_index]).__name__}) "
                             f"{link.torch_name} has {tuple(tensor.shape)} values; layer {link.layer_index} "
                             f"({type(layer).__name__}) {link.key} needs {np.shape(get_array(layer, link.key))}")
        set_array(layer, link.key, value)
    return network


def import_torch():
    try:
        import torch
    except ImportError as error:
        raise ImportError("scratchcnn.export needs PyTorch, which the rest of scratchcnn does not: "
                          "install it with `pip install torch` (the CPU build is enough)") from error
    return torch


def plan(network, torch, input_shape):
    """The twin's modules (weights not yet copied) and the arrays they share with ``network``."""
    dtype = network_dtype(network, torch)
    features = Features(tuple(input_shape))
    modules, links = [], []
    for index, layer in enumerate(network.layers):
        is_last = index == len(network.layers) - 1
        try:
            new_modules, new_links, features = convert_layer(layer, features, torch.nn, dtype, is_last)
        except Unconvertible as error:
            raise ValueError(f"to_torch: cannot convert layer {index} ({type(layer).__name__}) of "
                             f"the network: {error}") from None
        links += [link._replace(layer_index=index, module_index=len(modules) + link.module_index)
                  for link in new_links]
        modules += new_modules
    return modules, links


def network_dtype(network, torch):
    """The torch dtype of the network's parameters (float32 for a network without any)."""
    for layer in network.layers:
        for param in layer.params.values():
            return getattr(torch, np.dtype(param.dtype).name)
    return torch.float32


def convert_layer(layer, features, nn, dtype, is_last):
    """``(modules, links, features after)`` for one layer; link indices are local to it."""
    if isinstance(layer, Conv2D):
        return convert_conv(layer, features, nn, dtype)
    if isinstance(layer, (MaxPool2, loops.MaxPool2, AvgPool2)):
        c, h, w = expect_map(features, "(N, H, W, C)")
        pool = nn.AvgPool2d(2) if isinstance(layer, AvgPool2) else nn.MaxPool2d(2)
        return [pool], [], Features((c, h // 2, w // 2))
    if isinstance(layer, ReLU):
        return [nn.ReLU()], [], features
    if isinstance(layer, Dropout):
        return [nn.Dropout(layer.rate)], [], features
    if isinstance(layer, Flatten):
        return [nn.Flatten()], [], flattened(features)
    if isinstance(layer, (Dense, Softmax)):
        return convert_fully_connected(layer, features, nn, dtype, is_last)
    if is_batch_norm(layer):
        return convert_batch_norm(layer, features, nn, dtype)
    raise Unconvertible("no PyTorch equivalent is known for it; to_torch converts Conv2D, Conv3x3, "
                        "MaxPool2, AvgPool2, ReLU, Flatten, Dense, Dropout, Softmax and BatchNorm")


def expect_map(features, expected):
    if not features.is_map:
        raise Unconvertible(f"it expects input {expected}, but receives flat features {features.shape}")
    return features.shape


def flattened(features):
    """Features after PyTorch's ``Flatten``: its ``(c, h, w)`` order, in terms of our ``(h, w, c)``."""
    if not features.is_map:
        return features
    c, h, w = features.shape
    return Features((c * h * w,), np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).ravel())


def reorder(order):
    """``(to_torch, to_ours)`` that permute the first axis by a flat feature order."""
    if order is None or np.array_equal(order, np.arange(len(order))):
        return (lambda a: a), (lambda a: a)
    inverse = np.argsort(order)
    return (lambda a: a[order]), (lambda a: a[inverse])


def convert_conv(layer, features, nn, dtype):
    """Filters ``(F, k, k[, C])`` channels-last -> ``(F, C, k, k)``; same stride and padding."""
    c, h, w = expect_map(features, f"(N, H, W, {layer.in_channels})")
    if c != layer.in_channels:
        raise Unconvertible(f"it expects {layer.in_channels} input channels, but receives {c}")
    f, k, s, p = layer.num_filters, layer.kernel_size, layer.stride, layer.padding
    has_bias = "biases" in layer.params
    conv = nn.Conv2d(c, f, k, stride=s, padding=p, bias=has_bias, dtype=dtype)
    ours_shape = layer.params["filters"].shape
    links = [Link(0, "filters", 0, "weight",
                  lambda a: a.reshape(f, k, k, c).transpose(0, 3, 1, 2),
                  lambda t: t.transpose(0, 2, 3, 1).reshape(ours_shape))]
    if has_bias:
        links.append(Link(0, "biases", 0, "bias"))
    return [conv], links, Features((f, output_size(h, k, s, p), output_size(w, k, s, p)))


def convert_fully_connected(layer, features, nn, dtype, is_last):
    """``Dense`` -> ``Linear``; ``Softmax`` -> ``Flatten`` (on a map) + ``Linear`` (+ a softmax
    unless it is the last layer, whose logits the twin returns). Weights ``(in, out)`` ->
    ``(out, in)``, their rows put in PyTorch's flatten order."""
    modules = []
    if isinstance(layer, Softmax):
        size_in, size_out = layer.input_len, layer.nodes
        if features.is_map:
            modules.append(nn.Flatten())
            features = flattened(features)
    else:
        size_in, size_out = layer.in_features, layer.out_features
        if features.is_map:
            raise Unconvertible(f"Dense needs flat input (N, {size_in}), but receives a map "
                                f"(C, H, W) = {features.shape}; put a Flatten before it")
    if features.shape != (size_in,):
        raise Unconvertible(f"it expects {size_in} input values, but receives {features.shape[0]}")
    rows_to_torch, rows_to_ours = reorder(features.order)
    index = len(modules)
    modules.append(nn.Linear(size_in, size_out, dtype=dtype))
    links = [Link(0, "weights", index, "weight", lambda a: rows_to_torch(a).T, lambda t: rows_to_ours(t.T)),
             Link(0, "biases", index, "bias")]
    if isinstance(layer, Softmax) and not is_last:
        modules.append(nn.Softmax(dim=1))
    return modules, links, Features((size_out,))


def is_batch_norm(layer):
    """Duck typing: running statistics and ``gamma``/``beta`` parameters, over channels."""
    return hasattr(layer, "running_mean") and {"gamma", "beta"} <= set(layer.params)


def convert_batch_norm(layer, features, nn, dtype):
    """``BatchNorm1d`` on flat features, ``BatchNorm2d`` on maps; same momentum and eps."""
    channels = features.shape[0]
    if channels != len(layer.params["gamma"]):
        raise Unconvertible(f"it normalises {len(layer.params['gamma'])} channels, but receives "
                            f"{channels} ({'map' if features.is_map else 'flat features'} {features.shape})")
    norm = nn.BatchNorm2d if features.is_map else nn.BatchNorm1d
    module = norm(channels, eps=layer.eps, momentum=layer.momentum, dtype=dtype)
    to_t, to_o = reorder(None if features.is_map else features.order)
    links = [Link(0, key, 0, name, to_t, to_o) for key, name in
             (("gamma", "weight"), ("beta", "bias"), ("running_mean", "running_mean"),
              ("running_var", "running_var"))]
    return [module], links, features


def get_array(layer, key):
    return layer.params[key] if key in layer.params else getattr(layer, key)


def set_array(layer, key, value):
    """In place, so an optimizer or anything else holding the array sees the new values."""
    target = get_array(layer, key)
    if isinstance(target, np.ndarray):
        target[...] = value
    else:
        setattr(layer, key, np.asarray(value))
