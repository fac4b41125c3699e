"""The bad-input cases of tests/pipelines/test_bad_inputs.py (through the CLI) and
tests/seqmamba/estimators/test_bad_inputs_api.py (through the Python API): each case is a function
``(tmp, models) -> (argv, output)`` that writes the bad input under ``tmp`` and returns the command line and the
output path that must not exist afterwards; ``models`` is the module fixture of one tiny classifier and one
tiny forecaster."""

import gzip
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from cli_models import TINY_DNA, TINY_FORECAST, series, train_tiny_models


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One tiny DNA classifier and one tiny forecaster (columns a, b; lookback 24, horizon 6), trained once."""
    return train_tiny_models(tmp_path_factory.mktemp("models"))


# --- FASTA, through `seqmamba classify MODEL FASTA -o out.tsv` ----------------------------------------------

def classify(tmp, models, data, name="in.fa"):
    path = tmp / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    out = tmp / "out.tsv"
    return ["classify", str(models / "dna"), str(path), "-o", str(out), "-q"], out


def fasta_empty(tmp, models):
    return classify(tmp, models, "")


def fasta_no_header(tmp, models):
    return classify(tmp, models, "ACGTACGT\nACGT\n")


def fasta_header_only(tmp, models):
    return classify(tmp, models, ">r1 a description\n")


def fasta_binary(tmp, models):
    return classify(tmp, models, bytes(np.random.default_rng(0).integers(0, 256, 512, dtype=np.uint8)))


def fasta_truncated_gzip(tmp, models):
    data = gzip.compress(("".join(f">r{i}\n{'ACGT' * 50}\n" for i in range(50))).encode())
    return classify(tmp, models, data[: len(data) // 2], name="in.fa.gz")


def fasta_illegal_characters(tmp, models):
    return classify(tmp, models, ">r1\nACGT\n>r2\nACGT12!?ACGT\n")


def fasta_duplicate_names(tmp, models):
    return classify(tmp, models, ">r1\nACGT\n>r2\nGGCC\n>r1\nTTAA\n")


def fasta_empty_record(tmp, models):
    return classify(tmp, models, ">r1\nACGT\n>r2\n>r3\nGGCC\n")


def fasta_directory(tmp, models):
    (tmp / "adir").mkdir()
    return ["classify", str(models / "dna"), str(tmp / "adir"), "-o", str(tmp / "out.tsv"), "-q"], tmp / "out.tsv"


def fasta_missing(tmp, models):
    return ["classify", str(models / "dna"), str(tmp / "nope.fa"), "-o", str(tmp / "out.tsv"), "-q"], tmp / "out.tsv"


def fasta_unreadable(tmp, models):
    argv, out = classify(tmp, models, ">r1\nACGT\n")
    (tmp / "in.fa").chmod(0)
    return argv, out


# --- Tables for `seqmamba train dna --train TABLE -o model/` ------------------------------------------------

def train_dna(tmp, models, text):
    (tmp / "in.csv").write_text(text)
    return ["train", "dna", "--train", str(tmp / "in.csv"), "-o", str(tmp / "model"), *TINY_DNA], tmp / "model"


def table_missing_columns(tmp, models):
    return train_dna(tmp, models, "seq,class\nACGT,a\nGGCC,b\n")


def table_empty_label(tmp, models):
    return train_dna(tmp, models, "sequence,label\nACGT,a\nGGCC,\n")


def table_single_class(tmp, models):
    return train_dna(tmp, models, "sequence,label\nACGT,a\nGGCC,a\n")


# --- Time series for `seqmamba forecast MODEL DATA -o out.csv` (and `evaluate`, `train forecast`) ------------

def forecast(tmp, models, path):
    out = tmp / "out.csv"
    return ["forecast", str(models / "fc"), str(path), "-o", str(out)], out


def ts_nan(tmp, models):
    a = np.ones(60)
    a[40] = np.nan
    return forecast(tmp, models, series(tmp / "in.csv", 60, a=a))


def ts_inf(tmp, models):
    a = np.ones(60)
    a[40] = np.inf
    return forecast(tmp, models, series(tmp / "in.csv", 60, a=a))


def ts_non_numeric(tmp, models):
    return forecast(tmp, models, series(tmp / "in.csv", 60, b=["x"] * 60))


def ts_duplicate_timestamps(tmp, models):
    path = series(tmp / "in.csv", 60)
    frame = pd.read_csv(path)
    frame.loc[30, "date"] = frame.loc[29, "date"]
    frame.to_csv(path, index=False)
    return forecast(tmp, models, path)


def ts_unsorted_timestamps(tmp, models):
    path = series(tmp / "in.csv", 60)
    frame = pd.read_csv(path)
    frame.loc[[30, 31], "date"] = frame.loc[[31, 30], "date"].to_numpy()
    frame.to_csv(path, index=False)
    return forecast(tmp, models, path)


def ts_too_short_forecast(tmp, models):
    return forecast(tmp, models, series(tmp / "in.csv", 10))  # lookback is 24


def ts_too_short_train(tmp, models):
    series(tmp / "in.csv", 20)  # lookback 24 + horizon 6
    return ["train", "forecast", str(tmp / "in.csv"), "-o", str(tmp / "model"), *TINY_FORECAST], tmp / "model"


def ts_other_columns_forecast(tmp, models):
    return forecast(tmp, models, series(tmp / "in.csv", 60, c=np.ones(60)))


def ts_other_columns_evaluate(tmp, models):
    path = series(tmp / "in.csv", 120)
    pd.read_csv(path).rename(columns={"b": "c"}).to_csv(path, index=False)
    return ["evaluate", str(models / "fc"), str(path)], tmp / "none"


# --- Models ---------------------------------------------------------------------------------------------------

def copy_model(tmp, models, which):
    shutil.copytree(models / which, tmp / "model")
    return tmp / "model"


def model_missing_weights(tmp, models):
    (copy_model(tmp, models, "dna") / "model.safetensors").unlink()
    argv, out = classify(tmp, models, ">r1\nACGT\n")
    argv[1] = str(tmp / "model")
    return argv, out


def model_corrupt_weights(tmp, models):
    (copy_model(tmp, models, "dna") / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    argv, out = classify(tmp, models, ">r1\nACGT\n")
    argv[1] = str(tmp / "model")
    return argv, out


def model_dna_to_forecast(tmp, models):
    argv, out = forecast(tmp, models, series(tmp / "in.csv", 60))
    argv[1] = str(models / "dna")
    return argv, out


def model_forecaster_to_classify(tmp, models):
    argv, out = classify(tmp, models, ">r1\nACGT\n")
    argv[1] = str(models / "fc")
    return argv, out


def model_config_other_version(tmp, models):
    model = copy_model(tmp, models, "dna")
    config = json.loads((model / "config.json").read_text())
    config["format_version"] = 999
    (model / "config.json").write_text(json.dumps(config))
    argv, out = classify(tmp, models, ">r1\nACGT\n")
    argv[1] = str(model)
    return argv, out


def model_dir_missing(tmp, models):
    argv, out = classify(tmp, models, ">r1\nACGT\n")
    argv[1] = str(tmp / "no_model")
    return argv, out
