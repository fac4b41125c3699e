"""What a user sees, tried as a new user would (issue 25, cases 12, 13, 16 and 17).

12: every output row names the FASTA file of its record (names repeat across files).
13: FASTA from standard input and pipes where the command streams; one plain line where it cannot.
16: ``--threads`` / ``n_threads`` reach torch during the work; the default adapts to the load.
17: help strings print as written; one statement of the quickstart's duration; ``forecast`` and ``evaluate``
    take ``--device``, ``--threads`` and ``-q`` with the same definitions as the other commands.
"""

import gzip
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
from click.testing import CliRunner
from dna_estimator_helpers import at_gc_task
from process_helpers import ROOT, env

from seqmamba import MambaEmbedder, MambaSequenceClassifier
from seqmamba.datasets.fasta import FastaFile
from seqmamba.datasets.labelled import read_fasta_records
from seqmamba.errors import InputError
from seqmamba.pipelines.cli import cli, main
from seqmamba.training import threads as threads_module

TINY = {"d_model": 8, "n_layers": 1, "d_state": 4, "max_len": 64, "batch_size": 8, "lr": 1e-2, "device": "cpu",
        "random_state": 0}
TINY_TRAIN = ["--d-model", "8", "--n-layers", "1", "--d-state", "4", "--max-len", "64", "--epochs", "1",
              "--batch-size", "8", "--device", "cpu", "-q"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A tiny classifier (model/), a tiny forecaster (fc/, columns a and b) and two genomes that both hold
    records X and Y (a/genome.fa, b/genome.fa.gz)."""
    root = tmp_path_factory.mktemp("user")
    X, y = at_gc_task(n=16)
    MambaSequenceClassifier(**TINY, max_epochs=1).fit(X, y).save(root / "model")
    (root / "a").mkdir()
    (root / "b").mkdir()
    (root / "a" / "genome.fa").write_text(">X chromosome\n" + "AT" * 40 + "\n>Y\n" + "GC" * 20 + "\n")
    with gzip.open(root / "b" / "genome.fa.gz", "wt") as handle:
        handle.write(">X\n" + "GC" * 50 + "\n>Y\n" + "AT" * 10 + "\n")
    t = np.arange(120, dtype=np.float64)
    pd.DataFrame({"date": pd.date_range("2022-01-01", periods=120, freq="D"), "a": np.sin(t / 4),
                  "b": np.cos(t / 6)}).to_csv(root / "toy.csv", index=False)
    args = ["train", "forecast", str(root / "toy.csv"), "--lookback", "24", "--horizon", "6", "--d-model", "8",
            "--n-layers", "1", "--max-epochs", "1", "--split", "all", "--device", "cpu", "-q", "-o", str(root / "fc")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return root


def run_process(command: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """``command`` in bash (for ``<(...)``), where ``seqmamba`` runs this checkout's CLI."""
    seqmamba = f"{sys.executable} -m seqmamba.pipelines.cli"
    return subprocess.run(["bash", "-c", command.replace("seqmamba ", seqmamba + " ")], cwd=cwd, env=env(),
                          input=stdin, capture_output=True, timeout=300)


# --- case 12: the file of every row --------------------------------------------------------------------------


def test_classify_names_the_file_of_every_row(work, monkeypatch):
    monkeypatch.chdir(work)  # paths as the user types them, relative
    runner = CliRunner()
    result = runner.invoke(cli, ["classify", "model", "a/genome.fa", "b/genome.fa.gz", "-o", "p.tsv", "-q"])
    assert result.exit_code == 0, result.output
    frame = pl.read_csv("p.tsv", separator="\t")
    assert frame.columns[:4] == ["id", "file", "length", "predicted"]
    assert list(frame.select("file", "id", "length").iter_rows()) == [
        ("a/genome.fa", "X", 80), ("a/genome.fa", "Y", 40), ("b/genome.fa.gz", "X", 100), ("b/genome.fa.gz", "Y", 20)]
    result = runner.invoke(cli, ["classify", "model", "a/genome.fa", "b/genome.fa.gz", "--per-window", "-o", "w.tsv",
                                 "-q"])
    assert result.exit_code == 0, result.output
    frame = pl.read_csv("w.tsv", separator="\t")
    assert frame.columns[:5] == ["#chrom", "start", "end", "file", "predicted"]  # BED's first three stay
    assert list(frame.select("#chrom", "start", "end", "file").iter_rows()) == [
        ("X", 0, 64, "a/genome.fa"), ("X", 64, 80, "a/genome.fa"), ("Y", 0, 40, "a/genome.fa"),
        ("X", 0, 64, "b/genome.fa.gz"), ("X", 64, 100, "b/genome.fa.gz"), ("Y", 0, 20, "b/genome.fa.gz")]


@pytest.mark.parametrize("per_window", [False, True])
def test_embed_names_the_file_of_every_row(work, monkeypatch, per_window):
    monkeypatch.chdir(work)
    out = f"e{int(per_window)}.parquet"
    argv = ["embed", "model", "a/genome.fa", "b/genome.fa.gz", "-o", out, "-q"]
    result = CliRunner().invoke(cli, argv + (["--per-window"] if per_window else []))
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out)
    keys = ["id", "start", "end", "file"] if per_window else ["id", "file"]
    assert frame.columns[:len(keys)] == keys and frame.columns[len(keys)] == "emb_0"
    files = frame["file"].to_list()
    assert files == (["a/genome.fa"] * 3 + ["b/genome.fa.gz"] * 3 if per_window
                     else ["a/genome.fa"] * 2 + ["b/genome.fa.gz"] * 2)
    assert frame.select("id", "file").n_unique() == (6 if per_window else 4) - (2 if per_window else 0)


