"""Atomic output files: written to a temporary file in the same directory, renamed when complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open ``path`` for writing so that readers see the old file or the complete new one, never half.

    Example:
        >>> with atomic_output(tmp / "out.bed") as handle:  # doctest: +SKIP
        ...     handle.write("chr1\\t0\\t10\\n")
    """
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` for tools that open files themselves; fsynced and renamed on success."""
    path = Path(path)
    # Same directory: os.replace is only atomic within one file system.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        _fsync_directory(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_directory(directory: Path) -> None:
    # The rename itself is durable only once the directory entry reaches the disk.
    with contextlib.suppress(OSError):  # not every platform or file system allows it
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    # mkstemp creates 0600 files; give outputs the permissions an ordinary open() would.
    mask = os.umask(0)
    os.umask(mask)
    return mask
