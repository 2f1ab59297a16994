"""How training went and where a trained network goes wrong: curves, confusion matrix,
misclassified digits, and the probabilities behind one prediction."""
import json
import os

import numpy as np

from .canvas import new_figure, save, show_image


def load_metrics(metrics):
    """The trainer's metrics (``--metrics m.json``) as a dict, from a dict or a path."""
    if isinstance(metrics, (str, os.PathLike)):
        with open(metrics, encoding="utf-8") as f:
            metrics = json.load(f)
    if not isinstance(metrics, dict) or not metrics.get("epochs"):
        raise ValueError("metrics: expected the trainer's JSON with a non-empty 'epochs' list")
    return metrics


def plot_training_curves(metrics, *, title=None, path=None, dpi=100):
    """Loss and accuracy per epoch, training and validation, with the final test result.

    metrics: the dict (or path of the JSON file) ``python -m scratchcnn.train --metrics``
    writes: ``epochs`` a list of dicts with ``train_loss``, ``train_accuracy``, ``val_loss``,
    ``val_accuracy``; ``test_loss``, ``test_accuracy``, ``model``, ``train_seconds`` and
    ``validation`` (``"test set"`` when the trainer validated on it) and ``steps`` (the logged
    "Past N steps" points: ``epoch`` (fractional), ``steps``, ``loss``, ``accuracy``) optional.
    Returns the Figure; saves a PNG when ``path`` is given.
    """
    metrics = load_metrics(metrics)
    epochs, steps = metrics.get("epochs", []), metrics.get("steps", [])
    x = np.arange(1, len(epochs) + 1)
    # Without --val-size the trainer validates on the test set, and says so in "validation".
    val_label = "test set" if metrics.get("validation") == "test set" else "validation"
    fig = new_figure(9, 3.6, dpi)
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax, key, scale, label in ((loss_ax, "loss", 1, "cross-entropy loss"),
                                  (acc_ax, "accuracy", 100, "accuracy (%)")):
        if steps:  # the trainer's "Past N steps" points, at fractional epochs: the fine curve
            ax.plot([p["epoch"] for p in steps], [p[key] * scale for p in steps], color="tab:blue",
                    alpha=0.35, label=f"training, every {steps[0]['steps']} steps")
        for split, style, name in (("train", "o-", "training (epoch mean)"), ("val", "s--", val_label)):
            values = [e.get(f"{split}_{key}") for e in epochs]
            if epochs and all(v is not None for v in values):
                ax.plot(x, np.array(values, float) * scale, style, label=name, markersize=5)
        test = metrics.get(f"test_{key}")
        if test is not None and epochs:
            ax.plot([x[-1]], [test * scale], "*", markersize=13, color="tab:red",
                    label=f"final test: {test * scale:.4g}" + ("%" if scale == 100 else ""))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if epochs:
            ax.set_xticks(x)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    if title is None:
        title = f"Training {metrics.get('model', 'the network')}: {len(epochs)} epochs"
        if metrics.get("test_accuracy") is not None:
            title += f", test accuracy {metrics['test_accuracy']:.2%}"
    fig.suptitle(title, fontsize=12)
    return save(fig, path)


