"""Many series in one long frame (one row per series and time step), and windows drawn from all of them.

The long layout is neuralforecast's and darts' ``TimeSeries.from_group_dataframe``'s: an id column naming the
series, a time column, and value columns shared by every series. Series may differ in length, start date and
frequency. :func:`read_panel` checks the frame and splits it into one :class:`~seqmamba.datasets.ts_read.TimeSeries`
per id (rows sorted by time within each series; every check of :func:`read_timeseries` applies, its message
naming the series). :class:`PanelWindows` is the map-style dataset of every (lookback, horizon) window of every
series, optionally carrying future-known covariates over the horizon.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch.utils.data import Dataset

from ..errors import InputError
from .ts_checks import IrregularPolicy, MissingPolicy, parse_timestamps
from .ts_read import TimeSeries, _as_frame, _time_column, read_frame

SeriesId = str | int


@dataclass(frozen=True)
class Panel:
    """The series of a long frame, in order of first appearance.

    Attributes:
        ids: one id per series (``str`` or ``int``, as in the frame).
        series: one checked :class:`TimeSeries` per id (the value columns; timestamps sorted).
        id_col: the id column's name; ``time_name``: the time column's name (None without one).
        label: where the frame came from, for messages (a file name or ``DataFrame``).

    Example:
        >>> frame = pd.DataFrame({"unique_id": ["a", "a", "b", "b", "b"],
        ...                       "ds": pd.to_datetime(["2024-01-02", "2024-01-01", "2024-03-01", "2024-03-02",
        ...                                             "2024-03-03"]), "y": [2.0, 1, 5, 6, 7]})
        >>> panel = read_panel(frame, "unique_id")
        >>> panel.ids, [len(s) for s in panel.series], panel.series[0].values[:, 0].tolist(), panel.time_name
        (('a', 'b'), [2, 3], [1.0, 2.0], 'ds')
    """

    ids: tuple[SeriesId, ...]
    series: tuple[TimeSeries, ...]
    id_col: str
    time_name: str | None
    label: str

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.series[0].columns

    def get(self, series_id: SeriesId) -> TimeSeries:
        return self.series[self.ids.index(series_id)]

    def to_frame(self, rows: Sequence[slice] | None = None) -> pd.DataFrame:
        """The checked series back as one long pandas frame (id, time column, values), each series' ``rows``
        only when given (one slice per series, e.g. its training span).

        Example:
            >>> frame = pd.DataFrame({"id": [1, 1, 2], "date": pd.to_datetime(["2024-01-01", "2024-01-02",
            ...                       "2024-01-01"]), "y": [1.0, 2.0, 3.0]})
            >>> read_panel(frame, "id").to_frame([slice(1, None), slice(None)])["y"].tolist()
            [2.0, 3.0]
        """
        parts = []
        for k, (series_id, series) in enumerate(zip(self.ids, self.series)):
            cut = slice(None) if rows is None else rows[k]
            part = pd.DataFrame(series.values[cut], columns=list(series.columns))
            if series.timestamps is not None:
                part.insert(0, self.time_name or "date", series.timestamps[cut])
            part.insert(0, self.id_col, [series_id] * len(part))
            parts.append(part)
        return pd.concat(parts, ignore_index=True)


def read_panel(source: str | os.PathLike | pd.DataFrame | Any, id_col: str, *, date_column: str | None = "date",
               missing: MissingPolicy = "error", irregular: IrregularPolicy = "warn") -> Panel:
    """Read and check a long frame: ``id_col``, a time column, value columns.

    Args:
        source: a ``.csv``/``.tsv``/``.parquet`` path or a pandas/polars DataFrame.
        id_col: the column naming each row's series (required: nothing is guessed).
        date_column, missing, irregular: as :func:`~seqmamba.datasets.ts_read.read_timeseries`, per series.

    Raises:
        InputError: one line naming the source, and the series (``series 'b'``), column and row or timestamp:
            no such id column, an empty id, a duplicate timestamp within a series, a non-numeric or missing
            value.
    """
    if isinstance(source, np.ndarray):
        raise InputError(f"array: a long frame of many series needs an id column ({id_col!r}); pass a DataFrame")
    frame, label, csv = _as_frame(source)
    names = {str(c): c for c in frame.columns}
    if id_col not in names:
        raise InputError(f"{label}: no id column {id_col!r} (columns: {', '.join(names)}); id_col names the column "
                         "that says which series a row belongs to")
    ids = frame[names[id_col]]
    empty = np.flatnonzero(pd.isna(ids).to_numpy())
    if empty.size:
        line = f", line {int(empty[0]) + 2}" if csv else ""
        raise InputError(f"{label}: column {id_col!r} is empty at row {int(empty[0])}{line}: every row needs its "
                         "series' id")
    values = frame.drop(columns=[names[id_col]])
    time_name = _time_column(values, date_column, label)
    order = np.arange(len(frame))
    if time_name is not None:
        # Parsed once for the whole frame, so a bad cell is named by the frame's row (and the file's line).
        stamps = parse_timestamps(values[time_name], label, str(time_name), csv)
        values = values.copy()
        values[time_name] = stamps.to_numpy()
        order = np.lexsort((stamps.asi8, pd.factorize(ids)[0]))  # by series (first appearance), then time
    else:
        order = np.argsort(pd.factorize(ids)[0], kind="stable")
    ids, values = ids.iloc[order], values.iloc[order]
    codes, uniques = pd.factorize(ids)
    bounds = np.flatnonzero(np.diff(codes)) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(codes)]
    out_ids, out_series = [], []
    for code, (a, b) in enumerate(zip(starts, ends)):
        series_id = _id_value(uniques[code], label, id_col)
        part = values.iloc[a:b].reset_index(drop=True)
        out_ids.append(series_id)
        out_series.append(read_frame(part, f"{label}: series {series_id!r}", str(series_id), csv=False,
                                     date_column=None if time_name is None else str(time_name), missing=missing,
                                     irregular=irregular))
    if not out_ids:
        raise InputError(f"{label}: no rows")
    return Panel(tuple(out_ids), tuple(out_series), id_col, None if time_name is None else str(time_name), label)


def _id_value(value: Any, label: str, id_col: str) -> SeriesId:
    """An id as a plain ``str`` or ``int`` (what JSON keeps and a forecast hands back)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(f"{label}: column {id_col!r} holds {value!r} ({type(value).__name__}); series ids must be "
                         "strings or integers")
    return value


