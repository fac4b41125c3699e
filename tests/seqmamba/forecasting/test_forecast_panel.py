"""MambaForecaster on many series (a long frame), with covariates and quantiles (issue 23, items 2-5).

Tiny models, a few epochs, trained once per module: the API (pandas and polars), scikit-learn's rules
(clone, pickle, save/load, predict changes nothing), one-line InputErrors for bad inputs (naming the series,
column or row), and the command line through `seqmamba.pipelines.cli.main`.
"""

import copy
import json
import pickle

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
from sklearn.base import clone

from seqmamba import MambaForecaster
from seqmamba.baselines import evaluate_windows
from seqmamba.datasets.timeseries import SlidingWindows
from seqmamba.datasets.ts_panel import PanelWindows, read_panel
from seqmamba.errors import InputError
from seqmamba.forecasting import ForecastConfig, VariateMamba
from seqmamba.forecasting.quantiles import QuantileScores, pinball_loss
from seqmamba.pipelines.cli import main

TINY = dict(lookback=24, horizon=6, d_model=8, n_layers=1, d_state=2, max_epochs=2, batch_size=64, verbose=0,
            device="cpu")
LEVELS = [0.1, 0.5, 0.9]


def one_series(uid, n, start, freq="h", level=0.0, scale=1.0):
    ds = pd.date_range(start, periods=n, freq=freq)
    t = np.arange(n, dtype=np.float64)
    rng = np.random.default_rng(len(uid) + n)
    return pd.DataFrame({"unique_id": uid, "ds": ds,
                         "load": level + scale * (np.sin(t / 4) + 0.3 * rng.standard_normal(n)),
                         "temp": np.cos(t / 5), "hour": ds.hour.astype(float)})


def long_frame():
    """Three series: different lengths, start dates, levels and (for 'c') frequency."""
    return pd.concat([one_series("a", 150, "2024-01-01"), one_series("b", 110, "2024-02-01", level=50, scale=10),
                      one_series("c", 90, "2024-03-01", freq="D")], ignore_index=True)


