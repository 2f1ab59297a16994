"""Checking a folder of exercise layers, and the text that reports it.

    reports = check_folder("my_layers")                # one LayerReport per layer, in order
    print("\\n".join(report_lines(reports)))
"""
import os
import textwrap

from .cases import CASES
from .checks import LayerReport, Outcome, check_class
from .loading import LearnerError, MissingLayer, load_class

WIDTH = 100         # hints are wrapped to this many characters
MARGIN = " " * 10   # the indent of a failure's lines, under the check's name


def case_named(name):
    """The case for a layer name as a learner types it (``conv3x3``, ``Conv3x3``,
    ``conv3x3.py``), or None."""
    key = name.lower().removesuffix(".py")
    return next((case for case in CASES if key in (case.stem, case.name.lower())), None)


def check_folder(folder, names=None):
    """A ``LayerReport`` for each layer of ``names`` (default all three), in the network's order.
    A layer whose file can't be loaded gets one failed outcome saying why."""
    cases = [case for case in CASES if names is None or case in [case_named(n) for n in names]]
    return [check_one(folder, case) for case in cases]


def check_one(folder, case):
    path = os.path.join(folder, f"{case.stem}.py")
    try:
        cls = load_class(folder, case.stem, case.name)
    except MissingLayer as error:
        return LayerReport(case.name, path, [Outcome("loads", False, str(error))], complete=False)
    except LearnerError as error:
        outcome = Outcome("loads", False, f"importing {case.stem}.py failed: {error.summary()}", error.lines)
        return LayerReport(case.name, path, [outcome], complete=False)
    outcomes, complete = check_class(cls, case, folder)
    return LayerReport(case.name, path, outcomes, complete)


def outcome_lines(outcome):
    """``  passed  check: detail`` or ``  FAILED  check: detail`` and a failure's lines under it."""
    verdict = "passed" if outcome.passed else "FAILED"
    lines = [f"  {verdict:<7} {outcome.check}" + (f": {outcome.detail}" if outcome.detail else "")]
    for line in outcome.lines:
        if line.startswith("hint: "):
            lines += textwrap.wrap(line, WIDTH, initial_indent=MARGIN, subsequent_indent=MARGIN + "      ")
        else:
            lines.append(MARGIN + line)
    return lines


def layer_lines(report):
    lines = [f"{report.name}, {report.path}"]
    for outcome in report.outcomes:
        lines += outcome_lines(outcome)
    if not report.passed:
        lines.append(f"{MARGIN}({report.name}'s checks stop at its first failure: fix it and check again)")
    return lines


def report_lines(reports, folder=None):
    """The whole report: a heading, each layer's lines, and a last line with the verdict."""
    lines = [f"Checking the layers in {folder}: float64, small batches, against scratchcnn's own "
             "layers and finite differences", ""] if folder else []
    for report in reports:
        lines += layer_lines(report) + [""]
    return lines + [verdict(reports, folder or 'DIR')]


def verdict(reports, folder="DIR"):
    passed = [r.name for r in reports if r.passed]
    failed = [r.name for r in reports if not r.passed]
    if not failed:
        return f"All {len(reports)} layers pass: " + (
            f"train MNIST with them: python -m scratchcnn.train --layers {folder}" if len(reports) == len(CASES)
            else ", ".join(passed) + ".")
    return (f"{len(passed)} of {len(reports)} layers pass" + (f" ({', '.join(passed)})" if passed else "")
            + f"; {', '.join(failed)} {'fails' if len(failed) == 1 else 'fail'}.")
