"""The networks ``python -m scratchcnn.train --model`` builds, and their training defaults.

* ``seed``: the tutorial network, Conv3x3(8) -> MaxPool2 -> Softmax(13*13*8 -> 10).
* ``classic``: Input -> Conv -> ReLU -> Conv -> ReLU -> Pool -> Conv -> ReLU -> Pool -> Fully
  connected (with softmax), the deeper network the tutorials draw.
* ``modern``: two blocks of two convolutions, each followed by batch normalisation and ReLU,
  then max pooling; a fully connected layer with batch normalisation, ReLU and dropout; the
  output ``Softmax``. Trained with rotated, scaled and shifted images (issue 14).
* ``mlp``: the multilayer-perceptron baseline, 784 -> 512 -> 512 -> 10, ReLU and dropout 0.2,
  to see what convolution buys.

Every network takes ``(N, 28, 28)`` normalised images and returns ``(N, 10)`` probabilities.
"""
import numpy as np

from . import loops
from .layers import BatchNorm, Conv2D, Conv3x3, Dense, Dropout, Flatten, MaxPool2, ReLU, Softmax
from .network import Network

MODEL_NAMES = ("seed", "classic", "modern", "mlp")

# Defaults per model, chosen so the headline accuracy needs no tuning (see README; modern's on a
# validation split, --val-size 5000).
# ``lr_decay``: the learning rate is multiplied by it after every epoch. Augmentation of the
# training images: ``shift`` moves them by up to this many pixels, ``rotate`` turns them by up
# to this many degrees, ``scale`` resizes them by up to this fraction (0 = none).
NO_AUGMENTATION = dict(shift=0, rotate=0.0, scale=0.0)
TRAINING_DEFAULTS = {
    "seed": dict(epochs=3, batch_size=32, lr=0.03, optimizer="momentum", lr_decay=0.5, **NO_AUGMENTATION),
    "classic": dict(epochs=8, batch_size=64, lr=2e-3, optimizer="adam", lr_decay=0.6,
                    **dict(NO_AUGMENTATION, shift=2)),
    "modern": dict(epochs=12, batch_size=64, lr=2e-3, optimizer="adam", lr_decay=0.75,
                   shift=2, rotate=10.0, scale=0.1),
    "mlp": dict(epochs=10, batch_size=128, lr=1e-3, optimizer="adam", lr_decay=0.8, **NO_AUGMENTATION),
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
    if name == "modern":
        return modern(dtype, rng)
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


def modern(dtype=np.float32, rng=None, filters=(32, 64), dense=128, dropout=0.3):
    """[Conv -> BatchNorm -> ReLU] x 2 -> Pool, twice, then Dense -> BatchNorm -> ReLU ->
    Dropout -> Softmax. Wiring shown for the default ``filters=(32, 64)``, ``dense=128``.

    The convolutions have no bias: the BatchNorm after each subtracts the channel's mean, which
    would cancel it (its ``beta`` plays that part).
    """
    rng = np.random.default_rng(rng)
    f1, f2 = filters
    conv = dict(bias=False, dtype=dtype, rng=rng)
    return Network([
        Conv2D(f1, 3, **conv),                  # (N, 28, 28)        -> (N, 26, 26, 32)
        BatchNorm(f1, dtype=dtype),             # (N, 26, 26, 32)    -> (N, 26, 26, 32)
        ReLU(),                                 # (N, 26, 26, 32)    -> (N, 26, 26, 32)
        Conv2D(f1, 3, in_channels=f1, **conv),  # (N, 26, 26, 32)    -> (N, 24, 24, 32)
        BatchNorm(f1, dtype=dtype),             # (N, 24, 24, 32)    -> (N, 24, 24, 32)
        ReLU(),                                 # (N, 24, 24, 32)    -> (N, 24, 24, 32)
        MaxPool2(),                             # (N, 24, 24, 32)    -> (N, 12, 12, 32)
        Conv2D(f2, 3, in_channels=f1, **conv),  # (N, 12, 12, 32)    -> (N, 10, 10, 64)
        BatchNorm(f2, dtype=dtype),             # (N, 10, 10, 64)    -> (N, 10, 10, 64)
        ReLU(),                                 # (N, 10, 10, 64)    -> (N, 10, 10, 64)
        Conv2D(f2, 3, in_channels=f2, **conv),  # (N, 10, 10, 64)    -> (N, 8, 8, 64)
        BatchNorm(f2, dtype=dtype),             # (N, 8, 8, 64)      -> (N, 8, 8, 64)
        ReLU(),                                 # (N, 8, 8, 64)      -> (N, 8, 8, 64)
        MaxPool2(),                             # (N, 8, 8, 64)      -> (N, 4, 4, 64)
        Flatten(),                              # (N, 4, 4, 64)      -> (N, 1024)
        Dense(4 * 4 * f2, dense, dtype=dtype, rng=rng),  # (N, 1024) -> (N, 128)
        BatchNorm(dense, dtype=dtype),          # (N, 128)           -> (N, 128)
        ReLU(),                                 # (N, 128)           -> (N, 128)
        Dropout(dropout, rng=child(rng)),       # (N, 128)           -> (N, 128)
        Softmax(dense, 10, init="glorot", dtype=dtype, rng=rng),  # (N, 128) -> (N, 10)
    ])


def child(rng):
    """An independent generator drawn from ``rng``. Each dropout layer gets its own, so a
    checkpoint can save and restore each one's state (a shared generator could not be)."""
    return np.random.default_rng(rng.integers(2 ** 63))
