"""``python -m scratchcnn.exercises``: write the tutorial's three layers yourself, and check them.

    python -m scratchcnn.exercises start DIR               # the skeletons and a README, into DIR
    python -m scratchcnn.exercises check DIR [LAYER ...]   # conv3x3, maxpool2, softmax (default all)

Exit codes: 0 done (``check``: every layer checked passes), 1 ``start`` found a file it would
overwrite, or a layer fails its checks, 2 a usage error (no such folder, an unknown layer).
Other code may call ``main([...])``, which returns the code instead of exiting.
"""
import argparse
import importlib.resources
import os
import sys

from .. import cli
from ..atomic import atomic_write
from .cases import CASES
from .report import case_named, check_folder, report_lines

README = "README.md"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m scratchcnn.exercises",
        description="Write the tutorial network's layers (Conv3x3, MaxPool2, Softmax) yourself: "
                    "`start` writes skeletons to fill in, `check` says whether they are right and, "
                    "when they are not, which known mistake the numbers point to.",
        epilog="Then train MNIST with them: python -m scratchcnn.train --layers DIR")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{start,check}")
    start = commands.add_parser("start", help="write conv3x3.py, maxpool2.py, softmax.py and README.md "
                                              "into DIR (never over a file that exists)")
    start.add_argument("folder", metavar="DIR", help="the folder to write them to (created if needed)")
    check = commands.add_parser("check", help="check the layers in DIR, in order, each up to its "
                                              "first failure")
    check.add_argument("folder", metavar="DIR", help="the folder `start` wrote to")
    check.add_argument("layers", metavar="LAYER", nargs="*",
                       help=f"only these: {', '.join(case.stem for case in CASES)} (default all three)")
    return parser


def skeleton_files():
    """``{file name: text}`` of what ``start`` writes, read from the package's templates."""
    folder = importlib.resources.files("scratchcnn.exercises") / "templates"
    names = [f"{case.stem}.py" for case in CASES] + [README]
    return {name: (folder / name).read_text(encoding="utf-8") for name in names}


def start(folder, out):
    """Write the skeletons into ``folder``; returns the exit code. Writes nothing when any of
    the files exists (a learner's work is never overwritten)."""
    files = skeleton_files()
    existing = [name for name in files if os.path.lexists(os.path.join(folder, name))]
    if existing:
        return cli.fail(f"{os.path.join(folder, existing[0])} exists already; nothing was written "
                        f"(start never overwrites a file). Check what is there with `python -m "
                        f"scratchcnn.exercises check {folder}`, or start in a new folder.")
    if os.path.exists(folder) and not os.path.isdir(folder):
        return cli.fail(f"{folder} is a file, not a folder; start in a new folder")
    try:
        for name, text in files.items():
            with atomic_write(os.path.join(folder, name), "w") as f:
                f.write(text.replace("DIR", folder))
    except OSError as e:
        return cli.fail(f"can't write to {folder}: {e.strerror or e}")
    print(f"Wrote {', '.join(files)} to {folder}.\nRead {os.path.join(folder, README)}, then fill in "
          f"the layers and check them:\n    python -m scratchcnn.exercises check {folder}", file=out)
    return cli.EXIT_OK


def check(folder, names, out):
    """Check the layers in ``folder`` (``names``, default all); print the report; returns the code."""
    reports = check_folder(folder, names or None)
    print("\n".join(report_lines(reports, folder)), file=out, flush=True)
    return cli.EXIT_OK if all(report.passed for report in reports) else cli.EXIT_ERROR


def main(argv=None):
    """Run the command line; returns the exit code."""
    parser = build_parser()
    try:
        args = cli.parse_args(parser, argv)
        if args.command == "check":
            refuse_bad_check(parser, args)
    except cli.Usage as e:
        return e.code
    if args.command == "start":
        return start(args.folder, sys.stdout)
    return check(args.folder, args.layers, sys.stdout)


def refuse_bad_check(parser, args):
    """A missing folder or an unknown layer name: a usage error (exit 2)."""
    if not os.path.isdir(args.folder):
        cli.refuse(parser, f"no folder {args.folder!r}: write the skeletons there first with "
                           f"`python -m scratchcnn.exercises start {args.folder}`")
    unknown = [name for name in args.layers if case_named(name) is None]
    if unknown:
        cli.refuse(parser, f"unknown layer {unknown[0]!r}: the layers are "
                           f"{', '.join(case.stem for case in CASES)}")
