"""Many series in one long frame: what `MambaForecaster` does with ``id_col`` set.

The frame is neuralforecast's layout: the id column (``id_col``, e.g. ``"unique_id"``), a time column (``date``,
``ds``, ... as for one series) and the value columns, shared by every series. Series may have different lengths,
start dates and frequencies; rows of a series may come in any order (they are sorted by time).

- **fit**: every series is z-scored with the mean and std of its *own* training rows (so series of different
  levels and units train together), and the network normalises each window again (RevIN). One network learns
  from the windows of every series. Validation is per series too (``X_val``: a long frame; else the last
  ``validation_fraction`` of each series long enough to give both parts a window), the held-back confirmation
  rows are the latest of each series' validation rows, and all series' windows are pooled in every score.
  A series shorter than ``lookback`` is an InputError naming it; one shorter than ``lookback + horizon`` gives
  no training window but can still be forecast.
- **predict**: the next ``horizon`` rows of each series, dated at its own frequency, as a long frame: the id
  column, the time column, the targets (and quantile columns). ``predict()`` forecasts every fitted series,
  ``predict(X)`` the series of X (each must be a fitted id and hold ``lookback`` rows).
- **evaluate**: the span (the protocol's test span, or ``start``/``end``) is taken within each series; every
  window of every series weighs alike, and ``series`` holds each one's own scores.
- **update**: rows appended per series.

Per-series state lives in ``series_`` (id -> :class:`SeriesState`); ``ids_`` keeps the order of the ids.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..datasets.ts_panel import Panel, PanelWindows, SeriesId, read_panel
from ..datasets.ts_windows import SlidingWindows
from ..errors import InputError
from ..tokenizers.timeseries import TimeSeriesTokenizer
from .confirm import split_validation
from .finite import check_forecast, scale_checked
from .frames import TableKind, check_columns, check_continues, future_index, named, typical_step
from .future import missing_future, read_future_panel
from .overlap import FitSpan, span_of
from .scoring import score_span, scored_span

# Forecasts of this many series at once (bounds the memory of one forward pass).
PREDICT_BATCH = 512

# The functions below take the estimator (a fitted or fitting `MambaForecaster`) as ``est``; it imports them.
Estimator = Any


@dataclass
class FitData:
    """What fit trains on: training windows, early-stopping windows and held-back windows (None: none), and
    the number of targets (the windows' first columns). Made by `prepare_fit` here, or by the estimator for
    one wide series.

    Example:
        >>> windows = PanelWindows([np.zeros((40, 2), np.float32)] * 2, lookback=8, horizon=4, n_targets=1)
        >>> data = FitData(windows, None, None, n_targets=1)
        >>> len(data.train), data.train[0][1].shape  # windows of both series; y holds the target only
        (58, torch.Size([4, 1]))
    """

    train: SlidingWindows | PanelWindows
    val: SlidingWindows | PanelWindows | None
    confirm: SlidingWindows | PanelWindows | None
    n_targets: int


@dataclass
class SeriesState:
    """What a fitted forecaster keeps of one series: its scaler (training mean and std of every column), its
    last ``lookback`` rows (original units, the table's column order), where it ends, its time axis, and the
    timestamps of the rows fit trained and validated on.

    Example:
        >>> rows = np.arange(20.0).reshape(10, 2)
        >>> state = SeriesState(TimeSeriesTokenizer().fit(rows), rows[-4:], None, 10, None, None, None, None)
        >>> state.scaler.mean_.tolist(), state.context.shape
        ([9.0, 10.0], (4, 2))
    """

    scaler: TimeSeriesTokenizer
    context: np.ndarray
    last_timestamp: pd.Timestamp | None
    n_rows_seen: int
    freq: str | None
    step: pd.Timedelta | None
    train_span: FitSpan
    val_span: FitSpan


def _kind(X: Any) -> str:
    return "polars" if type(X).__module__.startswith("polars") else "pandas"


def _label(what: str, series_id: SeriesId) -> str:
    return f"{what}: series {series_id!r}"


def _read(est: Estimator, X: Any, irregular: str = "ignore") -> Panel:
    return read_panel(X, est.id_col, irregular=irregular)


def _check_known(est: Estimator, panel: Panel, what: str) -> None:
    """Every series of ``panel`` was fitted, with the fitted columns."""
    check_columns(panel.series[0], est._columns, what)
    unknown = [i for i in panel.ids if i not in est.series_]
    if unknown:
        shown = ", ".join(repr(i) for i in est.ids_[:5]) + (", ..." if len(est.ids_) > 5 else "")
        raise InputError(f"{what}: unknown series {unknown[0]!r}" + (f" (and {len(unknown) - 1} more)" if
                                                                     len(unknown) > 1 else "")
                         + f": the model was fitted on {len(est.ids_)} series ({shown}) and has no scaler for it")


def prepare_fit(est: Estimator, X: Any, X_val: Any) -> tuple[FitData, dict[str, Any]]:
    """The windows of every series of the long frame ``X`` and the fitted attributes they give."""
    panel = _read(est, X, irregular="warn")
    where = named(X, "X")
    roles = est._roles(panel.columns, where)
    L, H = est.lookback, est.horizon
    val_panel = None
    if X_val is not None:
        val_panel = _read(est, X_val)
        check_columns(val_panel.series[0], panel.columns, named(X_val, "X_val"))
        strangers = [i for i in val_panel.ids if i not in panel.ids]
        if strangers:
            raise InputError(f"{named(X_val, 'X_val')}: series {strangers[0]!r} is not in X: validation rows need "
                             "the training rows of their series (its scaler)")
    elif est.validation_fraction:
        est._check_validation_fraction()
    states: dict[SeriesId, SeriesState] = {}
    train_z, val_z, confirm_z = [], [], []
    for series_id, series in zip(panel.ids, panel.series):
        label = _label(where, series_id)
        values, stamps = series.values, series.timestamps
        if len(values) < L:
            raise InputError(f"{label}: {len(values)} rows, fewer than lookback = {L}: the model could never "
                             "forecast it (drop the series or lower the lookback)")
        train_rows, val_rows = values, None
        train_span, val_span = span_of(stamps), None
        val_label, val_stamps, val_first = label, stamps, 0
        if val_panel is not None and series_id in val_panel.ids:
            val_series = val_panel.get(series_id)
            val_label, val_stamps = _label(named(X_val, "X_val"), series_id), val_series.timestamps
            if len(val_series) < L + H:
                raise InputError(f"{val_label}: {len(val_series)} rows, fewer than lookback + horizon = {L} + {H}")
            val_rows = val_series.values
            val_span = span_of(None if val_stamps is None else val_stamps[L:])
        elif val_panel is None and est.validation_fraction:
            n_val = int(len(values) * est.validation_fraction)
            if n_val >= H and len(values) - n_val >= L + H:
                train_rows, val_rows = values[:-n_val], values[-n_val - L:]
                val_first = len(values) - n_val - L
                if stamps is not None:
                    train_span, val_span = span_of(stamps[:-n_val]), span_of(stamps[-n_val:])
        scaler = TimeSeriesTokenizer().fit(train_rows)
        train_z.append(scale_checked(scaler, train_rows, label, panel.columns, stamps))
        if val_rows is not None:
            z = scale_checked(scaler, val_rows, val_label, panel.columns, val_stamps, val_first)
            held = None
            if est._confirms():
                z, held = split_validation(z, L, H, est.confirm_fraction)
            val_z.append(z)
            if held is not None:
                confirm_z.append(held)
        states[series_id] = SeriesState(scaler, np.array(values[-L:], dtype=np.float32),
                                        None if stamps is None else stamps[-1], len(values), series.freq,
                                        typical_step(stamps), train_span, val_span)
    train = est._windows(train_z, roles)
    if len(train) == 0:
        raise InputError(f"{where}: no series has lookback + horizon = {L} + {H} rows: nothing to train on")
    val = est._windows(val_z, roles) if val_z else None
    confirm = est._windows(confirm_z, roles) if confirm_z else None
    attributes = {"ids_": list(panel.ids), "series_": states, "n_features_in_": len(panel.columns),
                  "feature_names_in_": np.asarray(panel.columns, dtype=object),
                  "target_names_": np.asarray(roles.targets, dtype=object),
                  "kind_": TableKind(_kind(X), panel.time_name, False)}
    return FitData(train, val, confirm, len(roles.targets)), attributes


def predict_panel(est: Estimator, X: Any, future: Any) -> Any:
    """The next ``horizon`` rows of every series of X (of every fitted series without X), as a long frame."""
    roles = est._fitted_roles()
    L, H = est.lookback, est.horizon
    what, kind = "predict", est.kind_.kind
    items = []  # (id, context, stamps, first_row, last, n_rows, freq, step)
    if X is None:
        for series_id in est.ids_:
            s = est.series_[series_id]
            items.append((series_id, s.context, None, max(0, s.n_rows_seen - len(s.context)), s.last_timestamp,
                          s.n_rows_seen, s.freq, s.step))
    else:
        panel = _read(est, X, irregular="warn")
        what, kind = named(X, "predict"), _kind(X)
        _check_known(est, panel, what)
        for series_id, series in zip(panel.ids, panel.series):
            s = est.series_[series_id]
            if len(series) < L:
                raise InputError(f"{_label(what, series_id)}: {len(series)} rows, fewer than lookback = {L}")
            stamps = series.timestamps
            items.append((series_id, series.values[-L:], stamps, len(series) - L,
                          None if stamps is None else stamps[-1], len(series), series.freq or s.freq,
                          typical_step(stamps) or s.step))
    future_panel = None
    if future is not None and not roles.future:
        warnings.warn(f"{what}: future= is ignored: the model was fitted without future_covariates", UserWarning,
                      stacklevel=3)
    if roles.future:
        if future is None:
            raise missing_future(what, roles.future, H, panel=True)
        future_panel = read_future_panel(future, roles.future, roles.targets + roles.past, est.id_col)
    inputs, indexes = [], []
    for series_id, context, stamps, first_row, last, n_rows, freq, step in items:
        state = est.series_[series_id]
        window = scale_checked(state.scaler, context, _label(what, series_id), est._columns, stamps, first_row)
        index = future_index(last, freq, step, n_rows, H)
        ahead = None
        if future_panel is not None:
            if series_id not in future_panel.ids:
                raise InputError(f"{future_panel.label}: no rows for series {series_id!r}; the future covariates "
                                 f"{list(roles.future)} are needed over its {H} forecast rows from {index[0]}")
            ahead = est._future_block(future, index, state.scaler, what, future_rows=future_panel.get(series_id),
                                      series=f" for series {series_id!r}")
        inputs.append(est._network_input(window, ahead))
        indexes.append(index)
    columns = est._output_columns()
    time_name = (est.kind_.time_name if X is None else panel.time_name) or (
        "ds" if any(isinstance(i, pd.DatetimeIndex) for i in indexes) else "row")
    frames = []
    for begin in range(0, len(inputs), PREDICT_BATCH):
        point, quantiles = est._forecast_scaled(np.stack(inputs[begin:begin + PREDICT_BATCH]))
        for k in range(len(point)):
            series_id, index = items[begin + k][0], indexes[begin + k]
            values = est._unscale(point[k], None if quantiles is None else quantiles[k], est.series_[series_id].scaler)
            check_forecast(values, index, tuple(columns), _label(what, series_id))
            frame = pd.DataFrame(values, columns=columns)
            frame.insert(0, time_name, np.asarray(index))
            frame.insert(0, est.id_col, [series_id] * len(frame))
            frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    if kind == "polars":
        import polars as pl

        return pl.from_pandas(out)
    return out


def update_panel(est: Estimator, new_rows: Any) -> None:
    """Append each series' new rows (all checked before any is kept)."""
    panel = _read(est, new_rows)
    what = named(new_rows, "update")
    _check_known(est, panel, what)
    for series_id, series in zip(panel.ids, panel.series):
        state, stamps, label = est.series_[series_id], series.timestamps, _label(what, series_id)
        if stamps is not None and state.last_timestamp is not None:
            check_continues(label, stamps[0], state.last_timestamp, state.freq, state.step, state.n_rows_seen,
                            stacklevel=4)
        scale_checked(state.scaler, series.values, label, est._columns, stamps)
    for series_id, series in zip(panel.ids, panel.series):
        state = est.series_[series_id]
        state.context = np.concatenate([state.context, series.values])[-est.lookback:]
        state.n_rows_seen += len(series)
        if series.timestamps is not None:
            state.last_timestamp = series.timestamps[-1]


def evaluate_panel(est: Estimator, X: Any, start: int | None, end: int | None, protocol: str,
                   batch_size: int) -> dict[str, Any]:
    """Scores over the span of every series of X, pooled (every window alike) and per series."""
    panel = _read(est, X)
    what = named(X, "evaluate")
    _check_known(est, panel, what)
    L, H = est.lookback, est.horizon
    per_series, spans = {}, {}
    for series_id, series in zip(panel.ids, panel.series):
        state, label = est.series_[series_id], _label(what, series_id)
        span = scored_span(est, series, start, end, protocol, label)
        spans[series_id] = span
        if span.n_windows(L, H) == 0:
            continue  # too short for a window here: named in "skipped"
        fitted = {"training": state.train_span, "validation": state.val_span}
        per_series[series_id] = score_span(est, series, span, state.scaler, label, fitted, batch_size, depth=2)
    if not per_series:
        raise InputError(f"{what}: no series holds a window of lookback + horizon = {L + H} rows in its span")
    total = sum(s["n_windows"] for s in per_series.values())
    pooled: dict[str, Any] = {}
    for key in next(iter(per_series.values())):
        if key == "n_windows":
            pooled[key] = total
        elif key == "interval":
            pooled[key] = next(iter(per_series.values()))[key]
        else:  # every window has H x C targets: means over windows pool by window counts
            pooled[key] = sum(s[key] * s["n_windows"] for s in per_series.values()) / total
    pooled.update({"start": {i: s.start for i, s in spans.items()}, "end": {i: s.end for i, s in spans.items()},
                   "series": per_series, "skipped": [i for i in spans if i not in per_series]})
    return pooled


__all__ = ["FitData", "SeriesState", "evaluate_panel", "predict_panel", "prepare_fit", "update_panel"]
