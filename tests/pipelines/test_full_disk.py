"""A full disk through the real commands: `-o /dev/full`, ENOSPC in the middle of an output (in-process, the
writes or fsync of the atomic writers made to fail), and real kernel write failures in a child process
under a file-size limit (RLIMIT_FSIZE, so EFBIG from Python, pyarrow and safetensors alike).

Every case: exit 1, one line `Error: <output>: ...`, no traceback, no temporary file, and an output the
user already had is left as it was.
"""

import errno
import os
import resource
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from dna_estimator_helpers import tiny_cli_workdir
from fault_helpers import full_disk_after, require_dev_full
from paths import REPO

from seqmamba.datasets import atomic
from seqmamba.pipelines import embedding_files
from seqmamba.pipelines.cli import main
from seqmamba.training import state as ckpt_state

ROOT = REPO
PRECIOUS = "the user's earlier output, which must survive\n"
TINY_DNA = ["--d-model", "8", "--n-layers", "1", "--d-state", "4", "--max-len", "64", "--epochs", "3",
            "--batch-size", "8", "--device", "cpu", "--seed", "1", "-q"]
TINY_FORECAST = ["--lookback", "24", "--horizon", "6", "--d-model", "8", "--n-layers", "1", "--max-epochs", "1",
                 "--device", "cpu", "-q"]
