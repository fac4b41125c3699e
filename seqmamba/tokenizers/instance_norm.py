"""Instance normalisation (RevIN's maths, without parameters): shared by the tokenizer and the RevIN module."""

from __future__ import annotations

from typing import NamedTuple

import torch


class InstanceStats(NamedTuple):
    """Per-window statistics of instance normalisation, each ``(batch, 1, C)``."""

    mean: torch.Tensor
    std: torch.Tensor


def instance_normalize(x: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, InstanceStats]:
    """RevIN's normalisation: each window and variable to mean 0, std 1 over time.

    ``x``: ``(batch, L, C)``. The statistics are detached (as in RevIN): the model learns to
    forecast the normalised shape, the level and spread come back unchanged.
    """
    mean = x.mean(dim=1, keepdim=True).detach()  # (batch, 1, C)
    std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + eps).detach()  # (batch, 1, C)
    return (x - mean) / std, InstanceStats(mean, std)


def instance_denormalize(y: torch.Tensor, stats: InstanceStats) -> torch.Tensor:
    """Inverse of :func:`instance_normalize` on a forecast ``(batch, H, C)``."""
    return y * stats.std + stats.mean
