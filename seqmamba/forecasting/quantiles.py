"""Quantile forecasts: the pinball loss, the training task, the head's closed-form start, and their scores.

A forecaster with ``quantiles=[0.1, 0.5, 0.9]`` has a second head (see
:class:`~seqmamba.forecasting.model.VariateMamba`) giving, per target and step, one value per level as an offset
from the point forecast in units of the window's spread; the values are sorted, so they never cross. The
point forecast stays the conditional mean (trained with the MSE, as without quantiles); the quantiles are
trained beside it with the pinball loss, the sum of the two being the training loss.

Before the first step the head is set to the empirical quantiles of the starting network's errors on the
training windows (the linear start's residuals, per step, in units of each window's spread): a calibrated
interval on the training windows from step 0, which training then makes depend on the window.

Scores (:class:`QuantileScores`, in the z-scored space of the protocol, like MSE and MAE):

- ``pinball``: the mean pinball loss over every level, window, step and target;
- ``crps``: ``2 * pinball``, the CRPS approximated from the quantiles (the integral of the pinball loss over
  all levels, estimated by the mean over the levels given; coarse for three levels, the standard estimate);
- ``coverage``: the share of targets inside the central interval ``[q_lowest, q_highest]``, next to its
  nominal ``interval`` (0.8 for 0.1 and 0.9).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..training.task import Task


def quantile_columns(targets: Sequence[str], levels: Sequence[float]) -> list[str]:
    """The output columns of the quantiles: ``<target>_q<level>`` for each target, then each level.

    Example:
        >>> quantile_columns(["OT"], [0.1, 0.5, 0.9])
        ['OT_q0.1', 'OT_q0.5', 'OT_q0.9']
    """
    return [f"{target}_q{level:g}" for target in targets for level in levels]


def pinball_loss(quantiles: torch.Tensor, target: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Mean pinball (quantile) loss of ``quantiles`` ``(..., Q)`` for ``target`` ``(...)`` at ``levels`` ``(Q,)``.

    Example:
        >>> pinball_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([2.0]), torch.tensor([0.1, 0.9]))
        tensor(0.5500)
    """
    diff = target[..., None] - quantiles  # (..., Q): positive when the target lies above
    levels = levels.to(diff)
    return torch.maximum(levels * diff, (levels - 1) * diff).mean()


class QuantileTask(Task):
    """Training with quantiles: loss = MSE of the point forecast + mean pinball loss of the quantiles.

    The validation metrics keep ``loss`` = the point forecast's MSE (what early stopping and the held-back
    check compare, as without quantiles), with ``mae`` and ``pinball`` beside it.

    Example:
        >>> from seqmamba.forecasting.model import ForecastConfig, VariateMamba
        >>> net = VariateMamba(ForecastConfig(lookback=8, horizon=2, n_variables=1, d_model=8, d_state=2,
        ...                                   quantiles=[0.1, 0.9]))
        >>> batch = (torch.randn(4, 8, 1), torch.randn(4, 2, 1))
        >>> sorted(QuantileTask([0.1, 0.9]).metrics(net, batch))
        ['loss', 'mae', 'pinball']
    """

    def __init__(self, levels: Sequence[float]) -> None:
        self.levels = torch.tensor(list(levels), dtype=torch.float32)

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        point, quantiles = model(x, quantiles=True)
        return F.mse_loss(point, y) + pinball_loss(quantiles, y, self.levels)

    def metrics(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        x, y = batch
        point, quantiles = model(x, quantiles=True)
        return {"loss": F.mse_loss(point, y), "mae": F.l1_loss(point, y),
                "pinball": pinball_loss(quantiles, y, self.levels)}


@torch.no_grad()
def residual_offsets(model: nn.Module, windows: Any, levels: Sequence[float], max_windows: int = 20000,
                     batch_size: int = 1024) -> torch.Tensor:
    """The empirical ``levels`` of the network's errors on ``windows``, per step: ``(H, Q)``.

    Each error is ``(y - forecast) / spread``, the spread being the window's RevIN std of that target (1
    without RevIN), pooled over targets and windows (at most ``max_windows``, evenly spaced). With these as
    the quantile head's constant offsets, the quantiles cover the training windows as their levels say.
    """
    x, y = windows.arrays()  # (n, L[+H], n_columns), (n, H, C)
    if len(x) > max_windows:
        keep = np.linspace(0, len(x) - 1, max_windows).astype(np.int64)
        x, y = x[keep], y[keep]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    errors = []
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size])).to(device)
        yb = torch.from_numpy(np.ascontiguousarray(y[start:start + batch_size])).to(device)
        error = yb - model(xb)  # (b, H, C)
        revin = getattr(model, "revin", None)
        if revin is not None:
            _, stats = revin(xb[:, :model.config.lookback, :model.config.n_variables])
            error = error / stats.std
        errors.append(error.double().cpu())
    model.train(was_training)
    error = torch.cat(errors).transpose(0, 1).reshape(y.shape[1], -1)  # (H, n * C)
    return torch.quantile(error, torch.tensor(list(levels), dtype=torch.float64), dim=1).T.float()  # (H, Q)


