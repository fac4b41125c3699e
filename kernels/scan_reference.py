"""The selective scan written as its recurrence, one step at a time.

Slow and obvious on purpose: every other backend is tested against it. Works in any float dtype,
float64 included (then the state is float64 too).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validate import check_scan_args, grouped, state_dtype


def selective_scan_ref(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    *,
    reverse: bool = False,
    initial_state: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t;  y_t = <C_t, h_t> + D u_t;  y *= silu(z).

    Shapes as in `seqmamba.kernels.selective_scan`; differentiable through plain autograd.
    """
    shape = check_scan_args(u, delta, A, B, C, D, z, delta_bias, initial_state)
    work = state_dtype(u, delta, A, B, C, D, z, delta_bias, initial_state)
    repeat = shape.dim // shape.groups

    dt = delta.to(work)  # (batch, dim, L)
    if delta_bias is not None:
        dt = dt + delta_bias.to(work)[:, None]
    if delta_softplus:
        dt = F.softplus(dt)
    x = u.to(work)  # (batch, dim, L)
    a = A.to(work)  # (dim, N)
    b = grouped(B).to(work).repeat_interleave(repeat, dim=1)  # (batch, dim, N, L)
    c = grouped(C).to(work).repeat_interleave(repeat, dim=1)  # (batch, dim, N, L)

    if initial_state is None:
        h = x.new_zeros(shape.batch, shape.dim, shape.d_state)  # (batch, dim, N)
    else:
        h = initial_state.to(work)
    ys = [None] * shape.length
    steps = range(shape.length - 1, -1, -1) if reverse else range(shape.length)
    for t in steps:
        h = torch.exp(dt[:, :, t, None] * a) * h + (dt[:, :, t] * x[:, :, t])[:, :, None] * b[:, :, :, t]
        ys[t] = (h * c[:, :, :, t]).sum(-1)  # (batch, dim)
    y = torch.stack(ys, dim=-1) if ys else x.new_zeros(x.shape)  # (batch, dim, L)
    if D is not None:
        y = y + D.to(work)[:, None] * x
    if z is not None:
        y = y * F.silu(z.to(work))
    y = y.to(u.dtype)
    return (y, h) if return_last_state else y
