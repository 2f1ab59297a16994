"""Pictures of what a network is doing, drawn with matplotlib and saved as PNG.

Every ``plot_*`` function builds its own ``Figure`` on the Agg canvas (no pyplot, no window,
no display needed), returns it, and writes a PNG of exactly ``figsize * dpi`` pixels when
given ``path=``. In a notebook the returned figure shows itself.

* ``plot_filters``: kernels with their values written on them (hand-made or learned).
* ``plot_feature_maps``: one image through the network, a row per stage, a panel per filter.
* ``plot_training_curves``: loss and accuracy per epoch, from the trainer's metrics JSON.
* ``plot_backward_pass``: one image's backward pass, each stage's output beside its gradient.
* ``plot_confusion_matrix``, ``plot_misclassified``, ``plot_probabilities``: where and how
  the trained network goes wrong.
"""
from .canvas import new_figure, save
from .features import feature_stages, plot_feature_maps
from .gradients import plot_backward_pass
from .kernels import plot_filters
from .results import (confusion_matrix, load_metrics, most_confident_mistakes, plot_confusion_matrix,
                      plot_misclassified, plot_probabilities, plot_training_curves)

__all__ = ["plot_filters", "plot_feature_maps", "plot_backward_pass", "plot_training_curves", "plot_confusion_matrix",
           "plot_misclassified", "plot_probabilities", "feature_stages", "confusion_matrix",
           "most_confident_mistakes", "load_metrics", "new_figure", "save"]
