"""The bad inputs of tests/pipelines/test_bad_inputs.py through the Python API, and the cases issue 8 adds: predict
before fit, model directories missing files, irregular time steps, plain gzip where random access is needed.

Through the API every data problem is a `seqmamba.errors.InputError` (a ValueError) whose one-line message
names the file and the place; calling an unfitted estimator is scikit-learn's `NotFittedError`.
"""

import gzip
import shutil

import bad_input_cases as cli_cases
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from seqmamba import MambaEmbedder, MambaForecaster, MambaSequenceClassifier
from seqmamba.datasets.fasta import FastaFile
from seqmamba.datasets.labelled import read_fasta_records, read_labelled_table
from seqmamba.errors import InputError
from seqmamba.pipelines.cli import main

models = cli_cases.models  # the same tiny classifier (dna/) and forecaster (fc/), trained once for this module


def input_path(case, tmp, models):
    """The bad file a CLI case writes (its argument after the command and the model)."""
    argv, _ = case(tmp, models)
    return argv[argv.index("--train") + 1] if argv[:2] == ["train", "dna"] else argv[2]


def fasta_api(path, models):
    return read_fasta_records([path])


def table_api(path, models):
    X, y = read_labelled_table(path)
    return MambaSequenceClassifier(d_model=8, n_layers=1, d_state=4, max_epochs=1, device="cpu").fit(X, y)


def predict_api(path, models):
    return MambaForecaster.load(models / "fc").predict(path)


def evaluate_api(path, models):
    return MambaForecaster.load(models / "fc").evaluate(path)


def fit_api(path, models):
    return MambaForecaster(lookback=24, horizon=6, d_model=8, n_layers=1, max_epochs=1, device="cpu",
                           verbose=0).fit(path)


# (case of test_bad_inputs, API call on its bad file, words the message must hold)
DATA_CASES = [
    pytest.param(cli_cases.fasta_empty, fasta_api, ["in.fa", "empty"], id="fasta-empty"),
    pytest.param(cli_cases.fasta_no_header, fasta_api, ["in.fa", "line 1", ">"], id="fasta-no-header"),
    pytest.param(cli_cases.fasta_header_only, fasta_api, ["in.fa", "line 1", "no sequence"], id="fasta-header-only"),
    pytest.param(cli_cases.fasta_binary, fasta_api, ["in.fa", "binary"], id="fasta-binary"),
    pytest.param(cli_cases.fasta_truncated_gzip, fasta_api, ["in.fa.gz", "truncated gzip"],
                 id="fasta-truncated-gzip"),
    pytest.param(cli_cases.fasta_illegal_characters, fasta_api, ["in.fa", "line 4, column 5", "'1'", "r2"],
                 id="fasta-illegal-characters"),
    pytest.param(cli_cases.fasta_duplicate_names, fasta_api, ["in.fa", "line 5", "duplicate", "'r1'"],
                 id="fasta-duplicate-names"),
    pytest.param(cli_cases.fasta_empty_record, fasta_api, ["in.fa", "line 3", "'r2'", "no sequence"],
                 id="fasta-empty-record"),
    pytest.param(cli_cases.fasta_directory, fasta_api, ["adir", "directory"], id="fasta-directory"),
    pytest.param(cli_cases.fasta_missing, fasta_api, ["nope.fa", "no such file"], id="fasta-missing"),
    pytest.param(cli_cases.table_missing_columns, table_api, ["in.csv", "line 1", "sequence", "label"],
                 id="table-missing-columns"),
    pytest.param(cli_cases.table_empty_label, table_api, ["in.csv", "line 3", "empty label"], id="table-empty-label"),
    pytest.param(cli_cases.table_single_class, table_api, ["single class", "'a'"], id="table-single-class"),
    pytest.param(cli_cases.ts_nan, predict_api, ["in.csv", "'a'", "2022-02-10", "line 42"], id="ts-nan"),
    pytest.param(cli_cases.ts_inf, predict_api, ["in.csv", "'a'", "2022-02-10", "line 42"], id="ts-inf"),
    pytest.param(cli_cases.ts_non_numeric, predict_api, ["in.csv", "'b'", "line 2", "'x'"], id="ts-non-numeric"),
    pytest.param(cli_cases.ts_duplicate_timestamps, predict_api, ["in.csv", "duplicate", "2022-01-30", "line 32"],
                 id="ts-duplicate-timestamps"),
    pytest.param(cli_cases.ts_unsorted_timestamps, predict_api, ["in.csv", "not sorted", "line 33"],
                 id="ts-unsorted-timestamps"),
    pytest.param(cli_cases.ts_too_short_forecast, predict_api, ["in.csv: predict: 10 rows", "lookback = 24"],
                 id="ts-too-short-predict"),
    pytest.param(cli_cases.ts_too_short_train, fit_api, ["in.csv: 20 rows", "24 + 6"], id="ts-too-short-fit"),
    pytest.param(cli_cases.ts_other_columns_forecast, predict_api, ["in.csv: predict", "unexpected columns ['c']"],
                 id="ts-other-columns-predict"),
    pytest.param(cli_cases.ts_other_columns_evaluate, evaluate_api,
                 ["in.csv: evaluate", "missing columns ['b']", "unexpected columns ['c']"],
                 id="ts-other-columns-evaluate"),
]


