"""What a command (or an estimator's ``save``) may write over: the rules that keep a user's files (issue 25).

One helper per rule, shared by every command in ``pipelines/`` and by the estimators:

- `refuse_same_file`: an output is never one of the inputs (same path, a link to it, the same inode), and
  an output directory never holds an input.
- `check_output_free`: an existing output file is replaced only when asked (``--overwrite``); standard
  output and special files (``/dev/null``, pipes) are written as before. The replacement itself is atomic
  (`seqmamba.datasets.atomic`).
- `claim_model_dir`: a directory is written only when it is absent, empty, or recognised as the writer's own
  kind of model (`ModelKind`); a finished model is replaced only when asked. Anything else (a directory of
  data, the current directory, another kind of model) is refused, even when asked.
- `lock_output_dir`: one run at a time writes a directory; a second fails at once (`OutputBusyError`).

Refusals are `OutputExistsError`s (a ``FileExistsError``): one line, ``<path>: <why>; <what to do>``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, OutputBusyError, OutputExistsError, naming_output
from .atomic import is_special

CLI_HINT = "pass --overwrite to replace it"
API_HINT = "pass overwrite=True to replace it"
LOCK_NAME = ".seqmamba.lock"

# Entries a writer leaves only while it runs or when it is killed: never the user's.
_LEFTOVER = re.compile(r"^(\.staging\..*|\.seqmamba\.lock|\..+\.tmp)$")


@dataclass(frozen=True)
class ModelKind:
    """A kind of directory seqmamba writes, and how to recognise one.

    ``record``: the entry whose presence says the directory is complete (a finished model). ``entries``:
    every top-level entry this kind writes; None for a kind that writes only its own named files and
    keeps whatever else the directory holds (the quickstart's folder).
    """

    label: str
    record: str
    entries: frozenset[str] | None


DNA_MODEL = ModelKind("DNA model", "estimator.json",
                      frozenset({"config.json", "model.safetensors", "tokenizer.json", "estimator.json", "training"}))
FORECASTER = ModelKind("forecaster", "config.json", frozenset({"config.json", "model.safetensors"}))
ENCODER = ModelKind("encoder checkpoint", "config.json", frozenset({"config.json", "model.safetensors"}))
QUICKSTART = ModelKind("quickstart directory", ".seqmamba-quickstart", None)
KINDS = (QUICKSTART, DNA_MODEL, FORECASTER, ENCODER)


def recognise_model_dir(directory: str | os.PathLike) -> ModelKind | None:
    """The kind of directory ``directory`` is (`DNA_MODEL`, `FORECASTER`, `ENCODER`, `QUICKSTART`), or None.

    A DNA model has ``estimator.json`` (or, stopped before its save, only ``training/`` with the run's
    files); a forecaster or an encoder checkpoint says so in ``config.json`` (`seqmamba.model_dir`'s kind
    tag); the quickstart's folder has its marker file. Cheap: one small JSON read at most.
    """
    path = Path(directory)
    if (path / QUICKSTART.record).is_file():
        return QUICKSTART
    if (path / DNA_MODEL.record).is_file():
        return DNA_MODEL
    if (path / FORECASTER.record).is_file():
        from ..model_dir import directory_kind  # here: it loads torch, which `windows` does without

        found = directory_kind(path)
        labels = {kind.label: kind for kind in (DNA_MODEL, FORECASTER, ENCODER)}
        if found is not None and found[0] in labels:
            return labels[found[0]]
    run = path / "training"
    if run.is_dir() and any((run / name).exists() for name in ("options.json", "checkpoint", ".checkpoint.old")):
        return DNA_MODEL  # an interrupted `seqmamba train dna` run (the model not saved yet)
    return None


def claim_model_dir(directory: str | os.PathLike, kind: ModelKind, overwrite: bool, *, resume: bool = False,
                    hint: str = CLI_HINT) -> Path:
    """Check that ``directory`` may be written as a ``kind``; raise `OutputExistsError` (nothing written) if not.

    Allowed: an absent or empty directory (leftovers of killed runs do not count); a directory of this kind
    that is not finished (an interrupted run); a finished one only with ``overwrite`` (or ``resume``: the
    caller continues the interrupted run it found there). Refused whatever ``overwrite`` says: a directory
    of another kind, a directory of no kind (data, the current directory), a model directory holding
    files its kind does not write (they would be lost with it). A ``kind`` whose ``entries`` is None (the
    quickstart's folder) writes only its own files: its own folder is re-used as it is, a foreign one
    needs ``overwrite``. A path that exists and is not a directory is an `InputError`.
    """
    path = Path(directory)
    if path.exists() and not path.is_dir():  # a file or a device (/dev/full): never written as a directory
        raise InputError(f"{path}: exists and is not a directory")
    if not path.exists():
        return path
    with naming_output(path):
        entries = sorted(name for name in os.listdir(path) if not _LEFTOVER.match(name))
    if not entries:
        return path
    found = recognise_model_dir(path)
    if kind.entries is None:  # writes its own named files only
        if found is kind or overwrite:
            return path
        raise OutputExistsError(path, f"exists and is not a {kind.label} (it holds {_some(entries)}); "
                                      f"{hint.replace('replace it', 'write into it')}, or choose another directory")
    if found is None:
        raise OutputExistsError(path, f"exists and is not a {kind.label} directory (it holds {_some(entries)}); "
                                      "choose a new or empty directory")
    if found is not kind:
        raise OutputExistsError(path, f"holds {_a(found.label)}, not a {kind.label}; choose another directory "
                                      f"(only a {kind.label} is ever replaced here)")
    extra = [name for name in entries if name not in kind.entries]
    if extra:
        them = "it" if len(extra) == 1 else "them"
        raise OutputExistsError(path, f"holds {_some(extra)}, not part of a {kind.label}; move {them} away or "
                                      "choose another directory")
    if (path / kind.record).exists() and not (overwrite or resume):
        raise OutputExistsError(path, f"already holds a {kind.label}; {hint}")
    return path


def check_output_free(path: str | os.PathLike | None, overwrite: bool, hint: str = CLI_HINT) -> None:
    """Refuse (`OutputExistsError`) an output file that exists, unless ``overwrite``.

    None (standard output) and special files (``/dev/null``, ``/dev/stdout``, a named pipe) pass: nothing
    is replaced there. An existing directory is refused too (it can never be an output file).
    """
    if path is None or is_special(path):
        return
    if os.path.isdir(path):
        raise OutputExistsError(path, "is a directory; give a file name")
    if os.path.lexists(path) and not overwrite:
        raise OutputExistsError(path, f"exists; {hint}")


def refuse_same_file(inputs: Iterable[str | os.PathLike | None], output: str | os.PathLike | None, *,
                     directory: bool = False, role: str = "an input") -> None:
    """Refuse (`OutputExistsError`) an ``output`` that is one of ``inputs``, whatever ``--overwrite`` says.

    The same file by resolved path (links followed) or by inode (a hard link). ``directory``: ``output`` is
    a directory the command writes (a model): refused when it is an input or holds one. An input that is a
    directory (a model read by the command) stands for its model files (`model_dir_files`). Special files
    and standard output (None, ``-``) are never compared. ``role`` names what ``inputs`` are in the
    message (another output of the same command, say).
    """
    if output is None or os.fspath(output) == "-" or is_special(output):
        return
    out = os.path.realpath(output)
    for given in inputs:
        if given is None or os.fspath(given) == "-":
            continue
        files = model_dir_files(given) if os.path.isdir(given) else [Path(given)]
        for name in files:
            real = os.path.realpath(name)
            if real == out or _same_inode(real, out):
                what = "" if os.fspath(name) == os.fspath(output) else f" ({name})"
                why = "writing it would destroy the input" if role == "an input" else "two outputs cannot share it"
                raise OutputExistsError(output, f"is also {role}{what}; {why}: choose another output")
            if directory and real.startswith(out.rstrip(os.sep) + os.sep):
                raise OutputExistsError(output, f"holds the input {name}; writing a model there could destroy it: "
                                                "choose another directory")


def model_dir_files(directory: str | os.PathLike) -> list[Path]:
    """The model files of ``directory`` that exist (what a command reads from a model directory)."""
    names = sorted(set().union(*(kind.entries for kind in KINDS if kind.entries is not None)) - {"training"})
    return [Path(directory) / name for name in names if (Path(directory) / name).is_file()]


@contextlib.contextmanager
def lock_output_dir(directory: str | os.PathLike, enabled: bool = True) -> Iterator[None]:
    """Hold ``directory``'s lock (``flock`` on ``directory/.seqmamba.lock``) while a run writes it.

    A second run fails at once with `OutputBusyError` naming the directory and the process holding it. The
    lock file goes at the end; a killed run's file holds no lock (the kernel drops it) and is re-used.
    ``directory`` must exist. ``enabled=False`` (the other ranks of one torchrun job) takes no lock. Where
    the file system has no ``flock`` (some network file systems), the run goes on without it.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX
        fcntl = None
    if not enabled or fcntl is None:
        yield
        return
    path = Path(directory) / LOCK_NAME
    fd = _take_lock(fcntl, path, directory)
    if fd is None:  # no flock on this file system: go on unlocked
        yield
        return
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode())
        yield
    finally:
        if _is_file_at(fd, path):
            with contextlib.suppress(OSError):
                os.unlink(path)
        os.close(fd)  # releases the lock


def check_not_busy(directory: str | os.PathLike) -> None:
    """Fail at once (`OutputBusyError`) when a run holds ``directory``'s lock; takes nothing, creates nothing.

    For a command to call first, before it reads its inputs or judges what the directory holds (a running
    run's files look like an interrupted one's).
    """
    try:
        import fcntl
    except ImportError:
        return
    path = Path(directory) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return  # no lock file: nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared and brief: a run taking the lock retries
    except OSError as error:
        if error.errno in _BUSY:
            raise _busy(directory, fd) from None
    finally:
        os.close(fd)


_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


def _busy(directory: str | os.PathLike, fd: int) -> OutputBusyError:
    return OutputBusyError(directory, f"another run is writing to it ({_read_holder(fd)}); wait for it to finish, "
                                      "or choose another directory")


def _take_lock(fcntl, path: Path, directory: str | os.PathLike) -> int | None:
    """An open descriptor of ``path`` holding its flock; None where flock is not supported."""
    tries = 0
    while True:
        with naming_output(directory):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in _BUSY:
                os.close(fd)
                return None
            tries += 1
            if tries < 5:  # held for an instant by a `check_not_busy` probe, or by a run: ask again
                os.close(fd)
                time.sleep(0.05)
                continue
            busy = _busy(directory, fd)
            os.close(fd)
            raise busy from None
        if _is_file_at(fd, path):  # not removed by a run that finished between our open and our flock
            return fd
        os.close(fd)


def _is_file_at(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "a process holds its lock"


def _same_inode(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return stat.S_ISREG(sa.st_mode) and os.path.samestat(sa, sb)


def _a(label: str) -> str:
    return f"{'an' if label[0] in 'aeiou' else 'a'} {label}"


def _some(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:3])
    return shown if len(names) <= 3 else f"{shown} and {len(names) - 3} more"


__all__ = ["API_HINT", "CLI_HINT", "DNA_MODEL", "ENCODER", "FORECASTER", "KINDS", "LOCK_NAME", "QUICKSTART",
           "ModelKind", "check_not_busy", "check_output_free", "claim_model_dir", "lock_output_dir", "model_dir_files",
           "recognise_model_dir", "refuse_same_file"]
