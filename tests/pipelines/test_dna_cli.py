"""`seqmamba windows` and `seqmamba ingest`: outputs, exit codes, one-line errors."""

import gzip
import subprocess
import sys

import pytest
from paths import REPO

from seqmamba.pipelines.cli import main

ECOLI = REPO.parent / "shared" / "data" / "genomes" / "GCF_000005845.2_ASM584v2_genomic.fna.gz"


def fasta(tmp_path, text="", name="g.fa"):
    path = tmp_path / name
    path.write_text(text or ">a desc\nACGTNNNNAC\n>b\nggccAT\n")
    return path


def test_windows_to_stdout(tmp_path, capsys):
    assert main(["windows", str(fasta(tmp_path)), "--size", "4", "--stride", "4", "-q"]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines() == ["a\t0\t4\t.\t0\t+", "a\t4\t8\t.\t0\t+", "a\t8\t10\t.\t0\t+",
                                    "b\t0\t4\t.\t0\t+", "b\t4\t6\t.\t0\t+"]
    assert out.err == ""


def test_windows_options_and_file_output(tmp_path, capsys):
    out = tmp_path / "w.bed"
    code = main(["windows", str(fasta(tmp_path)), "--size", "4", "--max-n-frac", "0.5", "--partial", "drop",
                 "--strand", "both", "-o", str(out)])
    assert code == 0
    assert out.read_text().splitlines() == ["a\t0\t4\t.\t0\t+", "a\t0\t4\t.\t0\t-",
                                            "b\t0\t4\t.\t0\t+", "b\t0\t4\t.\t0\t-"]
    assert capsys.readouterr().out == ""


def test_windows_bad_input_is_one_line_and_leaves_no_output(tmp_path, capsys):
    bad = fasta(tmp_path, ">a\nACGT\nAC!T\n", "bad.fa")
    out = tmp_path / "w.bed"
    assert main(["windows", str(bad), "--size", "2", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and err.count("\n") == 1
    assert "bad.fa: line 3, column 3: '!'" in err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.fa"]


def test_usage_errors_exit_2(tmp_path):
    assert main(["windows", str(fasta(tmp_path)), "--size", "0"]) == 2
    assert main(["windows", str(fasta(tmp_path)), "--partial", "maybe"]) == 2
    assert main(["windows", str(tmp_path / "missing.fa")]) == 2


def test_ingest_plain_in_place(tmp_path, capsys):
    path = fasta(tmp_path)
    assert main(["ingest", str(path), "--tsv", "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "name\tlength\tgc\tn_frac\tsoftmasked_frac"
    assert lines[1] == "a\t10\t0.5000\t0.4000\t0.0000"
    assert lines[2] == "b\t6\t0.6667\t0.0000\t0.6667"
    assert lines[3].startswith("total\t16\t")
    assert (tmp_path / "g.fa.fai").read_text().startswith("a\t10\t")


def test_ingest_gzip_needs_out_dir_then_writes_bgzip_copy(tmp_path, capsys, caplog):
    path = tmp_path / "g.fa.gz"
    path.write_bytes(gzip.compress(b">a\nACGT\n>e\n>b\nAC\n"))
    assert main(["ingest", str(path)]) == 1
    assert "pass -o DIR" in capsys.readouterr().err
    out = tmp_path / "ref"
    assert main(["ingest", str(path), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "record 'e' has no sequence" in caplog.text
    assert "e " in captured.out  # the empty record is listed, with length 0
    assert sorted(p.name for p in out.iterdir()) == ["g.fa.gz", "g.fa.gz.fai", "g.fa.gz.gzi"]
    assert gzip.decompress((out / "g.fa.gz").read_bytes()) == b">a\nACGT\n>b\nAC\n"
    assert main(["ingest", str(path), "-o", str(tmp_path / "strict"), "--strict"]) == 1


@pytest.mark.skipif(not ECOLI.is_file(), reason=f"shared genome data missing ({ECOLI})")
def test_console_windows_over_ecoli_without_torch(tmp_path):
    # A real process: checks the module entry point, BED on stdout, logs on stderr, and that the
    # command does not import torch (which would cost a second and ~200 MB).
    code = ("import sys, runpy; sys.argv = ['seqmamba', 'windows', sys.argv[1], '--stride', '100000']\n"
            "try:\n    runpy.run_module('seqmamba.pipelines.cli', run_name='__main__')\n"
            "except SystemExit as e:\n    assert 'torch' not in sys.modules; raise")
    done = subprocess.run([sys.executable, "-c", code, str(ECOLI)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 38
    assert lines[-1] == "NC_000913.3\t3700000\t4641652\t.\t0\t+"
    assert "38 windows" in done.stderr