class QuantileScores:
    """Sums for the scores of quantile forecasts over many batches, in float64.

    Example:
        >>> scores = QuantileScores([0.1, 0.9])
        >>> scores.add(np.array([[[[0.0, 2.0]]]]), np.array([[[1.0]]]))  # (b, H, C, Q), (b, H, C)
        >>> scores.result()
        {'pinball': 0.1, 'crps': 0.2, 'coverage': 1.0, 'interval': 0.8}
    """

    def __init__(self, levels: Sequence[float]) -> None:
        self.levels = np.asarray(levels, dtype=np.float64)
        self.pinball = self.inside = 0.0
        self.count = 0

    def add(self, quantiles: np.ndarray, target: np.ndarray) -> None:
        q = np.asarray(quantiles, dtype=np.float64)  # (b, H, C, Q)
        y = np.asarray(target, dtype=np.float64)  # (b, H, C)
        diff = y[..., None] - q
        self.pinball += float(np.maximum(self.levels * diff, (self.levels - 1) * diff).mean(axis=-1).sum())
        self.inside += float(((y >= q[..., 0]) & (y <= q[..., -1])).sum())
        self.count += y.size

    def result(self) -> dict[str, float]:
        pinball = self.pinball / self.count if self.count else float("nan")
        return {"pinball": round(pinball, 12), "crps": round(2 * pinball, 12),
                "coverage": self.inside / self.count if self.count else float("nan"),
                "interval": round(float(self.levels[-1] - self.levels[0]), 12)}


def score_windows(model: nn.Module, windows: Any, levels: Sequence[float] = (), batch_size: int = 1024,
                  check: Any = None) -> dict[str, float]:
    """MSE and MAE of the point forecast (and, with ``levels``, the quantile scores) over every window of
    ``windows`` (anything with ``arrays()``), every target and step weighed alike, summed in float64 as
    :func:`~seqmamba.baselines.evaluate_windows` does. ``check(point, first_window)`` sees every batch's
    point forecasts before they count (the non-finite guard)."""
    x, y = windows.arrays()
    if len(x) == 0:
        raise ValueError("no complete window in this span: it is shorter than lookback + horizon")
    device = next(model.parameters()).device
    quantile = QuantileScores(levels) if len(levels) else None
    squared = absolute = 0.0
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size])).to(device)
        with torch.no_grad():
            out = model(xb, quantiles=True) if quantile is not None else model(xb)
        point = out[0] if quantile is not None else out
        if check is not None:
            check(point, start)
        error = point.detach().cpu().numpy().astype(np.float64) - y[start:start + batch_size]
        squared += float(np.square(error).sum())
        absolute += float(np.abs(error).sum())
        if quantile is not None:
            quantile.add(out[1].detach().cpu().numpy(), y[start:start + batch_size])
    scores = {"mse": squared / y.size, "mae": absolute / y.size, "n_windows": len(x)}
    return {**scores, **(quantile.result() if quantile is not None else {})}


__all__ = ["QuantileScores", "QuantileTask", "pinball_loss", "quantile_columns", "residual_offsets", "score_windows"]
