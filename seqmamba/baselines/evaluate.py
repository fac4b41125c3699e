"""MSE and MAE over every window of a span: the standard long-horizon protocol's metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def evaluate_windows(model_fn: Callable[[np.ndarray], Any], windows: Any, batch_size: int = 2048
                     ) -> dict[str, float]:
    """Mean squared and absolute error of ``model_fn`` over all windows, all variables, all steps.

    Args:
        model_fn: maps inputs ``(batch, L, C)`` float32 to forecasts ``(batch, H, C)`` (NumPy array
            or tensor), in the same (z-scored) space as the windows.
        windows: a :class:`~seqmamba.datasets.timeseries.SlidingWindows` (e.g. the ``test`` of
            ``protocol_windows``), or any object whose ``arrays()`` gives x ``(n, L, C)`` and
            y ``(n, H, C)``.
        batch_size: windows per call of ``model_fn`` (bounds memory, not the result).

    Returns ``{"mse", "mae", "n_windows"}``; the means weigh every (window, step, variable) alike,
    as the published numbers do.

    Example:
        >>> from seqmamba.datasets.timeseries import SlidingWindows
        >>> data = SlidingWindows(np.ones((10, 2), np.float32), lookback=4, horizon=2)
        >>> evaluate_windows(lambda x: np.zeros((len(x), 2, 2)), data)
        {'mse': 1.0, 'mae': 1.0, 'n_windows': 5}
    """
    squared, absolute = window_errors(model_fn, windows, batch_size)
    if len(squared) == 0:
        raise ValueError("no complete window in this span: it is shorter than lookback + horizon")
    # Every window holds H x C values: the mean of the windows' means weighs every value alike.
    return {"mse": float(squared.mean()), "mae": float(absolute.mean()), "n_windows": len(squared)}


def window_errors(model_fn: Callable[[np.ndarray], Any], windows: Any, batch_size: int = 2048
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Each window's MSE and MAE (over its steps and variables), two ``(n_windows,)`` float64 arrays: what
    :func:`evaluate_windows` averages, and what a test between two forecasters compares window by window."""
    x, y = windows.arrays()  # (n, L, C), (n, H, C): views
    squared, absolute = np.empty(len(x)), np.empty(len(x))
    for start in range(0, len(x), batch_size):
        batch = np.ascontiguousarray(x[start:start + batch_size])  # (b, L, C)
        forecast = model_fn(batch)
        if isinstance(forecast, torch.Tensor):
            forecast = forecast.detach().cpu().numpy()
        target = y[start:start + batch_size]
        if forecast.shape != target.shape:
            raise ValueError(f"model_fn returned shape {forecast.shape}, expected {target.shape}")
        error = forecast.astype(np.float64) - target  # (b, H, C), float64: millions of terms in all
        squared[start:start + len(error)] = np.square(error).mean(axis=(1, 2))
        absolute[start:start + len(error)] = np.abs(error).mean(axis=(1, 2))
    return squared, absolute
