"""Future-known covariates at predict time: the ``future=`` table, and the horizon's rows taken from it.

A forecaster fitted with ``future_covariates`` needs those columns over the ``horizon`` rows it forecasts
(calendar features, a known schedule). ``predict(future=...)`` takes them from a table: for one series a frame
with the time column (or an array of ``horizon`` rows, in order), for many series a long frame with the id
column too (neuralforecast's ``futr_df``). Rows are matched by timestamp to the forecast's own timestamps;
extra rows and columns are ignored. Anything missing is one InputError naming the columns, or the series and
the first timestamp without a row.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..datasets.timeseries import TimeSeries, read_timeseries
from ..datasets.ts_panel import Panel, read_panel
from ..errors import InputError


def _as_pandas(future: Any) -> pd.DataFrame | np.ndarray:
    if isinstance(future, (str, os.PathLike)):
        path = str(future)
        if not os.path.isfile(path):
            raise InputError(f"{path}: no such file")
        try:
            if path.lower().endswith((".parquet", ".pq")):
                return pd.read_parquet(path)
            return pd.read_csv(path, sep="\t" if ".tsv" in path.lower() else ",")
        except (ValueError, OSError) as error:
            raise InputError(f"{path}: cannot read as a table: {error}") from error
    if isinstance(future, pd.DataFrame):
        return future
    if type(future).__module__.startswith("polars") and hasattr(future, "to_pandas"):
        return future.to_pandas()
    if isinstance(future, np.ndarray) or hasattr(future, "__array__"):
        return np.asarray(future)
    raise TypeError(f"future must be a pandas or polars DataFrame, an array or a path, not {type(future).__name__}")


def future_label(future: Any) -> str:
    return f"{os.fspath(future)}: future" if isinstance(future, (str, os.PathLike)) else "future"


def missing_future(what: str, names: Sequence[str], horizon: int, panel: bool) -> InputError:
    """The error for a predict call without ``future=`` on a model that needs it."""
    rows = "each series' next" if panel else "the next"
    return InputError(f"{what}: the model was fitted with future covariates {list(names)}: pass future= a table "
                      f"holding them for {rows} {horizon} rows (the forecast's timestamps)")


def _subset(frame: pd.DataFrame, names: Sequence[str], drop: Sequence[str], label: str) -> pd.DataFrame:
    columns = [str(c) for c in frame.columns]
    missing = [c for c in names if c not in columns]
    if missing:
        raise InputError(f"{label}: missing columns {missing} (the future covariates the model was fitted with: "
                         f"{list(names)})")
    return frame.drop(columns=[c for c in frame.columns if str(c) in drop and str(c) not in names])


def read_future(future: Any, names: Sequence[str], other_columns: Sequence[str]) -> TimeSeries:
    """One series' future covariates: ``names`` in that order (an array: its columns are ``names``, in order).

    ``other_columns`` (the fitted targets and past covariates) are dropped if present: they are not needed, and
    may be empty over the future.
    """
    label = future_label(future)
    table = _as_pandas(future)
    if isinstance(table, np.ndarray):
        array = table[:, None] if table.ndim == 1 else table
        if array.ndim != 2 or array.shape[1] != len(names):
            raise InputError(f"{label}: an array of future covariates needs {len(names)} columns ({list(names)}), "
                             f"got shape {array.shape}")
        series = read_timeseries(array, missing="error", irregular="ignore")
        return TimeSeries(series.values, None, tuple(names), None, "future")
    series = read_timeseries(_subset(table, names, other_columns, label), missing="error", irregular="ignore")
    index = [series.columns.index(c) for c in names]
    return TimeSeries(np.ascontiguousarray(series.values[:, index]), series.timestamps, tuple(names), series.freq,
                      "future")


def read_future_panel(future: Any, names: Sequence[str], other_columns: Sequence[str], id_col: str) -> Panel:
    """Many series' future covariates from a long frame (``id_col``, the time column, ``names``)."""
    label = future_label(future)
    table = _as_pandas(future)
    if isinstance(table, np.ndarray):
        raise InputError(f"{label}: the future covariates of many series need a long frame with the id column "
                         f"{id_col!r}, not an array")
    panel = read_panel(_subset(table, names, other_columns, label), id_col, missing="error", irregular="ignore")
    series = []
    for s in panel.series:
        index = [s.columns.index(c) for c in names]
        series.append(TimeSeries(np.ascontiguousarray(s.values[:, index]), s.timestamps, tuple(names), s.freq, s.name))
    return Panel(panel.ids, tuple(series), panel.id_col, panel.time_name, label)


def horizon_rows(future: TimeSeries, index: pd.Index, label: str, series: str = "") -> np.ndarray:
    """The rows of ``future`` at the forecast's timestamps ``index`` ``(H, F)``.

    By timestamp when both have them; else the first ``H`` rows in order. A missing row is an InputError
    naming the series (``series``, e.g. ``" for series 'a'"``) and the first timestamp without one.
    """
    horizon = len(index)
    if future.timestamps is not None and isinstance(index, pd.DatetimeIndex):
        try:
            positions = future.timestamps.get_indexer(index)
        except TypeError:  # time-zone aware against naive
            positions = np.full(horizon, -1)
        absent = np.flatnonzero(positions < 0)
        if absent.size:
            raise InputError(f"{label}: no row at {index[absent[0]]}{series} ({absent.size} of the {horizon} forecast "
                             f"rows {index[0]} to {index[-1]} missing); the future covariates are needed at every "
                             "forecast timestamp")
        return future.values[positions]
    if len(future) < horizon:
        raise InputError(f"{label}: {len(future)} rows{series}, fewer than the horizon ({horizon}): the future "
                         "covariates are needed for every forecast row")
    return future.values[:horizon]


__all__ = ["horizon_rows", "missing_future", "read_future", "read_future_panel"]
