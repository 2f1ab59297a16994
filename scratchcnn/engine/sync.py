"""What the parts of a batch split across threads share, and the two layers that need it.

Most layers compute each image on its own, so a part of a batch gives exactly that part's rows.
Two don't, and get the whole batch through ``Peers``, where each part hands in its share and
waits for the others (so these parts must all run at once, one per thread):

* ``SyncBatchNorm``: the batch's mean and variance are sums over every part; in backward, so
  are the sums of ``d_out`` and ``d_out * x_hat`` that reach every input. Only the first part
  moves the running statistics (arrays the copies share with the layer, updated in place).
* ``SyncDropout``: the first part draws the mask for the whole batch from the layer's
  generator, exactly as one thread would, and each part takes its rows: the same masks on any
  number of threads, and a resumed run draws what it would have drawn.

Both are subclasses of the plain layers that override only the plain layers' small hooks
(``BatchNorm._batch_sum`` and its kin, ``Dropout._keep_mask``), as PyTorch's ``SyncBatchNorm``
replaces ``BatchNorm`` from outside: the layers a learner reads never mention threads.
"""
import threading

import numpy as np

from ..layers import BatchNorm, Dropout
from ..layers.batchnorm import channel_sum


class Peers:
    """What part ``part`` of a split batch shares with the other parts during one step.

    Each call hands in this part's value and waits until every part has handed in theirs
    (a barrier); all parts then compute the same combination in the parts' fixed order, so a
    run is bit-identical to the next. Every part makes the same calls in the same order, since
    each runs the same layers.
    """

    def __init__(self, part, sizes, slots, barrier):
        self.part, self.sizes = part, sizes       # this part's index; every part's batch size
        self.whole_batch = sum(sizes)             # N
        self.slots, self.barrier = slots, barrier  # shared by all the parts' Peers
        self.exchanges = 0                        # this part's calls so far

    @classmethod
    def for_parts(cls, sizes):
        """One ``Peers`` per part, sharing their two sets of slots and their barrier."""
        slots, barrier = ([None] * len(sizes), [None] * len(sizes)), threading.Barrier(len(sizes))
        return [cls(part, sizes, slots, barrier) for part in range(len(sizes))]

    def _exchange(self, value):
        """Every part's ``value``, in part order.

        Calls use the two sets of slots in turn, so one wait per call is enough: a part can
        reach the call after next, which writes into these slots again, only once every part
        has arrived at the next call, that is, has read these."""
        slots = self.slots[self.exchanges % 2]
        self.exchanges += 1
        slots[self.part] = value
        self.barrier.wait()
        return list(slots)

    def total(self, value):
        """The sum of every part's ``value`` (e.g. per-channel sums over its images)."""
        values = self._exchange(value)
        return sum(values[1:], values[0])

    def weighted_total(self, value):
        """``sum_i (n_i / N) * value_i``: the whole batch's mean from the parts' means."""
        values = self._exchange(value)
        weights = [size / self.whole_batch for size in self.sizes]
        return sum((w * v for w, v in zip(weights[1:], values[1:])), weights[0] * values[0])

    def from_first(self, make):
        """``make()``, called by the first part only; every part gets its result."""
        return self._exchange(make() if self.part == 0 else None)[0]

    def rows(self, whole):
        """This part's rows of an array over the whole batch."""
        start = sum(self.sizes[:self.part])
        return whole[start:start + self.sizes[self.part]]


class SyncBatchNorm(BatchNorm):
    """``BatchNorm`` on one part of a batch: its statistics over every part (``peers``); with
    ``peers`` None, the plain layer."""

    peers = None

    def _values_per_channel(self, x):
        if self.peers is None or len(x) == 0:
            return super()._values_per_channel(x)
        return x.size // (len(x) * self.num_features) * self.peers.whole_batch

    def _batch_sum(self, values):
        total = channel_sum(values)
        return total if self.peers is None else self.peers.total(total)

    def _whole_batch_sums(self, d_beta, d_gamma):
        # Each part's d_out is the gradient of its own mean loss: the whole batch's sums, as
        # the mean over the parts weighted by their sizes, come back in this part's scale.
        if self.peers is None:
            return d_beta, d_gamma
        return self.peers.weighted_total(np.stack([d_beta, d_gamma]))

    def _update_running_statistics(self, mean, var, m):
        if self.peers is None or self.peers.part == 0:  # once per batch
            super()._update_running_statistics(mean, var, m)


class SyncDropout(Dropout):
    """``Dropout`` on one part of a batch: the first part draws the whole batch's mask, each
    part takes its rows; with ``peers`` None, the plain layer."""

    peers = None

    def _keep_mask(self, shape):
        if self.peers is None:
            return super()._keep_mask(shape)
        peers = self.peers
        whole = peers.from_first(lambda: super(SyncDropout, self)._keep_mask((peers.whole_batch, *shape[1:])))
        return peers.rows(whole)


SYNCHRONISED = {BatchNorm: SyncBatchNorm, Dropout: SyncDropout}  # plain layer -> its engine twin
