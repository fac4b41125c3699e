"""Standard protocol spans (exact rows) and sliding windows over them."""


import numpy as np
import pytest
import torch
from paths import SHARED_DATA
from torch.utils.data import DataLoader

from seqmamba.datasets.timeseries import SlidingWindows, Span, protocol_windows, read_timeseries, standard_splits
from seqmamba.errors import InputError

TS_DATA = SHARED_DATA / "ts"
needs_ts = pytest.mark.skipif(not (TS_DATA / "ETTh1.csv").is_file(), reason=f"shared data missing ({TS_DATA})")


def test_etth_rows_exact():
    splits = standard_splits("ETTh1.csv", 96)
    assert splits.protocol == "etth"
    assert [(s.name, s.start, s.end) for s in splits] == [("train", 0, 8640), ("val", 8544, 11520),
                                                          ("test", 11424, 14400)]
    for horizon, n_val in ((96, 2785), (192, 2689), (336, 2545), (720, 2161)):
        assert splits.train.n_windows(96, horizon) == 8640 - 96 - horizon + 1
        assert splits.val.n_windows(96, horizon) == splits.test.n_windows(96, horizon) == n_val
    assert standard_splits("data/etth2", 336).test.start == 11520 - 336
    assert standard_splits(20000, 96, protocol="etth").train.end == 8640
    ettm = standard_splits("ETTm1.csv", 96)
    assert (ettm.train.end, ettm.val.end, ettm.test.end) == (34560, 46080, 57600)


def test_ratio_rows_follow_time_series_library():
    splits = standard_splits(7588, 96)  # exchange_rate's length
    assert splits.protocol == "ratio"
    assert [(s.start, s.end) for s in splits] == [(0, 5311), (5215, 6071), (5975, 7588)]
    named = standard_splits("weather.csv", 96, n_rows=1000, protocol="ratio")
    assert [(s.start, s.end) for s in named] == [(0, 700), (604, 800), (704, 1000)]


def test_split_errors():
    with pytest.raises(InputError, match="the etth protocol needs 14400 rows, the series has 1000"):
        standard_splits(1000, 96, protocol="etth")
    with pytest.raises(ValueError, match="pass n_rows="):
        standard_splits("weather", 96)
    with pytest.raises(InputError, match="lookback 96 is longer than the training span"):
        standard_splits(100, 96)
    with pytest.raises(ValueError, match="lookback must be a positive integer"):
        standard_splits(1000, 0)


def test_windows_are_views_with_right_rows():
    values = np.arange(40, dtype=np.float32).reshape(20, 2)  # row t holds (2t, 2t + 1)
    data = SlidingWindows(values, lookback=4, horizon=3, span=Span("x", 5, 20))
    assert len(data) == 15 - 7 + 1
    x, y = data[0]
    assert x.shape == (4, 2) and y.shape == (3, 2) and x.dtype == torch.float32
    assert x[:, 0].tolist() == [10, 12, 14, 16] and y[:, 0].tolist() == [18, 20, 22]
    assert data[-1][1][-1, 0].item() == 38
    assert x.untyped_storage().data_ptr() == data[3][0].untyped_storage().data_ptr()  # one array
    xs, ys = data.arrays()
    assert xs.shape == (9, 4, 2) and ys.shape == (9, 3, 2)
    for i in range(len(data)):
        np.testing.assert_array_equal(xs[i], data[i][0].numpy())
        np.testing.assert_array_equal(ys[i], data[i][1].numpy())
    strided = SlidingWindows(values, 4, 3, stride=4)
    assert len(strided) == 4 and strided[1][0][0, 0].item() == 8 and strided.arrays()[0].shape == (4, 4, 2)
    batch_x, batch_y = next(iter(DataLoader(data, batch_size=5)))
    assert batch_x.shape == (5, 4, 2) and batch_y.shape == (5, 3, 2)
    with pytest.raises(IndexError):
        data[9]
    assert len(SlidingWindows(values[:5], 4, 3)) == 0


@needs_ts
def test_etth1_protocol_windows():
    series = read_timeseries(TS_DATA / "ETTh1.csv")
    windows = protocol_windows(series, 96, 96)
    assert (len(windows.train), len(windows.val), len(windows.test)) == (8449, 2785, 2785)
    train = windows.train.values
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-4)
    # The test span's first target row is row 11520 of the file, scaled with train statistics.
    first_target = windows.test[0][1][0].numpy()
    expected = (series.values[11520] - series.values[:8640].astype(np.float64).mean(0)) / series.values[:8640].std(0)
    np.testing.assert_allclose(first_target, expected, rtol=1e-4, atol=1e-4)
