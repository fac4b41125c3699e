"""`classify` and `embed` under torchrun (2 gloo processes on the CPU): the merged output is the one a single
process writes; a failed process leaves no output and no part; what cannot be split is refused up front."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from cli_models import GOOD_TABLE, TINY_DNA
from process_helpers import env

from seqmamba.pipelines.cli import main
from seqmamba.pipelines.sharding import balanced_ranges, part_path


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A tiny classifier (windows of 64) and two FASTA files of records from 5 to 300 bp."""
    root = tmp_path_factory.mktemp("sharded")
    (root / "train.csv").write_text(GOOD_TABLE)
    assert main(["train", "dna", "--train", str(root / "train.csv"), "-o", str(root / "model"), *TINY_DNA]) == 0
    rng = np.random.default_rng(0)
    for name, n in (("a.fa", 9), ("b.fa", 6)):
        lengths = rng.integers(5, 300, n)
        (root / name).write_text("".join(f">r{i} some description\n{''.join(rng.choice(list('ACGT'), k))}\n"
                                         for i, k in enumerate(lengths)))
    return root


def torchrun(*argv, cwd, processes=2):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               "-m", "seqmamba.pipelines.cli", *argv]
    return subprocess.run(command, env=env(), capture_output=True, text=True, timeout=300, cwd=cwd)


def inputs(job):
    return [str(job / "model"), str(job / "a.fa"), str(job / "b.fa")]


def assert_same_table(sharded: pd.DataFrame, single: pd.DataFrame) -> None:
    assert list(sharded.columns) == list(single.columns)
    numeric = [c for c in single.columns if c.startswith(("prob_", "emb_"))]
    others = [c for c in single.columns if c not in numeric]
    pd.testing.assert_frame_equal(sharded[others], single[others])  # same rows, same order, same labels
    np.testing.assert_allclose(sharded[numeric].to_numpy(), single[numeric].to_numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("per_window", [False, True])
def test_classify_under_torchrun_writes_what_one_process_writes(job, tmp_path, per_window):
    flags = ["--per-window"] if per_window else []
    assert main(["classify", *inputs(job), "-o", str(tmp_path / "one.tsv"), "--device", "cpu", "-q", *flags]) == 0
    done = torchrun("classify", *inputs(job), "-o", str(tmp_path / "two.tsv"), "--device", "cpu", *flags,
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("classified 15 record(s)") == 1  # rank 0 reports, for the whole run
    one, two = (pd.read_csv(tmp_path / f"{n}.tsv", sep="\t") for n in ("one", "two"))
    assert len(one) >= 15
    assert_same_table(two, one)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.tsv", "two.tsv"]  # no part left behind


def test_embed_under_torchrun_writes_what_one_process_writes(job, tmp_path):
    for suffix in (".parquet", ".npy"):
        assert main(["embed", *inputs(job), "-o", str(tmp_path / f"one{suffix}"), "--per-window", "--device", "cpu",
                     "-q"]) == 0
        done = torchrun("embed", *inputs(job), "-o", str(tmp_path / f"two{suffix}"), "--per-window", "--device",
                        "cpu", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stderr.count("embeddings to") == 1
    assert_same_table(pd.read_parquet(tmp_path / "two.parquet"), pd.read_parquet(tmp_path / "one.parquet"))
    np.testing.assert_allclose(np.load(tmp_path / "two.npy"), np.load(tmp_path / "one.npy"), rtol=1e-5, atol=1e-6)
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_a_failed_process_leaves_no_output_and_no_part(job, tmp_path):
    out = tmp_path / "out.tsv"
    part_path(out, 1, 2).mkdir()  # the second process cannot put its part in place
    done = torchrun("classify", *inputs(job), "-o", str(out), "--device", "cpu", cwd=tmp_path)
    assert done.returncode != 0
    assert f"Error: {part_path(out, 1, 2)}: Is a directory" in done.stderr  # the failed process, one line
    assert f"Error: {out}: another torchrun process failed" in done.stderr  # the other one
    assert "seqmamba/" not in done.stderr  # no traceback of ours (torchrun prints its own agent's)
    assert sorted(p.name for p in tmp_path.iterdir()) == [part_path(out, 1, 2).name]  # only what the test made
    part_path(out, 1, 2).rmdir()
    done = torchrun("classify", *inputs(job), "-o", str(out), "--device", "cpu", cwd=tmp_path)  # repeated: works
    assert done.returncode == 0, done.stderr and out.is_file()


def test_more_processes_than_records(job, tmp_path):
    """A process whose share is empty writes no part; the output is still the single process's."""
    (tmp_path / "two.fa").write_text(">a\nACGTACGTAC\n>b\nGGGCCCAATT\n")
    model = str(job / "model")
    assert main(["classify", model, str(tmp_path / "two.fa"), "-o", str(tmp_path / "one.tsv"), "--device", "cpu",
                 "-q"]) == 0
    done = torchrun("classify", model, str(tmp_path / "two.fa"), "-o", str(tmp_path / "three.tsv"), "--device",
                    "cpu", cwd=tmp_path, processes=3)
    assert done.returncode == 0, done.stderr
    assert_same_table(*(pd.read_csv(tmp_path / f"{n}.tsv", sep="\t") for n in ("three", "one")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.tsv", "three.tsv", "two.fa"]


def test_what_cannot_be_split_is_refused_before_any_work(job, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as under torchrun
    assert main(["classify", str(job / "model"), str(job / "a.fa"), "--device", "cpu"]) == 1
    assert "give -o FILE" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", open(job / "a.fa"))
    assert main(["embed", str(job / "model"), "-", "-o", str(tmp_path / "e.parquet"), "--device", "cpu"]) == 1
    assert "cannot be split across torchrun's processes" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("world", [1, 2, 3, 8, 40])
def test_balanced_ranges_cover_every_record_in_order_with_even_bases(world):
    lengths = np.random.default_rng(world).integers(1, 1000, 30).tolist()
    ranges = balanced_ranges(lengths, world)
    assert len(ranges) == world and ranges[0].start == 0 and ranges[-1].stop == 30
    assert all(a.stop == b.start for a, b in itertools.pairwise(ranges))
    if world <= 3:  # few shares of many records: each within the largest record of the even share
        share = sum(lengths) / world
        assert all(abs(sum(lengths[r.start:r.stop]) - share) <= max(lengths) for r in ranges)


def test_record_chunks_take_a_share_across_files(tmp_path):
    from seqmamba.pipelines.record_stream import record_chunks

    (tmp_path / "a.fa").write_text(">a0\nAC\n>a1\nGT\n>a2\nAA\n")
    (tmp_path / "b.fa").write_text(">b0\nCC\n>b1\nGG\n")
    paths = [tmp_path / "a.fa", tmp_path / "b.fa"]
    names = lambda share: [n for chunk in record_chunks(paths, records=share) for n in chunk.names]  # noqa: E731
    assert names(range(2, 4)) == ["a2", "b0"]
    assert names(range(0, 5)) == ["a0", "a1", "a2", "b0", "b1"]
    assert names(range(4, 4)) == []
