"""MambaBlock and the selective SSM branch: initialisation, causality, and the paper's equations."""

import math

import pytest
import torch
import torch.nn.functional as F

from seqmamba import MambaBlock
from seqmamba.kernels import depthwise_conv1d_ref as depthwise_conv
from seqmamba.kernels import selective_scan_ref
from seqmamba.modules.ssm import SelectiveSSM


def _block(seed=0, **kwargs):
    torch.manual_seed(seed)
    return MambaBlock(d_model=16, d_state=4, **kwargs).double()


def test_initialisation():
    block = MambaBlock(d_model=40, d_state=4)
    ssm = block.ssm
    assert ssm.dt_rank == 3 and block.d_inner == 80
    assert torch.allclose(-torch.exp(ssm.A_log), -torch.arange(1, 5.0).expand(80, 4))
    assert torch.equal(ssm.D.detach(), torch.ones(80))
    dt = F.softplus(ssm.dt_proj.bias.detach())
    assert dt.min() >= 1e-3 * (1 - 1e-5) and dt.max() <= 1e-1 * (1 + 1e-5)
    assert ssm.A_log._no_weight_decay and ssm.D._no_weight_decay
    assert ssm.conv1d.weight.shape == (80, 1, 4)


def _paper_block(block: MambaBlock, x: torch.Tensor) -> torch.Tensor:
    """The Mamba block written out from the paper, with the sequential reference scan."""
    ssm = block.ssm
    xz = x @ block.in_proj.weight.T  # (batch, L, 2*d_inner)
    u, z = xz.chunk(2, dim=-1)
    k = ssm.d_conv
    padded = F.pad(u, (0, 0, k - 1, 0))  # zeros before t = 0
    w = ssm.conv1d.weight[:, 0, :]  # (d_inner, K)
    conv = sum(padded[:, j : j + u.shape[1]] * w[:, j] for j in range(k)) + ssm.conv1d.bias
    u = F.silu(conv)  # (batch, L, d_inner)
    dbl = u @ ssm.x_proj.weight.T
    dt_low, B, C = dbl.split([ssm.dt_rank, ssm.d_state, ssm.d_state], dim=-1)
    dt = F.softplus(dt_low @ ssm.dt_proj.weight.T + ssm.dt_proj.bias)
    A = -torch.exp(ssm.A_log)
    y = selective_scan_ref(
        u.transpose(1, 2), dt.transpose(1, 2), A, B.transpose(1, 2), C.transpose(1, 2), ssm.D,
        z.transpose(1, 2),
    )
    return y.transpose(1, 2) @ block.out_proj.weight.T


def test_block_matches_the_paper_equations():
    block = _block()
    x = torch.randn(2, 23, 16, dtype=torch.float64)
    torch.testing.assert_close(block(x), _paper_block(block, x), rtol=1e-10, atol=1e-12)


def test_block_is_causal():
    block = _block()
    x = torch.randn(1, 30, 16, dtype=torch.float64)
    y = block(x)
    for t in (0, 11, 28):
        x2 = x.clone()
        x2[:, t + 1 :] += torch.randn_like(x2[:, t + 1 :])
        y2 = block(x2)
        assert torch.equal(y2[:, : t + 1], y[:, : t + 1])
        assert not torch.allclose(y2[:, t + 1], y[:, t + 1])


def test_anticausal_conv_is_the_causal_conv_of_the_reversed_sequence():
    x = torch.randn(2, 6, 13, dtype=torch.float64)
    w = torch.randn(6, 1, 4, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    expected = depthwise_conv(x.flip(-1), w, b, reverse=False).flip(-1)
    torch.testing.assert_close(depthwise_conv(x, w, b, reverse=True), expected, rtol=0, atol=1e-13)


def test_reverse_branch_is_a_causal_branch_on_the_reversed_sequence():
    torch.manual_seed(1)
    rev = SelectiveSSM(d_inner=8, d_state=4, dt_rank=1, reverse=True).double()
    fwd = SelectiveSSM(d_inner=8, d_state=4, dt_rank=1, reverse=False).double()
    fwd.load_state_dict(rev.state_dict())
    x, z = torch.randn(2, 8, 19, dtype=torch.float64), torch.randn(2, 8, 19, dtype=torch.float64)
    expected = fwd(x.flip(-1), z.flip(-1)).flip(-1)
    torch.testing.assert_close(rev(x, z), expected, rtol=1e-10, atol=1e-12)


def test_reverse_branch_refuses_state():
    rev = SelectiveSSM(d_inner=8, d_state=4, reverse=True)
    x = torch.randn(1, 8, 5)
    with pytest.raises(ValueError, match="causal"):
        rev(x, x, (torch.zeros(1, 8, 4), torch.zeros(1, 8, 4)))
    with pytest.raises(ValueError, match="reverse"):
        rev.step(x[..., 0], x[..., 0], torch.zeros(1, 8, 4), torch.zeros(1, 8, 4))


def test_dt_rank_default_is_ceil_d_model_over_16():
    assert MambaBlock(d_model=17, d_state=4).ssm.dt_rank == math.ceil(17 / 16)
