"""What the command lines (``train``, ``evaluate``, ``predict``, ``serve``) share, so all four
behave alike: exit codes 0 (done), 1 (an error, printed as ``error: ...``), 2 (a bad option,
as argparse reports it) and 130 (Ctrl-C).
"""
import sys

import numpy as np

TRAIN_SET_SIZE = 60_000  # images in MNIST's training set
TEST_SET_SIZE = 10_000   # images in MNIST's test set

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class Usage(Exception):
    """The command line could not be parsed; ``code`` is what ``main`` should return."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def parse_args(parser, argv):
    """``parser.parse_args(argv)``, raising ``Usage`` instead of exiting (argparse has already
    printed its message), so ``main`` returns the code and tests can call it."""
    try:
        return parser.parse_args(argv)
    except SystemExit as e:
        raise Usage(e.code if isinstance(e.code, int) else EXIT_USAGE) from None


def fail(message):
    """Print ``error: message`` to stderr and return the error exit code."""
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR


def network_dtype(network):
    """The float dtype of a network's parameters (float32 for a network without any)."""
    return next((p.dtype for layer in network.layers for p in layer.params.values()),
                np.dtype(np.float32))
