"""The networks ``python -m scratchcnn.train --model`` builds, and their training defaults.

* ``seed``: the tutorial network, Conv3x3(8) -> MaxPool2 -> Softmax(13*13*8 -> 10).
* ``classic``: Input -> Conv -> ReLU -> Conv -> ReLU -> Pool -> Conv -> ReLU -> Pool -> Fully
  connected (with softmax), the deeper network the tutorials draw.
* ``mlp``: the multilayer-perceptron baseline, 784 -> 512 -> 512 -> 10, ReLU and dropout 0.2,
  to see what convolution buys.

Every network takes ``(N, 28, 28)`` normalised images and returns ``(N, 10)`` probabilities.
"""
import numpy as np

from . import loops
from .layers import Conv2D, Conv3x3, Dense, Dropout, Flatten, MaxPool2, ReLU, Softmax
from .network import Network

MODEL_NAMES = ("seed", "classic", "mlp")

# Defaults per model, chosen so the headline accuracy needs no tuning (see README).
# ``lr_decay``: the learning rate is multiplied by it after every epoch; ``shift``: training
# images are moved by up to this many pixels (0 = no augmentation).
TRAINING_DEFAULTS = {
    "seed": dict(epochs=3, batch_size=32, lr=0.03, optimizer="momentum", lr_decay=0.5, shift=0),
    "classic": dict(epochs=8, batch_size=64, lr=2e-3, optimizer="adam", lr_decay=0.6, shift=2),
    "mlp": dict(epochs=10, batch_size=128, lr=1e-3, optimizer="adam", lr_decay=0.8, shift=0),
}


def build_model(name, dtype=np.float32, seed=0, loop=False):
    """A freshly initialised network by name; ``seed`` fixes every initial weight and dropout mask.

    ``loop=True`` (``seed`` model only) builds it from the loop twins in ``scratchcnn.loops``.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")
    if loop and name != "seed":
        raise ValueError(f"loop twins exist only for the seed network's layers, not {name!r}")
    rng = np.random.default_rng(seed)
    if name == "seed":
        conv, pool, softmax = (loops.Conv3x3, loops.MaxPool2, loops.Softmax) if loop else \
            (Conv3x3, MaxPool2, Softmax)
        return Network([
            conv(8, dtype=dtype, rng=rng),              # (N, 28, 28)    -> (N, 26, 26, 8)
            pool(),                                     # (N, 26, 26, 8) -> (N, 13, 13, 8)
            softmax(13 * 13 * 8, 10, dtype=dtype, rng=rng),  # (N, 13, 13, 8) -> (N, 10)
        ])
    if name == "classic":
        return classic(dtype, rng)
    return Network([
        Flatten(),                                   # (N, 28, 28) -> (N, 784)
        Dense(784, 512, dtype=dtype, rng=rng), ReLU(), Dropout(0.2, rng=child(rng)),
        Dense(512, 512, dtype=dtype, rng=rng), ReLU(), Dropout(0.2, rng=child(rng)),
        Softmax(512, 10, init="glorot", dtype=dtype, rng=rng),  # -> (N, 10)
    ])


def classic(dtype=np.float32, rng=None, filters=(16, 32, 64), padding="valid"):
    """Input -> Conv -> ReLU -> Conv -> ReLU -> Pool -> Conv -> ReLU -> Pool -> Fully connected.

    "valid" 3x3 convolutions (no zero border): each shrinks the image by 2 pixels, which
    costs nothing in accuracy on MNIST's empty margins and makes the full-resolution second
    convolution, where most of the time goes, about 25% cheaper than "same".
    """
    f1, f2, f3 = filters
    shrink = 0 if padding == "same" else 2
    size = 28 - 2 * shrink          # after the first two convolutions
    size = size // 2 - shrink       # after the pool and the third convolution
    size //= 2                      # after the second pool
    return Network([
        Conv2D(f1, 3, padding=padding, dtype=dtype, rng=rng),                  # -> (N, 26, 26, f1)
        ReLU(),
        Conv2D(f2, 3, in_channels=f1, padding=padding, dtype=dtype, rng=rng),  # -> (N, 24, 24, f2)
        ReLU(),
        MaxPool2(),                                                            # -> (N, 12, 12, f2)
        Conv2D(f3, 3, in_channels=f2, padding=padding, dtype=dtype, rng=rng),  # -> (N, 10, 10, f3)
        ReLU(),
        MaxPool2(),                                                            # -> (N, 5, 5, f3)
        Softmax(size * size * f3, 10, init="glorot", dtype=dtype, rng=rng),    # -> (N, 10)
    ])


def child(rng):
    """An independent generator drawn from ``rng``. Each dropout layer gets its own, so a
    checkpoint can save and restore each one's state (a shared generator could not be)."""
    return np.random.default_rng(rng.integers(2 ** 63))