def test_read_fasta_records_gives_the_file_of_every_record(work):
    paths = [work / "a" / "genome.fa", str(work / "b" / "genome.fa.gz")]
    names, sequences, files = read_fasta_records(paths, with_files=True)
    assert names == ["X", "Y", "X", "Y"] and [len(s) for s in sequences] == [80, 40, 100, 20]
    assert files == [str(paths[0])] * 2 + [paths[1]] * 2
    assert read_fasta_records(paths) == (names, sequences)  # without: as before


# --- case 13: standard input and pipes ----------------------------------------------------------------------


def test_classify_reads_a_pipe_and_gzip_on_standard_input(work, tmp_path):
    """`classify m <(cat a.fa) - < b.fa.gz`: the same rows as from the files, each naming its source."""
    gz = (work / "b" / "genome.fa.gz").read_bytes()
    done = run_process(f"seqmamba classify {work}/model <(cat {work}/a/genome.fa) - -o out.tsv -q", tmp_path, gz)
    assert done.returncode == 0, done.stderr.decode()
    streamed = pl.read_csv(tmp_path / "out.tsv", separator="\t")
    assert re.fullmatch(r"/dev/fd/\d+", streamed["file"][0]) and streamed["file"].to_list()[2:] == ["-", "-"]
    assert main(["classify", str(work / "model"), str(work / "a" / "genome.fa"), str(work / "b" / "genome.fa.gz"),
                 "-o", str(tmp_path / "files.tsv"), "-q"]) == 0
    from_files = pl.read_csv(tmp_path / "files.tsv", separator="\t")
    assert streamed.drop("file").equals(from_files.drop("file"))


def test_embed_npy_from_standard_input(work, tmp_path):
    """The .npy header's row count, unknown until the pipe ends, is written last."""
    text = (work / "a" / "genome.fa").read_bytes()
    done = run_process(f"seqmamba embed {work}/model - -o e.npy -q", tmp_path, text)
    assert done.returncode == 0, done.stderr.decode()
    expected = MambaEmbedder.from_classifier(MambaSequenceClassifier.load(work / "model", device="cpu"))
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), expected.transform(["AT" * 40, "GC" * 20]), atol=1e-6)


