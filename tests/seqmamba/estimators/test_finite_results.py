"""Issue 25, cases 9, 10, 14 and 15: a result is a number, and asking for one changes nothing.

- 9: values that overflow float32 (1e20 in a series the model saw near 1; 1e308 in a cell), and NaN or
  overflowing weights, are refused with one line naming the file and the place; no command writes NaN or
  inf as a forecast, probability, label, embedding or metric.
- 10: missing labels (None, NaN, pd.NA, '', 'nan') are refused with their row, in `fit` and `train dna`.
- 14: `MambaForecaster.predict(X)` leaves the estimator as it was; `update` is the way to add rows.
- 15: `evaluate` on rows the forecaster was fitted on warns, saying how many and what to do instead.

Every case runs through the real CLI (`seqmamba.pipelines.cli.main`, whose warnings are `Warning: ...` lines)
and through the Python API. Models are tiny and trained once per module.
"""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from cli_models import GOOD_TABLE, TINY_DNA, TINY_FORECAST
from safetensors.torch import load_file, save_file

from seqmamba import MambaForecaster, MambaSequenceClassifier
from seqmamba.datasets.labelled import read_labelled_table
from seqmamba.datasets.timeseries import read_timeseries
from seqmamba.errors import InputError
from seqmamba.estimators import MambaEmbedder
from seqmamba.pipelines.cli import main

API_TINY = dict(lookback=24, horizon=6, d_model=8, n_layers=1, d_state=2, patch_len=4, max_epochs=1, batch_size=64,
                verbose=0, device="cpu")


