"""Options that several commands share, defined once: ``--device``, ``--threads`` and ``-q/--quiet``.

Example:
    >>> @click.command()
    ... @device_option
    ... @threads_option
    ... @quiet_option()
    ... def job(device: str, threads: int | None, quiet: bool) -> None:
    ...     click.echo(f"{device} {threads} {quiet}")
    >>> from click.testing import CliRunner
    >>> CliRunner().invoke(job, ["--threads", "2", "-q"]).output
    'auto 2 True\\n'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable)

QUIET_HELP = "No progress bar or summary on stderr."
THREADS_HELP = ("CPU threads for torch [default: torch's count, lowered to the cores that other running "
                "tasks leave idle].")


def check_device(ctx: click.Context | None, param: click.Parameter | None, value: str) -> str:
    """A Click callback: ``value`` names a device this machine has (``auto``, ``cpu``, ``cuda``, ``cuda:N``)."""
    from ..training.device import resolve_device

    try:
        resolve_device(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    return value


def device_option(f: F) -> F:
    """``--device auto|cpu|cuda|cuda:N`` (default auto), checked against the machine."""
    return click.option("--device", default="auto", show_default=True, callback=check_device,
                        help="auto, cpu, cuda or cuda:N.")(f)


def threads_option(f: F) -> F:
    """``--threads N``; None (the default) lets `seqmamba.training.threads.auto_threads` pick."""
    return click.option("--threads", type=click.IntRange(min=1), default=None, help=THREADS_HELP)(f)


def quiet_option(help: str = QUIET_HELP) -> Callable[[F], F]:
    """``-q/--quiet``; ``help`` says what it silences where that differs from the usual."""
    return click.option("-q", "--quiet", is_flag=True, help=help)
