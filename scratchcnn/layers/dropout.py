"""Inverted dropout: zero a random fraction ``rate`` of activations while training."""
import numpy as np

from .base import Layer, as_array, float_dtype


class Dropout(Layer):
    """While ``training``, zero each value with probability ``rate`` and scale the rest by
    ``1 / (1 - rate)`` so the expected activation is unchanged; in evaluation it is the
    identity. Any shape."""
    window = (1, 1, 0)  # element-wise
    caches = ("last_mask",)

    def __init__(self, rate=0.5, rng=None):
        super().__init__()
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.rng = np.random.default_rng() if rng is None else rng
        self.last_mask = None

    def config(self):
        return dict(rate=self.rate)

    def get_extra_state(self):
        """The generator's position, so a resumed run draws the masks it would have drawn."""
        return {"rng": self.rng.bit_generator.state}

    def set_extra_state(self, state):
        if set(state) != {"rng"}:
            raise ValueError(f"Dropout: extra state must have exactly the key 'rng' "
                             f"(from get_extra_state), got keys {sorted(state)}")
        self.rng.bit_generator.state = state["rng"]

    def forward(self, x):
        x = as_array(self, x, range(1, 8), "(N, ...)")
        if not self.training or self.rate == 0:
            self.last_mask = None
            return x
        keep = self._keep_mask(x.shape)
        # The mask carries the 1/(1-rate) scale, in the input's dtype (no upcast).
        self.last_mask = keep * float_dtype(x).type(1.0 / (1.0 - self.rate))
        return x * self.last_mask

    def backward(self, d_out):
        return d_out if self.last_mask is None else d_out * self.last_mask

    def _keep_mask(self, shape):
        """Booleans of ``shape``, True where a value is kept, drawn from the layer's generator.
        (The engine's synchronised copy draws the whole batch's mask when it trains on a part.)"""
        return self.rng.random(shape, dtype=np.float32) >= self.rate