def next_rows(frame, n=6):
    """The future covariates' rows after each series' end (the long frame neuralforecast calls futr_df)."""
    parts = []
    for uid, part in frame.groupby("unique_id", sort=False):
        step = part["ds"].iloc[-1] - part["ds"].iloc[-2]
        ds = pd.date_range(part["ds"].iloc[-1] + step, periods=n, freq=step)
        parts.append(pd.DataFrame({"unique_id": uid, "ds": ds, "hour": ds.hour.astype(float)}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def panel_model():
    frame = long_frame()
    model = MambaForecaster(**TINY, id_col="unique_id", past_covariates=["temp"], future_covariates=["hour"],
                            quantiles=LEVELS).fit(frame)
    return model, frame


@pytest.fixture(scope="module")
def plain_panel():
    frame = long_frame().drop(columns=["temp", "hour"])
    return MambaForecaster(**TINY, id_col="unique_id").fit(frame), frame


# -- data ------------------------------------------------------------------------------------------------------


def test_read_panel_sorts_and_splits_series():
    frame = long_frame().sample(frac=1.0, random_state=0)  # rows in any order
    panel = read_panel(frame, "unique_id")
    assert panel.ids == ("a", "b", "c") or set(panel.ids) == {"a", "b", "c"}
    lengths = {i: len(s) for i, s in zip(panel.ids, panel.series)}
    assert lengths == {"a": 150, "b": 110, "c": 90}
    assert panel.get("c").freq == "D" and panel.get("a").freq == "h"
    assert all(s.timestamps.is_monotonic_increasing for s in panel.series)
    assert panel.columns == ("load", "temp", "hour") and panel.time_name == "ds"


def test_read_panel_errors_name_the_series():
    frame = long_frame()
    with pytest.raises(InputError, match="no id column 'series'"):
        read_panel(frame, "series")
    dup = pd.concat([frame, frame.iloc[[3]]])
    with pytest.raises(InputError, match=r"series 'a': duplicate timestamp"):
        read_panel(dup, "unique_id")
    holes = frame.copy()
    holes.loc[160, "load"] = np.nan  # a row of series 'b'
    with pytest.raises(InputError, match=r"DataFrame: series 'b': missing value \(NaN\) in column 'load'"):
        read_panel(holes, "unique_id")
    empty_id = frame.copy()
    empty_id.loc[7, "unique_id"] = None
    with pytest.raises(InputError, match="column 'unique_id' is empty at row 7"):
        read_panel(empty_id, "unique_id")


def test_panel_windows_draw_from_every_series():
    a, b = np.arange(30.0).reshape(10, 3), 100 + np.arange(21.0).reshape(7, 3)
    data = PanelWindows([a, b], lookback=4, horizon=2, n_targets=1, n_future=1)
    assert len(data) == 5 + 2 and data.series_of(4) == 0 and data.series_of(5) == 1
    x, y = data[5]
    assert x.shape == (6, 3) and y.shape == (2, 1)
    np.testing.assert_array_equal(x[:4].numpy(), b[:4])
    np.testing.assert_array_equal(x[4:].numpy(), [[0, 0, b[4, 2]], [0, 0, b[5, 2]]])  # only the future column
    np.testing.assert_array_equal(y.numpy(), b[4:6, :1])
    xs, ys = data.arrays()
    assert xs.shape == (7, 6, 3) and ys.shape == (7, 2, 1)
    for k in range(len(data)):
        np.testing.assert_array_equal(xs[k], data[k][0].numpy())
        np.testing.assert_array_equal(ys[k], data[k][1].numpy())
    one = PanelWindows([a], lookback=4, horizon=2)  # no covariates: the same windows as SlidingWindows
    np.testing.assert_array_equal(one.arrays()[0], SlidingWindows(a, 4, 2).arrays()[0])


# -- the network -----------------------------------------------------------------------------------------------


def test_covariates_are_inputs_and_quantiles_never_cross():
    torch.manual_seed(0)
    cfg = ForecastConfig(lookback=16, horizon=4, n_variables=2, n_past=1, n_future=1, d_model=8, d_state=2,
                         quantiles=LEVELS, dropout=0.0)
    net = VariateMamba(cfg).eval()
    x = torch.randn(3, 20, 4)  # (batch, L + H, targets + past + future)
    point, q = net(x, quantiles=True)
    assert point.shape == (3, 4, 2) and q.shape == (3, 4, 2, 3)
    assert bool((q.diff(dim=-1) >= 0).all())
    with torch.no_grad():
        net.head.weight.normal_()  # a Mamba path that reads the covariate tokens
        moved = x.clone()
        moved[:, 16:, 3] += 5.0  # the future covariate over the horizon
        assert not torch.allclose(net(moved), net(x))
        hidden = x.clone()
        hidden[:, 16:, :3] = 99.0  # the targets' and past covariate's horizon rows are never read
        torch.testing.assert_close(net(hidden), net(x))


def test_blend_of_a_quantile_network_mixes_the_quantiles():
    torch.manual_seed(1)
    cfg = ForecastConfig(lookback=16, horizon=4, n_variables=2, d_model=8, d_state=2, quantiles=[0.2, 0.8],
                         dropout=0.0)
    net = VariateMamba(cfg).eval()
    net.start_from_linear(torch.randn(4, 16) * 0.1, torch.zeros(4))
    net.start_quantiles(torch.tensor([[-1.0, 1.0]] * 4))
    start = copy.deepcopy(net.state_dict())
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    trained = copy.deepcopy(net.state_dict())
    x = torch.randn(5, 16, 2)
    outs = {}
    blend = VariateMamba.blended_state(start, trained, 0.5)
    for name, state in (("start", start), ("trained", trained), ("blend", blend)):
        net.load_state_dict(state)
        with torch.no_grad():
            outs[name] = net(x, quantiles=True)
    torch.testing.assert_close(outs["blend"][0], (outs["start"][0] + outs["trained"][0]) / 2, rtol=1e-4, atol=1e-5)


def test_pinball_and_scores():
    q, y = torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([1.5])
    expected = np.mean([0.1 * 1.5, 0.5 * 0.5, 0.1 * 0.5])
    assert float(pinball_loss(q, y, torch.tensor(LEVELS))) == pytest.approx(expected)
    scores = QuantileScores(LEVELS)
    scores.add(q.numpy()[None, None], y.numpy()[None, None])
    scores.add(np.array([[[[0.0, 1.0, 2.0]]]]), np.array([[[5.0]]]))  # outside the interval
    result = scores.result()
    assert result["coverage"] == 0.5 and result["interval"] == pytest.approx(0.8)
    assert result["crps"] == pytest.approx(2 * result["pinball"])


# -- many series: fit, predict, evaluate ---------------------------------------------------------------------


def test_panel_predict_is_a_long_frame(panel_model):
    model, frame = panel_model
    future = next_rows(frame)
    out = model.predict(future=future)
    assert list(out.columns) == ["unique_id", "ds", "load", "load_q0.1", "load_q0.5", "load_q0.9"]
    assert out["unique_id"].tolist() == ["a"] * 6 + ["b"] * 6 + ["c"] * 6
    for uid, part in out.groupby("unique_id"):
        last = frame.loc[frame.unique_id == uid, "ds"].iloc[-1]
        step = pd.Timedelta("1D") if uid == "c" else pd.Timedelta("1h")  # each series' own frequency
        assert list(part["ds"]) == list(pd.date_range(last + step, periods=6, freq=step))
    q = out[["load_q0.1", "load_q0.5", "load_q0.9"]].to_numpy()
    assert np.isfinite(q).all() and (np.diff(q, axis=1) >= 0).all()
    # per-series scaling: series b (level 50, spread 10) is forecast in its own units
    assert out.loc[out.unique_id == "b", "load"].mean() > 25 > out.loc[out.unique_id == "a", "load"].abs().max()
    assert model.ids_ == ["a", "b", "c"] and list(model.target_names_) == ["load"]
    assert set(model.series_) == {"a", "b", "c"} and model.series_["c"].freq == "D"


def test_panel_predict_from_x_and_polars(panel_model):
    model, frame = panel_model
    future = next_rows(frame)
    two = frame[frame.unique_id.isin(["b", "c"])]
    out = model.predict(two, future=future)
    assert out["unique_id"].unique().tolist() == ["b", "c"]
    pd.testing.assert_frame_equal(out.reset_index(drop=True),
                                  model.predict(future=future).iloc[6:].reset_index(drop=True))
    polars_out = model.predict(pl.from_pandas(two), future=pl.from_pandas(future))
    assert isinstance(polars_out, pl.DataFrame) and polars_out.columns == list(out.columns)
    np.testing.assert_allclose(polars_out["load"].to_numpy(), out["load"].to_numpy(), rtol=1e-6)
    shorter = frame[frame.unique_id == "a"].iloc[:-10]  # another end, other timestamps
    early = model.predict(shorter, future=next_rows(shorter))
    assert early["ds"].iloc[0] == shorter["ds"].iloc[-1] + pd.Timedelta("1h")


def test_evaluate_pools_every_series(panel_model):
    model, frame = panel_model
    with pytest.warns(UserWarning, match="used in fit"):
        scores = model.evaluate(frame, start=-40)
    assert set(scores["series"]) == {"a", "b", "c"} and scores["start"] == {"a": 110, "b": 70, "c": 50}
    assert scores["n_windows"] == 3 * (40 - 24 - 6 + 1)
    for key in ("mse", "mae", "pinball", "crps", "coverage"):
        pooled = np.mean([s[key] for s in scores["series"].values()])  # equal window counts: the plain mean
        assert scores[key] == pytest.approx(pooled)
    assert 0 <= scores["coverage"] <= 1 and scores["interval"] == pytest.approx(0.8)


def test_plain_panel_evaluate_matches_evaluate_windows(plain_panel):
    model, frame = plain_panel
    with pytest.warns(UserWarning):
        scores = model.evaluate(frame, start=-40)
    for uid in ("a", "b", "c"):
        rows = frame.loc[frame.unique_id == uid, ["load"]].to_numpy()[-40:]
        windows = SlidingWindows(model.series_[uid].scaler.transform(rows).astype(np.float32), 24, 6)
        expected = evaluate_windows(lambda x: model.model_(torch.from_numpy(x)).detach(), windows)
        assert scores["series"][uid]["mse"] == pytest.approx(expected["mse"], rel=1e-5)
    assert "pinball" not in scores


def test_update_appends_per_series(plain_panel):
    model, frame = plain_panel
    model = pickle.loads(pickle.dumps(model))
    more = one_series("a", 160, "2024-01-01").iloc[150:][["unique_id", "ds", "load"]]  # 10 rows after a's end
    model.update(more)
    assert model.series_["a"].n_rows_seen == 160 and model.series_["b"].n_rows_seen == 110
    out = model.predict()
    assert out.loc[out.unique_id == "a", "ds"].iloc[0] == more["ds"].iloc[-1] + pd.Timedelta("1h")
    with pytest.raises(InputError, match=r"series 'a': the first new row .* does not come after"):
        model.update(frame[frame.unique_id == "a"].iloc[-5:])


# -- scikit-learn's rules --------------------------------------------------------------------------------------


def test_clone_pickle_save_load_and_predict_changes_nothing(panel_model, tmp_path):
    model, frame = panel_model
    future = next_rows(frame)
    twin = clone(model)
    assert twin.get_params() == model.get_params() and not hasattr(twin, "model_")
    before = pickle.dumps(model)
    expected = model.predict(future=future)
    shorter = frame[frame.unique_id == "a"].iloc[:-10]
    model.predict(shorter, future=next_rows(shorter))  # another X: nothing of it is kept
    assert pickle.dumps(model) == before
    pd.testing.assert_frame_equal(model.predict(future=future), expected)
    again = pickle.loads(before)
    pd.testing.assert_frame_equal(again.predict(future=future), expected)
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["network"]["quantiles"] == LEVELS and config["network"]["n_future"] == 1
    assert config["fitted"]["panel"]["ids"] == ["a", "b", "c"] and config["scaler"] is None
    loaded = MambaForecaster.load(tmp_path / "m")
    assert loaded.get_params() == model.get_params()
    pd.testing.assert_frame_equal(loaded.predict(future=future), expected)
    with pytest.warns(UserWarning, match="used in fit"):  # the fitted spans are saved with the model
        assert loaded.evaluate(frame, start=-40)["mse"] == pytest.approx(model.evaluate(frame, start=-40)["mse"])


def test_no_work_in_init_and_parameter_checks():
    model = MambaForecaster(id_col=3, past_covariates="temp", quantiles=[0.9, 0.1])  # stored, not checked
    assert model.get_params()["quantiles"] == [0.9, 0.1]
    with pytest.raises(ValueError, match="strictly increasing"):
        MambaForecaster(**TINY, quantiles=[0.9, 0.1]).fit(long_frame().drop(columns="unique_id").iloc[:150])
    with pytest.raises(ValueError, match="list of column names"):
        MambaForecaster(**TINY, past_covariates="temp").fit(long_frame())
    with pytest.raises(ValueError, match="both past_covariates and future_covariates"):
        MambaForecaster(**TINY, past_covariates=["temp"], future_covariates=["temp"]).fit(long_frame())
    with pytest.raises(ValueError, match="need architecture='variate'"):
        MambaForecaster(**TINY, architecture="patch", quantiles=LEVELS).fit(long_frame())


# -- bad inputs: one line, naming the series / column / row ---------------------------------------------------


def test_missing_future_covariates(panel_model):
    model, frame = panel_model
    future = next_rows(frame)
    with pytest.raises(InputError, match=r"^predict: the model was fitted with future covariates \['hour'\]: pass "
                                         r"future= .* each series' next 6 rows"):
        model.predict()
    with pytest.raises(InputError, match=r"^future: missing columns \['hour'\]"):
        model.predict(future=future.drop(columns="hour"))
    with pytest.raises(InputError, match=r"^future: no rows for series 'b'"):
        model.predict(future=future[future.unique_id != "b"])
    with pytest.raises(InputError, match=r"^future: no row at 2024-06-04 00:00:00 for series 'c' \(1 of the 6 "
                                         r"forecast rows 2024-05-30"):
        model.predict(future=future.drop(index=future.index[-1]))


def test_unknown_series_and_short_series(panel_model):
    model, frame = panel_model
    future = next_rows(frame)
    stranger = pd.concat([frame, one_series("zz", 40, "2024-01-01")])
    with pytest.raises(InputError, match=r"^predict: unknown series 'zz': the model was fitted on 3 series"):
        model.predict(stranger, future=future)
    with pytest.raises(InputError, match=r"^predict: series 'a': 10 rows, fewer than lookback = 24$"):
        model.predict(frame[frame.unique_id == "a"].iloc[:10], future=future)
    with pytest.raises(InputError, match=r"^X: series 'tiny': 10 rows, fewer than lookback = 24"):
        MambaForecaster(**TINY, id_col="unique_id").fit(pd.concat([frame, one_series("tiny", 10, "2024-01-01")]))
    with pytest.raises(InputError, match=r"^evaluate: unknown series 'zz'"):
        model.evaluate(stranger, start=-40)
    with pytest.raises(InputError, match=r"past_covariates names columns not in the data: \['rain'\]"):
        MambaForecaster(**TINY, id_col="unique_id", past_covariates=["rain"]).fit(frame)
    with pytest.raises(InputError, match="no id column 'unique_id'"):
        model.predict(frame.drop(columns="unique_id"), future=future)
    with pytest.raises(InputError, match=r"column 'unique_id' is not numeric: .* name its id column: id_col="):
        MambaForecaster(**TINY).fit(frame)  # a long frame without id_col: nothing is guessed


# -- one wide series with covariates and quantiles ------------------------------------------------------------


@pytest.fixture(scope="module")
def wide_model():
    frame = one_series("a", 200, "2024-01-01").drop(columns="unique_id")
    model = MambaForecaster(**TINY, future_covariates=["hour"], quantiles=[0.1, 0.9]).fit(frame)
    return model, frame


def test_wide_series_with_future_covariates_and_quantiles(wide_model):
    model, frame = wide_model
    ahead = pd.DataFrame({"ds": pd.date_range(frame["ds"].iloc[-1] + pd.Timedelta("1h"), periods=8, freq="h")})
    ahead["hour"] = ahead["ds"].dt.hour.astype(float)
    out = model.predict(future=ahead)  # extra rows are ignored; rows are matched by timestamp
    assert list(out.columns) == ["ds", "load", "temp", "load_q0.1", "load_q0.9", "temp_q0.1", "temp_q0.9"]
    with pytest.warns(UserWarning, match="future= is ignored"):
        MambaForecaster(**TINY).fit(frame.drop(columns="hour")).predict(future=ahead)
    assert (out["load_q0.1"] <= out["load_q0.9"]).all()
    array = model.predict(future=ahead["hour"].to_numpy()[:6])  # an array: in order
    np.testing.assert_allclose(array["load"], out["load"], rtol=1e-5)
    with pytest.raises(InputError, match=r"^predict: the model was fitted with future covariates \['hour'\]"):
        model.predict()
    with pytest.raises(InputError, match=r"^future: no row at .* \(6 of the 6 forecast rows"):
        model.predict(future=ahead.assign(ds=ahead["ds"] + pd.Timedelta("1D")))
    with pytest.warns(UserWarning, match="used in fit"):
        scores = model.evaluate(frame, start=-60)
    assert {"pinball", "crps", "coverage", "interval"} <= set(scores)


def test_quantile_head_starts_calibrated_on_training_windows():
    frame = one_series("a", 400, "2024-01-01").drop(columns=["unique_id", "hour", "temp"])
    model = MambaForecaster(**{**TINY, "max_epochs": 1, "lr": 1e-9}, quantiles=[0.1, 0.9],
                            validation_fraction=0).fit(frame)  # no step moves it: the start itself
    with pytest.warns(UserWarning, match="used in fit"):
        scores = model.evaluate(frame, start=0)
    assert scores["coverage"] == pytest.approx(0.8, abs=0.05)


# -- command line --------------------------------------------------------------------------------------------


def test_cli_many_series_covariates_quantiles(tmp_path, capsys):
    frame = long_frame()
    frame.to_csv(tmp_path / "long.csv", index=False)
    next_rows(frame).to_csv(tmp_path / "future.csv", index=False)
    args = ["train", "forecast", str(tmp_path / "long.csv"), "--id-col", "unique_id", "--covariates", "temp",
            "--future-covariates", "hour", "--quantiles", "0.1,0.5,0.9", "--lookback", "24", "--horizon", "6",
            "--d-model", "8", "--n-layers", "1", "--max-epochs", "1", "--device", "cpu", "-q", "-o",
            str(tmp_path / "model")]
    assert main(args) == 0, capsys.readouterr().err
    assert "3 series" in capsys.readouterr().err
    assert main(["forecast", str(tmp_path / "model"), str(tmp_path / "long.csv"), "-o", str(tmp_path / "f.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "future covariates ['hour']" in err and "--future" in err
    assert main(["forecast", str(tmp_path / "model"), str(tmp_path / "long.csv"), "--future",
                 str(tmp_path / "future.csv"), "-o", str(tmp_path / "f.csv")]) == 0
    out = pd.read_csv(tmp_path / "f.csv")
    assert list(out.columns) == ["unique_id", "ds", "load", "load_q0.1", "load_q0.5", "load_q0.9"] and len(out) == 18
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "model"), str(tmp_path / "long.csv"), "-q"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("mse ") and "pinball" in printed and "coverage" in printed and "3 series" in printed


def test_cli_plot_shades_the_interval(tmp_path, wide_model):
    pytest.importorskip("matplotlib")
    model, frame = wide_model
    frame.to_csv(tmp_path / "wide.csv", index=False)
    model.save(tmp_path / "model")
    ahead = pd.DataFrame({"ds": pd.date_range(frame["ds"].iloc[-1] + pd.Timedelta("1h"), periods=6, freq="h")})
    ahead["hour"] = ahead["ds"].dt.hour.astype(float)
    ahead.to_csv(tmp_path / "future.csv", index=False)
    png = tmp_path / "f.png"
    assert main(["forecast", str(tmp_path / "model"), str(tmp_path / "wide.csv"), "--future",
                 str(tmp_path / "future.csv"), "--plot", str(png), "-q", "-o", str(tmp_path / "f.csv")]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from seqmamba.pipelines.forecast_plot import interval_columns

    assert interval_columns(pd.read_csv(tmp_path / "f.csv"), "load") == ("load_q0.1", "load_q0.9")
