"""MambaForecaster: scikit-learn rules, input and output kinds, streaming, evaluation, persistence."""

import pickle

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from seqmamba import MambaForecaster
from seqmamba.baselines import evaluate_windows
from seqmamba.datasets.timeseries import SlidingWindows, Span
from seqmamba.errors import InputError
from seqmamba.forecasting import ForecastConfig, PatchMamba, PatchStream

TINY = dict(lookback=24, horizon=6, d_model=8, n_layers=1, d_state=2, patch_len=4, max_epochs=1, batch_size=64,
            verbose=0, device="cpu")


def toy_frame(n=240):
    t = np.arange(n, dtype=np.float64)
    return pd.DataFrame({"date": pd.date_range("2021-03-01", periods=n, freq="h"),
                         "load": np.sin(t / 5) + 0.01 * t, "temp": np.cos(t / 7)})


@pytest.fixture(scope="module")
def fitted():
    return {arch: MambaForecaster(architecture=arch, **TINY).fit(toy_frame()) for arch in ("variate", "patch")}


def test_sklearn_rules():
    model = MambaForecaster(lookback=-3, architecture="nope")  # no checks, no work in __init__
    assert model.get_params()["lookback"] == -3 and not hasattr(model, "model_")
    with pytest.raises(ValueError, match="architecture"):
        model.fit(toy_frame())
    model.set_params(lookback=24, architecture="variate")
    twin = clone(model)
    assert twin.get_params() == model.get_params() and twin is not model
    with pytest.raises(NotFittedError):
        MambaForecaster().predict()


def test_frames_in_frames_out(fitted):
    model, frame = fitted["variate"], toy_frame()
    out = model.predict()
    assert list(out.columns) == ["date", "load", "temp"] and len(out) == 6
    assert out["date"].iloc[0] == frame["date"].iloc[-1] + pd.Timedelta("1h")
    assert (out["date"].diff().dropna() == pd.Timedelta("1h")).all()
    assert np.isfinite(out[["load", "temp"]].to_numpy()).all()
    indexed = model.predict(frame.set_index("date").iloc[:100])
    assert isinstance(indexed.index, pd.DatetimeIndex) and indexed.index[0] == frame["date"].iloc[100]
    polars_out = model.predict(pl.from_pandas(frame))
    assert isinstance(polars_out, pl.DataFrame) and polars_out.columns == ["date", "load", "temp"]
    array_out = model.predict(frame[["load", "temp"]].to_numpy())
    assert isinstance(array_out, np.ndarray) and array_out.shape == (6, 2)
    np.testing.assert_allclose(array_out, out[["load", "temp"]].to_numpy(), rtol=1e-5, atol=1e-5)


def test_columns_must_match(fitted):
    with pytest.raises(InputError, match=r"missing columns \['temp'\]; unexpected columns \['rain'\]"):
        fitted["variate"].predict(toy_frame().rename(columns={"temp": "rain"}))
    with pytest.raises(InputError, match="fewer than lookback"):
        fitted["variate"].predict(toy_frame(10))


@pytest.mark.parametrize("arch", ["variate", "patch"])
def test_update_then_predict(fitted, arch):
    model = pickle.loads(pickle.dumps(fitted[arch]))
    frame = toy_frame(260)
    model.predict(frame.iloc[:240])
    model.update(frame.iloc[240:248])  # two patches of 4 rows
    streamed = model.predict()
    assert streamed["date"].iloc[0] == frame["date"].iloc[247] + pd.Timedelta("1h")
    if arch == "variate":  # re-encodes the last lookback rows
        np.testing.assert_allclose(streamed[["load", "temp"]], model.predict(frame.iloc[:248])[["load", "temp"]],
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError, match="does not come after"):
        model.update(frame.iloc[200:210])


def test_patch_stream_equals_a_forward_pass_over_all_tokens():
    torch.manual_seed(0)
    cfg = ForecastConfig(lookback=16, horizon=4, n_variables=2, architecture="patch", d_model=8, d_state=4,
                         patch_len=4, dropout=0.0)
    net = PatchMamba(cfg).eval()
    series = torch.randn(1, 30, 2)  # 16 rows to start, then 14 new ones: 3 patches and 2 waiting
    stream = PatchStream(net, series[:, :16])
    stream.update(series[:, 16:23])
    stream.update(series[:, 23:])
    _, stats = net.normalize(series[:, :16])
    rows = (series[:, :28] - stats.mean) / stats.std  # the starting window's statistics throughout
    with torch.no_grad():
        last = net.encoder(net.tokens(rows))[:, -1]
        expected = net.denormalize(net.forecast(last, 1), stats)
    torch.testing.assert_close(stream.forecast(), expected, rtol=1e-4, atol=1e-5)
    assert stream.pending.shape[1] == 2


def test_evaluate_and_score(fitted):
    model, frame = fitted["variate"], toy_frame()
    with pytest.warns(UserWarning, match="scored rows .* were used in fit"):  # the fitted rows: not held out
        scores = model.evaluate(frame, start=120)
    windows = SlidingWindows(model.scaler_.transform(frame[["load", "temp"]].to_numpy()), 24, 6,
                             span=Span("x", 120, 240))
    expected = evaluate_windows(lambda x: model.model_(torch.from_numpy(x)).detach(), windows)
    assert scores["n_windows"] == expected["n_windows"] == 91
    assert scores["mse"] == pytest.approx(expected["mse"], rel=1e-5)
    with pytest.warns(UserWarning, match="scored rows .* were used in fit"):
        default = model.evaluate(frame)  # the ratio protocol's test span: the last 20 % and a lookback
        assert model.score(frame) == pytest.approx(-default["mse"])
    assert (default["start"], default["end"]) == (240 - 48 - 24, 240)


@pytest.mark.parametrize("arch", ["variate", "patch"])
def test_pickle_and_save_load(fitted, arch, tmp_path):
    model = fitted[arch]
    expected = model.predict(toy_frame())
    state = model.__getstate__()
    assert "model_" not in state and isinstance(state["_weights"]["safetensors"], bytes)
    again = pickle.loads(pickle.dumps(model))
    pd.testing.assert_frame_equal(again.predict(toy_frame()), expected)
    model.save(tmp_path / "m")
    loaded = MambaForecaster.load(tmp_path / "m")
    assert loaded.get_params() == model.get_params()
    pd.testing.assert_frame_equal(loaded.predict(toy_frame()), expected)
    with pytest.raises(InputError, match="not a saved forecaster"):
        MambaForecaster.load(tmp_path)


def test_validation_and_early_stopping_record_history():
    model = MambaForecaster(**{**TINY, "max_epochs": 2}).fit(toy_frame().to_numpy()[:, 1:].astype(float))
    assert model.n_epochs_ == 2 and model.best_val_mse_ is not None
    assert all(r["val_loss"] is not None for r in model.history_)


def test_a_forecaster_seeded_with_a_random_state_saves(tmp_path):
    fc = MambaForecaster(lookback=24, horizon=6, d_model=8, n_layers=1, max_epochs=1, device="cpu",
                         random_state=np.random.RandomState(0)).fit(toy_frame())
    fc.save(tmp_path / "fc")  # a RandomState is not JSON: saved as None
    loaded = MambaForecaster.load(tmp_path / "fc")
    assert loaded.get_params()["random_state"] is None
    pd.testing.assert_frame_equal(loaded.predict(), fc.predict())
