"""Sliding (lookback, horizon) windows over a span of a series, as a map-style torch Dataset.

Items are views into one float32 array: a DataLoader over the ETTh1 training span holds the
series once, never 8,449 copies of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch.utils.data import Dataset

from .ts_splits import Protocol, Span, Splits, standard_splits

if TYPE_CHECKING:
    from .ts_read import TimeSeries


class SlidingWindows(Dataset):
    """Every window of a span: item i is ``(x, y)`` with x the rows ``[s + i, s + i + L)`` and y the
    following ``horizon`` rows (``s`` the span's start, one row per ``stride``).

    Args:
        values: ``(T, C)`` array (already scaled as the model wants it); kept as one float32 array.
        lookback, horizon: L and H.
        span: the rows to cut windows from (default: all of them).
        stride: rows between window starts (1 in the standard protocol).

    Example:
        >>> data = SlidingWindows(np.zeros((200, 3), np.float32), lookback=96, horizon=24)
        >>> len(data), data[0][0].shape, data[0][1].shape
        (81, torch.Size([96, 3]), torch.Size([24, 3]))
    """

    def __init__(self, values: np.ndarray, lookback: int, horizon: int, span: Span | None = None,
                 stride: int = 1) -> None:
        for label, n in (("lookback", lookback), ("horizon", horizon), ("stride", stride)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"{label} must be a positive integer, got {n!r}")
        values = np.asarray(values)
        if values.ndim != 2:
            raise ValueError(f"values must be (T, C), got shape {values.shape}")
        span = span or Span("all", 0, len(values))
        if not 0 <= span.start <= span.end <= len(values):
            raise ValueError(f"span [{span.start}, {span.end}) is outside the {len(values)} rows")
        # A writable, contiguous float32 copy of the span only: torch.from_numpy then shares it.
        self.values = np.array(values[span.slice], dtype=np.float32, order="C")  # (len(span), C)
        self.lookback, self.horizon, self.stride, self.span = lookback, horizon, stride, span
        self._n = span.n_windows(lookback, horizon, stride)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"window {i} out of range ({self._n} windows)")
        start = i * self.stride
        middle = start + self.lookback
        data = torch.from_numpy(self.values)
        return data[start:middle], data[middle:middle + self.horizon]  # (L, C), (H, C): views

    @property
    def n_variables(self) -> int:
        return self.values.shape[1]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All windows at once as read-only NumPy views: x ``(n, L, C)``, y ``(n, H, C)``."""
        x = self._view(0, self.lookback)
        y = self._view(self.lookback, self.horizon)
        return x, y

    def _view(self, offset: int, width: int) -> np.ndarray:
        rows = self.values[offset:len(self.values) - (self.lookback + self.horizon - offset - width)]
        windows = sliding_window_view(rows, width, axis=0)[::self.stride]  # (n, C, width)
        return windows.transpose(0, 2, 1)[:self._n]  # (n, width, C)


@dataclass
class ProtocolWindows:
    """Train / val / test windows of one series, z-scored with the training span's statistics."""

    train: SlidingWindows
    val: SlidingWindows
    test: SlidingWindows
    splits: Splits
    scaler: Any


def protocol_windows(series: TimeSeries | np.ndarray, lookback: int, horizon: int, *,
                     protocol: Protocol = "auto", scaler: Any = None) -> ProtocolWindows:
    """The standard protocol end to end: spans, a scaler fitted on the train span, scaled windows.

    ``scaler`` is anything with ``fit``/``transform`` on ``(T, C)`` arrays; by default a
    :class:`~seqmamba.tokenizers.timeseries.TimeSeriesTokenizer` (z-score, population std like
    scikit-learn's StandardScaler, which the published numbers used).
    """
    if scaler is None:
        from ..tokenizers.timeseries import TimeSeriesTokenizer

        scaler = TimeSeriesTokenizer()
    if isinstance(series, np.ndarray):
        values, splits = series, standard_splits(len(series), lookback, protocol=protocol)
    else:
        values, splits = series.values, standard_splits(series, lookback, protocol=protocol)
    scaler.fit(values[splits.train.slice])
    scaled = np.asarray(scaler.transform(values), dtype=np.float32)  # (T, C)
    train, val, test = (SlidingWindows(scaled, lookback, horizon, span) for span in splits)
    return ProtocolWindows(train, val, test, splits, scaler)