def test_windows_from_a_pipe_equals_windows_from_the_file(work, tmp_path):
    done = run_process(f"seqmamba windows <(gzip -dc {work}/b/genome.fa.gz) --size 30 -q", tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert main(["windows", str(work / "b" / "genome.fa.gz"), "--size", "30", "-q", "-o",
                 str(tmp_path / "w.bed")]) == 0
    assert done.stdout.decode() == (tmp_path / "w.bed").read_text()


def test_where_random_access_is_needed_the_error_says_so(work, tmp_path):
    done = run_process(f"seqmamba ingest <(cat {work}/a/genome.fa)", tmp_path)
    assert done.returncode == 1
    err = done.stderr.decode()
    assert re.fullmatch(r"Error: /dev/fd/\d+: a pipe; 'ingest' without -o needs random access to the file \(give "
                        r"a file path, or -o DIR for an indexed bgzip copy\)\n", err), err
    done = run_process(f"seqmamba ingest - -o ref -q < {work}/b/genome.fa.gz", tmp_path)  # a copy streams
    assert done.returncode == 0, done.stderr.decode()
    assert sorted(p.name for p in (tmp_path / "ref").iterdir()) == ["stdin.fa.gz", "stdin.fa.gz.fai",
                                                                    "stdin.fa.gz.gzi"]


@pytest.mark.parametrize(("command", "message"), [
    ("seqmamba classify {m} - -o out.tsv < {bad}",
     "Error: <stdin>: line 4, column 3: '!' is not a nucleotide code in record 'r2' (A C G T U N, IUPAC ambiguity "
     "codes, either case)\n"),
    ("seqmamba classify {m} - - -o out.tsv < {good}",
     "Error: <stdin>: given twice; standard input or a pipe can be read only once\n"),
])
def test_bad_streamed_input_is_one_line_and_leaves_nothing(work, tmp_path, command, message):
    (tmp_path / "bad.fa").write_text(">r1\nACGT\n>r2\nAC!T\n")
    line = command.format(m=work / "model", bad=tmp_path / "bad.fa", good=work / "a" / "genome.fa")
    done = run_process(line, tmp_path)
    assert (done.returncode, done.stderr.decode()) == (1, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.fa"]


def test_fasta_file_reads_a_pipe_once_through_the_api():
    read, write = os.pipe()

    def feed():
        with os.fdopen(write, "wb") as handle:
            handle.write(gzip.compress(b">a\nACGT\n>b\nGG\n"))

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        fasta = FastaFile(f"/dev/fd/{read}")
        assert fasta.is_stream and fasta.compression == "gzip"
        assert list(fasta.records()) == [("a", "ACGT"), ("b", "GG")]
        with pytest.raises(InputError, match=r"^/dev/fd/\d+: already read once"):
            list(fasta.records())
        with pytest.raises(InputError, match=r"^/dev/fd/\d+: a pipe; an index needs random access to the file"):
            fasta.index()
    finally:
        writer.join()
        os.close(read)


# --- case 16: threads ----------------------------------------------------------------------------------------


@pytest.fixture
def seen_threads(monkeypatch):
    """torch's thread count at every linear projection (every model has them: F.linear, or the Mamba blocks'
    batched GEMMs) while the work runs."""
    seen: list[int] = []

    def spying(function):
        def spy(*args, **kwargs):
            seen.append(torch.get_num_threads())
            return function(*args, **kwargs)
        return spy

    monkeypatch.setattr(torch.nn.functional, "linear", spying(torch.nn.functional.linear))
    monkeypatch.setattr(torch, "bmm", spying(torch.bmm))
    monkeypatch.setattr(threads_module, "_measured", None)  # no count reused from another test
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # as on the 2-core CI machine (tests/conftest.py), whatever this one has
    yield seen
    torch.set_num_threads(before)


def busy_machine(monkeypatch, others: int | None, loadavg: float = 0.0) -> None:
    """Two cores; ``others`` tasks running elsewhere (None: the count unreadable, the load average instead)."""
    monkeypatch.setattr(threads_module, "running_elsewhere", lambda: others)
    monkeypatch.setattr(threads_module.os, "getloadavg", lambda: (loadavg, loadavg, loadavg))
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads_module, "_measured", None)


def dna_commands(work, tmp_path) -> dict[str, list[str]]:
    X, y = at_gc_task(n=8)
    (tmp_path / "t.csv").write_text("sequence,label\n" + "".join(f"{s},{lab}\n" for s, lab in zip(X, y)))
    fa = str(work / "a" / "genome.fa")
    return {
        "train dna": ["train", "dna", "--train", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m"), *TINY_TRAIN],
        "classify": ["classify", str(work / "model"), fa, "-o", str(tmp_path / "p.tsv"), "-q"],
        "embed": ["embed", str(work / "model"), fa, "-o", str(tmp_path / "e.npy"), "-q"],
        "forecast": ["forecast", str(work / "fc"), str(work / "toy.csv"), "-o", str(tmp_path / "f.csv"), "-q"],
        "evaluate": ["evaluate", str(work / "fc"), str(work / "toy.csv"), "-q"],
        "train forecast": ["train", "forecast", str(work / "toy.csv"), "--lookback", "24", "--horizon", "6",
                           "--d-model", "8", "--n-layers", "1", "--max-epochs", "1", "--split", "all", "--device",
                           "cpu", "-q", "-o", str(tmp_path / "fc")],
    }


COMMANDS = ["train dna", "classify", "embed", "forecast", "evaluate", "train forecast"]


@pytest.mark.parametrize("name", COMMANDS)
def test_threads_option_reaches_torch_during_the_work(work, tmp_path, seen_threads, name):
    before = torch.get_num_threads()
    argv = dna_commands(work, tmp_path)[name]
    result = CliRunner().invoke(cli, [*argv, "--threads", "3"])
    assert result.exit_code == 0, result.output
    assert seen_threads and set(seen_threads) == {3}
    assert torch.get_num_threads() == before  # given back after the work


@pytest.mark.parametrize("name", COMMANDS)
def test_default_threads_drop_on_a_busy_machine(work, tmp_path, seen_threads, monkeypatch, name):
    busy_machine(monkeypatch, others=3)  # three tasks running elsewhere on two cores
    result = CliRunner().invoke(cli, dna_commands(work, tmp_path)[name])
    assert result.exit_code == 0, result.output
    assert seen_threads and set(seen_threads) == {1}


def test_quickstart_threads(tmp_path, seen_threads, monkeypatch):
    from seqmamba.pipelines import quickstart_cmd

    monkeypatch.setattr(quickstart_cmd, "DEFAULTS", {**quickstart_cmd.DEFAULTS, "n_train": 16, "n_test": 8,
                                                     "length": (256, 300), "d_model": 4, "epochs": 1})
    result = CliRunner().invoke(cli, ["quickstart", "-o", str(tmp_path / "qs"), "-q", "--threads", "3"])
    assert result.exit_code == 0, result.output
    assert seen_threads and set(seen_threads) == {3}


@pytest.mark.parametrize(("others", "loadavg", "expected"), [(0, 0.0, 2), (1, 0.0, 1), (3, 0.0, 1),
                                                             (None, 0.2, 2), (None, 3.7, 1)])
def test_estimators_adapt_their_threads_to_the_load(monkeypatch, seen_threads, others, loadavg, expected):
    """fit and predict of both DNA estimators, default n_threads: fewer threads when the load is high (the
    runnable count, or the load average where that cannot be read)."""
    busy_machine(monkeypatch, others, loadavg)
    X, y = at_gc_task(n=8)
    clf = MambaSequenceClassifier(**TINY, max_epochs=1).fit(X, y)
    clf.predict(X[:2])
    MambaEmbedder(model=clf).fit().transform(X[:2])
    assert seen_threads and set(seen_threads) == {expected}


def test_n_threads_is_a_parameter_stored_as_given(seen_threads):
    """scikit-learn's rule: __init__ only stores it; it acts during fit, predict and transform."""
    from sklearn.base import clone

    before = torch.get_num_threads()
    clf = MambaSequenceClassifier(**TINY, max_epochs=1, n_threads=3)
    emb = MambaEmbedder(d_model=8, n_layers=1, d_state=4, max_epochs=1, device="cpu", n_threads=3)
    assert torch.get_num_threads() == before and not seen_threads
    assert clf.get_params()["n_threads"] == 3 and clone(emb).get_params()["n_threads"] == 3
    X, y = at_gc_task(n=8)
    clf.fit(X, y).predict_proba(X[:2])
    emb.fit(X).transform(X[:2])
    assert MambaEmbedder.from_classifier(clf).n_threads == 3
    assert seen_threads and set(seen_threads) == {3} and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n_threads must be a positive integer"):
        MambaSequenceClassifier(**TINY, max_epochs=1, n_threads=0).fit(X, y)


# --- case 17: help, the quickstart's duration, forecast/evaluate options -------------------------------------


def all_commands():
    """(name, command) for every command and subcommand, hidden ones included."""
    import click

    ctx = click.Context(cli)
    stack = [("", cli)]
    while stack:
        prefix, group = stack.pop()
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            full = f"{prefix} {name}".strip()
            if isinstance(command, click.Group):
                stack.append((full, command))
            yield full, command


def test_help_prints_as_written():
    """Click does not %-format help: '10%%' would print as it is."""
    result = CliRunner().invoke(cli, ["train", "dna", "--help"])
    assert result.exit_code == 0 and "10% of the training set" in " ".join(result.output.split())
    for name, command in all_commands():
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        assert not [t for t in texts if "%%" in t], name


def test_the_quickstart_duration_is_stated_one_way():
    stated = "about 40 s on a 2-core CPU"
    help_text = CliRunner().invoke(cli, ["quickstart", "--help"]).output
    summary = CliRunner().invoke(cli, ["--help"]).output
    texts = {"quickstart --help": " ".join(help_text.split()), "seqmamba --help": " ".join(summary.split()),
             "README.md": (ROOT / "README.md").read_text(), "docs/classify_dna.md": (ROOT / "docs" /
                                                                                      "classify_dna.md").read_text()}
    for where, text in texts.items():
        assert stated in " ".join(text.split()), where
        assert not re.search(r"under (a|one|3|three) minute", text), where


SHARED = ("train dna", "train forecast", "classify", "embed", "forecast", "evaluate", "quickstart", "windows",
          "ingest", "train selftest")


def option_definitions(name: str):
    """The definitions of --device, --threads or -q of the commands above that have them, by command."""
    found = {}
    for full, command in all_commands():
        if full not in SHARED:
            continue
        for param in command.params:
            if param.name == name:
                found[full] = (tuple(param.opts), param.default, param.callback, getattr(param, "help", None)
                               if name != "quiet" else None, type(param.type).__name__)
    return found


def test_forecast_and_evaluate_take_the_shared_options():
    for name in ("device", "threads", "quiet"):
        found = option_definitions(name)
        assert {"forecast", "evaluate"} <= set(found), name
        assert len(set(found.values())) == 1, (name, found)  # one definition
    threads = option_definitions("threads")
    assert {"train dna", "train forecast", "classify", "embed", "forecast", "evaluate", "quickstart"} <= set(threads)


def test_forecast_and_evaluate_device_and_quiet(work, tmp_path):
    runner = CliRunner()
    fc, data = str(work / "fc"), str(work / "toy.csv")
    result = runner.invoke(cli, ["forecast", fc, data, "-o", str(tmp_path / "f.csv"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    summary = result.stderr.splitlines()
    assert len(summary) == 1 and summary[0].startswith("wrote ") and "f.csv" in summary[0], result.stderr
    result = runner.invoke(cli, ["forecast", fc, data, "-o", str(tmp_path / "g.csv"), "--device", "cpu", "-q"])
    assert result.exit_code == 0 and result.stderr == ""
    result = runner.invoke(cli, ["evaluate", fc, data, "--device", "cpu", "-q"])
    assert result.exit_code == 0 and result.stdout.startswith("mse ") and result.stderr == ""
    result = runner.invoke(cli, ["evaluate", fc, data, "--device", "cpu"])
    assert result.exit_code == 0 and re.fullmatch(r"evaluated .*fc on .*toy\.csv in [\d.]+ s on cpu\n",
                                                  result.stderr), result.stderr
    if not torch.cuda.is_available():
        for command in ("forecast", "evaluate"):
            result = runner.invoke(cli, [command, fc, data, "--device", "cuda"])
            assert result.exit_code == 2 and "CUDA is not available here" in result.output
