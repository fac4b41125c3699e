"""The ``seqmamba`` command group; each command lives in its own module."""

from __future__ import annotations

import logging
import sys

import click

from .._version import __version__
from ..errors import InputError
from .selfcheck import selfcheck


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="seqmamba")
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Mamba encoders for long DNA and multivariate time series.

    \b
    Examples:
      seqmamba --version
      seqmamba selfcheck
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


cli.add_command(selfcheck)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: input errors become one line on stderr and exit code 1."""
    try:
        cli.main(args=argv, prog_name="seqmamba", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except InputError as error:
        if "--debug" in (argv if argv is not None else sys.argv):
            raise
        click.echo(f"Error: {error}", err=True)
        return 1
    except click.exceptions.Exit as done:
        return done.exit_code
    return 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
