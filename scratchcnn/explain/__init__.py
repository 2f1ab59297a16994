"""Why did it say 7? Explanations of one answer, each checked against what it promises.

Every function takes a ``Network`` (as trained by scratchcnn, ending in a ``Softmax``) and works
on a float64 copy of it in evaluation mode, through the layers' own ``backward``; the network
passed in is left exactly as it was. ``image`` is one ``(28, 28)`` image as the network takes it
(``scratchcnn.data.normalize``: pixel / 255 - 0.5); ``target`` is a class 0-9; "the logit" is
what the last ``Softmax`` computes before its exponential (``x @ weights + biases``).

========================  ===============================================================
``saliency``              d logit_target / d image
``gradient_times_input``  the saliency times the image
``smoothgrad``            the mean saliency over noisy copies of the image
``integrated_gradients``  (image - baseline) times the mean gradient on the path between
``occlusion``             how much p_target drops when a window of the image is blanked
``grad_cam``              a layer's maps weighed by the logit's mean gradient on them
``class_model``           an image grown from blank to raise the class's logit
``adversarial``           a nearby image (max norm ``eps``) that the network reads differently
========================  ===============================================================

Bad arguments raise ``ValueError`` saying what was wrong. The page's Explain view and
``POST /api/explain`` show them; ``scripts/explain.py`` draws ``docs/explain.png``.
"""
from .common import explaining_copy
from .gradcam import cam_on_image, grad_cam
from .gradients import gradient_times_input, integrated_gradients, saliency, smoothgrad
from .occlusion import occlusion
from .synthesis import adversarial, class_model, class_models

__all__ = ["saliency", "gradient_times_input", "smoothgrad", "integrated_gradients", "occlusion",
           "grad_cam", "cam_on_image", "class_model", "class_models", "adversarial", "explaining_copy"]
