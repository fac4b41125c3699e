"""Scoring a fitted `MambaForecaster`: which rows an evaluation scores, and the scores of their windows.

:func:`evaluate_series` is what :meth:`~seqmamba.forecasting.estimator.MambaForecaster.evaluate` does for
one wide series; :func:`scored_span` (which rows) and :func:`score_span` (the scores of every window of
those rows) serve it and :func:`~seqmamba.forecasting.panel.evaluate_panel`, which scores each series of a
long frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..datasets.timeseries import Span, standard_splits
from ..errors import InputError
from .finite import check_window_forecasts, scale_checked
from .frames import check_columns, named, read_table
from .overlap import warn_overlap
from .quantiles import score_windows

# The functions below take the estimator (a fitted `MambaForecaster`) as ``model``; it imports them, so this
# module does not import it back.


def evaluate_series(model: Any, X: Any, start: int | None, end: int | None, protocol: str,
                    batch_size: int) -> dict[str, float]:
    """The scores of :meth:`MambaForecaster.evaluate` for a forecaster of one wide series (no ``id_col``):
    every window of rows ``[start, end)`` of ``X`` (or of the protocol's test span), with the span's
    ``start`` and ``end``. ``model`` must be fitted."""
    series, _ = read_table(X)
    what = named(X, "evaluate")
    check_columns(series, model._columns, what)
    span = scored_span(model, series, start, end, protocol, what)
    fitted = {"training": getattr(model, "train_span_", None), "validation": getattr(model, "val_span_", None)}
    scores = score_span(model, series, span, model.scaler_, what, fitted, batch_size, depth=2)
    return {**scores, "start": span.start, "end": span.end}


def scored_span(model: Any, series: Any, start: int | None, end: int | None, protocol: str,
                what: str) -> Span:
    """Rows ``[start, end)`` of a series (negative: from its end), or the protocol's test span."""
    if start is None and end is None:
        return standard_splits(series, model.lookback, protocol=protocol).test
    start = 0 if start is None else start
    end = len(series) if end is None else end
    if start < 0:
        start += len(series)
    if end < 0:
        end += len(series)
    if not 0 <= start <= end <= len(series):
        raise InputError(f"{what}: rows [{start}, {end}) are outside the {len(series)} rows of X")
    return Span("span", start, end)


def score_span(model: Any, series: Any, span: Span, scaler: Any, what: str, fitted: dict[str, Any],
               batch_size: int, depth: int = 1) -> dict[str, float]:
    """The scores of every window of rows ``span`` of one series (z-scored with ``scaler``); warns when
    the scored rows overlap the ``fitted`` spans. ``depth``: calls between the user's evaluate() and this one
    (the warning names the user's line)."""
    from ..baselines import evaluate_windows
    from ..training.threads import INFERENCE_REUSE_S, cpu_threads

    L, H = model.lookback, model.horizon
    rows = scale_checked(scaler, series.values[span.slice], what, model._columns, series.timestamps,
                         span.start)  # only the span's rows: a bad value elsewhere in X does not matter
    roles, levels = model._fitted_roles(), model.config_.quantiles
    windows = model._windows([rows], roles)
    if len(windows) == 0:
        raise InputError(f"{what}: rows [{span.start}, {span.end}) hold no window of "
                         f"lookback + horizon = {L + H} rows")
    warn_overlap(series.timestamps, span.start + L, span.end, L, fitted, what, stacklevel=3 + depth)
    device = next(model.model_.parameters()).device
    network = model.model_.eval()

    def check(point: torch.Tensor, first: int) -> None:  # names the rows of a non-finite forecast
        check_window_forecasts(point, first, span.start, L, H, what)

    with cpu_threads(getattr(model, "n_threads", None), device, INFERENCE_REUSE_S):
        if roles.has_covariates or levels:
            return score_windows(network, windows, levels, batch_size=batch_size, check=check)
        done = 0

        def forecast(x: np.ndarray) -> torch.Tensor:
            nonlocal done
            with torch.no_grad():
                out = network(torch.from_numpy(x).to(device))
            check(out, done)
            done += len(x)
            return out

        return evaluate_windows(forecast, windows, batch_size=batch_size)


__all__ = ["evaluate_series", "score_span", "scored_span"]
