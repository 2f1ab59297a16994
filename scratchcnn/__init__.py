"""scratchcnn: a convolutional neural network for MNIST, from scratch in NumPy.

Vectorized layers (``Conv3x3``, ``MaxPool2``, ``Softmax``, ...) live in ``scratchcnn.layers``,
their one-image-at-a-time loop twins in ``scratchcnn.loops``; ``Network`` chains layers and
the optimizers update them.
"""
from .layers import (AvgPool2, BatchNorm, Conv2D, Conv3x3, Dense, Dropout, Flatten, Layer, MaxPool2,
                     ReLU, Softmax)
from .losses import cross_entropy, softmax_cross_entropy
from .network import Network, TrainingDiverged
from .optim import SGD, Adam, Momentum

__version__ = "0.1.0"

__all__ = ["Layer", "Conv2D", "Conv3x3", "MaxPool2", "AvgPool2", "Softmax", "Dense", "ReLU",
           "Flatten", "Dropout", "BatchNorm", "Network", "TrainingDiverged", "SGD", "Momentum", "Adam",
           "cross_entropy", "softmax_cross_entropy"]
