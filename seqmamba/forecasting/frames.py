"""Tables in and out of the forecaster: what kind came in, and a forecast of the same kind back.

Reading goes through :func:`~seqmamba.datasets.timeseries.read_timeseries` (its checks and one-line
errors); this module remembers the input's kind (pandas, polars, ndarray) and its time axis, checks
the columns of later inputs against the fitted ones, and builds future timestamps.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..datasets.timeseries import TimeSeries, read_timeseries
from ..errors import InputError


@dataclass(frozen=True)
class TableKind:
    """How the caller's table looked: ``kind`` is "pandas", "polars" or "ndarray"; ``time_name`` the
    time column's name (None: a DatetimeIndex, or no time axis)."""

    kind: str
    time_name: str | None
    time_in_index: bool

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "time_name": self.time_name, "time_in_index": self.time_in_index}


def read_table(X: Any, missing: str = "error", irregular: str = "ignore") -> tuple[TimeSeries, TableKind]:
    """X (path, pandas/polars frame, array ``(T, C)``) -> checked series and its kind.

    ``irregular="warn"``: timestamps not on one frequency give a UserWarning naming the first row off the
    usual step (for fit and predict, whose future timestamps then step by the most common spacing).
    """
    if isinstance(X, (str, os.PathLike)) or isinstance(X, pd.DataFrame):
        kind = "pandas"
    elif type(X).__module__.startswith("polars"):
        kind = "polars"
    elif isinstance(X, np.ndarray) or hasattr(X, "__array__"):
        kind = "ndarray"
    elif type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"X is a sparse matrix ({type(X).__name__}): the forecaster reads dense tables; pass "
                        "X.toarray()")
    else:
        raise TypeError(f"X must be a pandas or polars DataFrame, an array (T, C) or a path, not {type(X).__name__}")
    series = read_timeseries(X, missing=missing, irregular=irregular)
    time_name, in_index = None, False
    if series.timestamps is not None:
        names = _column_names(X)
        time_name = next((n for n in names if n not in series.columns), None)
        in_index = time_name is None and kind == "pandas"
    return series, TableKind(kind, time_name, in_index)


def named(X: Any, what: str) -> str:
    """``what`` ("predict", "X"...) for messages; for a file, the file in front, so the message names it."""
    return f"{os.fspath(X)}: {what}" if isinstance(X, (str, os.PathLike)) else what


def _column_names(X: Any) -> list[str]:
    if isinstance(X, (str, os.PathLike)):
        if str(X).lower().endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            return list(pq.read_schema(X).names)
        return [str(c) for c in pd.read_csv(X, nrows=0, sep="\t" if ".tsv" in str(X).lower() else ",").columns]
    return [str(c) for c in X.columns]


def check_columns(series: TimeSeries, expected: tuple[str, ...], where: str) -> None:
    """The variables must be the fitted ones, in the same order: an InputError naming the difference."""
    if series.columns == expected:
        return
    if series.name == "array" or all(c.isdigit() for c in expected):
        if len(series.columns) != len(expected):
            raise InputError(f"{where}: {len(series.columns)} variables, the model was fitted on {len(expected)}")
        return  # arrays have positional names: only the count is checked
    missing = [c for c in expected if c not in series.columns]
    extra = [c for c in series.columns if c not in expected]
    if missing or extra:
        parts = ([f"missing columns {missing}"] if missing else []) + ([f"unexpected columns {extra}"] if extra else [])
        raise InputError(f"{where}: {'; '.join(parts)} (the model was fitted on {list(expected)})")
    raise InputError(f"{where}: columns {list(series.columns)} are not in the fitted order {list(expected)}")


def future_index(last: pd.Timestamp | None, freq: str | None, step: pd.Timedelta | None, n_rows: int,
                 horizon: int) -> pd.Index:
    """The ``horizon`` timestamps after ``last`` at ``freq`` (else every ``step``); without timestamps,
    the row numbers ``n_rows .. n_rows + horizon - 1``."""
    if last is None:
        return pd.RangeIndex(n_rows, n_rows + horizon)
    if freq is not None:
        return pd.date_range(last, periods=horizon + 1, freq=freq)[1:]
    if step is None:
        raise InputError("cannot place future timestamps: the series has one row or no regular step")
    return pd.DatetimeIndex([last + step * (i + 1) for i in range(horizon)])


def check_continues(label: str, first: pd.Timestamp, last: pd.Timestamp, freq: str | None,
                    step: pd.Timedelta | None, n_rows: int, stacklevel: int = 3) -> None:
    """Rows added by ``update`` must come after the last row seen (InputError otherwise); a gap before the
    first of them is a warning (the model would read them as if they followed at once), pointed at the caller
    ``stacklevel`` frames up."""
    if first <= last:
        raise InputError(f"{label}: the first new row ({first}) does not come after the last row seen ({last})")
    if freq is None:
        return
    expected = future_index(last, freq, step, n_rows, 1)[0]
    if first > expected:
        warnings.warn(f"{label}: the first new row ({first}) is not the next one after the last row seen ({last}, "
                      f"next {expected}); the rows between are missing and the model reads the new rows as if "
                      "they followed at once", UserWarning, stacklevel=stacklevel)


def typical_step(timestamps: pd.DatetimeIndex | None) -> pd.Timedelta | None:
    """The most common spacing of the timestamps (irregular series fall back to it)."""
    if timestamps is None or len(timestamps) < 2:
        return None
    steps = np.diff(timestamps.as_unit("ns").asi8)
    values, counts = np.unique(steps, return_counts=True)
    return pd.Timedelta(int(values[np.argmax(counts)]))


def make_output(values: np.ndarray, index: pd.Index, columns: tuple[str, ...], kind: TableKind) -> Any:
    """A forecast ``(H, C)`` as the caller's kind of table: ndarray, or a pandas/polars frame whose
    time axis is named and placed as in the input."""
    if kind.kind == "ndarray":
        return values
    frame = pd.DataFrame(values, columns=list(columns))
    if isinstance(index, pd.DatetimeIndex) and not kind.time_in_index:
        frame.insert(0, kind.time_name or "date", index)
    else:
        frame.index = index
    if kind.kind == "polars":
        import polars as pl

        return pl.from_pandas(frame)
    return frame
