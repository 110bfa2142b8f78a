"""Atomic file writes: write a temporary file in the same directory, fsync, rename.

A reader (or a restart) sees either the old complete file or the new complete file,
never a partial one, whatever instant the writer is killed at.
"""

import contextlib
import os
from pathlib import Path

from ..errors import CheckpointIOError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path to write; on success it replaces ``path`` atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text(path, text):
    """Atomically write a UTF-8 text file.

    Raises
    ------
    CheckpointIOError
        (exit code 4) naming the file and the reason (disk full, read-only directory, file
        size limit); the previous content of ``path``, if any, is intact and no temporary
        file is left behind.
    """
    try:
        with atomic_path(path) as tmp:
            # UTF-8 whatever the locale: decks hold degree signs and are read back as UTF-8
            Path(tmp).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CheckpointIOError(f"error: could not write {path}: {exc.strerror or exc}; its previous "
                                "version, if any, is intact") from None


def _fsync_dir(directory):
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
