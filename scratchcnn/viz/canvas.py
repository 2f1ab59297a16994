"""Figures that need no display: built on the Agg canvas directly, saved at a fixed size,
and shown inline by Jupyter when a cell ends with one."""
import io
import os

import matplotlib.figure
from matplotlib.backends.backend_agg import FigureCanvasAgg

DPI = 100


class Figure(matplotlib.figure.Figure):
    """A matplotlib ``Figure`` that Jupyter displays as a PNG, with no pyplot and no backend.

    IPython asks an object for ``_repr_png_`` when it is the value of a cell; a plain Figure
    built without pyplot only has a text repr (``<Figure size 900x360 with 2 Axes>``). If
    pyplot's inline backend is active, its own PNG printer is used instead, so a figure is
    still shown once.
    """

    def _repr_png_(self):
        """The PNG ``save`` would write: ``figsize * dpi`` pixels."""
        buffer = io.BytesIO()
        self.savefig(buffer, dpi=self.dpi, format="png")
        return buffer.getvalue()


def new_figure(width, height, dpi=DPI):
    """A ``width`` x ``height`` inch figure on an Agg canvas (pyplot is never involved, so
    nothing opens a window and figures are freed like any other object). In Jupyter it
    displays itself inline when it is the last expression of a cell."""
    width, height = round(width * dpi) / dpi, round(height * dpi) / dpi  # whole pixels
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig, path):
    """Write ``fig`` as a PNG of exactly ``figsize * dpi`` pixels if ``path`` is given; return ``fig``."""
    if path is not None:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fig.savefig(path, dpi=fig.dpi, format="png")  # no bbox="tight": the size stays predictable
    return fig


def show_image(ax, image, title=None, fontsize=9):
    """A grayscale digit without ticks; uint8 images use the full 0..255 range."""
    kwargs = dict(vmin=0, vmax=255) if str(getattr(image, "dtype", "")) == "uint8" else {}
    ax.imshow(image, cmap="gray", interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=fontsize)
