"""What the command lines (``train``, ``evaluate``, ``predict``, ``serve``) share, so all four
behave alike: exit codes 0 (done), 1 (an error, printed as ``error: ...``), 2 (a bad option,
as argparse reports it) and 130 (Ctrl-C).
"""
import argparse
import sys

import numpy as np

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

DATA_DIR_HELP = "MNIST folder (default $SCRATCHCNN_DATA or the user cache)"


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


def refuse(parser, message):
    """Refuse options that parsed but can't work together, as argparse refuses a bad one (the
    usage and ``prog: error: message`` on stderr), by raising ``Usage``."""
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    raise Usage(EXIT_USAGE)


def number(kind, low=None, high=None, *, low_open=False, what=""):
    """An argparse ``type``: a ``kind`` (int or float) from ``low`` to ``high`` (either may be
    None; ``low_open`` excludes ``low`` itself), refused as ``"{value} is not {what}"``, e.g.
    ``number(int, 1, 10_000, what="from 1 to 10,000")``."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and value > high
        if not np.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"{value} is not {what}")
        return value
    return parse


def image_count(high, low=1):
    """An argparse ``type`` for a number of images from ``low`` to ``high``, e.g.
    ``--test-size 0`` gets "0 is not from 1 to 10,000"."""
    return number(int, low, high, what=f"from {low} to {high:,}")


def fail(message):
    """Print ``error: message`` to stderr and return the error exit code."""
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR


def configure_runtime(use):
    """``engine.configure(use)`` for a command line: a malformed thread setting in the
    environment (``SCRATCHCNN_BLAS_THREADS``, ``OMP_NUM_THREADS``, ...) is printed as
    ``error: ...`` and raises ``Usage`` with the error exit code, which ``main`` returns."""
    from .engine import configure
    try:
        return configure(use)
    except ValueError as e:
        raise Usage(fail(e)) from None


def network_dtype(network):
    """The float dtype of a network's parameters (float32 for a network without any)."""
    return next((p.dtype for layer in network.layers for p in layer.params.values()),
                np.dtype(np.float32))
