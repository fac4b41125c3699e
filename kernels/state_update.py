"""`selective_state_update`: advance the scan's state by one token, in place (O(1) per token)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validate import check_state_update_args
from .backend import choose_backend


def selective_state_update_ref(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False):
    """One step of the recurrence in torch ops; updates ``state`` in place and returns y (batch, dim)."""
    groups = check_state_update_args(state, x, dt, A, B, C, D, z, dt_bias)
    dim = state.shape[1]
    work = torch.float64 if state.dtype == torch.float64 or x.dtype == torch.float64 else torch.float32
    repeat = dim // groups
    Bg = (B if B.dim() == 3 else B[:, None]).to(work).repeat_interleave(repeat, dim=1)  # (batch, dim, N)
    Cg = (C if C.dim() == 3 else C[:, None]).to(work).repeat_interleave(repeat, dim=1)  # (batch, dim, N)
    step = dt.to(work)  # (batch, dim)
    if dt_bias is not None:
        step = step + dt_bias.to(work)
    if dt_softplus:
        step = F.softplus(step)
    xw = x.to(work)
    h = torch.exp(step[..., None] * A.to(work)) * state.to(work) + (step * xw)[..., None] * Bg
    state.copy_(h)
    y = (h * Cg).sum(-1)
    if D is not None:
        y = y + D.to(work) * xw
    if z is not None:
        y = y * F.silu(z.to(work))
    return y.to(x.dtype)


def selective_state_update(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    dt_softplus: bool = False,
) -> torch.Tensor:
    """Advance ``state`` (batch, dim, N) by one token in place and return y (batch, dim).

    The same step as `selective_scan` at one position: x, dt, z are (batch, dim); B, C are (batch, N)
    or (batch, G, N). A Triton kernel where `choose_backend` takes Triton (CUDA tensors), torch ops elsewhere.

    Example:
        >>> import torch
        >>> from seqmamba.kernels import selective_state_update
        >>> state = torch.zeros(1, 4, 8)
        >>> y = selective_state_update(state, torch.ones(1, 4), torch.ones(1, 4) * 0.1,
        ...                            -torch.ones(4, 8), torch.ones(1, 8), torch.ones(1, 8))
        >>> y.shape
        torch.Size([1, 4])
    """
    if choose_backend("selective_state_update", "auto", state.device, 1) == "triton":
        from .state_update_triton import selective_state_update_triton

        return selective_state_update_triton(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)
    return selective_state_update_ref(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)