NO_SPACE = "no space left on device (nothing half-written is left; a file already there is unchanged)"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tiny classifier, a tiny forecaster (columns a, b), a FASTA of 3,000 records, tables to train on."""
    root = tmp_path_factory.mktemp("full")
    tiny_cli_workdir(root, "dna", 3000)
    t = np.arange(120, dtype=np.float64)
    pd.DataFrame({"date": pd.date_range("2022-01-01", periods=120, freq="D"), "a": np.sin(t / 4),
                  "b": np.cos(t / 6)}).to_csv(root / "toy.csv", index=False)
    assert main(["train", "forecast", str(root / "toy.csv"), "-o", str(root / "fc"), *TINY_FORECAST]) == 0
    return root


def one_error_line(capfd) -> str:
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("Error: "), err
    return err.rstrip("\n")


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- -o /dev/full: the device says ENOSPC at the first write --------------------------------------------------

def dev_full_cases(data, tmp_path):
    link = tmp_path / "emb.parquet"
    link.symlink_to("/dev/full")  # embed wants a .parquet name: a link to the device
    return {
        "classify": (["classify", str(data / "dna"), str(data / "in.fa"), "-o", "/dev/full", "-q"], "/dev/full"),
        "embed": (["embed", str(data / "dna"), str(data / "in.fa"), "-o", str(link), "-q"], str(link)),
        "windows": (["windows", str(data / "in.fa"), "--size", "10", "-o", "/dev/full", "-q"], "/dev/full"),
        "forecast": (["forecast", str(data / "fc"), str(data / "toy.csv"), "-o", "/dev/full"], "/dev/full"),
        "forecast-plot": (["forecast", str(data / "fc"), str(data / "toy.csv"), "-o", str(tmp_path / "f.csv"),
                           "--plot", "/dev/full"], "/dev/full"),
    }


@pytest.mark.parametrize("case", ["classify", "embed", "windows", "forecast", "forecast-plot"])
def test_dev_full(data, tmp_path, capfd, case):
    require_dev_full()
    if case == "forecast-plot":
        pytest.importorskip("matplotlib")
    argv, named = dev_full_cases(data, tmp_path)[case]
    before = listing(tmp_path)
    assert main(argv) == 1
    assert one_error_line(capfd) == f"Error: {named}: no space left on device"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert listing(tmp_path) == before or (case == "forecast-plot" and listing(tmp_path) == [*before, "f.csv"])


@pytest.mark.parametrize("command", ["dna", "forecast"])
def test_training_into_dev_full_is_refused_before_any_write(data, capfd, command):
    require_dev_full()
    if command == "dna":
        argv = ["train", "dna", "--train", str(data / "train.csv"), "-o", "/dev/full", *TINY_DNA]
    else:
        argv = ["train", "forecast", str(data / "toy.csv"), "-o", "/dev/full", *TINY_FORECAST]
    assert main(argv) == 1
    assert one_error_line(capfd) == "Error: /dev/full: exists and is not a directory"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_stdout_on_a_full_disk_is_one_line(data, tmp_path):
    require_dev_full()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "seqmamba.pipelines.cli", "windows", str(data / "in.fa"),
                               "--size", "10", "-q"], stdout=full, stderr=subprocess.PIPE, text=True, env=env,
                              cwd=tmp_path, timeout=300)
    assert (done.returncode, done.stderr) == (1, "Error: <stdout>: no space left on device\n")


# --- ENOSPC in the middle of a regular output: the writes (or the fsync) of the atomic writers fail ------------

def mid_write_cases(data, tmp_path):
    return {
        "classify": (["classify", str(data / "dna"), str(data / "in.fa"), "-o", str(tmp_path / "out.tsv"), "-q"],
                     "out.tsv", "atomic"),
        "classify-per-window": (["classify", str(data / "dna"), str(data / "in.fa"), "--per-window", "-o",
                                 str(tmp_path / "out.tsv"), "-q"], "out.tsv", "atomic"),
        "windows": (["windows", str(data / "in.fa"), "--size", "10", "-o", str(tmp_path / "out.bed"), "-q"],
                    "out.bed", "atomic"),
        "forecast": (["forecast", str(data / "fc"), str(data / "toy.csv"), "-o", str(tmp_path / "out.csv")],
                     "out.csv", "atomic"),
        "embed-npy": (["embed", str(data / "dna"), str(data / "in.fa"), "-o", str(tmp_path / "emb.npy"), "-q"],
                      "emb.npy", "npy"),
        "embed-parquet": (["embed", str(data / "dna"), str(data / "in.fa"), "-o", str(tmp_path / "emb.parquet"),
                           "-q"], "emb.parquet", "fsync"),
    }


def no_space_fsync(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("case", ["classify", "classify-per-window", "windows", "forecast", "embed-npy",
                                  "embed-parquet"])
def test_full_disk_mid_write_keeps_the_old_output(data, tmp_path, capfd, monkeypatch, case):
    argv, name, how = mid_write_cases(data, tmp_path)[case]
    (tmp_path / name).write_text(PRECIOUS)
    if how == "atomic":  # the TSV/CSV/BED writers: the disk fills after 200 bytes (a forecast is 6 rows)
        monkeypatch.setattr(atomic, "open", full_disk_after(200), raising=False)
    elif how == "npy":  # .npy rows go out through embedding_files' own handle
        monkeypatch.setattr(embedding_files, "open", full_disk_after(2048), raising=False)
    else:  # pyarrow writes natively: the fsync before the rename finds the disk full
        monkeypatch.setattr(os, "fsync", no_space_fsync)
    assert main([*argv, "--overwrite"]) == 1  # the user asked to replace it; the full disk keeps it
    assert one_error_line(capfd) == f"Error: {tmp_path / name}: {NO_SPACE}"
    assert (tmp_path / name).read_text() == PRECIOUS
    assert listing(tmp_path) == [name]


def test_train_forecast_full_disk_keeps_the_old_model(data, tmp_path, capfd, monkeypatch):
    model = tmp_path / "fc"
    assert main(["train", "forecast", str(data / "toy.csv"), "-o", str(model), *TINY_FORECAST]) == 0
    capfd.readouterr()
    before = {p.name: p.read_bytes() for p in model.iterdir()}
    monkeypatch.setattr(os, "fsync", no_space_fsync)
    argv = ["train", "forecast", str(data / "toy.csv"), "-o", str(model), "--overwrite", "--seed", "5",
            *TINY_FORECAST]
    assert main(argv) == 1
    assert one_error_line(capfd) == f"Error: {model}: {NO_SPACE}"
    assert {p.name: p.read_bytes() for p in model.iterdir()} == before
    assert listing(tmp_path) == ["fc"]


def test_train_dna_full_disk_at_a_checkpoint_then_resume(data, tmp_path, capfd, monkeypatch):
    model = tmp_path / "model"
    real_fsync = os.fsync
    staging_dirs = set()

    def fsync(fd):
        # The disk fills during the second checkpoint write (the first one is complete by then).
        path = os.readlink(f"/proc/self/fd/{fd}")
        if "/.checkpoint.tmp." in path:
            staging_dirs.add(path.split("/.checkpoint.tmp.")[1].split("/")[0])
            if len(staging_dirs) >= 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    argv = ["train", "dna", "--train", str(data / "train.csv"), "-o", str(model), *TINY_DNA]
    assert main(argv) == 1
    assert one_error_line(capfd) == f"Error: {model / 'training' / 'checkpoint'}: {NO_SPACE}"
    assert listing(model) == ["training"]  # no model files
    assert listing(model / "training") == ["checkpoint", "metrics.jsonl", "options.json"]  # no staging directory
    step = ckpt_state.read_checkpoint(model / "training" / "checkpoint")["trainer"]["state"]["global_step"]
    assert step == 2  # the first epoch's (16 sequences, batches of 8)
    monkeypatch.setattr(os, "fsync", real_fsync)  # space freed
    assert main([*argv, "--resume"]) == 0
    assert listing(model) == ["config.json", "estimator.json", "model.safetensors", "tokenizer.json", "training"]


# --- Real write failures: a child process under a file-size limit (EFBIG) -------------------------------------

def limited(nbytes: int):
    def set_limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death by signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return set_limit


EFBIG = "file too large for the file-size limit (ulimit -f) or the file system (nothing half-written is left; " \
        "a file already there is unchanged)"


@pytest.mark.parametrize(("command", "name", "named"), [
    ("classify", "out.tsv", "out.tsv"),
    ("embed", "emb.parquet", "emb.parquet"),
    ("train", "model", "model/training/checkpoint"),
])
def test_a_real_file_size_limit(data, tmp_path, command, name, named):
    out = tmp_path / name
    if command == "train":
        argv = ["train", "dna", "--train", str(data / "train.csv"), "-o", str(out), *TINY_DNA]
    else:
        out.write_text(PRECIOUS)
        argv = [command, str(data / "dna"), str(data / "in.fa"), "-o", str(out), "--overwrite", "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(torch.get_num_threads()),
           "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-m", "seqmamba.pipelines.cli", *argv], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=600, preexec_fn=limited(4096))
    assert (done.returncode, done.stderr) == (1, f"Error: {tmp_path / named}: {EFBIG}\n")
    if command == "train":  # safetensors' own error type, turned into the same one line
        assert listing(out) == ["training"] and listing(out / "training") == ["metrics.jsonl", "options.json"]
    else:
        assert out.read_text() == PRECIOUS and listing(tmp_path) == [name]


# --- `ingest` (issue 25, case 8): the bgzip copy, the .fai and the .gzi on a full disk ------------------------

def full_disk_for(suffix: str, limit: int = 100):
    """An ``open`` whose files named ``*suffix`` raise ENOSPC after ``limit`` bytes; other files open as usual."""
    real_open, full_open = open, full_disk_after(limit)

    def fake_open(path, mode="r", *args, **kwargs):
        opener = full_open if str(path).endswith(suffix) else real_open
        return opener(path, mode, *args, **kwargs)

    return fake_open


@pytest.mark.parametrize("case", ["fai-in-place", "bgzip-copy", "fai-of-the-copy", "gzi-of-the-copy"])
def test_ingest_on_a_full_disk(data, tmp_path, capfd, monkeypatch, case):
    """Every file `ingest` writes: exit 1, `Error: <that file>: no space left on device (...)`, nothing
    half-written, and an index the user already had unchanged (pyfaidx used to hide the errno: a "bug")."""
    import pyfaidx
    from Bio import bgzf

    fasta = tmp_path / "in.fa"
    fasta.write_bytes((data / "in.fa").read_bytes())
    if case == "fai-in-place":
        old_index = tmp_path / "in.fa.fai"
        old_index.write_text(PRECIOUS)  # an older index, rebuilt by this run (and kept when that fails)
        os.utime(old_index, (1, 1))
        monkeypatch.setattr(pyfaidx, "open", full_disk_for(".fai"), raising=False)
        argv, named, left = ["ingest", str(fasta), "-q"], old_index, ["in.fa", "in.fa.fai"]
    else:
        out = tmp_path / "out"
        argv = ["ingest", str(fasta), "-o", str(out), "-q"]
        if case == "bgzip-copy":
            monkeypatch.setattr(bgzf, "_open", full_disk_for(".tmp", 1000))  # the copy's temporary file
            named, left = out / "in.fa.gz", []
        else:
            suffix = ".fai" if case == "fai-of-the-copy" else ".gzi"
            monkeypatch.setattr(pyfaidx, "open", full_disk_for(suffix, 10), raising=False)
            named, left = out / "in.fa.gz.fai", ["in.fa.gz"]  # the copy is complete; its index is not written
    assert main(argv) == 1
    assert one_error_line(capfd) == f"Error: {named}: {NO_SPACE}"
    if case == "fai-in-place":
        assert listing(tmp_path) == left and old_index.read_text() == PRECIOUS
    else:
        assert listing(tmp_path) == ["in.fa", "out"] and listing(out) == left


def test_ingest_under_a_real_file_size_limit(data, tmp_path):
    """The kernel's EFBIG (RLIMIT_FSIZE) while the .fai is written: the same one line, no index left."""
    (tmp_path / "in.fa").write_bytes((data / "in.fa").read_bytes())  # 3,000 records: a .fai over 4 kB
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-m", "seqmamba.pipelines.cli", "ingest", "in.fa", "-q"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
                          preexec_fn=limited(4096))
    assert (done.returncode, done.stderr) == (1, f"Error: in.fa.fai: {EFBIG}\n")
    assert listing(tmp_path) == ["in.fa"]


def test_ingest_summary_to_a_full_stdout(data, tmp_path):
    require_dev_full()
    (tmp_path / "in.fa").write_bytes((data / "in.fa").read_bytes())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "seqmamba.pipelines.cli", "ingest", "in.fa", "-q"],
                              stdout=full, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path, timeout=300)
    assert (done.returncode, done.stderr) == (1, "Error: <stdout>: no space left on device\n")
