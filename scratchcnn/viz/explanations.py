"""``plot_explanations``: why did it say 7? Every method of ``scratchcnn.explain`` on a few digits.

A row per digit, a column per method, the maps of the network's own answer (the target is its
prediction); then a row of class models, what the network "thinks" each digit looks like.
Signed maps are blue < 0 < red with zero white, each scaled to its own largest magnitude;
Grad-CAM is drawn over the digit; the adversarial column shows the new digit and its reading.
"""
import numpy as np
from matplotlib import colormaps

from .. import explain
from .canvas import new_figure, save, show_image
from .gradients import GRADIENT_CMAP, symmetric

SIGNED = [("saliency", "saliency"), ("gradient_times_input", "gradient × input"),
          ("smoothgrad", "SmoothGrad"), ("integrated_gradients", "Integrated Gradients"),
          ("occlusion", "occlusion")]
ADVERSARIAL_EPS = 0.2


def explanation_row(network, image, target):
    """Every method's answer for one image ``(28, 28)`` and ``target``: ``{name: map}``, plus
    ``"grad_cam"`` on the image (None for a network without maps) and ``"adversarial"``."""
    row = {name: getattr(explain, name)(network, image, target) for name, _ in SIGNED}
    try:
        cam, layer = explain.grad_cam(network, image, target, with_layer=True)
        row["grad_cam"] = explain.cam_on_image(network, cam, layer, image.shape)
    except ValueError:
        row["grad_cam"] = None
    row["adversarial"] = explain.adversarial(network, image, eps=ADVERSARIAL_EPS)
    return row


def plot_explanations(network, images, labels, path=None, class_model_steps=100):
    """A figure: ``images`` ``(N, 28, 28)`` normalised (``labels`` ``(N,)``, the true digits) in
    rows, one column per method, and a last row of the ten class models. Returns the figure."""
    images = np.asarray(images, np.float64)
    predictions = network.predict(images)
    titles = (["the digit"] + [title for _, title in SIGNED] + ["Grad-CAM"] +
              [f"fooled (eps {ADVERSARIAL_EPS:g})"])
    fig = new_figure(1.25 * len(titles), 1.35 * (len(images) + 1) + 0.6)
    top, bottom = fig.subfigures(2, 1, height_ratios=[len(images), 1.2])
    axes = top.subplots(len(images), len(titles), squeeze=False)
    for r, (image, label, said) in enumerate(zip(images, labels, predictions)):
        row = explanation_row(network, image, int(said))
        show_image(axes[r, 0], pixels(image))
        axes[r, 0].set_ylabel(f"label {label}\nsays {said}", fontsize=8,
                              color="#c0392b" if said != label else "black")
        for c, (name, _) in enumerate(SIGNED, start=1):
            values = row[name]
            axes[r, c].imshow(values, cmap=GRADIENT_CMAP, norm=symmetric(values), interpolation="nearest")
        cam_axis = axes[r, len(SIGNED) + 1]
        show_image(cam_axis, pixels(image))
        if row["grad_cam"] is not None:
            cam = row["grad_cam"] / (row["grad_cam"].max() or 1.0)
            rgba = colormaps["inferno"](cam)
            rgba[..., 3] = 0.8 * cam
            cam_axis.imshow(rgba, interpolation="nearest")
        after = int(network.predict(row["adversarial"][np.newaxis])[0])
        show_image(axes[r, -1], pixels(row["adversarial"]))
        axes[r, -1].set_xlabel(f"now says {after}", fontsize=8, color="#c0392b" if after != said else "black")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, title in zip(axes[0], titles):
        ax.set_title(title, fontsize=8)
    class_row(bottom, network, class_model_steps)
    top.suptitle("Why did it say that? Each map explains the network's own answer "
                 "(blue lowers its logit, red raises it)", fontsize=10)
    return save(fig, path)


def pixels(image):
    """A normalised image (-0.5 .. 0.5) as uint8 grey levels, drawn on the fixed 0..255 scale."""
    return np.round(255 * np.clip(np.asarray(image) + 0.5, 0, 1)).astype(np.uint8)


def class_row(subfig, network, steps):
    """The ten class models, each titled with the class the network reads in it."""
    models = explain.class_models(network, range(10), steps)
    read = network.predict(models)
    axes = subfig.subplots(1, 10)
    for digit, (ax, image) in enumerate(zip(axes, models)):
        show_image(ax, pixels(image), f"{digit}" + ("" if read[digit] == digit else f" (reads {read[digit]})"),
                   fontsize=8)
    subfig.suptitle("Class models: a blank image changed step by step to raise each digit's logit", fontsize=9)
