"""Atomic output files: written to a temporary file in the same directory, renamed when complete.

Any failure (a full disk, a quota, an interrupt) removes the temporary file and leaves a file the user
already had under that name unchanged; write failures become `OutputError`s naming the output.

Targets that are not regular files (``/dev/null``, ``/dev/full``, ``/dev/stdout``, a named pipe) are
written in place: renaming over them would replace the device or pipe with a regular file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import naming_output, output_error
from .leftovers import owner_tag, sweep

STDOUT = "<stdout>"  # how errors name standard output


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open ``path`` for writing so that readers see the old file or the complete new one, never half.

    The handle's write errors are `OutputError`s naming ``path``; errors of the code inside the block
    (reading an input, say) pass unchanged.

    Example:
        >>> with atomic_output(tmp / "out.bed") as handle:  # doctest: +SKIP
        ...     handle.write("chr1\\t0\\t10\\n")
    """
    if is_special(path):
        with naming_output(path):
            handle = open(path, mode)
        with _closing(handle, path) as named:
            yield named
        return
    with atomic_path(path) as tmp:
        with naming_output(path):
            handle = open(tmp, mode)
        with _closing(handle, path) as named:
            yield named


@contextlib.contextmanager
def output_or_stdout(path: str | os.PathLike | None, mode: str = "w") -> Iterator[IO]:
    """`atomic_output` for a path; for None, stdout, its write errors named ``<stdout>`` (``> /dev/full``)."""
    if path is not None:
        with atomic_output(path, mode) as handle:
            yield handle
        return
    stdout = _NamedWriter(sys.stdout, STDOUT)
    yield stdout
    stdout.flush()


@contextlib.contextmanager
def named_stdout() -> Iterator[None]:
    """Within the block, ``sys.stdout``'s write errors are `OutputError`s naming ``<stdout>``.

    For the command line: ``seqmamba ingest x.fa > /dev/full`` then says what could not be written.
    """
    original = sys.stdout
    sys.stdout = _NamedWriter(original, STDOUT)
    try:
        yield
    finally:
        sys.stdout = original


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` for tools that open files themselves; fsynced and renamed on success.

    Failures of the tool that only writing causes (no space, quota, file too large, read-only) become
    `OutputError`s naming ``path``. For a special target (a device or a pipe) the path lies in a private
    temporary directory and its bytes are copied to the target at the end: some tools (safetensors)
    write to a temporary file of their own and rename it over the path they are given.
    """
    if is_special(path):
        with _copied_to_special(path) as tmp:
            yield tmp
        return
    final = Path(os.path.realpath(path))  # through a symbolic link: the file it points to is replaced
    with naming_output(path):
        # Same directory: os.replace is only atomic within one file system. Named after this process, so
        # that the next write of this output removes what a killed run left (see leftovers.py).
        sweep(final.parent, f".{final.name}.", ".tmp")
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.{owner_tag()}.", suffix=".tmp", dir=final.parent)
    try:
        os.close(fd)
        with naming_output(path, only_write_errors=True):
            yield Path(tmp)
        with naming_output(path):
            with open(tmp, "rb") as written:
                os.fsync(written.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, final)
        _fsync_directory(final.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def staged_files(directory: str | os.PathLike, last: str) -> Iterator[Path]:
    """A hidden folder inside ``directory`` to write a set of files into; on success each is renamed into
    ``directory``, ``last`` after all the others (and removed from ``directory`` before any).

    So ``directory`` holds ``last`` only beside a complete set: readers that look for ``last`` (a model
    directory's estimator.json) never load new weights with an old record or the reverse. On any failure
    the folder is removed and ``directory`` is as it was; write failures name ``directory``.
    """
    directory = Path(directory)
    with naming_output(directory):
        directory.mkdir(parents=True, exist_ok=True)
        sweep(directory, ".staging.")
        staging = Path(tempfile.mkdtemp(prefix=f".staging.{owner_tag()}.", dir=directory))
    try:
        with naming_output(directory, only_write_errors=True):
            yield staging
        if not (staging / last).is_file():
            raise FileNotFoundError(f"staged_files: {last} was not written")
        with naming_output(directory):
            (directory / last).unlink(missing_ok=True)
            for name in [*sorted(p.name for p in staging.iterdir() if p.name != last), last]:
                os.replace(staging / name, directory / name)
        _fsync_directory(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike) -> Iterator[Path]:
    """A hidden sibling directory to fill; on success it replaces ``final`` whole (``final`` is the old
    directory or the new one, never a mix). On any failure or interrupt ``final`` is as it was.

    While the two renames run, the old directory is ``.NAME.old`` beside it: a reader that finds no
    ``final`` (a process killed between them) can fall back to it, as `seqmamba.training` does for its
    checkpoint. Errors name ``final``.

    Example:
        >>> with atomic_directory(tmp / "model") as staging:  # doctest: +SKIP
        ...     (staging / "config.json").write_text("{}")
    """
    final = Path(final)
    with naming_output(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp.", dir=final.parent))
        os.chmod(staged, 0o777 & ~_umask())  # mkdtemp makes 0700: it should look like any directory
    old = final.parent / f".{final.name}.old"
    try:
        with naming_output(final, only_write_errors=True):
            yield staged
        with naming_output(final):
            _fsync_directory(staged)
            if final.exists():
                # final is complete, so an old copy is redundant; without final, old is the only good copy.
                if old.exists():
                    shutil.rmtree(old)
                os.replace(final, old)
            os.replace(staged, final)
        _fsync_directory(final.parent)
    except BaseException:
        if old.exists() and not final.exists():
            os.replace(old, final)  # stopped between the two renames: the old directory goes back
        shutil.rmtree(staged, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def is_special(path: str | os.PathLike) -> bool:
    """True when ``path`` exists (links followed) and is neither a regular file nor a directory."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


class _NamedWriter:
    """A file handle whose write errors are `OutputError`s naming the output (everything else delegated)."""

    def __init__(self, handle: IO, path: str | os.PathLike) -> None:
        self._handle = handle
        self._path = path

    def write(self, data: Any) -> int:
        try:
            return self._handle.write(data)
        except OSError as error:
            raise output_error(self._path, error) from error

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._handle.flush()
        except OSError as error:
            raise output_error(self._path, error) from error

    def __iter__(self):
        return iter(self._handle)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


@contextlib.contextmanager
def _closing(handle: IO, path: str | os.PathLike) -> Iterator[_NamedWriter]:
    try:
        yield _NamedWriter(handle, path)
    except BaseException:
        # The block's own error is the one to report; the buffered rest of the file is discarded.
        with contextlib.suppress(OSError):
            handle.close()
        raise
    with naming_output(path):
        handle.close()  # flushes the buffer: a full disk often shows only here


@contextlib.contextmanager
def _copied_to_special(path: str | os.PathLike) -> Iterator[Path]:
    folder = tempfile.mkdtemp(prefix=".seqmamba.")
    try:
        tmp = Path(folder) / Path(path).name
        with naming_output(path, only_write_errors=True):
            yield tmp
        with naming_output(path), open(tmp, "rb") as source, open(path, "wb") as target:
            shutil.copyfileobj(source, target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
