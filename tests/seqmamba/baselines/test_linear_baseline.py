"""DLinear baseline and the protocol metrics."""


import numpy as np
import pytest
import torch
from paths import SHARED_DATA

from seqmamba.baselines import DLinear, evaluate_windows, moving_average_matrix
from seqmamba.datasets.timeseries import SlidingWindows, protocol_windows, read_timeseries

TS_DATA = SHARED_DATA / "ts"
ETTH1 = TS_DATA / "ETTh1.csv"


HORIZON = 24


def last_value(x):
    return np.repeat(x[:, -1:], HORIZON, axis=1)  # (n, H, C)


@pytest.fixture
def sines():
    t = np.arange(3000, dtype=np.float64)
    rng = np.random.default_rng(0)
    values = np.stack([np.sin(2 * np.pi * t / 24), np.cos(2 * np.pi * t / 50) + 0.001 * t], axis=1)
    return (values + 0.1 * rng.normal(size=values.shape)).astype(np.float32)  # (T, C)


def test_moving_average_matches_replicate_padding():
    x = np.random.default_rng(1).normal(size=30)
    padded = np.concatenate([np.full(12, x[0]), x, np.full(12, x[-1])])
    expected = np.convolve(padded, np.ones(25) / 25, mode="valid")
    np.testing.assert_allclose(moving_average_matrix(30, 25) @ x, expected)
    with pytest.raises(ValueError, match="odd"):
        moving_average_matrix(30, 4)


@pytest.mark.parametrize("method", ["lstsq", "adam"])
def test_beats_last_value_on_noisy_sines(sines, method):
    model = DLinear(96, HORIZON, method=method, epochs=3).fit(sines[:2000], sines[2000:2500])
    ours = evaluate_windows(model.predict, SlidingWindows(sines[2000:], 96, HORIZON))
    naive = evaluate_windows(last_value, SlidingWindows(sines[2000:], 96, HORIZON))
    assert ours["mse"] < 0.5 * naive["mse"]
    assert ours["mse"] < 0.05  # the noise alone is 0.01
    assert model.predict(torch.as_tensor(sines[None, :96])).shape == (1, HORIZON, 2)


def test_lstsq_is_the_least_squares_fit(sines):
    model = DLinear(32, 8, alpha=0.0).fit(sines[:600])
    x, y = SlidingWindows(sines[:600], 32, 8).arrays()
    rows_x = x.transpose(0, 2, 1).reshape(-1, 32).astype(np.float64)  # every (window, variable)
    rows_y = y.transpose(0, 2, 1).reshape(-1, 8).astype(np.float64)
    design = np.column_stack([rows_x, np.ones(len(rows_x))])
    solution = np.linalg.lstsq(design, rows_y, rcond=None)[0]
    np.testing.assert_allclose(model.effective_weight(), solution[:32].T, atol=1e-6)
    np.testing.assert_allclose(model.bias_, solution[32], atol=1e-6)


def test_errors(sines):
    with pytest.raises(ValueError, match="fewer than lookback"):
        DLinear(96, 96).fit(sines[:100])
    with pytest.raises(ValueError, match="method must be"):
        DLinear(8, 4, method="sgd").fit(sines)
    with pytest.raises(ValueError, match=r"need windows \(n, 8, C\)"):
        DLinear(8, 4).fit(sines).predict(sines[None, :9])
    with pytest.raises(ValueError, match="expected"):
        evaluate_windows(lambda x: x, SlidingWindows(sines, 8, 4))


def test_evaluate_weighs_every_value_and_batches_alike(sines):
    data = SlidingWindows(sines[:300], 16, 4)
    model = DLinear(16, 4).fit(sines[:300])
    whole, small = evaluate_windows(model.predict, data), evaluate_windows(model.predict, data, batch_size=7)
    assert whole["n_windows"] == 300 - 16 - 4 + 1 == small["n_windows"]
    assert whole["mse"] == pytest.approx(small["mse"], rel=1e-9)
    x, y = data.arrays()
    assert whole["mae"] == pytest.approx(np.abs(model.predict(x) - y).mean(), rel=1e-5)


@pytest.mark.skipif(not ETTH1.is_file(), reason=f"shared time-series data missing ({ETTH1})")
def test_etth1_horizon_96_matches_published_dlinear():
    windows = protocol_windows(read_timeseries(ETTH1), 96, 96)
    scores = evaluate_windows(DLinear(96, 96).fit(windows.train).predict, windows.test)
    assert scores["n_windows"] == 2785
    # Published DLinear (lookback 96): 0.386 / 0.400; the closed form measures 0.3815 / 0.3930.
    assert 0.37 < scores["mse"] < 0.39 and 0.38 < scores["mae"] < 0.405
