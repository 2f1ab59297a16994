"""The network as JSON: what ``GET /api/model`` and ``POST /api/predict`` return.

Numbers are rounded to ``DECIMALS`` places and arrays become nested lists. Maps are stored
channels-last ``(H, W, C)`` by the layers and listed channel-first ``(C, H, W)`` here, one
picture per channel, as the page draws them.

``POST /api/predict`` may ask for its layer outputs as ``"arrays": "float32"`` instead: each
``maps`` or ``values`` is then one base64 string of the float32 values, little-endian, in the
order the lists would have, and ``min``/``max`` are not rounded (``packed_float32``). Same
numbers, unrounded, for a fraction of the encoding and parsing time.
"""
import base64

import numpy as np

from ..imaging import MNIST_SIZE

DECIMALS = 4  # layer outputs and filters are rounded to this many decimals in responses


def rounded(array):
    """An array as nested lists of Python floats, rounded to ``DECIMALS``."""
    return np.round(np.asarray(array, dtype=np.float64), DECIMALS).tolist()


ARRAY_FORMATS = ("lists", "float32")   # "arrays" of POST /api/predict: the default first


def packed_float32(array):
    """An array as base64 of its float32 values, little-endian, C order (as ``.tolist()``
    would list them): what a page turns back into numbers with a ``Float32Array``."""
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def layer_window(layer, in_shape, out_shape):
    """How one output pixel of ``layer`` maps back to its input maps, or None.

    ``{"size": k, "stride": s, "padding": p}`` from the layer's own ``window``: output pixel
    ``(i, j)`` was computed from input rows ``i*s - p .. i*s - p + k - 1`` (and the same for
    columns). Only between maps: ``in_shape`` ``(H, W)`` or ``(H, W, C)`` and ``out_shape``
    ``(H', W', C')``; a layer with flat output, or flat input (ReLU after Dense), has none.
    """
    if layer.window is None or len(out_shape) != 3 or len(in_shape) not in (2, 3):
        return None
    size, stride, padding = layer.window
    return {"size": size, "stride": stride, "padding": padding}


def describe_layer(index, layer, in_shape, out_shape):
    """One entry of ``/api/model``'s ``layers``.

    ``{"index", "type", "config", "input_shape", "output_shape", "window"}`` (shapes without the
    batch axis; ``window`` from ``layer_window``), plus for layers with filters ``"filters"``
    ``(F, k, k, C)`` and ``"biases"`` ``(F,)`` or null.
    """
    entry = {"index": index, "type": type(layer).__name__, "config": layer.config(),
             "input_shape": list(in_shape), "output_shape": list(out_shape),
             "window": layer_window(layer, in_shape, out_shape)}
    if "filters" in layer.params:
        filters = layer.params["filters"]
        if filters.ndim == 3:                   # (F, k, k): one input channel
            filters = filters[..., None]
        entry["filters"] = rounded(filters)     # (F, k, k, C)
        biases = layer.params.get("biases")
        entry["biases"] = rounded(biases) if biases is not None else None
    return entry


def describe_network(network, stage_shapes, description=""):
    """What ``GET /api/model`` returns.

    ``stage_shapes``: the input's shape and every layer's output shape, without the batch axis
    (``len(network.layers) + 1`` of them). Returns ``{"description": str, "input_shape": [28, 28],
    "num_classes": int, "layers": [describe_layer(...) per layer, in order]}``.
    """
    layers = [describe_layer(i, layer, stage_shapes[i], stage_shapes[i + 1])
              for i, layer in enumerate(network.layers)]
    return {"description": description, "input_shape": [MNIST_SIZE, MNIST_SIZE],
            "num_classes": stage_shapes[-1][0], "layers": layers}


def describe_stage(values, arrays="lists"):
    """One example's layer output -> ``{"shape", "min", "max"}`` plus its values.

    A map ``(H, W, C)`` gives ``"maps"`` listed channel-first, ``(C, H, W)``, for drawing;
    anything else gives ``"values"``, flattened to ``(D,)``. ``arrays="float32"``: those as
    ``packed_float32`` strings, and min/max unrounded.
    """
    if arrays == "float32":
        return describe_array(values, packed_float32, float)
    return describe_array(values, rounded, lambda bound: round(float(bound), DECIMALS))


def describe_array(values, round_values, round_bound):
    """``describe_stage``'s format, with the rounding of the values and of min/max given."""
    entry = {"shape": list(values.shape), "min": round_bound(values.min()),
             "max": round_bound(values.max())}
    if values.ndim == 3:
        entry["maps"] = round_values(np.moveaxis(values, -1, 0))   # (H, W, C) -> (C, H, W)
    else:
        entry["values"] = round_values(values.reshape(-1))
    return entry


def describe_prediction(image, outputs, arrays="lists"):
    """What ``POST /api/predict`` returns, for one image run through the network.

    ``image``: the ``(28, 28)`` uint8 input after ``to_mnist``; ``outputs``: the network's
    ``outputs`` for a batch of that one image (stage 0 the input, the last the probabilities).
    Returns ``{"prediction": int, "probabilities": [classes floats], "blank": bool, "input":
    (28, 28) ints, "layers": [describe_stage(output, arrays) per layer]}``, and with
    ``arrays="float32"`` also ``"arrays": "float32"``, saying how the layers' values come.
    """
    probs = outputs[-1][0]
    answer = {"prediction": int(probs.argmax()),
              "probabilities": [float(p) for p in probs],
              "blank": not image.any(),
              "input": image.tolist(),
              "layers": [describe_stage(out[0], arrays) for out in outputs[1:]]}
    if arrays != "lists":
        answer["arrays"] = arrays
    return answer
