"""Numbers the forecaster may compute with and report: a checked z-scoring, and a guard on every result.

The network runs in float32 (largest finite value 3.4e38). Inputs are z-scored with the training
statistics in float64 first, so a series in other units than the training data (1e20 where the model
saw values near 1) is caught before anything overflows: a z-score beyond ``Z_LIMIT`` is an error
naming the column and row. Whatever still comes out of the network as NaN or inf is refused, naming
where, never returned as a forecast or a metric.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..datasets.ts_checks import where
from ..errors import InputError

# The largest |z-score| the network gets: its squares, summed over a window's rows (instance
# normalisation), stay far inside float32 for any lookback.
Z_LIMIT = 1e15


def scale_checked(scaler: Any, values: np.ndarray, what: str, columns: tuple[str, ...],
                  timestamps: pd.DatetimeIndex | None = None, first_row: int = 0, csv: bool = False) -> np.ndarray:
    """``values`` ``(T, C)`` z-scored with ``scaler``'s statistics, computed in float64, as float32.

    A value beyond ``Z_LIMIT`` training standard deviations is an InputError naming ``what`` (the
    file or method), the column and the row (``first_row`` is the row of ``values[0]`` in the input;
    ``timestamps`` are the input's; ``csv``: also the file's line).
    """
    z = (np.asarray(values, dtype=np.float64) - scaler.mean_) / scaler.scale_  # (T, C)
    with np.errstate(invalid="ignore"):
        far = ~(np.abs(z) <= Z_LIMIT)
    if far.any():
        rows, cols = np.nonzero(far)
        first = int(np.argmin(rows))
        row, col = int(rows[first]), int(cols[first])
        raise InputError(f"{what}: value {values[row, col]:.6g} in column {columns[col]!r} at "
                         f"{where(first_row + row, timestamps, csv)} lies {abs(z[row, col]):.3g} training standard "
                         f"deviations from the training mean ({scaler.mean_[col]:.6g}, std {scaler.scale_[col]:.6g}), "
                         f"beyond the {Z_LIMIT:.0e} the model computes with; is the column in the units the model "
                         "was trained on?")
    return z.astype(np.float32)


def check_forecast(values: np.ndarray, index: pd.Index, columns: tuple[str, ...], what: str) -> None:
    """The last guard: a forecast ``(H, C)`` holding NaN or inf is an InputError naming its first such row."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    rows, cols = np.nonzero(bad)
    row, col = int(rows[0]), int(cols[0])
    raise InputError(f"{what}: the forecast is not finite ({values[row, col]}) in column {columns[col]!r} at "
                     f"forecast row {row} ({index[row]}); nothing is returned: the input's scale or the model's "
                     "weights are out of range")


def check_window_forecasts(forecasts: Any, first_window: int, span_start: int, lookback: int, horizon: int,
                           what: str) -> None:
    """Evaluation's guard: forecasts ``(batch, H, C)`` of windows ``first_window..``; NaN or inf is an
    InputError naming the first such window's rows, so no metric is computed from it."""
    values = np.asarray(forecasts.detach().cpu() if hasattr(forecasts, "detach") else forecasts)
    finite = np.isfinite(values).reshape(len(values), -1).all(axis=1)
    if finite.all():
        return
    start = span_start + first_window + int(np.flatnonzero(~finite)[0])
    raise InputError(f"{what}: the forecast of the window reading rows [{start}, {start + lookback}) for rows "
                     f"[{start + lookback}, {start + lookback + horizon}) is not finite; no score is reported: "
                     "the input's scale or the model's weights are out of range")
