"""Triton kernel for one recurrent step of the selective scan (streaming inference)."""

from __future__ import annotations

import torch

from ._fast_launch import launch
from ._launch_math import cdiv, next_power_of_2
from ._validate import check_state_update_args
from .scan_tuning import ScanTuning, preset

try:
    import triton
except ImportError:  # pragma: no cover - exercised only where triton is missing
    triton = None

if triton is not None:
    import triton.language as tl

    from .scan_triton_common import softplus as _softplus

    def _working_dtype(args) -> tl.dtype:
        """ACC: float64 where the state or the input is, float32 otherwise."""
        return tl.float64 if torch.float64 in (args["STATE"].dtype, args["X"].dtype) else tl.float32

    @triton.heuristics({"ACC": _working_dtype})
    @triton.jit
    def _state_update_kernel(
        STATE, X, DT, A, B, C, D, Z, BIAS, OUT,
        dim, d_state, channels_per_group, groups,
        HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
        ACC: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
    ):
        pid_b = tl.program_id(0)
        d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
        n = tl.arange(0, BLOCK_N)
        d_mask = d < dim
        dn_mask = d_mask[:, None] & (n < d_state)[None, :]
        group = d // channels_per_group  # (BLOCK_D,): a block may straddle groups
        bc_offs = (pid_b * groups + group)[:, None] * d_state + n[None, :]
        state_offs = (pid_b * dim + d)[:, None] * d_state + n[None, :]

        x = tl.load(X + pid_b * dim + d, mask=d_mask, other=0.0).to(ACC)
        dt = tl.load(DT + pid_b * dim + d, mask=d_mask, other=0.0).to(ACC)
        if HAS_BIAS:
            dt = dt + tl.load(BIAS + d, mask=d_mask, other=0.0).to(ACC)
        if SOFTPLUS:
            dt = _softplus(dt)
        A_tile = tl.load(A + d[:, None] * d_state + n[None, :], mask=dn_mask, other=0.0).to(ACC)
        B_tile = tl.load(B + bc_offs, mask=dn_mask, other=0.0).to(ACC)
        C_tile = tl.load(C + bc_offs, mask=dn_mask, other=0.0).to(ACC)
        h = tl.load(STATE + state_offs, mask=dn_mask, other=0.0).to(ACC)
        h = tl.exp(dt[:, None] * A_tile) * h + (dt * x)[:, None] * B_tile
        tl.store(STATE + state_offs, h.to(STATE.dtype.element_ty), mask=dn_mask)
        y = tl.sum(h * C_tile, axis=1)
        if HAS_D:
            y = y + tl.load(D + d, mask=d_mask, other=0.0).to(ACC) * x
        if HAS_Z:
            zv = tl.load(Z + pid_b * dim + d, mask=d_mask, other=0.0).to(ACC)
            y = y * zv * tl.sigmoid(zv)
        tl.store(OUT + pid_b * dim + d, y.to(OUT.dtype.element_ty), mask=d_mask)


def selective_state_update_triton(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False,
                                  tuning: ScanTuning | None = None):
    """One recurrent step on the GPU; updates ``state`` in place, returns y (batch, dim). Of the tuning (default:
    the preset of the state's device) only fast_launch applies."""
    groups = check_state_update_args(state, x, dt, A, B, C, D, z, dt_bias)
    if not state.is_contiguous():
        raise ValueError("selective_state_update: state must be contiguous (it is updated in place)")
    batch, dim, d_state = state.shape
    block_n = next_power_of_2(d_state)
    block_d = max(1, min(64, 2048 // block_n))
    out = torch.empty_like(x)
    dummy = x
    grid = (batch, cdiv(dim, block_d))
    launch(_state_update_kernel, grid,
           (state, x.contiguous(), dt.contiguous(), A.contiguous(), B.contiguous(), C.contiguous(),
            D if D is not None else dummy, z.contiguous() if z is not None else dummy,
            dt_bias if dt_bias is not None else dummy, out, dim, d_state, dim // groups, groups),
           dict(HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=dt_bias is not None, SOFTPLUS=dt_softplus,
                BLOCK_D=block_d, BLOCK_N=block_n, enable_fp_fusion=True),  # FMAs, whatever the default (off from 3.10)
           (tuning or preset(state.device)).fast_launch)
    return out
