"""Linear maps between the block's two layouts without layout copies.

The residual stream is channels-last, (batch, L, d_model); the conv and the scan read channels-first,
(batch, d_inner, L). `torch.matmul(weight, x)` on a (batch, K, L) input folds batch and L together:
it copies x transposed, runs one GEMM, then copies its result back to channels-first. At L = 2^20 those
copies took 55 of the block forward's 69 ms on an H100 (benchmarks/block.py's profile). A batched GEMM
reads and writes each layout as it lies, with the weight broadcast over the batch (a stride-0 view).

Reference: ``F.linear(x.transpose(1, 2), weight, bias).transpose(1, 2)``; tests/seqmamba/test_mamba_block.py holds
these equal to it and checks that no copy of an activation is made.
"""

from __future__ import annotations

import torch


def gemm_input(t: torch.Tensor) -> torch.Tensor:
    """t in the dtype a GEMM under autocast runs in (t itself outside autocast). An activation that feeds two
    GEMMs is cast once this way: autocast would cast it, and keep the cast for the backward, once per GEMM.

    Example:
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     gemm_input(torch.ones(2)).dtype
        torch.bfloat16
    """
    if torch.is_autocast_enabled(t.device.type) and t.is_floating_point():
        return t.to(torch.get_autocast_dtype(t.device.type))
    return t


def channels_first_linear(weight: torch.Tensor, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """weight (out, in) over the channels of x (batch, in, L) -> (batch, out, L), contiguous.

    x may be any view whose last or middle dimension has stride 1 (a transposed channels-last tensor too).

    Example:
        >>> w, x = torch.randn(3, 4), torch.randn(2, 4, 5)
        >>> torch.allclose(channels_first_linear(w, x), torch.einsum("ok,bkl->bol", w, x), atol=1e-6)
        True
    """
    w = gemm_input(weight)  # cast before the broadcast: autocast would cast the (batch, out, in) view, a copy a row
    out = torch.bmm(w.expand(x.shape[0], *w.shape), x)  # (batch, out, L)
    return out if bias is None else out + bias[:, None].to(out.dtype)


def channels_last_linear(weight: torch.Tensor, y: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """weight (out, in) over the channels of a channels-first y (batch, in, L) -> (batch, L, out), contiguous.

    Example:
        >>> w, y = torch.randn(3, 4), torch.randn(2, 4, 5)
        >>> torch.allclose(channels_last_linear(w, y), torch.einsum("ok,bkl->blo", w, y), atol=1e-6)
        True
    """
    w = gemm_input(weight).t()  # (in, out), cast before the broadcast as above
    out = torch.bmm(y.transpose(1, 2), w.expand(y.shape[0], *w.shape))  # (batch, L, out)
    return out if bias is None else out + bias.to(out.dtype)