def confusion_matrix(labels, predictions, num_classes=10):
    """``(num_classes, num_classes)`` counts: row = true class, column = predicted class."""
    labels, predictions = np.asarray(labels, int), np.asarray(predictions, int)
    return np.bincount(labels * num_classes + predictions,
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def plot_confusion_matrix(labels, predictions, *, num_classes=10, title=None, path=None, dpi=100):
    """Counts of (true, predicted) pairs; correct ones on a green diagonal, mistakes in red
    shades scaled to the most common mistake, so the confusions stand out. The right-hand
    labels give each class's accuracy. labels, predictions: ``(N,)`` ints.
    Returns the Figure; saves a PNG when ``path`` is given.
    """
    counts = confusion_matrix(labels, predictions, num_classes)
    diagonal = np.eye(num_classes, dtype=bool)
    mistakes = np.where(diagonal, 0, counts)
    fig = new_figure(6.4, 5.6, dpi)
    ax = fig.subplots()
    ax.imshow(np.ma.masked_where(~diagonal, counts), cmap="Greens", vmin=0, vmax=counts.max() * 2.5)
    ax.imshow(np.ma.masked_where(diagonal, counts), cmap="Reds", vmin=0, vmax=max(1, mistakes.max()) * 1.4)
    for (i, j), n in np.ndenumerate(counts):
        if n or i == j:
            ax.text(j, i, str(n), ha="center", va="center", fontsize=8 if n < 1000 else 7, in_layout=False,
                    fontweight="bold" if i == j else "normal")
    ticks = np.arange(num_classes)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    per_class = counts[ticks, ticks] / np.maximum(counts.sum(axis=1), 1)
    right = ax.secondary_yaxis("right")
    right.set_yticks(ticks, [f"{a:.1%}" for a in per_class], fontsize=8)
    right.set_ylabel("accuracy of the class")
    if title is None:
        total = counts.sum()
        title = f"Confusion matrix: {counts.trace() / max(total, 1):.2%} of {total:,} right"
    ax.set_title(title, fontsize=12)
    return save(fig, path)


def most_confident_mistakes(labels, probs, count=16):
    """Indices of the ``count`` wrong predictions made with the highest probability, most
    confident first. labels ``(N,)``, probs ``(N, num_classes)``."""
    labels, probs = np.asarray(labels), np.asarray(probs)
    wrong = np.flatnonzero(probs.argmax(axis=1) != labels)
    confidence = probs[wrong].max(axis=1)
    return wrong[np.argsort(-confidence, kind="stable")][:count]


def plot_misclassified(images, labels, probs, *, indices=None, count=16, columns=8, title=None,
                       path=None, dpi=100):
    """A grid of test images the network got wrong: index, true label, predicted label and
    its probability above each.

    images ``(N, 28, 28)``, labels ``(N,)``, probs ``(N, num_classes)``; ``indices`` picks the
    images (default: the ``count`` most confident mistakes).
    Returns the Figure; saves a PNG when ``path`` is given.
    """
    probs = np.asarray(probs)
    if indices is None:
        indices = most_confident_mistakes(labels, probs, count)
    indices = list(indices)
    cols = max(1, min(columns, len(indices)))
    rows = max(1, -(-len(indices) // cols))
    fig = new_figure(1.4 * cols, 1.7 * rows + 0.45, dpi)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, i in zip(axes, indices):
        predicted = int(probs[i].argmax())
        show_image(ax, images[i])
        ax.set_title(f"#{i}: true {int(labels[i])}\npredicted {predicted} ({probs[i, predicted]:.1%})",
                     fontsize=8, color="black" if predicted == labels[i] else "tab:red")
    for ax in axes[len(indices):]:
        ax.set_visible(False)
    if title is None:
        title = "Most confident mistakes" if len(indices) else "No mistakes to show"
    fig.suptitle(title, fontsize=12)
    return save(fig, path)


def plot_probabilities(probs, *, label=None, image=None, title=None, path=None, dpi=100):
    """A bar per class for one prediction; the predicted class green if right, red if wrong.

    probs: ``(num_classes,)``; label: the true class, marked below its bar; image: ``(28, 28)``
    shown beside the bars. Returns the Figure; saves a PNG when ``path`` is given.
    """
    probs = np.asarray(probs, float).ravel()
    predicted = int(probs.argmax())
    fig = new_figure(7 if image is not None else 5.5, 3.2, dpi)
    if image is not None:
        image_ax, ax = fig.subplots(1, 2, width_ratios=[1, 2.6])
        show_image(image_ax, image, "input" if label is None else f"input (label {label})", fontsize=10)
    else:
        ax = fig.subplots()
    colours = ["tab:gray"] * len(probs)
    colours[predicted] = "tab:green" if label is None or label == predicted else "tab:red"
    classes = np.arange(len(probs))
    ax.bar(classes, probs * 100, color=colours)
    for c, p in zip(classes, probs):
        if p >= 0.005:
            ax.text(c, p * 100 + 2, f"{p:.0%}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(classes, [f"{c}\n(true)" if c == label else str(c) for c in classes])
    ax.set_ylim(0, 115)
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.set_ylabel("probability (%)")
    ax.set_xlabel("digit")
    ax.spines[["top", "right"]].set_visible(False)
    if title is None:
        title = f"Predicted {predicted} with {probs[predicted]:.1%}"
    ax.set_title(title, fontsize=11)
    return save(fig, path)
