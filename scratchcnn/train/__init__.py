"""``python -m scratchcnn.train``: train a network on MNIST and test it.

    python -m scratchcnn.train                       # the tutorial network, 3 epochs, ~98% in seconds
    python -m scratchcnn.train --model classic       # the deeper network, > 99.2%
    python -m scratchcnn.train --model modern        # BatchNorm and affine augmentation, >= 99.6%
    python -m scratchcnn.train --resume run.npz --epochs 12 --lr 1e-4   # fine-tune a saved run
    python -m scratchcnn.train --train-size 1000 --test-size 1000 --loop   # the tutorial's way
    python -m scratchcnn.train --engine plain        # every step on the main thread, for a debugger

This package is the command line only, one module a step: ``options.py`` (parsing and checking
the options), ``settings.py`` (the run's settings, from the options or the checkpoint it
resumes), ``run.py`` (the data, the trainer, checkpoints, metrics and plots) and ``command.py``
(``main``, and what it prints). The training loop itself is ``scratchcnn.trainer.Trainer``; what
it prints while training, ``scratchcnn.report.ConsoleReport``; how fast it runs,
``scratchcnn.engine``. Other code may call ``main([...])``; it returns an exit code.
"""
from .command import main
from .options import build_parser, parse_args

__all__ = ["main", "build_parser", "parse_args"]
