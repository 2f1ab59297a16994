"""Unpickling that can rebuild NumPy arrays and nothing else.

A pickle is a small program: its GLOBAL opcodes import any callable and its REDUCE
opcodes call it, so ``pickle.load`` on a crafted file runs arbitrary code. Every import
goes through ``Unpickler.find_class``; here that admits only the few NumPy names an
array pickle uses and refuses the rest *before* anything is called.
"""

from __future__ import annotations

import _codecs
import io
import pickle

import numpy as np

try:  # NumPy 2 moved the module; pickles written by NumPy 1 still name the old path
    from numpy._core.multiarray import _reconstruct, scalar
    from numpy._core.numeric import _frombuffer
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct, scalar
    from numpy.core.numeric import _frombuffer

# (module, name) -> the object to hand back. Resolved here, not imported by name at load
# time, so an allowed entry can't be redirected and the old path gives no deprecation noise.
_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): scalar,
    ("numpy._core.multiarray", "scalar"): scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,  # protocol 5 array buffers
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _codecs.encode,  # how Python 3 writes bytes in protocol 2: str -> bytes
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asked for something other than a NumPy array."""


class ArrayUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only NumPy array reconstruction."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {module}.{name}: this pickle should hold only NumPy arrays"
            ) from None


def load_arrays(file, encoding: str = "latin1"):
    """Unpickle tuples/lists of NumPy arrays from a binary file object (or bytes).

    ``encoding="latin1"`` reads Python 2 pickles, whose array buffers are byte strings.
    Object-dtype arrays are refused too: their items would be arbitrary Python objects.
    """
    if isinstance(file, (bytes, bytearray)):
        file = io.BytesIO(file)
    result = ArrayUnpickler(file, encoding=encoding).load()
    _reject_object_arrays(result)
    return result


def _reject_object_arrays(obj) -> None:
    if isinstance(obj, (tuple, list)):
        for item in obj:
            _reject_object_arrays(item)
    elif isinstance(obj, np.ndarray) and obj.dtype.hasobject:
        raise UnsafePickleError("refusing an object-dtype array: expected plain numeric arrays")
