"""Writing result files safely: whole or not at all, with normal permissions."""

from __future__ import annotations

import contextlib
import os
import tempfile


def _umask():
    """The process's umask (read from /proc on Linux, so it is never changed,
    not even for an instant; elsewhere set and restored)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, newline=None):
    """Open a temporary file beside `path` for writing text (UTF-8); on a
    clean exit it is flushed, synced, given the permissions a newly created
    file gets (0666 minus the umask) and renamed onto `path`, so readers see
    the old file or the new one, never a part. On an error it is removed and
    `path` is left as it was."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