def toy(n=300, **columns):
    """A daily series with columns a and b (overridden by ``columns``)."""
    t = np.arange(n, dtype=np.float64)
    frame = pd.DataFrame({"date": pd.date_range("2022-01-01", periods=n, freq="D"), "a": np.sin(t / 4),
                          "b": np.cos(t / 6)})
    for name, values in columns.items():
        frame[name] = values
    return frame


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny forecaster (`fc`, protocol split of toy.csv) and a tiny DNA classifier (`dna`), trained once."""
    root = tmp_path_factory.mktemp("finite")
    toy().to_csv(root / "toy.csv", index=False)
    assert main(["train", "forecast", str(root / "toy.csv"), "-o", str(root / "fc"), *TINY_FORECAST]) == 0
    (root / "train.csv").write_text(GOOD_TABLE)
    assert main(["train", "dna", "--train", str(root / "train.csv"), "-o", str(root / "dna"), *TINY_DNA]) == 0
    (root / "in.fa").write_text(f">r1\n{'AT' * 20}\n>r2\n{'GC' * 20}\n")
    return root


def one_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def set_tensor(path, name, value):
    """Rewrite one tensor of a model.safetensors: every element = value, or element 0 = NaN."""
    tensors = load_file(path)
    tensor = tensors[name].clone()
    if value is None:
        tensor.view(-1)[0] = float("nan")
    else:
        tensor.fill_(value)
    tensors[name] = tensor
    save_file(tensors, path, metadata={"format": "pt"})


def copy_model(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


# --- case 9: values that overflow ----------------------------------------------------------------------------

def test_series_far_beyond_the_training_scale_is_refused_through_the_cli(models, tmp_path, capsys):
    big = tmp_path / "big.csv"
    toy(a=np.sin(np.arange(300) / 4) * 1e20).to_csv(big, index=False)  # was: -inf forecasts, mse inf, exit 0
    out = tmp_path / "forecast.csv"
    assert main(["forecast", str(models / "fc"), str(big), "-o", str(out)]) == 1
    err = one_error(capsys)
    assert "big.csv: predict: value" in err and "column 'a' at row 276 (2022-10-04" in err
    assert "training standard deviations" in err and not out.exists()
    assert main(["evaluate", str(models / "fc"), str(big)]) == 1
    err = one_error(capsys)
    assert "big.csv: evaluate: value" in err and "column 'a' at row 216" in err
    assert capsys.readouterr().out == ""  # no "mse inf" line


def test_series_far_beyond_the_training_scale_is_refused_through_the_api(models):
    model = MambaForecaster.load(models / "fc")
    big = toy(a=np.sin(np.arange(300) / 4) * 1e20)
    with pytest.raises(InputError, match=r"predict: value .* in column 'a' at row 276 .* training standard deviations"):
        model.predict(big)
    with pytest.raises(InputError, match=r"evaluate: value .* in column 'a' at row 216"):
        model.evaluate(big)
    with pytest.raises(InputError, match=r"update: value .* in column 'a' at row 0"):
        model.update(toy(10, a=1e20).assign(date=pd.date_range("2022-07-30", periods=10, freq="D")))
    with pytest.raises(InputError, match=r"X_val: value .* in column 'a' at row 30"):
        MambaForecaster(**API_TINY).fit(toy(200), X_val=toy(60, a=np.r_[np.zeros(30), np.full(30, 1e20)]))


def test_a_model_fitted_at_a_large_scale_forecasts_finite_numbers():
    # The same series in units 1e20 times larger: the scaling statistics are float64, the forecast finite.
    frame = toy(260, a=np.sin(np.arange(260) / 4) * 1e20 + 3e20)
    model = MambaForecaster(**API_TINY).fit(frame.iloc[:200])
    out = model.predict()
    assert np.isfinite(out[["a", "b"]].to_numpy()).all() and out["a"].abs().max() > 1e19
    assert np.isfinite(model.evaluate(frame, start=176)["mse"])


@pytest.mark.parametrize("command", ["train", "forecast", "evaluate"])
def test_a_cell_beyond_float32_is_refused_by_name_through_the_cli(models, tmp_path, capsys, command):
    path = tmp_path / "cell.csv"
    a = np.sin(np.arange(300) / 4)
    a[150] = 1e308  # was: inf after the cast, "infinite value (inf)" or "mse nan" with exit 0
    toy(a=a).to_csv(path, index=False)
    argv = {"train": ["train", "forecast", str(path), "-o", str(tmp_path / "m"), *TINY_FORECAST],
            "forecast": ["forecast", str(models / "fc"), str(path), "-o", str(tmp_path / "out.csv")],
            "evaluate": ["evaluate", str(models / "fc"), str(path)]}[command]
    assert main(argv) == 1
    err = one_error(capsys)
    assert f"{path}: value 1e+308 in column 'a' at row 150 (2022-05-31 00:00:00, line 152) is outside the range" in err
    assert "1e+30" in err and not (tmp_path / "m").exists() and not (tmp_path / "out.csv").exists()


def test_a_cell_beyond_float32_is_refused_by_the_api(models):
    a = np.sin(np.arange(300) / 4)
    a[150] = -1e308
    with pytest.raises(InputError, match=r"DataFrame: value -1e\+308 in column 'a' at row 150 \(2022-05-31"):
        read_timeseries(toy(a=a))
    with pytest.raises(InputError, match="outside the range seqmamba reads"):
        MambaForecaster.load(models / "fc").evaluate(toy(a=a))
    with pytest.raises(InputError, match="outside the range seqmamba reads"):
        MambaForecaster(**API_TINY).fit(toy(a=a))


def test_validation_rows_far_beyond_the_training_scale_are_refused_by_train_forecast(tmp_path, capsys):
    path = tmp_path / "jump.csv"
    a = np.sin(np.arange(300) / 4)
    a[225:] *= 1e20  # inside the protocol's validation span [186, 240): was "best validation MSE inf", exit 0
    toy(a=a).to_csv(path, index=False)
    assert main(["train", "forecast", str(path), "-o", str(tmp_path / "m"), *TINY_FORECAST]) == 1
    err = one_error(capsys)
    assert f"{path}: value" in err and "column 'a' at row 225 (2022-08-14 00:00:00, line 227) lies" in err
    assert not (tmp_path / "m").exists()
    a[225:] /= 1e20
    a[280:] *= 1e20  # in the last 10 %, which validates with --split all
    toy(a=a).to_csv(path, index=False)
    assert main(["train", "forecast", str(path), "--split", "all", "-o", str(tmp_path / "m"), *TINY_FORECAST]) == 1
    assert f"Error: {path}: value" in (err := one_error(capsys)) and "column 'a' at row 280 (2022-10-08" in err
    assert not (tmp_path / "m").exists()


def test_nan_weights_are_refused_at_load_through_the_cli(models, tmp_path, capsys):
    fc = copy_model(models / "fc", tmp_path / "fc")
    set_tensor(fc / "model.safetensors", "model.skip.weight", None)
    for argv in (["forecast", str(fc), str(models / "toy.csv")], ["evaluate", str(fc), str(models / "toy.csv")]):
        assert main(argv) == 1
        err = one_error(capsys)
        assert f"{fc}/model.safetensors: tensor 'model.skip.weight' holds 1 non-finite value(s) (nan)" in err
    dna = copy_model(models / "dna", tmp_path / "dna")
    set_tensor(dna / "model.safetensors", "head.weight", None)  # was: nan probabilities and a label, exit 0
    for argv in (["classify", str(dna), str(models / "in.fa"), "-o", str(tmp_path / "p.tsv"), "-q"],
                 ["embed", str(dna), str(models / "in.fa"), "-o", str(tmp_path / "e.parquet"), "-q"]):
        assert main(argv) == 1
        assert f"{dna}/model.safetensors: tensor 'head.weight' holds 1 non-finite value(s) (nan)" in one_error(capsys)
    assert not (tmp_path / "p.tsv").exists() and not (tmp_path / "e.parquet").exists()


def test_nan_weights_are_refused_at_load_by_the_api(models, tmp_path):
    fc = copy_model(models / "fc", tmp_path / "fc")
    set_tensor(fc / "model.safetensors", "model.skip.weight", None)
    with pytest.raises(InputError, match=r"model.safetensors: tensor 'model.skip.weight' holds 1 non-finite"):
        MambaForecaster.load(fc)
    dna = copy_model(models / "dna", tmp_path / "dna")
    set_tensor(dna / "model.safetensors", "head.weight", None)
    with pytest.raises(InputError, match=r"model.safetensors: tensor 'head.weight' holds 1 non-finite"):
        MambaSequenceClassifier.load(dna)
    # A pickle with NaN weights is refused when it is loaded, too.
    clf = MambaSequenceClassifier.load(models / "dna")
    with torch.no_grad():
        clf.model_.head.weight[0, 0] = float("nan")
    with pytest.raises(InputError, match=r"pickled MambaSequenceClassifier: tensor 'head.weight'"):
        pickle.loads(pickle.dumps(clf))
    model = MambaForecaster.load(models / "fc")
    with torch.no_grad():
        model.model_.skip.weight[0, 0] = float("inf")
    with pytest.raises(InputError, match=r"pickled MambaForecaster: tensor 'model.skip.weight'"):
        pickle.loads(pickle.dumps(model))


def test_overflowing_weights_give_no_result_through_the_cli(models, tmp_path, capsys):
    # Finite weights pass the load check; the outputs overflow: the last guard names the row, nothing is written.
    dna = copy_model(models / "dna", tmp_path / "dna")
    set_tensor(dna / "model.safetensors", "encoder.encoder.norm_f.weight", 3e38)
    for argv, out in ((["classify", str(dna), str(models / "in.fa"), "-o", str(tmp_path / "p.tsv"), "-q"], "p.tsv"),
                      (["embed", str(dna), str(models / "in.fa"), "-o", str(tmp_path / "e.npy"), "-q"], "e.npy")):
        assert main(argv) == 1
        err = one_error(capsys)
        assert "record 'r1', bases 0-40: the model's output is not finite" in err
        assert not (tmp_path / out).exists()
    fc = copy_model(models / "fc", tmp_path / "fc")
    set_tensor(fc / "model.safetensors", "model.skip.weight", 3e38)
    assert main(["forecast", str(fc), str(models / "toy.csv"), "-o", str(tmp_path / "f.csv")]) == 1
    assert "toy.csv: predict: the forecast is not finite" in one_error(capsys)
    assert not (tmp_path / "f.csv").exists()
    assert main(["evaluate", str(fc), str(models / "toy.csv")]) == 1
    assert "evaluate: the forecast of the window reading rows [216, 240) for rows [240, 246) is not finite" \
        in one_error(capsys)


def test_overflowing_weights_give_no_result_through_the_api(models, tmp_path):
    dna = copy_model(models / "dna", tmp_path / "dna")
    set_tensor(dna / "model.safetensors", "encoder.encoder.norm_f.weight", 3e38)
    clf = MambaSequenceClassifier.load(dna, device="cpu")
    for method in (clf.predict, clf.predict_proba, clf.decision_function):
        with pytest.raises(InputError, match="record 'sequence 0', bases 0-20: the model's output is not finite"):
            method(["AT" * 10, "GC" * 10])
    embedder = MambaEmbedder(model=clf, max_len=64, device="cpu").fit()
    with pytest.raises(InputError, match=r"record 'sequence 0'.*not finite"):
        embedder.transform(["AT" * 10])
    model = MambaForecaster.load(models / "fc")
    with torch.no_grad():
        model.model_.skip.weight.fill_(3e38)
    with pytest.raises(InputError, match=r"predict: the forecast is not finite \(.*\) in column 'a' at forecast row 0"):
        model.predict()
    with pytest.raises(InputError, match="evaluate: the forecast of the window reading rows"):
        model.evaluate(toy())


def test_a_diverged_fit_is_refused():
    # No validation rows to fall back on: the NaN weights of a diverged run are refused, never kept.
    model = MambaForecaster(**{**API_TINY, "lr": 1e30, "max_epochs": 2, "validation_fraction": 0})
    with pytest.raises(InputError, match=r"^fit: training diverged: the network's tensor '.*' holds NaN or inf; "
                                         r"lower lr \(now 1e\+30\)"):
        model.fit(toy(200))
    assert not hasattr(model, "model_")


# --- case 10: missing labels -----------------------------------------------------------------------------------

@pytest.mark.parametrize("missing", [None, np.nan, pd.NA, "", "nan"], ids=["None", "NaN", "pd.NA", "empty", "nan-text"])
def test_missing_labels_are_refused_by_fit(missing):
    X = ["AT" * 10, "GC" * 10, "AT" * 10, "GC" * 10]
    y = pd.Series(["AT", "GC", missing, "GC"], dtype=object)  # was: a class 'nan', or a raw TypeError for None
    clf = MambaSequenceClassifier(d_model=8, n_layers=1, d_state=4, max_len=64, max_epochs=1, device="cpu")
    with pytest.raises(InputError, match=r"^y: row 2 \(0-based\) has no label .*1 missing in all"):
        clf.fit(X, y)
    with pytest.raises(InputError, match=r"^y: row 2 \(0-based\) has no label"):
        clf.fit(X, list(y))
    with pytest.raises(InputError, match=r"^eval_set y: row 1 \(0-based\) has no label"):
        clf.fit(X, ["AT", "GC", "AT", "GC"], eval_set=(X[:2], ["AT", missing]))
    assert not hasattr(clf, "model_")


def test_a_missing_label_in_a_table_is_refused_through_the_cli(tmp_path, capsys):
    table = tmp_path / "in.csv"
    table.write_text(GOOD_TABLE.replace("GC\n", "nan\n", 2).replace("nan\n", "GC\n", 1))  # line 5: label nan
    assert main(["train", "dna", "--train", str(table), "-o", str(tmp_path / "model"), *TINY_DNA]) == 1
    err = one_error(capsys)
    assert err == (f"Error: {table}: line 5: missing label ('nan' stands for a missing value); every row needs a "
                   "class label")
    assert not (tmp_path / "model").exists()
    table.write_text("sequence,label\nACGT,a\nGGCC,\n")
    assert main(["train", "dna", "--train", str(table), "-o", str(tmp_path / "model"), *TINY_DNA]) == 1
    assert one_error(capsys) == f"Error: {table}: line 3: empty label"
    with pytest.raises(InputError, match="line 3: empty label"):
        read_labelled_table(table)


# --- case 14: predict(X) changes nothing -----------------------------------------------------------------------

def fitted_state(model):
    """Everything a fitted forecaster is: pickle bytes, parameters, fitted attributes."""
    attrs = {k: v for k, v in vars(model).items() if k.endswith("_") and k != "model_"}
    return pickle.dumps(model), model.get_params(), pickle.dumps(attrs)


@pytest.mark.parametrize("arch", ["variate", "patch"])
def test_predict_with_x_leaves_the_estimator_unchanged(arch, tmp_path):
    model = MambaForecaster(architecture=arch, **API_TINY).fit(toy(200))
    before, expected = fitted_state(model), model.predict()
    other = toy(260).iloc[100:]  # 160 rows ending 60 days after the fitted ones
    from_other = model.predict(other)
    assert from_other["date"].iloc[0] == pd.Timestamp("2022-09-18")
    assert fitted_state(model) == before  # was: context_, n_rows_seen_, last_timestamp_ taken from `other`
    pd.testing.assert_frame_equal(model.predict(), expected)
    assert fitted_state(model) == before  # predict() keeps nothing either (the patch stream is not stored)
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(MambaForecaster.load(tmp_path / "m").predict(), expected)
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(model)).predict(), expected)
    model.update(toy(210).iloc[200:])  # update() is the way to add rows
    assert model.n_rows_seen_ == 210 and model.last_timestamp_ == pd.Timestamp("2022-07-29")
    assert model.predict()["date"].iloc[0] == pd.Timestamp("2022-07-30")


def test_update_after_a_gap_warns():
    model = MambaForecaster(**API_TINY).fit(toy(200))
    with pytest.warns(UserWarning, match=r"update: the first new row \(2022-07-25 .* the rows between are missing"):
        model.update(toy(210).iloc[205:])


def test_forecast_command_leaves_the_model_directory_unchanged(models, tmp_path):
    files = {p.name: p.read_bytes() for p in (models / "fc").iterdir()}
    other = tmp_path / "other.csv"
    toy(400).iloc[100:].to_csv(other, index=False)
    assert main(["forecast", str(models / "fc"), str(other), "-o", str(tmp_path / "f.csv")]) == 0
    assert {p.name: p.read_bytes() for p in (models / "fc").iterdir()} == files


# --- case 15: evaluate on fitted rows warns --------------------------------------------------------------------

def test_evaluating_fitted_rows_warns_through_the_api():
    frame = toy(300)
    model = MambaForecaster(**API_TINY).fit(frame)  # the README's fit(frame): every row, the last 10 % validating
    with pytest.warns(UserWarning, match=r"evaluate: 60 of the 60 scored rows \(2022-08-29 00:00:00 to "
                                         r"2022-10-27 00:00:00\) were used in fit \(training 2022-01-01 .*; "
                                         r"validation .*\), so this is not a held-out score; this series has no rows"):
        model.evaluate(frame)
    with pytest.warns(UserWarning, match=r"evaluate: 30 of the 60 scored rows .* start=276 \(--start 276\) scores "
                                         r"from row 300 \(2022-10-28 00:00:00\) on$"):
        model.evaluate(toy(330), start=246)
    held_out = MambaForecaster(**API_TINY).fit(frame.iloc[:210], X_val=frame.iloc[186:240])  # the protocol's split
    assert held_out.train_span_ == (pd.Timestamp("2022-01-01"), pd.Timestamp("2022-07-29"))
    assert held_out.val_span_ == (pd.Timestamp("2022-07-30"), pd.Timestamp("2022-08-28"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the test span's warm-up reads validation rows: no warning
        held_out.evaluate(frame)
    assert MambaForecaster(**API_TINY).fit(frame.to_numpy()[:, 1:].astype(float)).train_span_ is None


def test_evaluating_fitted_rows_warns_through_the_cli(models, tmp_path, capsys):
    assert main(["evaluate", str(models / "fc"), str(models / "toy.csv")]) == 0  # --split protocol: held out
    captured = capsys.readouterr()
    assert captured.out.startswith("mse ") and "Warning" not in captured.err
    assert main(["train", "forecast", str(models / "toy.csv"), "--split", "all", "-o", str(tmp_path / "all"),
                 *TINY_FORECAST]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "all"), str(models / "toy.csv")]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("mse ")
    warned = [line for line in captured.err.splitlines() if line.startswith("Warning: ")]
    assert len(warned) == 1 and warned[0].startswith(
        f"Warning: {models / 'toy.csv'}: evaluate: 60 of the 60 scored rows (2022-08-29 00:00:00 to 2022-10-27 "
        "00:00:00) were used in fit")
    assert "Traceback" not in captured.err and "UserWarning" not in captured.err


def test_a_diverged_dna_fit_is_refused_and_train_dna_writes_no_model(tmp_path, capsys):
    # was: the NaN weights were saved, and refused only when the model was loaded
    X, y = ["ACGT" * 8, "GGCC" * 8] * 8, ["a", "b"] * 8
    clf = MambaSequenceClassifier(d_model=8, n_layers=1, d_state=4, lr=1e30, max_epochs=2, batch_size=4,
                                  device="cpu", random_state=0)
    with pytest.raises(InputError, match=r"^fit: training diverged: the network's tensor '.*' holds NaN or inf; "
                                         r"lower lr \(now 1e\+30\)"):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")
    table = tmp_path / "train.csv"
    table.write_text(GOOD_TABLE)
    out = tmp_path / "model"
    argv = ["train", "dna", "--train", str(table), "-o", str(out), *TINY_DNA, "--lr", "1e30", "--epochs", "4"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: fit: training diverged") and err.count("\n") == 1, err
    assert not (out / "model.safetensors").exists() and not (out / "estimator.json").exists()
