"""The engine: what makes training and prediction fast, kept beside the plain model.

``scratchcnn.Network`` and the layers are what a learner reads and steps through: plain NumPy,
the whole batch on the calling thread. The engine takes such a network and runs it fast, with
the same numbers (to float rounding), as PyTorch's ``DistributedDataParallel`` wraps a module
from outside:

* ``blas.py``: the BLAS library's thread count per use, the allocator, a note when other
  processes keep the cores busy (``configure``, called first by the command lines);
* ``fast.py``: ``FastEngine`` (and ``PlainEngine``, the network's own methods), what
  ``Trainer(..., engine=...)``, the command lines, the page's training jobs and the benchmarks
  run;
* ``split.py``: a training batch cut in parts, run at once on several threads (or in
  cache-sized parts on one), through ``replicas.py``'s copies of the layers;
* ``sync.py``: the synchronised BatchNorm and Dropout those parts need;
* ``chunks.py``: cache-sized chunks, and prediction on several threads;
* ``fused.py``: a convolution with the BatchNorm, ReLU and max-pool after it as one training
  step, its window matrix filled a few images at a time; ``algorithms.py``: which input gradient it
  computes, by a fixed rule on the layer's shape;
* ``folded.py``: prediction with each BatchNorm folded into the weights before it.
"""
from .blas import configure, contention_warning, one_blas_thread, threads_in_force, training_use
from .fast import ENGINES, FastEngine, PlainEngine

__all__ = ["configure", "contention_warning", "one_blas_thread", "threads_in_force", "training_use",
           "ENGINES", "FastEngine", "PlainEngine"]
