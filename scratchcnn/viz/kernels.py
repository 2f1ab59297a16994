"""``plot_filters``: convolution kernels as grey squares with their values written on them."""
import textwrap

import numpy as np

from .canvas import new_figure, save


def _as_filter_array(filters, names):
    """Filters given as a dict, a conv layer, a Network or an array -> ``(names, filters)``.

    ``filters`` is an ``(F, k, k)`` or ``(F, k, k, C)`` array, the layout of
    ``Conv2D.params["filters"]``, or a list of ``(k, k)`` arrays when the sizes differ.
    """
    if isinstance(filters, dict):
        names = list(filters) if names is None else names
        kernels = [np.asarray(f, dtype=np.float64) for f in filters.values()]
        if len({k.shape for k in kernels}) > 1:  # e.g. 3x3 Sobel and 4x4 edge filters together
            if any(k.ndim != 2 or k.shape[0] != k.shape[1] for k in kernels):
                raise ValueError("plot_filters: a dict of filters must hold square (k, k) arrays")
            return list(names), kernels
        filters = np.stack(kernels)
    elif hasattr(filters, "layers"):  # a Network: its first layer with filters
        layer = next((layer for layer in filters.layers if "filters" in layer.params), None)
        if layer is None:
            raise ValueError("plot_filters: this network has no convolution layer")
        filters = layer.params["filters"]
    elif hasattr(filters, "params"):  # a layer
        filters = filters.params["filters"]
    filters = np.asarray(filters, dtype=np.float64)
    if filters.ndim == 2:
        filters = filters[None]
    if filters.ndim not in (3, 4) or filters.shape[1] != filters.shape[2]:
        raise ValueError(f"plot_filters: expected filters of shape (F, k, k) or (F, k, k, C), "
                         f"got shape {filters.shape}")
    if names is None:
        names = [f"filter {i}" for i in range(len(filters))]
    return list(names), filters


def _value_format(values, decimals):
    if decimals is None:
        decimals = 0 if np.all(values == np.round(values)) else 2
    return f"{{:.{decimals}f}}"


def _draw_kernel(ax, kernel, fmt, fontsize):
    """One kernel in grey (black = most negative, white = most positive, mid-grey = 0),
    each value written in its cell in a colour that stays readable on it."""
    limit = float(np.abs(kernel).max()) or 1.0
    ax.imshow(kernel, cmap="gray", vmin=-limit, vmax=limit, interpolation="nearest")
    for (i, j), value in np.ndenumerate(kernel):
        text = fmt.format(value)
        if text.startswith("-") and float(text) == 0:
            text = text[1:]  # "-0.00" -> "0.00"
        ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, in_layout=False,
                color="black" if value > -0.2 * limit else "white")  # inside the axes: layout can skip it
    edges = np.arange(kernel.shape[0] + 1) - 0.5  # thin lines between the cells
    ax.vlines(edges, edges[0], edges[-1], color="tab:blue", linewidth=0.8)
    ax.hlines(edges, edges[0], edges[-1], color="tab:blue", linewidth=0.8)
    ax.set(xlim=(edges[0], edges[-1]), ylim=(edges[-1], edges[0]), aspect="equal", xticks=[], yticks=[])


def plot_filters(filters, names=None, *, title=None, decimals=None, columns=4, max_filters=16,
                 max_channels=6, path=None, dpi=100):
    """A grid of kernels with every value annotated.

    filters: ``(F, k, k)`` (one input channel), ``(F, k, k, C)`` (learned filters over C
        channels: one row per filter, one panel per channel), a dict name -> ``(k, k)``,
        a convolution layer, or a Network (its first convolution).
    names: a title per filter; ``decimals``: digits shown (0 for whole numbers, else 2).
    Each kernel is scaled on its own, symmetric around 0: mid-grey is 0, white its largest
    positive value, black its most negative. At most ``max_filters`` filters and
    ``max_channels`` channels are drawn. Returns the Figure; saves a PNG when ``path`` is given.
    """
    names, filters = _as_filter_array(filters, names)
    filters, names = filters[:max_filters], names[:max_filters]
    values = np.concatenate([np.ravel(f) for f in filters])
    k = max(np.shape(f)[0] for f in filters)
    fmt = _value_format(values, decimals)
    chars = max(len(fmt.format(v)) for v in values)
    cell = max(0.36, 0.085 * chars + 0.06)  # inches per kernel cell, room for the longest number
    fontsize = 9 if k <= 5 else 7
    panel = cell * k + 0.25

    if isinstance(filters, list) or filters.ndim == 3:
        cols = min(columns, len(filters))
        rows = -(-len(filters) // cols)
        fig = new_figure(panel * cols + 0.2, (panel + 0.35) * rows + (0.45 if title else 0.1), dpi)
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
        for ax, kernel, name in zip(axes, filters, names):
            _draw_kernel(ax, kernel, fmt, fontsize)
            ax.set_title(textwrap.fill(name, int(panel * 11)), fontsize=10)
        for ax in axes[len(filters):]:
            ax.set_visible(False)
    else:
        channels = min(filters.shape[3], max_channels)
        if channels < filters.shape[3]:
            title = f"{title + ' ' if title else ''}(channels 0-{channels - 1} of {filters.shape[3]})"
        rows = len(filters)
        fig = new_figure(panel * channels + 0.9, (panel + 0.1) * rows + 0.35 + (0.45 if title else 0.1), dpi)
        axes = fig.subplots(rows, channels, squeeze=False)
        for f in range(rows):
            for c in range(channels):
                _draw_kernel(axes[f, c], filters[f, :, :, c], fmt, fontsize)
                if f == 0:
                    axes[f, c].set_title(f"channel {c}", fontsize=10)
            axes[f, 0].set_ylabel(names[f], fontsize=10)
    if title:
        fig.suptitle(title, fontsize=12)
    return save(fig, path)
