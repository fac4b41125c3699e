"""`seqmamba train dna`, `classify`, `embed` and `quickstart`: outputs, formats, one-line input errors."""

import numpy as np
import polars as pl
import pytest
from dna_estimator_helpers import at_gc_task

from seqmamba.pipelines.cli import main

TINY_ARGS = ["--d-model", "8", "--n-layers", "1", "--d-state", "4", "--max-len", "64", "--epochs", "10",
             "--batch-size", "8", "--lr", "1e-2", "--device", "cpu", "-q"]


def write_table(path, X, y, sep=","):
    path.write_text(f"sequence{sep}label\n" + "".join(f"{s}{sep}{lab}\n" for s, lab in zip(X, y)))
    return path


def write_fasta(path, records):
    path.write_text("".join(f">{name} some description\n{seq}\n" for name, seq in records))
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    X, y = at_gc_task()
    train = write_table(tmp / "train.csv", X, y)
    valid = write_table(tmp / "valid.tsv", X[:8], y[:8], sep="\t")
    out = tmp / "model"
    assert main(["train", "dna", "--train", str(train), "--valid", str(valid), "-o", str(out), *TINY_ARGS]) == 0
    return out


def test_train_writes_a_model_directory(model_dir):
    assert {p.name for p in model_dir.iterdir()} == {"config.json", "model.safetensors", "tokenizer.json",
                                                     "estimator.json", "training"}
    # The finished run keeps its metrics and options; its checkpoints are gone, so the next run starts afresh.
    assert sorted(p.name for p in (model_dir / "training").iterdir()) == ["metrics.jsonl", "options.json"]


def test_classify_per_record_and_per_window(model_dir, tmp_path, capsys):
    fa = write_fasta(tmp_path / "q.fa", [("at1", "AT" * 100), ("gc1", "GCGGCC" * 5)])
    out = tmp_path / "pred.tsv"
    assert main(["classify", str(model_dir), str(fa), "-o", str(out), "-q"]) == 0
    lines = [line.split("\t") for line in out.read_text().splitlines()]
    assert lines[0] == ["id", "file", "length", "predicted", "prob_AT", "prob_GC"]
    assert [row[:4] for row in lines[1:]] == [["at1", str(fa), "200", "AT"], ["gc1", str(fa), "30", "GC"]]
    assert abs(float(lines[1][4]) + float(lines[1][5]) - 1) < 1e-4
    assert main(["classify", str(model_dir), str(fa), "--per-window", "-q"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["#chrom", "start", "end", "file", "predicted", "prob_AT", "prob_GC"]
    assert [r[:3] for r in rows[1:]] == [["at1", "0", "64"], ["at1", "64", "128"], ["at1", "128", "192"],
                                         ["at1", "192", "200"], ["gc1", "0", "30"]]


def test_embed_parquet_and_npy(model_dir, tmp_path):
    fa = write_fasta(tmp_path / "q.fa", [("a", "AT" * 50), ("b", "GC" * 10)])
    out = tmp_path / "e.parquet"
    assert main(["embed", str(model_dir), str(fa), "-o", str(out), "-q"]) == 0
    frame = pl.read_parquet(out)
    assert frame.columns == ["id", "file", *[f"emb_{i}" for i in range(8)]] and frame["id"].to_list() == ["a", "b"]
    assert main(["embed", str(model_dir), str(fa), "-o", str(out), "--per-window", "--overwrite", "-q"]) == 0
    frame = pl.read_parquet(out)
    assert frame.columns[:4] == ["id", "start", "end", "file"] and frame.height == 3
    npy = tmp_path / "e.npy"
    assert main(["embed", str(model_dir), str(fa), "-o", str(npy), "-q"]) == 0
    assert np.load(npy).shape == (2, 8)


def test_train_from_class_fastas(tmp_path):
    X, y = at_gc_task(n=16)
    at = write_fasta(tmp_path / "at.fa", [(f"s{i}", s) for i, (s, lab) in enumerate(zip(X, y)) if lab == "AT"])
    gc = write_fasta(tmp_path / "gc.fa", [(f"s{i}", s) for i, (s, lab) in enumerate(zip(X, y)) if lab == "GC"])
    out = tmp_path / "m"
    args = ["train", "dna", "--class", f"AT={at}", "--class", f"GC={gc}", "-o", str(out), *TINY_ARGS]
    args[args.index("--epochs") + 1] = "1"
    assert main(args) == 0
    assert (out / "estimator.json").is_file()


@pytest.mark.parametrize(("text", "message"), [
    ("seq,label\nACGT,a\n", "line 1: missing column(s) sequence"),
    ("sequence,label\nACGT,a\nACGT,\n", "line 3: empty label"),
    ("sequence,label\nACGT,a\n,b\n", "line 3: empty sequence"),
    ("sequence,label\nACGT,a\nACGT,a\n", "a single class ('a')"),
])
def test_bad_training_tables_are_one_line_errors(tmp_path, capsys, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    assert main(["train", "dna", "--train", str(path), "-o", str(tmp_path / "m"), *TINY_ARGS]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and err.count("\n") == 1
    assert "bad.csv" in err and message in err


def test_usage_errors(tmp_path, model_dir):
    assert main(["train", "dna", "-o", str(tmp_path / "m")]) == 2  # neither --train nor --class
    assert main(["train", "dna", "--class", "nolabel", "-o", str(tmp_path / "m")]) == 2
    fa = write_fasta(tmp_path / "q.fa", [("a", "ACGT")])
    assert main(["embed", str(model_dir), str(fa), "-o", str(tmp_path / "e.csv"), "-q"]) == 1
    assert main(["classify", str(tmp_path), str(fa), "-q"]) == 1  # not a model directory


def test_commands_have_help_with_examples(capsys):
    for command in (["train", "dna"], ["classify"], ["embed"], ["quickstart"]):
        assert main([*command, "--help"]) == 0
    assert capsys.readouterr().out.count("Examples:") == 4


def test_quickstart_reduced(tmp_path):
    from seqmamba.pipelines.quickstart_cmd import run_quickstart

    result = run_quickstart(str(tmp_path / "qs"), quiet=True, n_train=16, n_test=8, length=(300, 340),
                            d_model=8, n_layers=1, d_state=4, epochs=1)
    names = {p.name for p in (tmp_path / "qs").iterdir()}
    assert {"train_A_first.fa", "train_B_first.fa", "test.fa", "test_labels.tsv", "model", "predictions.tsv",
            "embeddings.parquet"} <= names
    assert 0 <= result["accuracy"] <= 1 and 0 <= result["kmer_accuracy"] <= 1
    assert pl.read_parquet(tmp_path / "qs" / "embeddings.parquet").height == 8
