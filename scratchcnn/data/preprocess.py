"""Turning the raw uint8 arrays into what a network trains on.

Every helper returns new arrays and leaves its inputs alone; the random ones take a seed (or
a seeded generator) so a run can be repeated exactly.
"""

from __future__ import annotations

import numpy as np


def normalize(images: np.ndarray, dtype=np.float32) -> np.ndarray:
    """The tutorial's scaling: pixel / 255 - 0.5, so inputs lie in [-0.5, 0.5].

    images: (N, 28, 28) uint8 (any shape works) -> same shape, ``dtype`` (float32 by default;
    pass float64 for gradient checks).
    """
    scalar = np.dtype(dtype).type
    return np.asarray(images, dtype=scalar) / scalar(255) - scalar(0.5)


def first_n(images: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` examples, as the tutorial trains on the first 1,000.

    images: (N, ...), labels: (N,) -> (n, ...), (n,). Raises if there are fewer than ``n``.
    """
    _check_pair(images, labels)
    if not 0 <= n <= len(labels):
        raise ValueError(f"asked for the first {n} examples of {len(labels)}")
    return images[:n].copy(), labels[:n].copy()


def shuffle(images: np.ndarray, labels: np.ndarray, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """The same random permutation applied to both; ``seed`` makes it repeatable.

    images: (N, ...), labels: (N,) -> (N, ...), (N,).
    """
    _check_pair(images, labels)
    order = np.random.default_rng(seed).permutation(len(labels))
    return images[order], labels[order]


def train_val_split(images: np.ndarray, labels: np.ndarray, val_size: int | float = 0.1,
                    seed: int | None = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out a random validation set from the *training* data (the test set stays untouched).

    val_size: a count (int) or a fraction in (0, 1) (float).
    images: (N, ...), labels: (N,) -> train_images (N - V, ...), train_labels (N - V,),
    val_images (V, ...), val_labels (V,). Both parts keep the original order, so
    ``first_n`` on the training part still means "the first n".
    """
    _check_pair(images, labels)
    n = len(labels)
    count = int(round(val_size * n)) if isinstance(val_size, float) else int(val_size)
    if not 0 < count < n:
        raise ValueError(f"val_size={val_size!r} leaves no training or no validation data out of {n}")
    is_val = np.zeros(n, dtype=bool)
    is_val[np.random.default_rng(seed).choice(n, size=count, replace=False)] = True
    return images[~is_val], labels[~is_val], images[is_val], labels[is_val]


def random_shifts(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Augmentation: move each image by up to ``max_shift`` pixels in each direction.

    images: (N, H, W) -> a new (N, H, W). Edges are repeated into the gap, which on MNIST is
    background. ``rng`` draws the shifts (the trainer seeds one per step, so a resumed run
    draws the same shifts again).
    """
    n, h, w = images.shape
    m = max_shift
    padded = np.pad(images, ((0, 0), (m, m), (m, m)), mode="edge")   # (N, H + 2m, W + 2m)
    dy = rng.integers(0, 2 * m + 1, n)                     # each image's top row in padded
    dx = rng.integers(0, 2 * m + 1, n)                     # and its left column
    rows = dy[:, None] + np.arange(h)                      # (N, H)
    cols = dx[:, None] + np.arange(w)                      # (N, W)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def _check_pair(images: np.ndarray, labels: np.ndarray) -> None:
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
