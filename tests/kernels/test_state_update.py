"""One recurrent step: Triton against torch, and stepping through a sequence equals the scan."""

import pytest
import torch
from scan_cases import DEVICE

from seqmamba.kernels import selective_scan, selective_state_update, selective_state_update_ref
from seqmamba.kernels.scan import triton_usable


def _step_inputs(batch=3, dim=8, N=5, groups=None, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    bc = (batch, N) if groups is None else (batch, groups, N)

    def r(*s):
        return torch.randn(*s, generator=g).to(device=DEVICE, dtype=dtype)

    return r(batch, dim, N), dict(x=r(batch, dim), dt=r(batch, dim), A=-r(dim, N).abs(), B=r(*bc), C=r(*bc),
                                  D=r(dim), z=r(batch, dim), dt_bias=r(dim))


@pytest.mark.skipif(
    not triton_usable(DEVICE),
    reason="the Triton step kernel needs the triton package (Linux), and CUDA or TRITON_INTERPRET=1",
)
@pytest.mark.parametrize("groups", [None, 2, 8])
def test_triton_step_matches_torch(groups):
    from seqmamba.kernels.state_update_triton import selective_state_update_triton

    state, args = _step_inputs(groups=groups)
    s_ref, s_tri = state.clone(), state.clone()
    y_ref = selective_state_update_ref(s_ref, **args, dt_softplus=True)
    y_tri = selective_state_update_triton(s_tri, **args, dt_softplus=True)
    torch.testing.assert_close(y_tri, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(s_tri, s_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("groups", [None, 2])
def test_stepping_equals_scan(dtype, groups):
    batch, dim, N, L = 2, 4, 3, 12
    g = torch.Generator().manual_seed(5)

    def r(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64).to(device=DEVICE, dtype=dtype)

    bc = (batch, N, L) if groups is None else (batch, groups, N, L)
    u, delta, z, B, C = r(batch, dim, L), r(batch, dim, L), r(batch, dim, L), r(*bc), r(*bc)
    A, D, bias = -r(dim, N).abs(), r(dim), r(dim)
    y_scan, last = selective_scan(u, delta, A, B, C, D, z, bias, True, True)
    state = torch.zeros(batch, dim, N, device=DEVICE, dtype=dtype)
    ys = [selective_state_update(state, u[..., t], delta[..., t], A, B[..., t], C[..., t], D, z[..., t], bias, True)
          for t in range(L)]
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(torch.stack(ys, -1), y_scan, rtol=tol, atol=tol)
    torch.testing.assert_close(state, last.to(dtype), rtol=tol, atol=tol)


def test_bad_step_arguments():
    state, args = _step_inputs()
    args["B"] = torch.randn(3, 4)
    with pytest.raises(ValueError, match=r"B must be \(batch, N\) or \(batch, G, N\)"):
        selective_state_update(state, **args)
    state, args = _step_inputs()
    with pytest.raises(ValueError, match=r"x must be \(batch, dim\) = \(3, 8\)"):
        selective_state_update(state, **{**args, "x": torch.randn(3, 7)})
