"""Grad-CAM (Selvaraju et al., 2017): which places of a layer's maps the class's logit leans on.

The maps ``A`` ``(h, w, C)`` of one layer are weighed, channel by channel, by how much the logit
grows with them on average (``alpha_k``, the mean over positions of d logit / d A[..., k]); the
weighed sum, negatives cut off, is the map. It is coarse by design: 13x13 for the seed
network's pooled maps, 5x5 for classic's last ones, each cell seeing a patch of the digit, so it
says roughly *where*, never which stroke. ``cam_on_image`` spreads it back over the 28x28 input
through the layers' own ``window``s, for display over the drawing.
"""
import numpy as np

from .common import backward_to, one_hot, prepared


def grad_cam(network, image, target, layer=None, with_layer=False):
    """``ReLU(sum_k alpha_k * A[..., k])`` at the resolution of ``network.layers[layer]``'s output
    ``A`` ``(1, h, w, C)``, with ``alpha_k = mean over positions of d logit_target / d A[..., k]``.

    ``layer`` None: the last layer whose output is a stack of maps ``(N, H, W, C)``; a network
    with none (an MLP) is a ValueError. Returns ``(h, w)``, or ``((h, w), layer index)`` with
    ``with_layer=True`` (for ``cam_on_image``).
    """
    net, image, target, classes = prepared(network, image, target)   # has run forward
    index = cam_layer(net, layer)
    maps = net.outputs[index + 1][0]                                   # A, (h, w, C)
    d_maps = backward_to(net, one_hot([target], classes), index + 1)[0]  # d logit / d A
    alpha = d_maps.mean(axis=(0, 1))                                   # (C,)
    cam = np.maximum((maps * alpha).sum(axis=-1), 0.0)
    return (cam, index) if with_layer else cam


def cam_layer(net, layer):
    """The index of the layer Grad-CAM looks at: ``layer`` checked, or the last one with maps
    ``(N, H, W, C)``; ``net`` has just run forward (``net.outputs``)."""
    outputs = net.outputs[1:]
    with_maps = [i for i, out in enumerate(outputs) if out.ndim == 4]
    if layer is None:
        if not with_maps:
            raise ValueError("grad_cam needs a layer whose output is a stack of maps (N, H, W, C); "
                             "this network has none (an MLP flattens the image first): use "
                             "saliency or integrated_gradients instead")
        return with_maps[-1]
    if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (int, np.integer)) \
            or not -len(outputs) <= layer < len(outputs):
        raise ValueError(f"layer must be a layer index from 0 to {len(outputs) - 1}, got {layer!r}")
    index = int(layer) % len(outputs)
    if index not in with_maps:
        raise ValueError(f"layer {index} ({type(net.layers[index]).__name__}) outputs shape "
                         f"{outputs[index].shape[1:]}, not maps (H, W, C); layers with maps: {with_maps}")
    return index


def cam_on_image(network, cam, layer, image_shape=(28, 28)):
    """A map ``(h, w)`` of layer ``layer``'s output -> ``(H, W)`` over the input image: each input
    pixel gets the mean of the cells whose window (composed through ``layer.window`` of every
    layer from the first to ``layer``) covers it, 0 where none does."""
    cam = np.asarray(cam, dtype=np.float64)
    rows = input_spans(network.layers[:layer + 1], cam.shape[0], image_shape[0])
    cols = input_spans(network.layers[:layer + 1], cam.shape[1], image_shape[1])
    total, count = np.zeros(image_shape), np.zeros(image_shape)
    for i, (top, bottom) in enumerate(rows):
        for j, (left, right) in enumerate(cols):
            total[top:bottom, left:right] += cam[i, j]
            count[top:bottom, left:right] += 1
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def input_spans(layers, cells, size):
    """For each of ``cells`` output positions along one axis of the last of ``layers``, the
    ``(start, stop)`` of the input pixels it sees along that axis (within ``0..size``)."""
    spans = []
    for cell in range(cells):
        first, last = cell, cell
        for layer in reversed(layers):
            if layer.window is None:
                raise ValueError(f"{type(layer).__name__} has no window (its output is flat): "
                                 "cannot map its cells back onto the image")
            k, stride, padding = layer.window
            first, last = first * stride - padding, last * stride - padding + k - 1
        spans.append((max(first, 0), min(last + 1, size)))
    return spans
