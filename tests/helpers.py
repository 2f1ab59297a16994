"""What several test files share that is not a fixture (fixtures live in conftest.py)."""
import numpy as np

F64 = np.float64


def images_and_labels(rng, n, dtype=np.float64):
    """``n`` random MNIST-shaped images in [-0.5, 0.5) ``(n, 28, 28)`` and labels ``(n,)``."""
    return (rng.random((n, 28, 28)) - 0.5).astype(dtype), rng.integers(0, 10, n)


def parameters(network):
    """Copies of every parameter array of ``network``, layer by layer."""
    return [p.copy() for layer in network.layers for p in layer.params.values()]


def synthetic_mnist(n_train=640, n_test=200, seed=0):
    """An MNIST look-alike, as ``load_mnist`` returns it: uint8 ``(N, 28, 28)`` images whose
    label says which of ten 7x7 cells holds a bright square (learnable in one quick epoch)."""
    rng = np.random.default_rng(seed)

    def make(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            r, c = divmod(int(label), 4)
            images[i, 2 + 7 * r:7 + 7 * r, 2 + 7 * c:7 + 7 * c] = 255
        return images, labels

    return (*make(n_train), *make(n_test))
