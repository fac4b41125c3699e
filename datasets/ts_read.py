"""Reading one multivariate time series: CSV/Parquet files, pandas or polars frames, NumPy arrays.

:func:`read_timeseries` turns any of them into a :class:`TimeSeries` (float32 values ``(T, C)``,
timestamps, column names, frequency) after checking the table (`seqmamba.datasets.ts_checks`). It imports
nothing of the splits and windows built on it (`ts_splits`, `ts_windows`); `seqmamba.datasets.timeseries`
gathers all of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from .ts_checks import (
    DATE_NAMES,
    IrregularPolicy,
    MissingPolicy,
    check_order,
    check_range,
    fill_missing,
    infer_frequency,
    numeric_column,
    parse_timestamps,
)

__all__ = ["TimeSeries", "read_frame", "read_timeseries"]


@dataclass(frozen=True)
class TimeSeries:
    """A checked multivariate series.

    Attributes:
        values: float32 ``(T, C)``, C-contiguous; row t is time step t, column c variable c.
        timestamps: ``pd.DatetimeIndex`` of length T, strictly increasing, or None (an array input).
        columns: the C variable names.
        freq: pandas frequency string (``"h"``, ``"D"``...), None when irregular or without timestamps.
        name: where it came from: the file's stem (``"ETTh1"``) or ``"DataFrame"`` / ``"array"``;
            :func:`standard_splits` reads the protocol from it.

    Example:
        >>> ts = read_timeseries(np.arange(12.0).reshape(6, 2))
        >>> ts.values.shape, ts.columns, ts.freq
        ((6, 2), ('0', '1'), None)
    """

    values: np.ndarray
    timestamps: pd.DatetimeIndex | None
    columns: tuple[str, ...]
    freq: str | None
    name: str

    def __len__(self) -> int:
        return len(self.values)

    @property
    def n_variables(self) -> int:
        return self.values.shape[1]


def read_timeseries(
    source: str | os.PathLike | pd.DataFrame | Any | np.ndarray,
    *,
    date_column: str | None = "date",
    missing: MissingPolicy = "error",
    irregular: IrregularPolicy = "warn",
    lookback: int | None = None,
    horizon: int | None = None,
) -> TimeSeries:
    """Read and check a table whose rows are time steps and whose numeric columns are variables.

    Args:
        source: a ``.csv``/``.tsv``/``.parquet`` path, a pandas or polars DataFrame, or an array
            ``(T, C)`` (``(T,)`` is one variable).
        date_column: the time column. ``"date"`` (default) falls back, when there is no such
            column, to a pandas DatetimeIndex, a datetime-typed column, or a column named
            date/datetime/timestamp/time/ds (any case); without any of them the series has no
            timestamps. None: no time column, every column must be numeric. Another name must exist.
        missing: NaN/inf cells: ``"error"`` (default; names the column and timestamp) or
            ``"interpolate"`` (linear in row position, edges take the nearest value).
            Finite values beyond +-1e30 (``ts_checks.MAX_ABS_VALUE``) are always an error naming the
            column and row: the series is held as float32.
        irregular: timestamps not on one frequency: ``"warn"`` (default, ``freq`` is None),
            ``"error"`` or ``"ignore"``. Duplicate or unsorted timestamps are always errors.
        lookback, horizon: when both are given, fewer than ``lookback + horizon`` rows is an error.

    Raises:
        InputError: a one-line message naming the source and the place (column, row, timestamp).
    """
    frame, label, csv = _as_frame(source)
    return read_frame(frame, label, _name(source), csv=csv, date_column=date_column, missing=missing,
                      irregular=irregular, lookback=lookback, horizon=horizon)


def read_frame(
    frame: pd.DataFrame,
    label: str,
    name: str,
    *,
    csv: bool = False,
    date_column: str | None = "date",
    missing: MissingPolicy = "error",
    irregular: IrregularPolicy = "warn",
    lookback: int | None = None,
    horizon: int | None = None,
) -> TimeSeries:
    """:func:`read_timeseries` on a pandas frame already in hand: ``label`` starts every message (a file, or
    ``DataFrame: series 'a'`` for one series of a long frame), ``name`` becomes the series' name, ``csv``
    says whether row r is the file's line r + 2.

    Example:
        >>> frame = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=3, freq="D"), "y": [1.0, 2, 3]})
        >>> ts = read_frame(frame, "DataFrame: series 'a'", "a")
        >>> ts.columns, ts.freq, ts.name
        (('y',), 'D', 'a')
    """
    timestamps = None
    time_name = _time_column(frame, date_column, label)
    if time_name is not None:
        timestamps = parse_timestamps(frame[time_name], label, time_name, csv)
        frame = frame.drop(columns=[time_name])
    elif date_column is not None and isinstance(frame.index, pd.DatetimeIndex):
        timestamps = pd.DatetimeIndex(frame.index)
        bad = np.flatnonzero(pd.isna(timestamps))
        if bad.size:
            raise InputError(f"{label}: index row {int(bad[0])} is not a timestamp (NaT)")
    if timestamps is not None:
        timestamps = timestamps.rename(None)
        check_order(timestamps, label, csv)
    columns = [str(c) for c in frame.columns]
    if not columns:
        only = "" if time_name is None else f" (only the time column {time_name!r})"
        raise InputError(f"{label}: no variable columns{only}")
    if len(set(columns)) != len(columns):
        dup = next(c for c in columns if columns.count(c) > 1)
        raise InputError(f"{label}: column name {dup!r} appears more than once")
    if len(frame) == 0:
        raise InputError(f"{label}: no rows")
    values = np.column_stack([numeric_column(frame.iloc[:, i], label, columns[i], timestamps, csv)
                              for i in range(len(columns))])
    values = fill_missing(values, columns, label, timestamps, csv, missing)
    check_range(values, columns, label, timestamps, csv)  # before float32, where 1e308 would become inf
    if lookback is not None and horizon is not None and len(values) < lookback + horizon:
        raise InputError(f"{label}: {len(values)} rows, fewer than lookback + horizon = {lookback} + {horizon}")
    freq = infer_frequency(timestamps, label, csv, irregular) if timestamps is not None else None
    return TimeSeries(np.ascontiguousarray(values, dtype=np.float32), timestamps, tuple(columns), freq, name)


def _as_frame(source: Any) -> tuple[pd.DataFrame, str, bool]:
    """(pandas frame, label for messages, whether rows map to CSV lines)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        suffixes = [s.lower() for s in path.suffixes]
        try:
            if suffixes[-1:] in ([".parquet"], [".pq"]):
                return pd.read_parquet(path), str(path), False
            sep = "\t" if ".tsv" in suffixes else ","
            return pd.read_csv(path, sep=sep), str(path), True
        except (ValueError, OSError) as error:  # pandas' parser errors are ValueErrors
            raise InputError(f"{path}: cannot read as a table: {error}") from error
    if isinstance(source, pd.DataFrame):
        return source, "DataFrame", False
    if type(source).__module__.startswith("polars"):
        if not hasattr(source, "to_pandas"):
            raise TypeError(f"a polars {type(source).__name__} is not a table: pass a polars DataFrame")
        return source.to_pandas(), "DataFrame", False
    if isinstance(source, np.ndarray) or hasattr(source, "__array__"):
        array = np.asarray(source)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            raise InputError(f"array: need shape (T, C) or (T,), got {array.shape}")
        return pd.DataFrame(array), "array", False
    raise TypeError(f"cannot read a time series from {type(source).__name__}: pass a path, a pandas or "
                    "polars DataFrame, or an array (T, C)")


def _time_column(frame: pd.DataFrame, date_column: str | None, label: str) -> str | None:
    if date_column is None:
        return None
    names = {str(c): c for c in frame.columns}
    if date_column in names:
        return names[date_column]
    if date_column != "date":
        raise InputError(f"{label}: no column {date_column!r} (columns: {', '.join(names)})")
    if isinstance(frame.index, pd.DatetimeIndex):
        return None  # the caller takes the index
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            return column
    for column in frame.columns:
        if str(column).lower() in DATE_NAMES:
            return column
    return None


def _name(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name.split(".")[0]
    return "array" if isinstance(source, np.ndarray) else "DataFrame"
