"""Confirming on held-back validation rows that training beat the linear start.

Early stopping picks the best of several epochs on the validation windows, so the winner's
validation MSE is optimistic: part of its lead over the linear start is the luck of the pick. On
the standard splits that lead did not hold up. Early stopping on the first half of each validation
span and scoring on the second half gave a trained network that was worse than its linear start on
the second half in all 8 settings tried (ETTh1 at four horizons, ETTh2 and Exchange at 96 and 192),
although it was better on the first half in all 8. So the latest rows of the validation span are
held back from early stopping, and the trained network must beat the start on them to be kept.

A third candidate is their even mix, whose forecast is the mean of the two (for a network that can
express it, :meth:`VariateMamba.blended_state`): where the two err differently, their mean can
beat both, and the held-back rows decide whether it did.

A lower held-back MSE alone was not enough either: ETTh1's trained networks (lookback 336) won the
held-back rows by 0.3-0.4 % and lost on test (by 2.6 % at horizon 336), and Exchange's (lookback 96,
horizon 336) won them by 15 % and lost on test by 9 %. Windows one step apart share all but one of their target rows,
so a few hundred of them hold few independent errors. So a candidate replaces a simpler one (the start,
then the mix) only where a one-sided Diebold-Mariano test over the held-back windows (per-window MSE,
Newey-West variance over the horizon - 1 lags that overlapping targets correlate) finds its loss lower
at level ``alpha``: without that evidence the simpler forecaster stays. Fewer held-back windows than two
horizons hold less than two stretches of distinct target rows, too little for any test (Exchange at horizon
336 has 45 windows, nearly all of one stretch): there the simpler forecaster stays as well.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn


def split_validation(rows: np.ndarray, lookback: int, horizon: int, fraction: float
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """Validation rows ``(T, C)`` (the first ``lookback`` only warm up) -> (early-stopping rows,
    confirmation rows or None).

    The confirmation part is the latest ``fraction`` of the rows after the warm-up. It starts
    ``lookback`` rows early, so its first window reads rows that the early-stopping part also reads,
    but no window's target is in both. None when either part would hold no whole window.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"confirm_fraction must be in [0, 1), got {fraction}")
    if fraction == 0:
        return rows, None
    body = len(rows) - lookback
    cut = lookback + round(body * (1 - fraction))  # first row of the confirmation targets
    stop, confirm = rows[:cut], rows[cut - lookback:]
    if len(stop) < lookback + horizon or len(confirm) < lookback + horizon:
        return rows, None
    return stop, confirm


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def dm_pvalue(simple: np.ndarray, other: np.ndarray, horizon: int) -> float | None:
    """One-sided Diebold-Mariano p-value for "``other``'s expected loss is lower than ``simple``'s", from the
    per-window losses of the two on the same windows (stride 1). The variance of the mean loss gap is
    Newey-West's (Bartlett weights) over ``horizon - 1`` lags, as far as windows whose targets overlap
    correlate; the statistic is taken as normal. None where there are fewer than ``2 * horizon`` windows: their
    targets then hold less than two disjoint stretches, and no variance can be estimated from them.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> noise = rng.normal(size=400)
        >>> dm_pvalue(noise**2 + 1.0, noise**2, horizon=1) < 1e-6, dm_pvalue(noise**2, noise**2 + 1.0, 1) > 0.99
        (True, True)
    """
    gap = np.asarray(simple, np.float64) - np.asarray(other, np.float64)  # (n,): positive where other wins
    n = len(gap)
    if n < 2 * horizon:
        return None
    centred = gap - gap.mean()
    lags = max(horizon - 1, 0)
    variance = centred @ centred / n
    for k in range(1, lags + 1):
        variance += 2 * (1 - k / (lags + 1)) * (centred[k:] @ centred[:-k]) / n
    if variance <= 0:  # every gap alike: certain either way
        return 0.0 if gap.mean() > 0 else 1.0
    statistic = gap.mean() / math.sqrt(variance / n)
    return 0.5 * math.erfc(statistic / math.sqrt(2))  # P(Z > statistic)


def keep_better(model: nn.Module, start: dict[str, torch.Tensor], windows: Any, batch_size: int = 1024,
                alpha: float = 0.05) -> tuple[str, dict[str, float], dict[str, float | None]]:
    """Score the trained ``model``, its ``start`` weights and (where the model has ``blended_state``) their
    even mix on ``windows`` (a SlidingWindows, stride 1) and leave the model holding the one kept: walking
    from the simplest (start, mix, trained), a candidate replaces the one kept so far only where its loss is
    lower with :func:`dm_pvalue` below ``alpha`` (never where the windows are too few for the test; 1.0:
    wherever its MSE is lower).

    Returns (``"start"``, ``"blend"`` or ``"trained"``, {candidate: mse}, {candidate but the start: the p-value
    against the one kept before it, None where the windows were too few}).
    """
    from ..baselines import window_errors

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()

    def forecast(x: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return model(torch.from_numpy(x).to(device))

    trained = state_copy(model)
    candidates = {"start": start}
    if hasattr(model, "blended_state"):
        candidates["blend"] = model.blended_state(start, trained, 0.5)
    candidates["trained"] = trained
    losses = {}
    for name, state in candidates.items():
        model.load_state_dict(state)
        losses[name] = window_errors(forecast, windows, batch_size)[0]  # (n_windows,) MSE
    kept, pvalues = "start", {}
    for name in list(candidates)[1:]:
        pvalues[name] = dm_pvalue(losses[kept], losses[name], windows.horizon)
        p = pvalues[name]
        if losses[name].mean() < losses[kept].mean() and (alpha >= 1 or (p is not None and p < alpha)):
            kept = name
    model.load_state_dict(candidates[kept])
    model.train(was_training)
    return kept, {name: float(loss.mean()) for name, loss in losses.items()}, pvalues


def choose_kept(model: nn.Module, start: dict[str, torch.Tensor], trained_moved: bool, windows: Any,
                fraction: float, alpha: float) -> tuple[str, dict[str, float], dict[str, float | None]]:
    """After training: leave ``model`` holding what the forecaster keeps, and say which (as keep_better).

    trained_moved: early stopping's best epoch is past the start; windows: the held-back windows (None: none);
    fraction: the confirm_fraction asked for (0: no check, early stopping's winner stays). Where a check was
    asked for but the validation rows were too few to hold any back, nothing shows the trained network better
    on rows it was not selected on (Exchange at horizon 720 kept one 4-45 % worse than its start on test), so
    the start is kept, with a warning.
    """
    if windows is not None:
        return keep_better(model, start, windows, alpha=alpha)
    if not trained_moved:
        return "start", {}, {}
    if fraction > 0:
        model.load_state_dict(start)
        warnings.warn(f"MambaForecaster: the validation rows are too few to hold {fraction} of them back and "
                      "confirm the trained network, so the linear start is kept (confirm_fraction=0 keeps early "
                      "stopping's best epoch)", UserWarning, stacklevel=4)
        return "start", {}, {}
    return "trained", {}, {}
