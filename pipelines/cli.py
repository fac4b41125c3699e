"""The ``seqmamba`` command group; each command lives in its own module."""

from __future__ import annotations

import logging
import sys
from typing import ClassVar

import click

from .. import __version__
from ..datasets.atomic import STDOUT, named_stdout
from ..errors import naming_output
from .ingest_cmd import ingest
from .reporting import one_line_warnings, report, silence_broken_stdout
from .signals import Stopped, stop_on_signals
from .windows_cmd import windows


class _Session:
    """What the group's options asked for, readable after the command's context is gone (error reports)."""

    debug = False


class _Escaped(Exception):
    """Carries a KeyboardInterrupt past Click, which would print a blank line and turn it into Abort."""

    def __init__(self, stop: KeyboardInterrupt) -> None:
        super().__init__()
        self.stop = stop


class _LazyGroup(click.Group):
    """Loads commands that need torch only when they run: `seqmamba windows` starts in ~0.2 s, not 1.5 s."""

    lazy: ClassVar[dict[str, str]] = {
        "selfcheck": ".selfcheck", "train": ".train_cmd", "forecast": ".forecast_cmd", "evaluate": ".forecast_cmd",
        "classify": ".classify_cmd", "embed": ".embed_cmd", "quickstart": ".quickstart_cmd",
        "pretrain": ".pretrain_cmd",
    }

    # One-line summaries for `seqmamba --help`, so that listing the commands imports none of them.
    summaries: ClassVar[dict[str, str]] = {
        "selfcheck": "Check every scan backend against the reference scan.",
        "train": "Train models (one process, or many under torchrun).",
        "forecast": "Forecast the rows after the end of a table with a trained model.",
        "evaluate": "MSE and MAE of a forecasting model on a table's test span.",
        "classify": "Classify every record of FASTA files with a trained model.",
        "embed": "Write an embedding per record (or per window) of FASTA files.",
        "quickstart": "Classify long DNA from FASTA, end to end (about 40 s on a 2-core CPU).",
        "pretrain": "Pretrain a DNA encoder on whole genomes (masked or next-base prediction).",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands and name not in self.summaries:  # the same line whether loaded or not
                command = self.commands[name]
                if not command.hidden:
                    rows.append((name, command.get_short_help_str(formatter.width - 6 - len(name))))
            else:
                rows.append((name, self.summaries.get(name, "")))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as stop:
            raise _Escaped(stop) from None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy and name not in self.commands:
            import importlib

            self.add_command(getattr(importlib.import_module(self.lazy[name], __package__), name))
        return super().get_command(ctx, name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="seqmamba")
@click.option("--debug", is_flag=True, help="Show full tracebacks (errors are one line without it) and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Mamba encoders for long DNA and multivariate time series.

    \b
    Examples:
      seqmamba --version
      seqmamba selfcheck
      seqmamba ingest genome.fa.gz -o ref/
      seqmamba windows genome.fa.gz --size 1000000 --stride 100000 > windows.bed
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    _Session.debug = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


cli.add_command(ingest)
cli.add_command(windows)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: runs the command and returns its exit code.

    Errors are one line on stderr (``Error: <file>: ...``; the traceback with ``--debug``): 1 for bad
    input, an output that cannot be written and bugs, 2 for usage errors; SIGINT, SIGTERM and SIGHUP stop
    the command cleanly (temporary files removed) with ``Interrupted`` (130), ``Terminated`` (143) or
    ``Hangup`` (129).
    """
    _Session.debug = False
    with stop_on_signals(), one_line_warnings(lambda: _Session.debug), named_stdout():
        try:
            code = cli.main(args=argv, prog_name="seqmamba", standalone_mode=False)
            with naming_output(STDOUT):
                sys.stdout.flush()  # a full disk behind `> file` shows only when the buffer goes out
        except _Escaped as escaped:
            return report(escaped.stop, _Session.debug)
        except click.exceptions.Abort as abort:  # Ctrl-C before the command started, or EOF at a prompt
            if isinstance(abort.__cause__, Stopped):
                return report(abort.__cause__, _Session.debug)
            click.echo("Aborted.", err=True)
            return 130
        except click.ClickException as error:
            error.show()
            return error.exit_code
        except click.exceptions.Exit as done:
            return done.exit_code
        except (Exception, KeyboardInterrupt) as error:
            return report(error, _Session.debug)
    return code if isinstance(code, int) else 0


def run() -> None:
    code = main()
    silence_broken_stdout()
    sys.exit(code)


if __name__ == "__main__":
    run()
