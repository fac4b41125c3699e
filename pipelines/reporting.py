"""How a command that fails tells the person who ran it: one line on stderr, or the traceback with --debug.

- bad input (`InputError`) and outputs that cannot be written (`OutputError`: a full disk, ...):
  ``Error: <file>: <what and where>``, exit 1;
- SIGINT / SIGTERM / SIGHUP: ``Interrupted`` / ``Terminated`` / ``Hangup``, exit 130 / 143 / 129;
- anything else is a bug: one line that says so and how to get the traceback, exit 1.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator

import click

from ..errors import InputError, OutputError
from .signals import Stopped


def report(error: BaseException, debug: bool) -> int:
    """Print ``error`` for a person (its traceback first with ``debug``); return the exit code."""
    if debug:
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    if isinstance(error, Stopped):
        click.echo(error.message, err=True)
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):  # raised by code of ours or a library, not by a signal
        click.echo(Stopped.message, err=True)
        return Stopped.exit_code
    click.echo(f"Error: {one_line(error)}", err=True)
    return 1


def one_line(error: BaseException) -> str:
    if isinstance(error, (InputError, OutputError)):
        return str(error)
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    text = " ".join(str(error).split()) or "(no message)"
    return (f"unexpected {type(error).__name__}: {text} (a bug in seqmamba: run it again as `seqmamba --debug ...` "
            "for the traceback, and report it)")


def stdout_broken() -> bool:
    """True when stdout cannot take its buffered output (a full disk after `> file`, a closed pipe)."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        return True
    return False


def silence_broken_stdout() -> None:
    """Point a broken stdout at /dev/null, so that Python's own flush at exit adds no second message."""
    if not stdout_broken():
        return
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@contextlib.contextmanager
def one_line_warnings(debug: Callable[[], bool]) -> Iterator[None]:
    """Warnings as ``Warning: <message>`` lines (Python's own format, with file and line, under --debug)."""
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if debug():
            sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
        else:
            click.echo(f"Warning: {' '.join(str(message).split())}", err=True)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original
