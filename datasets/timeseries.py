"""Multivariate time series in: CSV/Parquet files, pandas or polars frames, NumPy arrays; long frames of many.

:func:`read_timeseries` turns any of them into a :class:`TimeSeries` (float32 values ``(T, C)``,
timestamps, column names, frequency) after checking the table (`ts_read`); :func:`standard_splits` and
:class:`SlidingWindows` cut it by the standard long-horizon protocol (`ts_splits`, `ts_windows`). This module
gathers them; each lives in its own module, and none of those imports this one.

Example:
    >>> ts = read_timeseries(np.arange(40.0).reshape(20, 2))
    >>> len(SlidingWindows(ts.values, lookback=8, horizon=4)), standard_splits(ts, 4).train
    (9, Span(name='train', start=0, end=14))
"""

from __future__ import annotations

import numpy as np  # noqa: F401 - the module example uses it

from .ts_read import TimeSeries, read_timeseries
from .ts_splits import Span, Splits, standard_splits
from .ts_windows import ProtocolWindows, SlidingWindows, protocol_windows

__all__ = [
    "ProtocolWindows", "SlidingWindows", "Span", "Splits", "TimeSeries", "protocol_windows", "read_timeseries",
    "standard_splits",
]
