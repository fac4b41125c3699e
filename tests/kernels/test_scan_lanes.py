"""The lane-tiled forward (kernels/scan_triton_lanes.py, an experiment) against the reference scan."""

from __future__ import annotations

import pytest
import torch
from scan_cases import DEVICE, Case

from seqmamba.kernels.scan import triton_usable
from seqmamba.kernels.scan_reference import selective_scan_ref

pytestmark = pytest.mark.skipif(not triton_usable(DEVICE), reason="needs triton (GPU or TRITON_INTERPRET=1)")


def lanes_forward(inputs: dict, softplus: bool, reverse: bool, lanes: int = 4, vec: int = 4, block_d: int = 2):
    import triton
    import triton.language as tl

    from seqmamba.kernels.scan_triton_lanes import scan_lanes_kernel

    u, delta, A, B, C, D, z, bias, h0 = (inputs[k] for k in
                                         ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "initial_state"))
    batch, dim, length = u.shape
    d_state = A.shape[1]
    Bg = (B[:, None] if B.dim() == 3 else B).contiguous()
    Cg = (C[:, None] if C.dim() == 3 else C).contiguous()
    groups = Bg.shape[1]
    blocks = triton.cdiv(dim // groups, block_d)
    n_tiles = triton.cdiv(length, lanes * vec)
    enter = (h0.reshape(batch, dim, 1, d_state) if h0 is not None
             else torch.zeros(batch, dim, 1, d_state, dtype=u.dtype, device=u.device)).clone()
    out, last = torch.empty_like(u), torch.empty(batch, dim, d_state, dtype=u.dtype, device=u.device)
    missing = u
    scan_lanes_kernel[(batch, groups * blocks, 1)](
        u, delta, (A * 1.4426950408889634).contiguous(), Bg, Cg, D if D is not None else missing,
        z if z is not None else missing, bias if bias is not None else missing, enter, out, last,
        dim, length, d_state, groups, dim // groups, blocks, n_tiles, n_tiles, 1,
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=bias is not None, SOFTPLUS=int(softplus),
        STORE_LAST=True, REVERSE=reverse, BC_WORDS=False, ACC=tl.float64, BLOCK_D=block_d, LANES=lanes, VEC=vec,
        BLOCK_N=triton.next_power_of_2(d_state))
    return out, last


CASES = {
    "default": Case(),
    "reverse": Case(reverse=True, length=70),
    "groups": Case(dim=8, groups=2, length=45),
    "bare-reverse": Case(has_D=False, has_z=False, has_bias=False, softplus=False, has_h0=False, reverse=True),
    "N=16": Case(batch=1, d_state=16, dim=3, length=40),
}


@pytest.mark.parametrize("name", list(CASES))
def test_lanes_forward_matches_reference(name):
    case = CASES[name]
    inputs = {k: (v.detach() if v is not None else None) for k, v in case.inputs().items()}
    y_ref, h_ref = selective_scan_ref(**inputs, delta_softplus=case.softplus, return_last_state=True,
                                      reverse=case.reverse)
    y, h = lanes_forward(inputs, case.softplus, case.reverse)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(h, h_ref, rtol=1e-10, atol=1e-10)
