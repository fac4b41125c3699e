"""RMSNorm: the pre-norm of every residual block and the encoder's final norm."""

from __future__ import annotations

import torch
from torch import nn


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * weight over the last axis.

    Computed in float32 at least (bf16/fp16 inputs lose too much in the mean of squares), returned in
    the input's dtype; float64 inputs stay float64.

    Example:
        >>> norm = RMSNorm(8)
        >>> norm(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, d_model: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        work = torch.promote_types(x.dtype, torch.float32)
        xw = x.to(work)
        scale = torch.rsqrt(xw.square().mean(-1, keepdim=True) + self.eps)
        return (xw * scale * self.weight.to(work)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"
