"""The networks ``python -m scratchcnn.train --model`` builds, and their training defaults.

* ``seed``: the tutorial network, Conv3x3(8) -> MaxPool2 -> Softmax(13*13*8 -> 10).
* ``classic``: Input -> Conv -> ReLU -> Conv -> ReLU -> Pool -> Conv -> ReLU -> Pool -> Fully
  connected (with softmax), the deeper network the tutorials draw.
* ``mlp``: the multilayer-perceptron baseline, 784 -> 512 -> 512 -> 10, ReLU and dropout 0.2,
  to see what convolution buys.

Every network takes ``(N, 28, 28)`` normalised images and returns ``(N, 10)`` probabilities.
"""
import numpy as np

from .layers import Conv2D, Conv3x3, Dense, Dropout, Flatten, MaxPool2, ReLU, Softmax
from .network import Network

MODEL_NAMES = ("seed", "classic", "mlp")

# Defaults per model, chosen so the headline accuracy needs no tuning (see README).
TRAINING_DEFAULTS = {
    "seed": dict(epochs=3, batch_size=32, lr=0.05, optimizer="momentum"),
    "classic": dict(epochs=6, batch_size=64, lr=1e-3, optimizer="adam"),
    "mlp": dict(epochs=10, batch_size=128, lr=1e-3, optimizer="adam"),
}


def build_model(name, dtype=np.float32, seed=0):
    """A freshly initialised network by name; ``seed`` fixes every initial weight and dropout mask."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")
    rng = np.random.default_rng(seed)
    if name == "seed":
        return Network([
            Conv3x3(8, dtype=dtype, rng=rng),           # (N, 28, 28)    -> (N, 26, 26, 8)
            MaxPool2(),                                 # (N, 26, 26, 8) -> (N, 13, 13, 8)
            Softmax(13 * 13 * 8, 10, dtype=dtype, rng=rng),  # (N, 13, 13, 8) -> (N, 10)
        ])
    if name == "classic":
        return Network([
            Conv2D(32, 3, padding="same", dtype=dtype, rng=rng),                    # -> (N, 28, 28, 32)
            ReLU(),
            Conv2D(32, 3, in_channels=32, padding="same", dtype=dtype, rng=rng),    # -> (N, 28, 28, 32)
            ReLU(),
            MaxPool2(),                                                             # -> (N, 14, 14, 32)
            Conv2D(64, 3, in_channels=32, padding="same", dtype=dtype, rng=rng),    # -> (N, 14, 14, 64)
            ReLU(),
            MaxPool2(),                                                             # -> (N, 7, 7, 64)
            Softmax(7 * 7 * 64, 10, init="glorot", dtype=dtype, rng=rng),           # -> (N, 10)
        ])
    return Network([
        Flatten(),                                   # (N, 28, 28) -> (N, 784)
        Dense(784, 512, dtype=dtype, rng=rng), ReLU(), Dropout(0.2, rng=rng),
        Dense(512, 512, dtype=dtype, rng=rng), ReLU(), Dropout(0.2, rng=rng),
        Softmax(512, 10, init="glorot", dtype=dtype, rng=rng),  # -> (N, 10)
    ])