@pytest.mark.parametrize(("case", "call", "words"), DATA_CASES)
def test_bad_data_through_the_api(case, call, words, models, tmp_path):
    path = input_path(case, tmp_path, models)
    with pytest.raises(InputError) as caught:
        call(path, models)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


MODEL_CASES = [
    pytest.param(cli_cases.model_missing_weights, MambaSequenceClassifier, ["model.safetensors", "no such file"],
                 id="model-missing-weights"),
    pytest.param(cli_cases.model_corrupt_weights, MambaSequenceClassifier, ["model.safetensors", "not a safetensors"],
                 id="model-corrupt-weights"),
    pytest.param(cli_cases.model_config_other_version, MambaSequenceClassifier, ["config.json", "version 999"],
                 id="model-config-other-version"),
    pytest.param(cli_cases.model_dna_to_forecast, MambaForecaster, ["dna/config.json", "not a MambaForecaster"],
                 id="model-dna-to-forecaster"),
    pytest.param(cli_cases.model_forecaster_to_classify, MambaSequenceClassifier, ["fc/estimator.json"],
                 id="model-forecaster-to-classifier"),
    pytest.param(cli_cases.model_dir_missing, MambaSequenceClassifier, ["no_model", "no such file"],
                 id="model-dir-missing"),
]


@pytest.mark.parametrize(("case", "cls", "words"), MODEL_CASES)
def test_bad_model_directories_through_the_api(case, cls, words, models, tmp_path):
    argv, _ = case(tmp_path, models)
    with pytest.raises(InputError) as caught:
        cls.load(argv[1])
    for word in words:
        assert word in str(caught.value), f"{word!r} not in {caught.value}"


# --- predict before fit --------------------------------------------------------------------------------------

UNFITTED = [
    (MambaSequenceClassifier, "predict", (["ACGT"],)),
    (MambaSequenceClassifier, "predict_proba", (["ACGT"],)),
    (MambaSequenceClassifier, "predict_log_proba", (["ACGT"],)),
    (MambaSequenceClassifier, "decision_function", (["ACGT"],)),
    (MambaSequenceClassifier, "window_logits", (["ACGT"],)),
    (MambaSequenceClassifier, "score", (["ACGT"], ["a"])),
    (MambaSequenceClassifier, "save", ("never-written",)),
    (MambaEmbedder, "transform", (["ACGT"],)),
    (MambaEmbedder, "embed_windows", (["ACGT"],)),
    (MambaEmbedder, "get_feature_names_out", ()),
    (MambaEmbedder, "save", ("never-written",)),
    (MambaForecaster, "predict", ()),
    (MambaForecaster, "evaluate", (np.ones((50, 2)),)),
    (MambaForecaster, "score", (np.ones((50, 2)),)),
    (MambaForecaster, "update", (np.ones((5, 2)),)),
    (MambaForecaster, "save", ("never-written",)),
]


@pytest.mark.parametrize(("cls", "method", "args"), UNFITTED, ids=[f"{c.__name__}.{m}" for c, m, _ in UNFITTED])
def test_calling_an_unfitted_estimator_is_not_fitted_error(cls, method, args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotFittedError, match=f"This {cls.__name__} instance is not fitted yet"):
        getattr(cls(), method)(*args)
    assert list(tmp_path.iterdir()) == []  # save wrote nothing


@pytest.mark.parametrize("missing", ["config.json", "tokenizer.json", "estimator.json", "model.safetensors"])
@pytest.mark.parametrize("command", ["classify", "embed"])
def test_model_directory_missing_a_file(models, tmp_path, capfd, command, missing):
    model = tmp_path / "model"
    shutil.copytree(models / "dna", model)
    (model / missing).unlink()
    (tmp_path / "in.fa").write_text(">r1\nACGT\n")
    out = tmp_path / ("out.tsv" if command == "classify" else "out.npy")
    assert main([command, str(model), str(tmp_path / "in.fa"), "-o", str(out), "-q"]) == 1
    err = capfd.readouterr().err
    assert err.startswith(f"Error: {model / missing}: no such file") and err.count("\n") == 1, err
    assert not out.exists()


