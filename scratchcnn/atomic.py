"""Writing files so that an interrupted write never leaves a half file behind."""
import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path, mode="wb", verify=None):
    """Open a temporary file next to ``path``; rename it onto ``path`` when the block succeeds.

    If the block raises (or the process dies), ``path`` is untouched: the old file or nothing.
    The temporary name starts with a dot and ends in ``.part``, so it never looks like a
    finished file. ``verify(tmp_path)``, if given, runs on the closed temporary file and may
    raise to cancel the rename. The folder is created if needed; the file gets the usual
    permissions for the umask (``mkstemp`` alone would make it private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if verify is not None:
            verify(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
