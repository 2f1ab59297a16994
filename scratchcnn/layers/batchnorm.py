"""Batch normalisation: every channel rescaled to zero mean and unit variance, then by a
learned ``gamma`` and ``beta`` (Ioffe and Szegedy, 2015). The plain-loop version is
``scratchcnn.loops.BatchNorm``."""
import numpy as np

from .base import Layer, as_array, check_dtype


class BatchNorm(Layer):
    """``y = gamma * (x - mean) / sqrt(var + eps) + beta``, per channel (the last axis).

    Input ``(N, C)`` or channels-last ``(N, H, W, C)``, output the same shape; ``gamma`` and
    ``beta`` are ``(C,)``. While ``training``, ``mean`` and ``var`` are the batch's, over every
    axis but the channels (``var`` biased, dividing by the ``m`` values per channel), and the
    running statistics move towards them as PyTorch's ``BatchNorm1d``/``BatchNorm2d`` do:
    ``running = (1 - momentum) * running + momentum * batch``, the variance unbiased
    (``* m / (m - 1)``). In evaluation (``Network.eval()``) the running statistics are used,
    so a prediction no longer depends on the rest of its batch.

    The batch's sums are taken in three small methods (``_values_per_channel``, ``_batch_sum``,
    ``_whole_batch_sums``) so that the engine's synchronised copy (``scratchcnn.engine.sync``),
    which trains on one part of a batch split across threads, can sum over every part instead.
    """

    window = (1, 1, 0)  # element-wise: output pixel (i, j) comes from input pixel (i, j)
    caches = ("last_used_batch", "last_inv_std", "last_centred")

    def __init__(self, num_features, momentum=0.1, eps=1e-5, dtype=np.float32):
        super().__init__()
        if int(num_features) != num_features or num_features < 1:
            raise ValueError(f"BatchNorm: num_features (channels) must be an integer >= 1, got {num_features!r}")
        if not 0 <= momentum <= 1 or not eps > 0:
            raise ValueError(f"BatchNorm: need 0 <= momentum <= 1 and eps > 0, got momentum={momentum}, eps={eps}")
        self.num_features, self.momentum, self.eps = int(num_features), momentum, eps
        self.dtype = check_dtype(dtype)
        self.params["gamma"] = np.ones(self.num_features, self.dtype)
        self.params["beta"] = np.zeros(self.num_features, self.dtype)
        self.running_mean = np.zeros(self.num_features, self.dtype)
        self.running_var = np.ones(self.num_features, self.dtype)
        self._zero_grads()

    def config(self):
        return dict(num_features=self.num_features, momentum=self.momentum, eps=self.eps,
                    dtype=self.dtype.name)

    def forward(self, x):
        x = self._checked_input(x)                  # (N, C) or (N, H, W, C)
        self.last_used_batch = self.training
        if self.training:  # the batch's statistics; the running ones move towards them
            m = self._values_per_channel(x)                         # in the whole batch
            mean = self._batch_sum(x) / m                           # (C,)
            centred = x - mean
            var = self._batch_sum(centred * centred) / m            # (C,), biased
            self._update_running_statistics(mean, var, m)
        else:              # the running statistics, whatever else is in the batch
            mean, var = self.running_mean, self.running_var
            centred = x - mean
        self.last_inv_std = (1 / np.sqrt(var + self.eps)).astype(self.dtype)  # s, (C,)
        self.last_centred = centred                   # x - mean; the normalised x_hat is centred * s
        out = centred * (self.params["gamma"] * self.last_inv_std)  # gamma * x_hat, one pass
        out += self.params["beta"]
        return out

    def backward(self, d_out):
        m = d_out.size // self.num_features           # values per channel in this batch
        centred, inv_std, gamma = self.last_centred, self.last_inv_std, self.params["gamma"]
        self.grads["beta"] = channel_sum(d_out)
        self.grads["gamma"] = channel_sum(d_out * centred) * inv_std  # sum(d_out * x_hat)
        scale = gamma * inv_std                        # (C,)
        if not self.last_used_batch:  # evaluation: mean and var are constants
            return d_out * scale
        # In training, mean and var depend on every x_i of the channel too. With
        # x_hat_j = (x_j - mean) * s, s = (var + eps)^(-1/2), over the m values of a channel:
        #   d mean / d x_i = 1/m,   d var / d x_i = 2 (x_i - mean) / m,
        #   d s / d x_i = -s^3 (x_i - mean) / m = -s x_hat_i / m,
        # so  d x_hat_j / d x_i = s (delta_ij - 1/m - x_hat_i x_hat_j / m), and summed over j
        # against d_x_hat_j = gamma d_out_j:
        #   d_x_i = s (d_x_hat_i - mean(d_x_hat) - x_hat_i mean(d_x_hat * x_hat))
        #         = gamma s (d_out_i - (d_beta + x_hat_i d_gamma) / m),
        # as sum(d_out) = d_beta and sum(d_out * x_hat) = d_gamma were just computed. Below it is
        # spread out as scale * d_out_i - b * (x_i - mean) - c, with per-channel b and c, so each
        # pass goes over the whole array once.
        d_beta, d_gamma = self._whole_batch_sums(self.grads["beta"], self.grads["gamma"])
        d_x = d_out * scale
        d_x -= centred * (scale * inv_std * d_gamma / m)
        d_x -= scale * d_beta / m
        return d_x

    def _values_per_channel(self, x):
        """How many values each channel has in the batch ``x``: ``m``."""
        return x.size // self.num_features

    def _batch_sum(self, values):
        """Per-channel sums ``(C,)`` over the batch."""
        return channel_sum(values)

    def _whole_batch_sums(self, d_beta, d_gamma):
        """``(sum(d_out), sum(d_out * x_hat))`` over the batch, per channel: the gradients just
        computed. (The engine's synchronised copy takes them over every part of a split batch.)"""
        return d_beta, d_gamma

    def _update_running_statistics(self, mean, var, m):
        """``running = (1 - momentum) running + momentum batch``, the variance unbiased. In
        place, so anything holding the arrays (a copy of the layer) sees the new values."""
        self.running_mean[...] = (1 - self.momentum) * self.running_mean + self.momentum * mean
        self.running_var[...] = (1 - self.momentum) * self.running_var + self.momentum * var * (m / (m - 1))

    def get_extra_state(self):
        """``{"running_mean": [C floats], "running_var": [C floats]}`` (float32 and float64
        values both survive the trip through Python floats and JSON exactly)."""
        return {"running_mean": self.running_mean.tolist(), "running_var": self.running_var.tolist()}

    def set_extra_state(self, state):
        """Restore ``get_extra_state()``'s dict, refusing missing keys or the wrong length."""
        missing = {"running_mean", "running_var"} - set(state)
        if missing:
            raise ValueError(f"BatchNorm: extra state lacks {sorted(missing)}; expected the dict "
                             f"get_extra_state() returns, with running_mean and running_var")
        for name in ("running_mean", "running_var"):
            values = np.asarray(state[name], dtype=self.dtype)
            if values.shape != (self.num_features,):
                raise ValueError(f"BatchNorm: {name} in the extra state has shape {values.shape}, "
                                 f"this layer has {self.num_features} channels so needs "
                                 f"({self.num_features},); was it saved from another network?")
            getattr(self, name)[...] = values  # in place, as _update_running_statistics

    def _checked_input(self, x):
        """``x`` as ``self.dtype``, refusing ranks other than 2 and 4 and a wrong channel count."""
        expected = f"(N, {self.num_features}) or (N, H, W, {self.num_features})"
        x = as_array(self, x, (2, 4), expected)
        if x.shape[-1] != self.num_features:
            raise ValueError(f"BatchNorm: expected input of shape {expected} (channels last), got "
                             f"shape {x.shape}; num_features must equal the number of channels")
        if self.training and self._values_per_channel(x) < 2:
            raise ValueError(f"BatchNorm: training needs more than one value per channel to take "
                             f"a batch variance, got input of shape {x.shape}; use a larger batch "
                             f"or evaluation mode (network.eval())")
        return x.astype(self.dtype, copy=False)


def channel_sum(values):
    """``(..., C) -> (C,)``: the sum over every axis but the last, as a product with a vector of
    ones (BLAS), far faster than ``values.sum(axis=(0, 1, 2))``, which adds C-wide rows one at
    a time."""
    rows = values.reshape(-1, values.shape[-1])
    return np.ones(len(rows), values.dtype) @ rows