def test_model_directory_of_a_stopped_training_run_says_resume(models, tmp_path, capfd):
    model = tmp_path / "model"
    (model / "training" / "checkpoint").mkdir(parents=True)  # what an interrupted `train dna` leaves
    (tmp_path / "in.fa").write_text(">r1\nACGT\n")
    assert main(["classify", str(model), str(tmp_path / "in.fa"), "-q"]) == 1
    assert capfd.readouterr().err == (f"Error: {model}: its training was stopped before the model was saved "
                                      f"({model / 'training'} holds the checkpoint); run the same `seqmamba train "
                                      "dna` command with --resume to finish it\n")


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors"])
@pytest.mark.parametrize("command", ["forecast", "evaluate"])
def test_forecaster_directory_missing_a_file(models, tmp_path, capfd, command, missing):
    model = tmp_path / "fc"
    shutil.copytree(models / "fc", model)
    (model / missing).unlink()
    data = cli_cases.series(tmp_path / "in.csv", 120)
    assert main([command, str(model), str(data)]) == 1
    assert capfd.readouterr().err == f"Error: {model}: not a saved forecaster (needs config.json and " \
                                     "model.safetensors)\n"


# --- irregular time steps: a warning naming the first row off the usual step; forecasts step by it ------------

def irregular_series(path):
    """Daily rows with 2022-02-01 missing: row 30 comes two days after row 29."""
    cli_cases.series(path, 121)
    frame = pd.read_csv(path).drop(index=31).reset_index(drop=True)
    frame.to_csv(path, index=False)
    return path


IRREGULAR = ("irregular timestamps: the usual step is 1 days 00:00:00 but row 31 (2022-02-02 00:00:00, line 33) "
             "comes 2 days 00:00:00 after the row before (1 such steps); freq is None")


def test_irregular_steps_warn_once_through_the_cli(models, tmp_path, capfd):
    data = irregular_series(tmp_path / "in.csv")
    model = tmp_path / "fc"
    assert main(["train", "forecast", str(data), "-o", str(model), *cli_cases.TINY_FORECAST]) == 0
    err = capfd.readouterr().err.splitlines()
    assert err[0] == f"Warning: {data}: {IRREGULAR}" and len(err) == 2 and err[1].startswith("trained ")
    assert main(["forecast", str(model), str(data), "-o", str(tmp_path / "out.csv"), "-q"]) == 0
    assert capfd.readouterr().err == f"Warning: {data}: {IRREGULAR}\n"  # once (-q: no summary line)
    dates = pd.read_csv(tmp_path / "out.csv")["date"].tolist()
    assert dates[:2] == ["2022-05-02", "2022-05-03"]  # after the last row (2022-05-01), one usual step apart


def test_irregular_steps_warn_through_the_api(models, tmp_path):
    data = irregular_series(tmp_path / "in.csv")
    with pytest.warns(UserWarning) as record:
        model = fit_api(data, models)
    assert [str(w.message) for w in record] == [f"{data}: {IRREGULAR}"]
    with pytest.warns(UserWarning, match="row 31 \\(2022-02-02"):
        out = model.predict(data)
    assert out["date"].iloc[0] == pd.Timestamp("2022-05-02")


# --- plain gzip where random access is needed -----------------------------------------------------------------

def test_plain_gzip_needs_bgzip_for_an_index(tmp_path, capfd):
    path = tmp_path / "g.fa.gz"
    path.write_bytes(gzip.compress(b">r1\nACGTACGT\n>r2\nGGCC\n"))
    assert main(["ingest", str(path), "-q"]) == 1
    assert capfd.readouterr().err == (f"Error: {path}: plain gzip has no random access; pass -o DIR to write an "
                                      "indexed bgzip copy there\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa.gz"]  # no .fai, no .gzi
    with pytest.raises(InputError, match=r"plain gzip, which has no random access; .*bgzip -c"):
        FastaFile(path).index()
    # What does not need random access reads it as it is; `ingest -o` makes the indexable copy.
    assert main(["windows", str(path), "--size", "4", "-q"]) == 0
    assert capfd.readouterr().out.splitlines()[:2] == ["r1\t0\t4\t.\t0\t+", "r1\t4\t8\t.\t0\t+"]
    assert main(["ingest", str(path), "-o", str(tmp_path / "ref"), "-q"]) == 0
    assert FastaFile(tmp_path / "ref" / "g.fa.gz").index()["r2"][0:4] == "GGCC"


def test_model_directory_of_a_stopped_pretraining_run_says_resume_pretrain(models, tmp_path, capfd):
    model = tmp_path / "model"
    (model / "training" / "checkpoint").mkdir(parents=True)  # what an interrupted `seqmamba pretrain` leaves
    (model / "training" / "options.json").write_text('{"command": "pretrain", "window": 1024}')
    (tmp_path / "in.fa").write_text(">r1\nACGT\n")
    assert main(["embed", str(model), str(tmp_path / "in.fa"), "-o", str(tmp_path / "e.parquet"), "-q"]) == 1
    assert "run the same `seqmamba pretrain` command with --resume to finish it" in capfd.readouterr().err
