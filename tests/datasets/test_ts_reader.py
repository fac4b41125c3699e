"""Reading time-series tables: every input kind, and every bad input named in one line."""


import numpy as np
import pandas as pd
import polars as pl
import pytest
from paths import SHARED_DATA

from seqmamba.datasets.timeseries import TimeSeries, read_timeseries
from seqmamba.errors import InputError

TS_DATA = SHARED_DATA / "ts"
ETTH1 = TS_DATA / "ETTh1.csv"
needs_etth1 = pytest.mark.skipif(not ETTH1.is_file(), reason=f"shared time-series data missing ({ETTH1})")


def frame(n=6, **columns):
    data = {"date": pd.date_range("2020-01-01", periods=n, freq="h"), "a": np.arange(n, dtype=float),
            "b": np.arange(n, dtype=float) * 2}
    data.update(columns)
    return pd.DataFrame(data)


def write_csv(tmp_path, text):
    path = tmp_path / "s.csv"
    path.write_text(text)
    return path


def test_csv_parquet_pandas_polars_array_agree(tmp_path):
    df = frame()
    df.to_csv(tmp_path / "s.csv", index=False)
    df.to_parquet(tmp_path / "s.parquet")
    reads = [read_timeseries(tmp_path / "s.csv"), read_timeseries(str(tmp_path / "s.parquet")), read_timeseries(df),
             read_timeseries(pl.from_pandas(df)), read_timeseries(df.set_index("date"))]
    for ts in reads:
        assert isinstance(ts, TimeSeries)
        assert ts.values.dtype == np.float32 and ts.values.shape == (6, 2) and ts.values.flags.c_contiguous
        assert ts.columns == ("a", "b") and ts.freq == "h"
        assert ts.timestamps.equals(pd.DatetimeIndex(df["date"]))
        np.testing.assert_array_equal(ts.values, df[["a", "b"]].to_numpy(np.float32))
    assert reads[0].name == "s" and reads[2].name == "DataFrame"
    array = read_timeseries(np.arange(10.0))
    assert array.values.shape == (10, 1) and array.timestamps is None and array.freq is None


def test_time_column_auto_detected_or_named_or_none():
    df = frame().rename(columns={"date": "Timestamp"})
    assert read_timeseries(df).columns == ("a", "b")  # by name
    typed = frame().rename(columns={"date": "when"})
    assert read_timeseries(typed).timestamps is not None  # by dtype
    assert read_timeseries(typed.rename(columns={"when": "t"}), date_column="t").freq == "h"
    with pytest.raises(InputError, match=r"DataFrame: no column 'x' \(columns: date, a, b\)"):
        read_timeseries(frame(), date_column="x")
    with pytest.raises(InputError, match="column 'date' is not numeric"):
        read_timeseries(frame().astype({"date": str}), date_column=None)


def test_non_numeric_cell_named(tmp_path):
    path = write_csv(tmp_path, "date,a,b\n2020-01-01 00:00,1,2\n2020-01-01 01:00,1,oops\n2020-01-01 02:00,1,3\n")
    with pytest.raises(InputError) as error:
        read_timeseries(path)
    message = str(error.value)
    assert message.startswith(str(path)) and "column 'b' is not numeric" in message
    assert "row 1 (2020-01-01 01:00:00, line 3)" in message and "'oops'" in message
    with pytest.raises(InputError, match="column 'flag' is boolean"):
        read_timeseries(frame(flag=[True] * 6))


def test_missing_values_error_names_column_and_timestamp(tmp_path):
    path = write_csv(tmp_path, "date,a,b\n2020-01-01 00:00,1,2\n2020-01-01 01:00,,2\n2020-01-01 02:00,1,inf\n")
    with pytest.raises(InputError) as error:
        read_timeseries(path)
    message = str(error.value)
    assert "missing value (NaN) in column 'a' at row 1 (2020-01-01 01:00:00, line 3)" in message
    assert "2 in all" in message and "missing='interpolate'" in message
    with pytest.raises(InputError, match=r"infinite value \(inf\) in column 'b' at row 3 \(2020-01-01 03:00:00"):
        read_timeseries(frame(b=[0, 1, 2, np.inf, 4, 5]))


