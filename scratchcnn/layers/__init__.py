"""Vectorized layers, one module per kind. See ``base.py`` for the interface they share."""
from .activations import ReLU
from .base import Layer
from .batchnorm import BatchNorm
from .conv import Conv2D, Conv3x3
from .dense import Dense
from .dropout import Dropout
from .pool import AvgPool2, MaxPool2
from .flatten import Flatten
from .softmax import Softmax

__all__ = ["Layer", "Conv2D", "Conv3x3", "MaxPool2", "AvgPool2", "Softmax", "Dense", "ReLU",
           "Flatten", "Dropout", "BatchNorm"]
