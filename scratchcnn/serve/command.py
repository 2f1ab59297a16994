"""The command line, ``python -m scratchcnn.serve``: options, start-up, serving until Ctrl-C."""
import argparse
import errno
import os
import sys

from .. import cli
from ..checkpoint import CheckpointError
from ..data import MnistUnavailableError
from ..exercises import learner
from .classroom import addresses, check_token, is_loopback, qr_code_text
from .events import MAX_LISTENERS
from .retention import KEEP_CHECKPOINTS
from .runner import SERVING_BLAS_USE
from .server import make_server
from .startup import TrainingFailed, network_to_serve


def port_number(text):
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535 (0 picks a free one), got {port}")
    return port


def at_least_one(text):
    """An argparse type: an integer of 1 or more."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be an integer of 1 or more, got {text!r}")
    return int(text)


def token_text(text):
    try:
        return check_token(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m scratchcnn.serve",
        description="Draw a digit in your browser and watch it flow through the network: the "
                    "28x28 input it sees, every layer's feature maps, the 10 probabilities.")
    parser.add_argument("--model", metavar="PATH",
                        help="checkpoint from `python -m scratchcnn.train --save PATH`; without it "
                             "the page starts with the untrained tutorial network: press Train")
    parser.add_argument("--train-first", action="store_true",
                        help="without --model: train the tutorial network for a few seconds "
                             "before serving, instead of starting untrained")
    parser.add_argument("--save-dir", metavar="DIR",
                        help="save every network trained on the page here, as a checkpoint "
                             "for --model (default: not saved)")
    parser.add_argument("--keep", type=at_least_one, default=KEEP_CHECKPOINTS, metavar="N",
                        help=f"keep the newest N page checkpoints in --save-dir, removing older "
                             f"ones it wrote (never other files; default {KEEP_CHECKPOINTS})")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: only this computer; "
                             "0.0.0.0 lets your network in: a classroom, where only the "
                             "teacher, with the token, can train)")
    parser.add_argument("--port", type=port_number, default=8000,
                        help="port to listen on (default 8000; 0 picks a free one)")
    parser.add_argument("--token", type=token_text, metavar="TOKEN",
                        help="beyond loopback, the teacher's token for training (default: a "
                             "fresh random one, printed in the teacher's address)")
    parser.add_argument("--max-listeners", type=at_least_one, default=MAX_LISTENERS, metavar="N",
                        help=f"pages that may follow training at once (default {MAX_LISTENERS}; "
                             "more get 503 and retry)")
    learner.add_option(parser, "served with the weights of --model (a tutorial network's checkpoint), "
                               "else untrained")
    parser.add_argument("--data-dir", metavar="DIR", help="MNIST folder, for training")
    parser.add_argument("--log", action="store_true",
                        help="log every request, not just errors (never the token)")
    return parser


def main(argv=None):
    """Run the command line; returns once Ctrl-C stops the server.

    Ends in ``SystemExit`` (as argparse does) with 2 for a bad option, 0 after ``--help``, 1 for
    an error (printed as ``error: ...``) and 130 for Ctrl-C before serving began.
    """
    try:
        cli.configure_runtime(SERVING_BLAS_USE)  # BLAS threads and allocator, before any computation
        parser = build_parser()
        args = cli.parse_args(parser, argv)
        learner.refuse_serve_conflicts(parser, args)
    except cli.Usage as e:  # argparse has printed why (or the help, with code 0)
        raise SystemExit(e.code) from None
    code = serve(args)
    if code != cli.EXIT_OK:
        raise SystemExit(code)


def serve(args):
    """Start up as ``args`` say and serve until Ctrl-C; returns the exit code."""
    try:
        save_dir = check_save_dir(args.save_dir)
        network, description = (learner.network_to_serve(args.layers, args.model) if args.layers
                                else network_to_serve(args.model, args.data_dir, args.train_first))
        server = make_server(network, args.host, args.port, description, args.log,
                             save_dir, args.data_dir, token=args.token,
                             max_listeners=args.max_listeners, keep=args.keep)
    except (CheckpointError, MnistUnavailableError, TrainingFailed, ValueError) as e:
        return cli.fail(e)
    except KeyboardInterrupt:
        print("\nStopped.", file=sys.stderr)
        return cli.EXIT_INTERRUPTED
    except OSError as e:
        return cli.fail(cannot_listen(e, args.host, args.port))
    announce(server, description, args.host, token_given=args.token is not None)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        job = server.desk.job
        print(f"\nStopping training job {job.id} at its next step (Ctrl-C again quits at once)"
              if job is not None and job.running else "", flush=True)
    finally:
        code = close(server)
    print("Stopped.", flush=True)
    return code


def close(server):
    """Close ``server``: a running job stops between two steps and is waited for. Returns the
    exit code: 130 when a second Ctrl-C cut the wait short."""
    try:
        server.server_close()
    except KeyboardInterrupt:
        return cli.EXIT_INTERRUPTED
    return cli.EXIT_OK


def check_save_dir(folder):
    """``--save-dir``: the folder, created if needed and checked writable now, or None."""
    if not folder:
        return None
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--save-dir {folder}: can't create it ({e.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"--save-dir {folder}: can't write there; pick a folder you can write to")
    return folder


def cannot_listen(error, host, port):
    """What to tell the user when binding ``host:port`` failed with ``error`` (an ``OSError``)."""
    if error.errno == errno.EADDRINUSE:
        return (f"port {port} on {host} is already in use; pick another with --port "
                "(0 picks a free one)")
    return f"can't listen on {host}:{port}: {error.strerror or error}"


def announce(server, description, host, token_given=False):
    """Print what is served, where, who can open it, and the address(es) to open: on loopback
    one; beyond it the students' (with a QR code) and the teacher's, with the token."""
    port = server.server_address[1]
    if server.token is None:
        note = "\n(--token has no effect on loopback: only this computer can open the page.)" \
            if token_given else ""
        print(f"Serving {description}\nListening on {host}:{port} (only this computer can open "
              f"it).{note}\nOpen {server.url} and draw a digit. Ctrl-C stops.", flush=True)
        return
    students, teacher = addresses(host, port, server.token)
    qr = qr_code_text(students)
    try:
        qr and qr.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):   # a terminal that can't draw the blocks
        qr = None
    print(f"Serving {description}\nListening on {host}:{port} (WARNING: other computers on your "
          f"network can open it too).\n\nStudents open: {students}" +
          (f"\n{qr}" if qr else "\n") +
          f"They can draw, predict, look inside and follow training; only the teacher can start or "
          f"stop it.\n\nTeacher (you) open: {teacher}\nKeep that address to yourself: its token "
          f"lets a browser train. Ctrl-C stops.", flush=True)