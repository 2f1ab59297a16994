"""``plot_feature_maps``: one image through the network, stage by stage, filter by filter."""
import textwrap

import numpy as np

from .canvas import new_figure, save, show_image


def stage_name(layer):
    """``"Conv3x3 (8 filters)"``, ``"ReLU"``, ``"MaxPool2"``: what a row of feature maps shows."""
    name = type(layer).__name__
    if "filters" in layer.params:
        return f"{name}, {layer.params['filters'].shape[0]} filters"
    return name


def feature_stages(network, image):
    """Run one image through ``network`` (evaluation mode) and collect its feature maps.

    image: ``(H, W)`` as the network takes it (normalised), shown to the layers as a batch of one.
    Returns ``(stages, probs)``: ``stages`` a list of ``(layer, maps)`` with ``maps`` ``(h, w, C)``
    for every layer whose output is an image stack (convolution, ReLU, pooling), stopping at
    the first that is not; ``probs`` ``(num_classes,)`` if the network ends in probabilities,
    else None.
    """
    with network.evaluating():
        out = network.forward(np.asarray(image)[np.newaxis])  # (1, H, W) -> (1, ...)
    stages = []
    for layer, maps in zip(network.layers, network.outputs[1:]):
        if maps.ndim != 4:
            break
        stages.append((layer, maps[0]))
    probs = out[0] if out.ndim == 2 and np.allclose(out.sum(axis=1), 1, atol=1e-3) else None
    return stages, probs


def plot_feature_maps(network, image, *, filter_names=None, label=None, max_filters=8, max_stages=6,
                      title=None, path=None, dpi=100):
    """The input image, then a row per stage (convolution, ReLU, pooling) with a panel per filter.

    network: a ``Network`` whose first layers take ``(N, H, W)`` images; image: ``(H, W)``.
    Each row shares one grey scale (black = its lowest value, white = its highest), so
    filters in a row can be compared. Shows the first ``max_filters`` filters and
    ``max_stages`` stages; ``filter_names`` titles the columns; ``label`` (the true digit)
    goes under the input; the prediction, when the network makes one, is added to ``title``.
    Returns the Figure; saves a PNG when ``path`` is given.
    """
    stages, probs = feature_stages(network, image)
    if not stages:
        raise ValueError("plot_feature_maps: the network's first layer does not output feature maps")
    stages = stages[:max_stages]
    n_filters = min(max_filters, max(maps.shape[2] for _, maps in stages))
    rows, panel = len(stages), 1.15
    fig = new_figure(panel * n_filters + 2.9, panel * rows + 0.75, dpi)
    input_fig, maps_fig = fig.subfigures(1, 2, width_ratios=[1.7, panel * n_filters + 1.2])

    input_ax = input_fig.subplots()
    show_image(input_ax, image)
    input_ax.set_title(f"input {tuple(np.shape(image))}", fontsize=10)
    if label is not None:
        input_ax.set_xlabel(f"label: {label}", fontsize=10)

    axes = maps_fig.subplots(rows, n_filters, squeeze=False)
    for row, (layer, maps) in enumerate(stages):
        low, high = float(maps.min()), float(maps.max())
        for f, ax in enumerate(axes[row]):
            if f < maps.shape[2]:
                ax.imshow(maps[:, :, f], cmap="gray", vmin=low, vmax=high if high > low else low + 1,
                          interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                name = filter_names[f] if filter_names is not None and f < len(filter_names) else f"filter {f}"
                ax.set_title(textwrap.fill(name, 13), fontsize=9)
        axes[row, 0].set_ylabel(f"{stage_name(layer)}\n{maps.shape}", fontsize=9)

    title = title or "One image through the network"
    if probs is not None:
        title += f": predicted {int(probs.argmax())} ({probs.max():.0%})"
    fig.suptitle(title, fontsize=12)
    return save(fig, path)
