"""Files only their owner may read (0600), made without following a symlink planted in their place.

Used by every layer that keeps a file (the store, the sandbox), like :mod:`pcref_mcp.errors`.

An existing file is never opened here: closing any descriptor of a file drops *every* POSIX lock this
process holds on it, SQLite's included. A second connection to a database in the same process, or a
look at the ``-shm`` file beside an open one, would silently unlock the first connection; another
process could then take the database for unused and reset its shared memory under it (SIGBUS), or
write while it reads. So an existing file is checked with ``lstat`` and tightened with ``chmod`` by
path; only a file that does not exist yet is created through a descriptor (``O_EXCL``: nobody holds
it).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pcref_mcp.errors import ConfigError

__all__ = ["private_file"]


def private_file(path: Path) -> None:
    """Make ``path`` a regular file of mode 0600: create it if missing, tighten it if looser.

    Raises :class:`~pcref_mcp.errors.ConfigError` when a symbolic link or anything but a regular
    file stands at ``path``.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        pass  # exists already (or was just made by someone else): check it without opening it
    else:
        os.close(fd)  # ours alone: no connection holds it yet
    found = os.lstat(path)
    if stat.S_ISLNK(found.st_mode):
        raise ConfigError(f"{path} is a symbolic link; refusing to use it.")
    if not stat.S_ISREG(found.st_mode):
        raise ConfigError(f"{path} is not a regular file; refusing to use it.")
    if hasattr(os, "fchmod") and stat.S_IMODE(found.st_mode) != 0o600:  # POSIX: Windows has no mode bits
        os.chmod(path, 0o600)
