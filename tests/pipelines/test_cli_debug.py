"""`seqmamba --debug`: the full traceback; without it every error is one line (bad input, outputs, bugs)."""

import warnings

import pytest

from seqmamba.datasets import windows as windows_module
from seqmamba.pipelines.cli import main


@pytest.fixture
def bad_fasta(tmp_path):
    path = tmp_path / "in.fa"
    path.write_text(">r1\nACGT\n>r2\nAC1T\n")
    return path


def test_bad_input_is_one_line_without_debug(bad_fasta, tmp_path, capfd):
    out = tmp_path / "w.bed"
    assert main(["windows", str(bad_fasta), "--size", "2", "-o", str(out)]) == 1
    err = capfd.readouterr().err
    assert err == f"Error: {bad_fasta}: line 4, column 3: '1' is not a nucleotide code in record 'r2' " \
                  "(A C G T U N, IUPAC ambiguity codes, either case)\n"
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.fa"]


def test_debug_shows_the_traceback_then_the_same_line(bad_fasta, tmp_path, capfd):
    out = tmp_path / "w.bed"
    assert main(["--debug", "windows", str(bad_fasta), "--size", "2", "-o", str(out)]) == 1
    err = capfd.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "fasta_scan.py" in err and "seqmamba.errors.InputError: " in err  # where it was raised
    assert err.splitlines()[-1].startswith(f"Error: {bad_fasta}: line 4, column 3")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.fa"]


def boom(*args, **kwargs):
    raise RuntimeError("boom\nsecond line")


def test_a_bug_is_one_line_that_says_how_to_see_more(bad_fasta, monkeypatch, capfd):
    monkeypatch.setattr(windows_module.WindowedGenome, "windows", boom)
    assert main(["windows", str(bad_fasta)]) == 1
    err = capfd.readouterr().err
    assert err == ("Error: unexpected RuntimeError: boom second line (a bug in seqmamba: run it again as "
                   "`seqmamba --debug ...` for the traceback, and report it)\n")


def test_a_bug_under_debug_shows_where(bad_fasta, monkeypatch, capfd):
    monkeypatch.setattr(windows_module.WindowedGenome, "windows", boom)
    assert main(["--debug", "windows", str(bad_fasta)]) == 1
    err = capfd.readouterr().err
    assert "Traceback (most recent call last):" in err and "in boom" in err and "RuntimeError: boom" in err


def test_output_errors_are_one_line_and_debug_shows_the_os_error(tmp_path, capfd):
    good = tmp_path / "ok.fa"
    good.write_text(">r1\nACGT\n")
    missing = tmp_path / "nodir" / "w.bed"
    assert main(["windows", str(good), "--size", "2", "-o", str(missing)]) == 1
    assert capfd.readouterr().err == f"Error: {missing}: cannot write: no such directory\n"
    assert main(["--debug", "windows", str(good), "--size", "2", "-o", str(missing)]) == 1
    err = capfd.readouterr().err
    assert "FileNotFoundError" in err and "The above exception was the direct cause" in err
    assert err.splitlines()[-1] == f"Error: {missing}: cannot write: no such directory"


def test_warnings_are_one_line_and_python_style_under_debug(bad_fasta, monkeypatch, capfd):
    def warn_then_stop(*args, **kwargs):
        warnings.warn("in.csv: irregular timestamps:\n  details", UserWarning, stacklevel=1)
        return iter(())

    monkeypatch.setattr(windows_module.WindowedGenome, "windows", warn_then_stop)
    warnings.simplefilter("always")  # the same warning twice: no once-per-place filtering (pytest restores it)
    assert main(["windows", str(bad_fasta), "-q"]) == 0
    assert capfd.readouterr().err == "Warning: in.csv: irregular timestamps: details\n"
    assert main(["--debug", "windows", str(bad_fasta), "-q"]) == 0
    err = capfd.readouterr().err
    assert "test_cli_debug.py" in err and "UserWarning: in.csv: irregular timestamps:" in err
