"""Loading a learner's layer files, and running their code so that its errors are shown well.

A learner's file is compiled from its source at every load (no cached bytecode, so an edit is
always seen) and run as a module of its own. Any exception the learner's code raises, at import
or inside ``forward``/``backward``, becomes a ``LearnerError`` that keeps only the traceback
lines of the learner's own files: that is where the mistake is, not in the checker.
"""
import hashlib
import linecache
import os
import sys
import traceback
import types

import numpy as np

class LearnerError(Exception):
    """The learner's code raised ``error``; ``lines`` are its traceback, the learner's frames only.
    ``said``: what to say instead, for a result of theirs that is unusable (no traceback then)."""

    def __init__(self, error, folder, said=None):
        self.error, self.folder, self.said = error, folder, said
        self.lines = [] if said else learner_traceback(error, folder)
        super().__init__(said or f"{type(error).__name__}: {error}")

    @property
    def not_implemented(self):
        return isinstance(self.error, NotImplementedError)

    def summary(self):
        """One line: a skeleton's ``NotImplementedError`` says "not implemented yet" (with where),
        anything else ``your code raised ValueError: ...``."""
        message = str(self.error).strip()
        if self.said:
            return self.said
        if self.not_implemented:
            where = self.where()
            text = message if "not implemented yet" in message else \
                "not implemented yet" + (f": {message}" if message else "")
            return text + (f" ({where})" if where else "")
        return f"your code raised {type(self.error).__name__}" + (":" if self.lines else f": {message}")

    def where(self):
        """``conv3x3.py, line 54``: the innermost of the learner's frames, or ''."""
        frames = [frame for frame in traceback.extract_tb(self.error.__traceback__)
                  if inside(frame.filename, self.folder)]
        return f"{os.path.basename(frames[-1].filename)}, line {frames[-1].lineno}" if frames else ""


class MissingLayer(Exception):
    """The file or the class is not there; the message says which and what to do."""


def inside(path, folder):
    """Whether the file ``path`` is in ``folder`` (or below it)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def learner_traceback(error, folder):
    """The traceback of ``error`` as text lines, keeping only frames from files in ``folder``
    (a syntax error's own lines point into the learner's file already)."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if inside(frame.filename, folder)]
    text = traceback.format_list(frames) + traceback.format_exception_only(type(error), error)
    return [line for chunk in text for line in chunk.rstrip("\n").split("\n")]


def call(folder, function, *args, **kwargs):
    """``function(*args, **kwargs)``: the learner's code, whose exceptions become ``LearnerError``.
    NumPy's overflow warnings are silenced: the checks report non-finite results themselves."""
    try:
        with np.errstate(all="ignore"):
            return function(*args, **kwargs)
    except Exception as error:  # anything the learner's code raises is reported, not fatal
        raise LearnerError(error, folder) from error


def module_name(folder, stem):
    """A module name unique to the folder, so two folders' ``conv3x3.py`` never collide."""
    digest = hashlib.sha1(os.path.realpath(folder).encode()).hexdigest()[:10]
    return f"scratchcnn_learner_{digest}.{stem}"


def load_class(folder, stem, class_name):
    """The class ``class_name`` defined (or imported) by ``folder/stem.py``, freshly run.

    Raises ``MissingLayer`` for a missing file or class, ``LearnerError`` when running the file
    raises (a syntax error included). The module is registered in ``sys.modules`` (copies and
    dataclasses look a class's module up there)."""
    path = os.path.join(folder, f"{stem}.py")
    if not os.path.isfile(path):
        raise MissingLayer(f"there is no {path}: `python -m scratchcnn.exercises start {folder}` "
                           "writes the skeletons")
    with open(path, encoding="utf-8") as f:
        source = f.read()
    name = module_name(folder, stem)
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    linecache.checkcache(path)  # tracebacks show the file as it is now
    sys.path.insert(0, os.path.abspath(folder))  # the learner's own helper modules import
    try:
        call(folder, lambda: exec(compile(source, path, "exec"), module.__dict__))
    except LearnerError:
        sys.modules.pop(name, None)
        raise
    finally:
        sys.path.remove(os.path.abspath(folder))
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise MissingLayer(f"{path} defines no class {class_name}: the check and the trainer "
                           f"look for `class {class_name}(Layer):` there")
    return cls


def load_classes(folder, exercises):
    """``{class name: class}`` for each ``(file stem, class name)`` of ``exercises``, from
    ``folder``; raises as ``load_class``."""
    return {class_name: load_class(folder, stem, class_name) for stem, class_name in exercises}