class PanelWindows(Dataset):
    """Every (lookback, horizon) window of every series: one model learns across all of them.

    Each series is an array ``(T_i, n_columns)`` already scaled as the model wants it, its columns in the order
    targets, past covariates, future covariates. Item k is ``(x, y)``:

    - ``x``: the window's ``lookback`` rows of every column, ``(L, n_columns)``; with ``n_future`` future-known
      covariates, ``H`` more rows follow, ``(L + H, n_columns)``, holding the future covariates' values over the
      horizon and zeros in every other column (those are not known yet);
    - ``y``: the targets over the horizon, ``(H, n_targets)``.

    Windows are numbered series by series; a series shorter than ``lookback + horizon`` gives none.

    Example:
        >>> a, b = np.zeros((10, 3), np.float32), np.ones((7, 3), np.float32)
        >>> data = PanelWindows([a, b], lookback=4, horizon=2, n_targets=1, n_future=1)
        >>> len(data), data.series_of(5), data[0][0].shape, data[0][1].shape
        (7, 1, torch.Size([6, 3]), torch.Size([2, 1]))
        >>> data[5][0][4:].tolist()  # the horizon rows: only the future covariate is known
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    """

    def __init__(self, series: Sequence[np.ndarray], lookback: int, horizon: int, n_targets: int | None = None,
                 n_future: int = 0) -> None:
        for label, n in (("lookback", lookback), ("horizon", horizon)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"{label} must be a positive integer, got {n!r}")
        self.values = [np.array(v, dtype=np.float32, order="C") for v in series]  # each (T_i, n_columns)
        if any(v.ndim != 2 for v in self.values):
            raise ValueError("every series must be an array (T, n_columns)")
        widths = {v.shape[1] for v in self.values}
        if len(widths) > 1:
            raise ValueError(f"the series have different numbers of columns: {sorted(widths)}")
        self.n_columns = widths.pop() if widths else 0
        self.n_targets = self.n_columns - n_future if n_targets is None else n_targets
        if not 0 < self.n_targets <= self.n_columns - n_future or n_future < 0:
            raise ValueError(f"{self.n_targets} targets and {n_future} future covariates do not fit "
                             f"{self.n_columns} columns")
        self.lookback, self.horizon, self.n_future = lookback, horizon, n_future
        counts = [max(0, len(v) - lookback - horizon + 1) for v in self.values]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)  # windows before series i

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def series_of(self, k: int) -> int:
        """The series window ``k`` comes from."""
        return int(np.searchsorted(self.offsets, k, side="right") - 1)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError(f"window {k} out of range ({n} windows)")
        s = self.series_of(k)
        start = k - int(self.offsets[s])
        data = torch.from_numpy(self.values[s])
        middle, end = start + self.lookback, start + self.lookback + self.horizon
        x, y = data[start:middle], data[middle:end, :self.n_targets]  # (L, n), (H, C): views
        if self.n_future:
            ahead = torch.zeros(self.horizon, self.n_columns, dtype=data.dtype)
            ahead[:, -self.n_future:] = data[middle:end, -self.n_future:]
            x = torch.cat([x, ahead])  # (L + H, n)
        return x, y

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All windows at once (copies): x as the items have it ``(n, L[+H], n_columns)``, y ``(n, H, C)``."""
        xs, ys = [], []
        L, H, F = self.lookback, self.horizon, self.n_future
        for values in self.values:
            if len(values) < L + H:
                continue
            m = len(values) - L - H + 1
            x = sliding_window_view(values, L, axis=0)[:m].transpose(0, 2, 1)  # (m, L, n)
            y = sliding_window_view(values[L:, :self.n_targets], H, axis=0)[:m].transpose(0, 2, 1)  # (m, H, C)
            if F:
                ahead = np.zeros((m, H, self.n_columns), np.float32)
                ahead[:, :, -F:] = sliding_window_view(values[L:, -F:], H, axis=0)[:m].transpose(0, 2, 1)
                x = np.concatenate([x, ahead], axis=1)  # (m, L + H, n)
            xs.append(np.ascontiguousarray(x))
            ys.append(np.ascontiguousarray(y))
        width = L + (H if F else 0)
        if not xs:
            return np.zeros((0, width, self.n_columns), np.float32), np.zeros((0, H, self.n_targets), np.float32)
        return np.concatenate(xs), np.concatenate(ys)

    def target_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The lookback rows of the targets only ``(n, L, C)`` and y ``(n, H, C)``: what a linear map of the
        targets' own past reads."""
        L, H, C = self.lookback, self.horizon, self.n_targets
        xs, ys = [], []
        for values in self.values:
            if len(values) < L + H:
                continue
            m = len(values) - L - H + 1
            xs.append(sliding_window_view(values[:, :C], L, axis=0)[:m].transpose(0, 2, 1))
            ys.append(sliding_window_view(values[L:, :C], H, axis=0)[:m].transpose(0, 2, 1))
        if not xs:
            return np.zeros((0, L, C), np.float32), np.zeros((0, H, C), np.float32)
        return np.concatenate(xs), np.concatenate(ys)


__all__ = ["Panel", "PanelWindows", "read_panel"]
