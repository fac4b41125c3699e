"""`seqmamba train forecast`, `seqmamba forecast` and `seqmamba evaluate` on a small CSV."""

import os

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from seqmamba.pipelines.cli import cli, main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("fc")
    t = np.arange(300, dtype=np.float64)
    pd.DataFrame({"date": pd.date_range("2022-01-01", periods=300, freq="D"), "a": np.sin(t / 4),
                  "b": np.cos(t / 6)}).to_csv(root / "toy.csv", index=False)
    args = ["train", "forecast", str(root / "toy.csv"), "--lookback", "24", "--horizon", "6", "--d-model", "8",
            "--n-layers", "1", "--max-epochs", "1", "--device", "cpu", "-q", "-o", str(root / "model")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return root


def test_commands_are_listed():
    out = CliRunner().invoke(cli, ["--help"]).output
    assert "forecast" in out and "evaluate" in out
    assert "forecast" in CliRunner().invoke(cli, ["train", "--help"]).output


def test_train_refuses_to_overwrite(trained, capsys):
    assert sorted(p.name for p in (trained / "model").iterdir()) == ["config.json", "model.safetensors"]
    mask = os.umask(0)
    os.umask(mask)
    assert (trained / "model").stat().st_mode & 0o777 == 0o777 & ~mask  # not mkdtemp's 0700
    result = CliRunner().invoke(cli, ["train", "forecast", str(trained / "toy.csv"), "-o", str(trained / "model")])
    # Refused before any work with an OutputExistsError, which the real entry point prints as one line.
    assert result.exit_code != 0 and "--overwrite" in str(result.exception)
    assert main(["train", "forecast", str(trained / "toy.csv"), "-o", str(trained / "model")]) == 1
    assert capsys.readouterr().err == (f"Error: {trained / 'model'}: already holds a forecaster; pass --overwrite "
                                       "to replace it\n")


def test_forecast_csv_and_evaluate(trained):
    out = trained / "forecast.csv"
    result = CliRunner().invoke(cli, ["forecast", str(trained / "model"), str(trained / "toy.csv"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out, parse_dates=["date"])
    assert list(frame.columns) == ["date", "a", "b"] and len(frame) == 6
    assert frame["date"].iloc[0] == pd.Timestamp("2022-10-28")  # the day after the 300th
    result = CliRunner().invoke(cli, ["evaluate", str(trained / "model"), str(trained / "toy.csv")])
    assert result.exit_code == 0 and result.output.startswith("mse ") and "test span rows [216, 300)" in result.output


def test_forecast_plot(trained):
    pytest.importorskip("matplotlib")
    png = trained / "forecast.png"
    result = CliRunner().invoke(cli, ["forecast", str(trained / "model"), str(trained / "toy.csv"), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_one_line(trained, capsys):
    bad = trained / "bad.csv"
    dates = pd.date_range("2022-01-01", periods=40, freq="D")
    pd.DataFrame({"date": dates, "a": 1.0, "c": 2.0}).to_csv(bad, index=False)
    assert main(["forecast", str(trained / "model"), str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing columns ['b']" in err and "unexpected columns ['c']" in err
