"""Train / validation / test row spans of the standard long-horizon forecasting protocol.

Time-Series-Library's convention, used by every published lookback-96 number:

- ETTh1/ETTh2: train rows ``[0, 8640)``, validation ``[8640 - L, 11520)``, test ``[11520 - L, 14400)``
  (12/4/4 months of hours); ETTm1/ETTm2 the same months in 15-minute rows (x4). Later rows are unused.
- any other series of T rows: ``n_train = int(0.7 T)``, ``n_test = int(0.2 T)``, validation the rest;
  validation and test start L rows early, so the first window's target starts at the border.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import InputError

if TYPE_CHECKING:
    from .ts_read import TimeSeries

Protocol = Literal["auto", "etth", "ettm", "ratio"]

_MONTH_HOURS = 30 * 24
_ETT_BORDERS = (12 * _MONTH_HOURS, 16 * _MONTH_HOURS, 20 * _MONTH_HOURS)  # 8640, 11520, 14400 hours


@dataclass(frozen=True)
class Span:
    """Rows ``[start, end)`` of a series, lookback warm-up included.

    Example:
        >>> Span("test", 11424, 14400).n_windows(lookback=96, horizon=96)
        2785
    """

    name: str
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start

    def n_windows(self, lookback: int, horizon: int, stride: int = 1) -> int:
        """How many (lookback, horizon) windows fit, every ``stride`` rows; 0 when none does."""
        room = len(self) - lookback - horizon
        return room // stride + 1 if room >= 0 else 0

    @property
    def slice(self) -> slice:
        return slice(self.start, self.end)


@dataclass(frozen=True)
class Splits:
    """The three spans of one series under one protocol, for one lookback.

    Example:
        >>> s = standard_splits("ETTh1.csv", lookback=96)
        >>> s.protocol, (s.val.start, s.val.end), s.train.n_windows(96, 96)
        ('etth', (8544, 11520), 8449)
    """

    train: Span
    val: Span
    test: Span
    protocol: str
    lookback: int

    def __iter__(self):
        return iter((self.train, self.val, self.test))


def standard_splits(
    name_or_len: str | os.PathLike | int | TimeSeries,
    lookback: int,
    *,
    protocol: Protocol = "auto",
    n_rows: int | None = None,
    ratios: tuple[float, float, float] = (0.7, 0.1, 0.2),
) -> Splits:
    """Spans of the standard protocol for a series named (file name, stem) or sized by ``name_or_len``.

    Args:
        name_or_len: a file name or path (``ETTh1.csv``: the protocol comes from the name), a row
            count, or a :class:`TimeSeries` (its name and length).
        lookback: L, the input window; validation and test spans start L rows before their border.
        protocol: ``"auto"`` (ETTh*/ETTm* names take the fixed month borders, anything else the
            ratios), or force ``"etth"``, ``"ettm"`` or ``"ratio"``.
        n_rows: the series length when ``name_or_len`` is a name; read from the file when it is an
            existing path and the ratio protocol needs it.
        ratios: train/val/test fractions of the ratio protocol (val takes what the others leave).
    """
    if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 1:
        raise ValueError(f"lookback must be a positive integer, got {lookback!r}")
    name, length = _name_and_length(name_or_len, n_rows)
    if protocol == "auto":
        stem = name.lower()
        protocol = "etth" if stem.startswith("etth") else "ettm" if stem.startswith("ettm") else "ratio"
    if protocol in ("etth", "ettm"):
        scale = 1 if protocol == "etth" else 4
        train_end, val_end, test_end = (b * scale for b in _ETT_BORDERS)
        if length is not None and length < test_end:
            raise InputError(f"{name}: the {protocol} protocol needs {test_end} rows, the series has {length}")
    elif protocol == "ratio":
        if length is None:
            length = _count_rows(name_or_len)
        if abs(sum(ratios) - 1.0) > 1e-9 or min(ratios) <= 0:
            raise ValueError(f"ratios must be positive and sum to 1, got {ratios}")
        n_train, n_test = int(length * ratios[0]), int(length * ratios[2])
        train_end, val_end, test_end = n_train, length - n_test, length
    else:
        raise ValueError(f"protocol must be 'auto', 'etth', 'ettm' or 'ratio', not {protocol!r}")
    if train_end - lookback < 0 or val_end - lookback < 0:
        raise InputError(f"{name}: lookback {lookback} is longer than the training span ({train_end} rows)")
    return Splits(Span("train", 0, train_end), Span("val", train_end - lookback, val_end),
                  Span("test", val_end - lookback, test_end), protocol, lookback)


def _name_and_length(source: object, n_rows: int | None) -> tuple[str, int | None]:
    if isinstance(source, bool):
        raise TypeError("name_or_len must be a name, a path, a row count or a TimeSeries, not a bool")
    if isinstance(source, int):
        return "series", source
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name.split(".")[0], n_rows
    if hasattr(source, "values") and hasattr(source, "name"):
        return source.name, len(source.values)
    raise TypeError(f"name_or_len must be a name, a path, a row count or a TimeSeries, not {type(source).__name__}")


def _count_rows(source: object) -> int:
    if isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        from .ts_read import read_timeseries  # a path: read it once, checks included

        return len(read_timeseries(source, irregular="ignore"))
    raise ValueError(f"the ratio protocol needs the series length: pass n_rows= with the name {source!r}")
