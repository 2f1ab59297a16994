"""The page's checkpoints in ``--save-dir``: their names, and how many are kept.

Every job the page finishes is saved as ``<model>-<YYYYmmdd>-<HHMMSS>-job<id>.npz``. After each
save the folder keeps the newest ``--keep N`` (default 20) files with such a name, from this run
or any earlier one, and removes the older ones; a file with any other name is never touched, so
the folder may hold the teacher's own checkpoints too. A day of class can't fill the disk.
"""
import os
import re
import sys
import time

from ..models import MODEL_NAMES

KEEP_CHECKPOINTS = 20
PAGE_CHECKPOINT = re.compile(rf"(?:{'|'.join(map(re.escape, MODEL_NAMES))})"
                             r"-(\d{8}-\d{6})-job(\d+)\.npz")


def page_checkpoint_name(model, job_id, when=None):
    """``seed-20250101-120000-job1.npz``: the name a page job's checkpoint takes (``when``: a
    ``time.struct_time``, default now); ``PAGE_CHECKPOINT`` matches exactly these names."""
    return f"{model}-{time.strftime('%Y%m%d-%H%M%S', when or time.localtime())}-job{job_id}.npz"


def page_checkpoints(folder):
    """The page checkpoints in ``folder``, oldest first: by the time in their name, then the
    file's modification time, then the job number."""
    found = []
    for entry in os.scandir(folder):
        match = PAGE_CHECKPOINT.fullmatch(entry.name)
        if match and entry.is_file(follow_symlinks=False):
            found.append((match.group(1), entry.stat().st_mtime, int(match.group(2)), entry.name))
    return [name for *_, name in sorted(found)]


def keep_newest(folder, keep=KEEP_CHECKPOINTS):
    """Remove all but the newest ``keep`` page checkpoints from ``folder``; returns the names
    removed. A file that can't be removed is left, with a warning."""
    removed = []
    names = page_checkpoints(folder)
    for name in names[:max(0, len(names) - keep)]:
        try:
            os.unlink(os.path.join(folder, name))
            removed.append(name)
        except OSError as e:
            print(f"warning: could not remove the old checkpoint {name}: {e.strerror or e}",
                  file=sys.stderr, flush=True)
    return removed
