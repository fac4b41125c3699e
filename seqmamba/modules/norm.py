"""RMSNorm: the pre-norm of every residual block and the encoder's final norm.

The forward is the formula; the backward is written out (`_RMSNormFunction`) so that it keeps only the input
and one reciprocal RMS per row, not the normalised activations autograd would keep (one float32 copy of the
residual stream per norm, about 1 KB per token per layer at d_model 256: benchmarks/saved_activations.py).
`rms_norm_ref` is the formula under autograd; tests/seqmamba/test_encoder.py holds the two equal, gradients too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rms_norm_ref(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) * weight over the last axis, in float32 at least, in x's dtype; autograd's.

    Example:
        >>> rms_norm_ref(torch.tensor([[3.0, 4.0]]), torch.ones(2), 0.0)
        tensor([[0.8485, 1.1314]])
    """
    work = torch.promote_types(x.dtype, torch.float32)
    xw = x.to(work)
    scale = torch.rsqrt(xw.square().mean(-1, keepdim=True) + eps)  # (..., 1)
    return (xw * scale * weight.to(work)).to(x.dtype)


class _RMSNormFunction(torch.autograd.Function):
    """`rms_norm_ref`'s value, with a backward that recomputes the normalised x from x and the saved 1/rms."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        work = torch.promote_types(x.dtype, torch.float32)
        xw = x.to(work)
        scale = torch.rsqrt(xw.square().mean(-1, keepdim=True) + eps)  # (..., 1): 1 / rms of each row
        ctx.save_for_backward(x, weight, scale)
        return (xw * scale * weight.to(work)).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        x, weight, scale = ctx.saved_tensors
        work = scale.dtype
        normed = x.to(work) * scale  # (..., d), the forward's x / rms
        g = grad.to(work)
        grad_x = grad_w = None
        if ctx.needs_input_grad[1]:
            grad_w = (g * normed).reshape(-1, normed.shape[-1]).sum(0).to(weight.dtype)  # (d,)
        if ctx.needs_input_grad[0]:
            g_normed = g * weight.to(work)
            # d(x * s)/dx with s = (mean(x^2) + eps)^-1/2: s * (g - normed * mean(g * normed))
            grad_x = (scale * (g_normed - normed * (g_normed * normed).mean(-1, keepdim=True))).to(x.dtype)
        return grad_x, grad_w, None


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
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return _RMSNormFunction.apply(x, self.weight, self.eps)
        # Without autograd: torch's rms_norm, one fused kernel on a GPU for the formula's five or six (each a host
        # launch at short inputs); on a CPU it is the formula, bit for bit.
        work = torch.promote_types(x.dtype, torch.float32)
        return F.rms_norm(x.to(work), self.weight.shape, self.weight.to(work), self.eps).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"