def test_missing_values_interpolated_with_edge_fill():
    df = frame(a=[np.nan, 1.0, np.nan, 3.0, np.inf, np.nan], b=[0.0, 1, 2, 3, 4, 5])
    ts = read_timeseries(df, missing="interpolate")
    np.testing.assert_allclose(ts.values[:, 0], [1, 1, 2, 3, 3, 3])
    with pytest.raises(InputError, match="column 'a' has no finite value"):
        read_timeseries(frame(a=[np.nan] * 6), missing="interpolate")


def test_duplicate_and_unsorted_timestamps_named(tmp_path):
    dup = write_csv(tmp_path, "date,a\n2020-01-01,1\n2020-01-02,2\n2020-01-02,3\n")
    with pytest.raises(InputError, match=r"duplicate timestamp: row 2 \(2020-01-02 00:00:00, line 4\) follows row 1"):
        read_timeseries(dup)
    df = frame()
    df.loc[3, "date"] = pd.Timestamp("2019-12-31")
    with pytest.raises(InputError, match=r"timestamps not sorted: row 3 \(2019-12-31 00:00:00\) follows row 2 "
                                         r"\(2020-01-01 02:00:00\); sort the rows by time"):
        read_timeseries(df)
    with pytest.raises(InputError, match=r"column 'date' row 1 \(line 3\) is not a timestamp: 'soon'"):
        read_timeseries(write_csv(tmp_path, "date,a\n2020-01-01,1\nsoon,2\n2020-01-03,3\n"))


def test_irregular_frequency_warns_or_errors():
    dates = pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-05", "2020-01-06"])
    df = pd.DataFrame({"date": dates, "a": range(5)})
    with pytest.warns(UserWarning, match=r"irregular timestamps: the usual step is 1 days.*row 3 \(2020-01-05"):
        ts = read_timeseries(df)
    assert ts.freq is None
    with pytest.raises(InputError, match="comes 2 days 00:00:00 after the row before"):
        read_timeseries(df, irregular="error")
    assert read_timeseries(df, irregular="ignore").freq is None
    weekly = pd.DataFrame({"date": pd.date_range("2020-01-07", periods=5, freq="W-TUE"), "a": range(5)})
    assert read_timeseries(weekly).freq == "W-TUE"


def test_too_short_and_bad_sources(tmp_path):
    with pytest.raises(InputError, match=r"DataFrame: 6 rows, fewer than lookback \+ horizon = 4 \+ 3"):
        read_timeseries(frame(), lookback=4, horizon=3)
    with pytest.raises(InputError, match="no such file"):
        read_timeseries(tmp_path / "absent.csv")
    with pytest.raises(InputError, match=r"array: need shape \(T, C\)"):
        read_timeseries(np.zeros((2, 2, 2)))
    with pytest.raises(InputError, match="no variable columns"):
        read_timeseries(frame()[["date"]])
    with pytest.raises(InputError, match=r"^array: no variable columns$"):  # no "(only the time column None)"
        read_timeseries(np.empty((5, 0)))
    with pytest.raises(InputError, match=r"column 'a' holds complex numbers \(Complex data not supported\)"):
        read_timeseries(pd.DataFrame({"a": np.arange(3) + 1j}))  # was read as its real part
    with pytest.raises(TypeError, match="cannot read a time series from dict"):
        read_timeseries({"a": [1]})


@needs_etth1
def test_etth1_reads_clean():
    ts = read_timeseries(ETTH1)
    assert ts.values.shape == (17420, 7) and ts.freq == "h" and ts.columns[-1] == "OT" and ts.name == "ETTh1"
    assert str(ts.timestamps[0]) == "2016-07-01 00:00:00"
