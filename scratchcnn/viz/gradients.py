"""``plot_backward_pass``: one image's backward pass, a row per stage, activation beside gradient.

Activations are grey (black = the row's lowest value, white = its highest); gradients use a
diverging map, blue < 0 < red with zero white, symmetric around zero so that white always
means "this value does not change the loss". Every block has a colour bar stating its range.
"""
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize

from .canvas import new_figure, save, show_image
from .features import stage_name

GRADIENT_CMAP = "RdBu_r"
PANEL = 0.78  # inches per map panel


def symmetric(values):
    """A colour normalisation centred on zero covering ``values``."""
    m = float(np.abs(values).max()) or 1e-12
    return Normalize(-m, m)


def range_text(values):
    return f"{float(np.min(values)):+.3g} .. {float(np.max(values)):+.3g}"


def saliency_overlay(gradient):
    """``(H, W, 4)`` RGBA to lay over the image: the gradient's colours, opaque where it is large."""
    norm = symmetric(gradient)
    rgba = colormaps[GRADIENT_CMAP](norm(gradient))
    rgba[..., 3] = np.sqrt(np.abs(gradient) / norm.vmax) * 0.9
    return rgba


def map_block(subfig, maps, cmap, norm, caption, max_maps):
    """One block of a row: up to ``max_maps`` maps ``(h, w, C)`` side by side and a colour bar."""
    count = min(max_maps, maps.shape[-1])
    axes = subfig.subplots(1, count, squeeze=False)[0]
    for c, ax in enumerate(axes):
        image = ax.imshow(maps[..., c], cmap=cmap, norm=norm, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    colorbar = subfig.colorbar(image, ax=list(axes), shrink=0.85, pad=0.01, aspect=12)
    colorbar.ax.tick_params(labelsize=7)
    subfig.suptitle(f"{caption}   [{range_text(maps[..., :count])}]", fontsize=9)
    return axes


def bar_block(subfig, values, caption, highlight=None, signed=False):
    """A bar per value (probabilities, or a flat layer's output or gradient)."""
    ax = subfig.subplots()
    values = np.ravel(values)
    if signed:
        colours = np.where(values < 0, "#2166ac", "#b2182b")
    else:
        colours = np.full(len(values), "#7f7f7f", dtype=object)
    if highlight is not None:
        colours[highlight] = "#e08214"
    ax.bar(np.arange(len(values)), values, color=list(colours), width=0.8 if len(values) <= 32 else 1.0)
    ax.axhline(0, color="black", linewidth=0.6)
    if len(values) <= 12:
        ax.set_xticks(range(len(values)))
    ax.tick_params(labelsize=7)
    subfig.suptitle(f"{caption}   [{range_text(values)}]", fontsize=9)
    return ax


def stage_row(row, lg, max_maps):
    """A layer's output (left) and dL/d(output) (right)."""
    left, right = row.subfigures(1, 2)
    name = f"{stage_name(lg.layer)} {lg.output.shape}"
    if lg.output.ndim == 3:
        norm = Normalize(float(lg.output.min()), float(lg.output.max()) + 1e-12)
        axes = map_block(left, lg.output, "gray", norm, f"{name}: output", max_maps)
        axes[0].set_ylabel(type(lg.layer).__name__, fontsize=9)
        map_block(right, lg.output_gradient, GRADIENT_CMAP, symmetric(lg.output_gradient),
                  "its gradient dL/d(output)", max_maps)
        return
    is_last = lg.output_gradient.ndim == 1 and np.count_nonzero(lg.output_gradient) == 1
    label = int(np.flatnonzero(lg.output_gradient)[0]) if is_last else None
    bar_block(left, lg.output, f"{name}: output", highlight=label)
    caption = (f"dL/dp: -1/p at the label {label}, 0 elsewhere" if is_last
               else "its gradient dL/d(output)")
    bar_block(right, lg.output_gradient, caption, signed=True)


def filter_row(row, lg, max_maps):
    """A convolution's filters (left) and their gradients (right), summed over input channels."""
    filters, grads = lg.layer.params["filters"], lg.param_gradients["filters"]
    if filters.ndim == 4:      # (F, k, k, C): show each filter summed over its C input channels
        filters, grads, how = filters.sum(axis=3), grads.sum(axis=3), ", summed over input channels"
    else:
        how = ""
    filters, grads = np.moveaxis(filters, 0, -1), np.moveaxis(grads, 0, -1)  # (k, k, F)
    left, right = row.subfigures(1, 2)
    map_block(left, filters, GRADIENT_CMAP, symmetric(filters), f"its filters{how}", max_maps)
    map_block(right, grads, GRADIENT_CMAP, symmetric(grads), "their gradients dL/d(filters)", max_maps)


def input_row(row, result, pixels):
    """The input, the saliency map dL/dx, the saliency over the drawing, the step's effect."""
    axes = row.subplots(1, 4, width_ratios=[1, 1.25, 1, 2.2])
    show_image(axes[0], pixels if pixels is not None else result.input, f"input {result.input.shape}")
    gradient = result.input_gradient
    image = axes[1].imshow(gradient, cmap=GRADIENT_CMAP, norm=symmetric(gradient), interpolation="nearest")
    axes[1].set_title(f"saliency dL/dx\n[{range_text(gradient)}]", fontsize=9)
    row.colorbar(image, ax=axes[1], shrink=0.85, pad=0.01, aspect=12).ax.tick_params(labelsize=7)
    show_image(axes[2], pixels if pixels is not None else result.input, "saliency over the input")
    axes[2].imshow(saliency_overlay(gradient), interpolation="nearest")
    for ax in axes[1:3]:
        ax.set_xticks([])
        ax.set_yticks([])
    step = axes[3]
    digits = np.arange(len(result.probabilities))
    step.bar(digits - 0.2, result.probabilities, 0.4, color="#9e9e9e", label="now")
    step.bar(digits + 0.2, result.probabilities_after_step, 0.4, color="#e08214",
             label=f"after one SGD step (lr {result.lr:g})")
    step.set_xticks(digits)
    step.set_ylim(0, 1)
    step.tick_params(labelsize=7)
    step.legend(fontsize=7, loc="upper left")
    step.set_title(f"p[{result.label}]: {result.probabilities[result.label]:.3f} -> "
                   f"{result.probabilities_after_step[result.label]:.3f}", fontsize=9)


def plot_backward_pass(result, *, pixels=None, title=None, max_maps=8, max_stages=6, path=None, dpi=100):
    """A ``scratchcnn.backprop.BackwardPass`` as one picture.

    Top row: the input ``(28, 28)`` (``pixels``, the uint8 image, if given), the saliency map
    dL/dx, the saliency over the input, and the probabilities before and after one SGD step.
    Then a row per stage, from the first layer to the last: its output beside dL/d(output)
    (up to ``max_maps`` maps each), and after each convolution its filters beside their
    gradients. With more than ``max_stages`` stages the first ``max_stages - 1`` and the last
    are shown. Returns the Figure; saves a PNG when ``path`` is given.
    """
    stages = list(result.layers)
    if len(stages) > max_stages:
        stages = stages[:max_stages - 1] + stages[-1:]
    rows = [("input", None)]
    for lg in stages:
        rows.append(("stage", lg))
        if "filters" in lg.param_gradients:
            rows.append(("filters", lg))
    heights = [1.9] + [1.25 if kind == "filters" else 1.5 for kind, _ in rows[1:]]
    fig = new_figure(2 * PANEL * max_maps + 2.4, sum(heights) + 0.6, dpi)
    for row, (kind, lg) in zip(fig.subfigures(len(rows), 1, height_ratios=heights), rows):
        if kind == "input":
            input_row(row, result, pixels)
        elif kind == "stage":
            stage_row(row, lg, max_maps)
        else:
            filter_row(row, lg, max_maps)
    fig.suptitle(title or f"The backward pass: loss -log p[{result.label}] = {result.loss:.3f}, "
                 f"predicted {result.prediction}", fontsize=12)
    return save(fig, path)
