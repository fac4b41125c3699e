"""RevIN: reversible instance normalisation with an optional learnable affine (Kim et al., ICLR 2022)."""

from __future__ import annotations

import torch
from torch import nn

from ..tokenizers.instance_norm import InstanceStats, instance_denormalize, instance_normalize


class RevIN(nn.Module):
    """Normalises each input window per variable, and gives forecasts the window's level back.

    The statistics are returned, not stored on the module, so one module serves concurrent
    batches (and ``torch.compile``) without hidden state.

    Args:
        num_features: C, the number of variables.
        eps: added to the variance.
        affine: learn a per-variable scale and shift applied after normalising (undone before
            de-normalising).

    Example:
        >>> revin = RevIN(3)
        >>> x = torch.randn(4, 96, 3) * 5 + 2  # (batch, L, C)
        >>> z, stats = revin(x)
        >>> bool(z.mean(dim=1).abs().max() < 1e-4), stats.mean.shape
        (True, torch.Size([4, 1, 3]))
        >>> torch.allclose(revin.denormalize(z, stats), x, atol=1e-4)
        True
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.affine = num_features, eps, affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))  # (C,)
            self.bias = nn.Parameter(torch.zeros(num_features))  # (C,)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, InstanceStats]:
        """``x``: ``(batch, L, C)`` -> (normalised ``(batch, L, C)``, stats each ``(batch, 1, C)``)."""
        if x.shape[-1] != self.num_features:
            raise ValueError(f"RevIN({self.num_features}) got {x.shape[-1]} variables")
        z, stats = instance_normalize(x, self.eps)
        if self.affine:
            z = z * self.weight + self.bias
        return z, stats

    def denormalize(self, y: torch.Tensor, stats: InstanceStats) -> torch.Tensor:
        """A forecast ``(batch, H, C)`` in normalised space back to the input's level and spread."""
        if self.affine:
            # eps keeps a weight driven to zero from dividing by zero (as the reference RevIN does).
            y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return instance_denormalize(y, stats)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, affine={self.affine}"
