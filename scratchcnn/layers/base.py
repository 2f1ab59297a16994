"""What every layer shares: the interface, input checks and weight initialisation.

Every layer follows one small interface, so the vectorized layers, their loop twins in
``scratchcnn.loops`` and anything else can be chained by ``scratchcnn.Network``:

* ``forward(x) -> y``. Caches what backward needs under plain attribute names
  (``last_input``, ...), so a person stepping through it in a debugger sees it.
* ``backward(d_y) -> d_x``. Returns the gradient w.r.t. the layer's input and fills
  ``grads``; it never updates parameters (an optimizer does).
* ``needs_input_grad``: True by default, and a layer on its own always returns ``d_x``. When
  it is False, ``backward`` may skip computing ``d_x`` and return None: during a training
  step ``Network`` clears it on its first layer with parameters, since nothing uses the
  gradient w.r.t. the images (it is a quarter of the seed network's step). A layer may ignore
  the attribute and return ``d_x`` anyway.
* ``params`` and ``grads``: dicts from parameter name to array, with the same keys.
* ``caches``: the names of the attributes ``forward`` fills for ``backward`` (or keeps between
  calls, such as a reused buffer). Whatever copies a layer to run it on another thread
  (``scratchcnn.engine``) gives the copy its own of each, and nothing else.
* ``window``: ``(size, stride, padding)`` of the input pixels each output pixel is computed
  from, for layers that keep a spatial map (``(1, 1, 0)`` for element-wise layers); ``None``
  for layers whose output is flat. The page uses it to outline a pixel's window.
* ``get_extra_state()`` / ``set_extra_state(state)``: state that is not a parameter but must
  survive a checkpoint (a generator's position, running statistics), as a JSON-able dict.
"""
import numpy as np

INIT_SCHEMES = ("tutorial", "he", "glorot")


def example_rows(x):
    """``x`` ``(N, ...)`` as ``(N, values per example)``: a view when ``x`` is contiguous, else a
    copy. A strided ``x`` whose last axis is contiguous (a pooling layer's output: runs of C
    channels) is copied run by run, each run one opaque item: NumPy's own copy of such a view
    loops over runs of only C values, slower when C is small (the seed network's 8 channels)."""
    if x.flags.c_contiguous or x.ndim < 2 or x.strides[-1] != x.itemsize or x.dtype.hasobject:
        return x.reshape(len(x), -1)
    runs = x.view(np.dtype((np.void, x.shape[-1] * x.itemsize)))  # (N, ..., 1)
    return np.ascontiguousarray(runs).view(x.dtype).reshape(len(x), -1)


class Layer:
    """Base class: a layer with no parameters until a subclass adds some."""

    window = None  # (size, stride, padding) for layers with spatial output; see the module doc
    needs_input_grad = True  # False: backward may skip d_x and return None; see the module doc
    caches = ()  # names of the attributes forward keeps for backward; see the module doc

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.training = True  # Dropout looks at this; Network.train()/eval() set it

    def forward(self, x):
        raise NotImplementedError

    def backward(self, d_out):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def get_extra_state(self):
        """Non-parameter state a checkpoint must keep, as a JSON-able dict (none by default)."""
        return {}

    def set_extra_state(self, state):
        """Restore what ``get_extra_state`` returned."""
        if state:
            raise ValueError(f"{type(self).__name__}: has no extra state, got keys {sorted(state)}")

    def config(self):
        """The constructor arguments that rebuild this layer (saved in checkpoints)."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def _zero_grads(self):
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}


def shape_error(layer, expected, x):
    """A ValueError naming the layer, the expected shape and the one received."""
    got = getattr(x, "shape", None)
    got = f"shape {got}" if got is not None else f"a {type(x).__name__}"
    return ValueError(f"{type(layer).__name__}: expected input of shape {expected}, got {got}")


def as_array(layer, x, ndims, expected):
    """Return ``x`` as an ndarray, refusing anything whose rank is not in ``ndims``."""
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception:  # ragged lists and the like
            raise shape_error(layer, expected, x) from None
    if x.ndim not in ndims or not np.issubdtype(x.dtype, np.number):
        raise shape_error(layer, expected, x)
    return x


def float_dtype(x):
    """The dtype a parameter-free layer computes in: the input's, if it is a float."""
    return x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)


def init_weights(shape, fan_in, fan_out, scheme, rng, dtype):
    """Random weights of ``shape``.

    ``"tutorial"``: ``randn / fan_in`` (the tutorial divides conv filters by 9 and the
    Softmax weights by ``input_len``); ``"he"``: ``randn * sqrt(2 / fan_in)``, for layers
    followed by ReLU; ``"glorot"``: uniform in ``+-sqrt(6 / (fan_in + fan_out))``.
    """
    rng = np.random.default_rng() if rng is None else rng
    if scheme == "tutorial":
        w = rng.standard_normal(shape) / fan_in
    elif scheme == "he":
        w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif scheme == "glorot":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-limit, limit, size=shape)
    else:
        raise ValueError(f"unknown init scheme {scheme!r}; expected one of {INIT_SCHEMES}")
    return w.astype(dtype)


def check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype
