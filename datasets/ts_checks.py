"""Checks on a time-series table: timestamps (parse, order, frequency), numeric columns, missing values.

Each check raises :class:`~seqmamba.errors.InputError` with a one-line message that starts with the
source (file name or ``DataFrame``) and names the place: column, row and timestamp.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import InputError

MissingPolicy = Literal["error", "interpolate"]
IrregularPolicy = Literal["warn", "error", "ignore"]

# Column names read as the time axis when the default `date` column is absent (case-insensitive).
DATE_NAMES = ("date", "datetime", "timestamp", "time", "ds")

# The largest magnitude a value may have. Series are held as float32 (largest finite value 3.4e38): this
# leaves room for sums and spreads, and a larger value (1e308 in a float64 cell) is refused by name
# instead of turning into inf on the way in.
MAX_ABS_VALUE = 1e30


def where(row: int, timestamps: pd.DatetimeIndex | None, csv: bool) -> str:
    """``row 12 (2016-07-01 12:00:00, line 14)``: a data row as a person finds it in the file."""
    extra = []
    if timestamps is not None:
        extra.append(str(timestamps[row]))
    if csv:
        extra.append(f"line {row + 2}")  # 1-based, after the header line
    return f"row {row}" + (f" ({', '.join(extra)})" if extra else "")


def parse_timestamps(column: pd.Series, source: str, name: str, csv: bool) -> pd.DatetimeIndex:
    """The column as a DatetimeIndex; an unparseable or empty cell is an error naming its row."""
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(column):
        parsed = pd.DatetimeIndex(column)
    else:
        with warnings.catch_warnings():
            # pandas warns when it falls back to per-element parsing; the result is still checked below.
            warnings.simplefilter("ignore", UserWarning)
            parsed = pd.DatetimeIndex(pd.to_datetime(column, errors="coerce"))
    bad = np.flatnonzero(pd.isna(parsed))
    if bad.size:
        row = int(bad[0])
        raise InputError(f"{source}: column {name!r} {where(row, None, csv)} is not a timestamp: "
                         f"{column.iloc[row]!r}")
    return parsed


def check_order(timestamps: pd.DatetimeIndex, source: str, csv: bool) -> None:
    """Timestamps must increase strictly: duplicates and unsorted rows are errors naming both rows."""
    steps = np.diff(timestamps.asi8)
    if not steps.size or steps.min() > 0:
        return
    row = int(np.flatnonzero(steps <= 0)[0]) + 1
    kind = "duplicate timestamp" if steps[row - 1] == 0 else "timestamps not sorted"
    hint = "drop or aggregate the duplicates" if steps[row - 1] == 0 else "sort the rows by time"
    raise InputError(f"{source}: {kind}: {where(row, timestamps, csv)} follows "
                     f"{where(row - 1, timestamps, csv)}; {hint}")


def infer_frequency(timestamps: pd.DatetimeIndex, source: str, csv: bool,
                    irregular: IrregularPolicy) -> str | None:
    """A pandas frequency string (``"h"``, ``"D"``, ``"W-TUE"``...) or None when the spacing is irregular.

    ``pandas.infer_freq`` first (it knows calendar steps: months, business days); otherwise the
    series is irregular and the first step that differs from the modal step is named. Irregular
    spacing warns by default rather than failing: the models work on row order, only the future
    timestamps of a forecast need a frequency.
    """
    if len(timestamps) < 3:
        return None  # infer_freq needs three points; two cannot show a regular step
    with warnings.catch_warnings():
        # pandas 3 announces a change of return type (str -> offset); both are handled below.
        warnings.simplefilter("ignore")
        freq = pd.infer_freq(timestamps)
    if freq is not None:
        return getattr(freq, "freqstr", freq)
    if irregular == "ignore":
        return None
    steps = np.diff(timestamps.as_unit("ns").asi8)  # pandas keeps s/ms/us resolutions: count in ns
    values, counts = np.unique(steps, return_counts=True)
    modal = values[np.argmax(counts)]
    row = int(np.flatnonzero(steps != modal)[0]) + 1
    message = (f"{source}: irregular timestamps: the usual step is {pd.Timedelta(int(modal))} but "
               f"{where(row, timestamps, csv)} comes {pd.Timedelta(int(steps[row - 1]))} after the row "
               f"before ({int((steps != modal).sum())} such steps)")
    if irregular == "error":
        raise InputError(message)
    warnings.warn(message + "; freq is None", UserWarning, stacklevel=4)
    return None


def numeric_column(column: pd.Series, source: str, name: str, timestamps: pd.DatetimeIndex | None,
                   csv: bool) -> np.ndarray:
    """The column as float64; a text or boolean cell is an error naming its row and value."""
    if pd.api.types.is_bool_dtype(column):
        raise InputError(f"{source}: column {name!r} is boolean, not numeric")
    if pd.api.types.is_complex_dtype(column):
        raise InputError(f"{source}: column {name!r} holds complex numbers (Complex data not supported); pass its "
                         "real part or its magnitude")
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    coerced = pd.to_numeric(column, errors="coerce")
    # Empty cells are missing values (handled by the missing policy), not text.
    bad = np.flatnonzero(coerced.isna().to_numpy() & column.notna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise InputError(f"{source}: column {name!r} is not numeric: {where(row, timestamps, csv)} "
                         f"holds {column.iloc[row]!r}")
    return coerced.to_numpy(dtype=np.float64, na_value=np.nan)


def check_range(values: np.ndarray, columns: list[str], source: str, timestamps: pd.DatetimeIndex | None,
                csv: bool) -> None:
    """Finite values beyond +-MAX_ABS_VALUE: an error naming the first one's column, row and value."""
    with np.errstate(invalid="ignore"):
        big = np.abs(values) > MAX_ABS_VALUE  # (T, C); NaN compares False
    if not big.any():
        return
    rows, cols = np.nonzero(big)
    first = int(np.argmin(rows))  # earliest row; ties to the leftmost column
    row, col = int(rows[first]), int(cols[first])
    raise InputError(f"{source}: value {values[row, col]:.6g} in column {columns[col]!r} at "
                     f"{where(row, timestamps, csv)} is outside the range seqmamba reads (|value| <= "
                     f"{MAX_ABS_VALUE:.0e}); {int(big.sum())} such value(s) in all; rescale the column (other units)")


def fill_missing(values: np.ndarray, columns: list[str], source: str, timestamps: pd.DatetimeIndex | None,
                 csv: bool, missing: MissingPolicy) -> np.ndarray:
    """NaN and +-inf: an error naming the first one's column and timestamp, or linear interpolation.

    Interpolation is over row positions (the series is regular or close to it) and the edges take
    the nearest observed value. A column with no finite value at all cannot be filled.
    """
    bad = ~np.isfinite(values)  # (T, C)
    if not bad.any():
        return values
    if missing == "error":
        rows, cols = np.nonzero(bad)
        first = int(np.argmin(rows))  # earliest row; ties to the leftmost column
        row, col = int(rows[first]), int(cols[first])
        what = "missing value (NaN)" if np.isnan(values[row, col]) else f"infinite value ({values[row, col]})"
        raise InputError(f"{source}: {what} in column {columns[col]!r} at {where(row, timestamps, csv)}; "
                         f"{int(bad.sum())} in all (pass missing='interpolate' to fill them)")
    filled = values.copy()
    positions = np.arange(len(values))
    for col in np.flatnonzero(bad.any(axis=0)):
        good = ~bad[:, col]
        if not good.any():
            raise InputError(f"{source}: column {columns[col]!r} has no finite value to interpolate from")
        # np.interp holds the first/last observed value beyond the ends: the edge fill.
        filled[:, col] = np.interp(positions, positions[good], values[good, col])
    return filled
