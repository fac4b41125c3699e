"""What a killed run leaves beside its outputs is swept up by the next run that writes them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from dna_estimator_helpers import tiny_cli_workdir
from process_helpers import env, run_until, temporary_with_rows

from seqmamba.datasets.atomic import atomic_output, staged_files
from seqmamba.datasets.leftovers import owner_tag

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sweeping needs POSIX's process probe")


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_next_write_removes_a_dead_writers_temporary_only(tmp_path):
    host = owner_tag().rsplit("-", 1)[0]
    dead = tmp_path / f".out.tsv.{host}-{dead_pid()}.x1.tmp"
    live = tmp_path / f".out.tsv.{host}-{os.getppid()}.x2.tmp"  # a run writing it right now
    elsewhere = tmp_path / f".out.tsv.otherhost-{dead_pid()}.x3.tmp"  # another machine's: can't tell
    other_output = tmp_path / f".out.tsv.gz.{host}-{dead_pid()}.x4.tmp"
    for path in (dead, live, elsewhere, other_output):
        path.write_text("half")
    with atomic_output(tmp_path / "out.tsv") as handle:
        handle.write("new\n")
    assert (tmp_path / "out.tsv").read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out.tsv", live.name, elsewhere.name, other_output.name])


def test_a_model_directory_loses_a_dead_runs_staging_folder(tmp_path):
    host = owner_tag().rsplit("-", 1)[0]
    stale = tmp_path / f".staging.{host}-{dead_pid()}.abc"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    with staged_files(tmp_path, "estimator.json") as staging:
        (staging / "estimator.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["estimator.json"]


def test_indexing_a_fasta_removes_a_dead_runs_index_staging(tmp_path):
    from fasta_helpers import write

    from seqmamba.datasets.fasta import FastaFile

    host = owner_tag().rsplit("-", 1)[0]
    fasta = write(tmp_path / "g.fa", ">a\nACGT\n>b\nGGCC\n")
    stale = tmp_path / f".index.g.fa.fai.{host}-{dead_pid()}.q"
    stale.mkdir()
    (stale / "g.fa.fai").write_text("a\t4\n")  # truncated, as pyfaidx leaves it when killed
    FastaFile(fasta).index()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa", "g.fa.fai"]


def test_classify_after_a_sigkill_leaves_nothing_behind(tmp_path):

    tiny_cli_workdir(tmp_path, "model", 20000)
    out = tmp_path / "work"
    out.mkdir()
    argv = ["classify", str(tmp_path / "model"), str(tmp_path / "in.fa"), "-o", str(out / "out.tsv"), "-q"]
    code, _ = run_until(argv, out, temporary_with_rows(out, "out.tsv"), signal.SIGKILL)
    assert code == -signal.SIGKILL
    left = [p.name for p in out.iterdir()]
    assert len(left) == 1 and left[0].startswith(".out.tsv.") and left[0].endswith(".tmp")  # the killed run's
    again = subprocess.run([sys.executable, "-m", "seqmamba.pipelines.cli", *argv], cwd=out, env=env(),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert [p.name for p in out.iterdir()] == ["out.tsv"]
