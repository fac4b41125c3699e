"""Errors that mean "the input is wrong" or "the output cannot be written", as opposed to a bug: the CLI
prints them as one line (``seqmamba --debug`` shows the traceback)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterator


class InputError(ValueError):
    """Bad user input: the message names the file and the place (record, line, column)."""


class OutputError(OSError):
    """An output could not be written (disk full, quota, file-size limit, read-only, no such directory).

    ``errno`` is the failure's, ``path`` the output's name, and ``str(error)`` one line that starts
    with the path. Whatever was half-written is gone: a file the user had under that name is unchanged.
    """

    def __init__(self, path: str | os.PathLike, code: int | None, reason: str) -> None:
        super().__init__(code, f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason

    def __str__(self) -> str:
        return self.strerror

    def __reduce__(self):  # OSError pickles through its args, which would drop the path
        return (OutputError, (self.path, self.errno, self.reason))


class OutputExistsError(OutputError, FileExistsError):
    """An output is refused before any work: it exists (a file, a model, a directory of something else)
    and was not to be replaced, or it is one of the inputs. ``str(error)``: ``<path>: <why>; <what to do>``."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(path, errno.EEXIST, reason)

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


class OutputBusyError(OutputError):
    """Another run is writing the same output directory right now (it holds the directory's lock)."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(path, errno.EBUSY, reason)

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


# Failures that only writing can cause: inside a block that also reads, these still name the output.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})

_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file-size limit (ulimit -f) or the file system",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "cannot write: no such directory",
    errno.EACCES: "cannot write: permission denied",
    errno.EPERM: "cannot write: operation not permitted",
    errno.EISDIR: "cannot write: is a directory",
}


def output_error(path: str | os.PathLike, error: OSError) -> OutputError:
    """``error`` (a failed write, fsync, rename or create) as an `OutputError` naming ``path``.

    An `OutputError` about a file inside ``path`` (a temporary one) is renamed: the user knows ``path``.
    """
    if isinstance(error, OutputError):
        return error if error.path == os.fspath(path) else OutputError(path, error.errno, error.reason)
    reason = _REASONS.get(error.errno) or f"cannot write: {error.strerror or error}"
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) and not _is_device(path):
        # Every writer in seqmamba writes a temporary file (or rolls an append back), so this holds.
        reason += " (nothing half-written is left; a file already there is unchanged)"
    return OutputError(path, error.errno, reason)


def _is_device(path: str | os.PathLike) -> bool:
    # /dev/full, a pipe, <stdout>: written in place, so there is no file to keep or to remove.
    try:
        return not stat.S_ISREG(os.stat(path).st_mode) and not stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return os.fspath(path) == "<stdout>"


@contextlib.contextmanager
def naming_output(path: str | os.PathLike, only_write_errors: bool = False) -> Iterator[None]:
    """OSErrors raised inside become `OutputError`s naming ``path``.

    ``only_write_errors``: convert only failures that reading cannot cause (`WRITE_ERRNOS`), for blocks
    that read an input while they write (a missing input must not be reported as an output problem).
    """
    try:
        yield
    except OSError as error:
        if only_write_errors and error.errno not in WRITE_ERRNOS and not isinstance(error, OutputError):
            raise
        renamed = output_error(path, error)
        if renamed is error:
            raise
        raise renamed from error


_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def oserror_from_text(error: Exception) -> OSError | None:
    """Rust-backed writers (safetensors) raise their own type with ``(os error 28)`` in the text."""
    found = _OS_ERROR.search(str(error))
    if found is None:
        return None
    code = int(found.group(1))
    return OSError(code, os.strerror(code))
