"""The command-line entry point."""

import subprocess
import sys

from click.testing import CliRunner

from seqmamba import __version__
from seqmamba.pipelines.cli import cli, main


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_selfcheck_passes():
    result = CliRunner().invoke(cli, ["selfcheck"])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
    assert "torch" in result.output


def test_unknown_command_is_a_usage_error():
    assert main(["no-such-command"]) == 2


def test_console_script_module_runs():
    done = subprocess.run([sys.executable, "-m", "seqmamba.pipelines.cli", "--version"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and __version__ in done.stdout


def test_help_lists_every_command_without_importing_torch():
    code = ("import sys\nfrom seqmamba.pipelines.cli import main\n"
            "assert main(['--help']) == 0\nassert 'torch' not in sys.modules, 'torch imported for --help'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for command in ("quickstart", "classify", "embed", "train", "forecast", "evaluate", "windows", "ingest"):
        assert f"  {command} " in done.stdout


def test_lazy_command_summaries_match_the_commands():
    from seqmamba.pipelines.cli import _LazyGroup

    assert set(_LazyGroup.summaries) == set(_LazyGroup.lazy)
