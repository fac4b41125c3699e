"""Confirming on held-back validation rows that training beat the linear start.

Early stopping picks the best of several epochs on the validation windows, so the winner's
validation MSE is optimistic: part of its lead over the linear start is the luck of the pick. On
the standard splits that lead did not hold up. Early stopping on the first half of each validation
span and scoring on the second half gave a trained network that was worse than its linear start on
the second half in all 8 settings tried (ETTh1 at four horizons, ETTh2 and Exchange at 96 and 192),
although it was better on the first half in all 8. So the latest rows of the validation span are
held back from early stopping, and the trained network must beat the start on them to be kept.
"""

from __future__ import annotations

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


def keep_better(model: nn.Module, start: dict[str, torch.Tensor], windows: Any, batch_size: int = 1024
                ) -> tuple[str, dict[str, float]]:
    """Score the trained ``model`` and its ``start`` weights on ``windows`` (a SlidingWindows); leave
    the model holding the trained weights only if they are strictly better there.

    Returns ("trained" or "start", {"start": mse, "trained": mse}).
    """
    from ..baselines import evaluate_windows

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()

    def forecast(x: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return model(torch.from_numpy(x).to(device))

    trained_state = state_copy(model)
    trained = evaluate_windows(forecast, windows, batch_size=batch_size)["mse"]
    model.load_state_dict(start)
    begin = evaluate_windows(forecast, windows, batch_size=batch_size)["mse"]
    kept = "trained" if trained < begin else "start"
    if kept == "trained":
        model.load_state_dict(trained_state)
    model.train(was_training)
    return kept, {"start": begin, "trained": trained}
