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
    """Score the trained ``model``, its ``start`` weights and (where the model has ``blended_state``) their
    even mix on ``windows`` (a SlidingWindows); leave the model holding the best of them there. Ties
    go to the simpler one: the start, then the mix.

    Returns (``"start"``, ``"blend"`` or ``"trained"``, {candidate: mse}).
    """
    from ..baselines import evaluate_windows

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
    scores = {}
    for name, state in candidates.items():
        model.load_state_dict(state)
        scores[name] = evaluate_windows(forecast, windows, batch_size=batch_size)["mse"]
    kept = min(scores, key=lambda name: (scores[name], list(candidates).index(name)))
    model.load_state_dict(candidates[kept])
    model.train(was_training)
    return kept, scores
