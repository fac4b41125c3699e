"""Which rows a forecaster was fitted on, by timestamp, and a warning when an evaluation scores them.

``fit`` records the first and last timestamp of its training rows and of its validation rows (the
targets that early stopping and the held-back check scored; a validation span's first ``lookback``
rows only feed its first window). :func:`warn_overlap` counts the evaluated rows whose values are
scored (a window's targets, not its lookback warm-up) that fall inside either span: such a score is
not a held-out test score. The standard protocol's test span reads the last ``lookback`` validation
rows as inputs only, so it does not warn.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

FitSpan = tuple[pd.Timestamp, pd.Timestamp] | None


def span_of(timestamps: pd.DatetimeIndex | None) -> FitSpan:
    """(first, last) timestamp, or None without timestamps or rows."""
    if timestamps is None or len(timestamps) == 0:
        return None
    return timestamps[0], timestamps[-1]


def span_to_json(span: FitSpan) -> list[str] | None:
    return None if span is None else [span[0].isoformat(), span[1].isoformat()]


def span_from_json(data: list[str] | None) -> FitSpan:
    return None if not data else (pd.Timestamp(data[0]), pd.Timestamp(data[1]))


def warn_overlap(timestamps: pd.DatetimeIndex | None, first_scored: int, end: int, lookback: int,
                 spans: dict[str, FitSpan], what: str, stacklevel: int = 3) -> int:
    """Warn (UserWarning) when rows ``[first_scored, end)`` of a series overlap the fitted ``spans``
    (by timestamp); return how many do. Series without timestamps are not compared (0). ``stacklevel``: as
    ``warnings.warn``'s, counted from this function (3: the caller's caller)."""
    if timestamps is None or first_scored >= end:
        return 0
    scored = timestamps[first_scored:end]
    used = np.zeros(len(scored), dtype=bool)
    named = []
    for name, span in spans.items():
        if span is None:
            continue
        try:
            used |= np.asarray((scored >= span[0]) & (scored <= span[1]))
        except TypeError:  # time-zone aware against naive: not the same clock, nothing to compare
            return 0
        named.append(f"{name} {span[0]} to {span[1]}")
    n = int(used.sum())
    if not n:
        return 0
    last_fitted = max(span[1] for span in spans.values() if span is not None)
    after = int(np.searchsorted(timestamps.asi8, pd.DatetimeIndex([last_fitted]).asi8[0], side="right"))
    if after < len(timestamps):
        hint = (f"evaluate rows after the fitted ones: start={after - lookback} (--start {after - lookback}) scores "
                f"from row {after} ({timestamps[after]}) on")
    else:
        hint = ("this series has no rows after the fitted ones: fit on the rows before the test span "
                "(`seqmamba train forecast --split protocol`, or fit(train, X_val=val))")
    warnings.warn(f"{what}: {n} of the {len(scored)} scored rows ({scored[used][0]} to {scored[used][-1]}) were "
                  f"used in fit ({'; '.join(named)}), so this is not a held-out score; {hint}",
                  UserWarning, stacklevel=stacklevel)
    return n
