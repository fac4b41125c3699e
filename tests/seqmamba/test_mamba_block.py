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


# -- the projections between the two layouts (seqmamba/modules/channels.py) ----------------------------


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_channel_linears_equal_f_linear_with_their_gradients(batch, bias):
    from seqmamba.modules.channels import channels_first_linear, channels_last_linear

    torch.manual_seed(0)
    w = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True) if bias else None
    x = torch.randn(batch, 5, 7, dtype=torch.float64, requires_grad=True)  # (batch, in, L)
    views = {"contiguous": x, "transposed channels-last": x.transpose(1, 2).contiguous().transpose(1, 2)}
    for name, inp in views.items():
        for fast, layout in ((channels_first_linear, lambda o: o.transpose(1, 2)), (channels_last_linear, None)):
            ref = F.linear(inp.transpose(1, 2), w, b)  # (batch, L, out)
            out = fast(w, inp, b)
            out_l = layout(out) if layout else out
            assert out.is_contiguous(), (fast.__name__, name)
            torch.testing.assert_close(out_l, ref, msg=f"{fast.__name__} on {name}")
            g = torch.randn_like(ref)
            grads = torch.autograd.grad(out_l, [t for t in (w, b, x) if t is not None], g)
            ref_grads = torch.autograd.grad(ref, [t for t in (w, b, x) if t is not None], g)
            for got, want in zip(grads, ref_grads):
                torch.testing.assert_close(got, want)


class _Copies(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the ops that copy data (clone, copy_, contiguous's clone, dtype casts) and their sizes."""

    COPYING = ("aten.clone", "aten.copy_", "aten._to_copy")

    def __init__(self):
        super().__init__()
        self.copies = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if str(func).startswith(self.COPYING) and isinstance(out, torch.Tensor):
            self.copies.append((str(func), out.numel()))
        return out


@pytest.mark.parametrize("batch", [1, 4])
def test_block_projections_copy_no_activation(batch):
    """in_proj, x_proj, dt_proj and out_proj read and write the layouts as they lie: no copy of anything as
    large as an activation (torch.matmul's 2-D @ 3-D path copied three per block: issue 22's profile)."""
    from seqmamba.modules.block import project_in
    from seqmamba.modules.channels import channels_last_linear

    torch.manual_seed(0)
    block = MambaBlock(d_model=16, d_state=4)
    length = 64
    hidden = torch.randn(batch, length, 16)
    small = 2 * block.d_state * batch * length  # B and C are made contiguous for the scan: (batch, N, L) each
    with torch.no_grad(), _Copies() as log:
        x, z = project_in(block.in_proj, hidden)
        dt, _b, _c = block.ssm._project(x)
        out = channels_last_linear(block.out_proj.weight, x, block.out_proj.bias)
    assert x.is_contiguous() and z.is_contiguous() and dt.is_contiguous() and out.is_contiguous()
    big = [(op, n) for op, n in log.copies if n > small]
    assert big == [], big


def test_in_proj_under_autocast_casts_its_input_once():
    """Both in_proj GEMMs read one bf16 cast of hidden: one cast made, and one kept for the backward (autocast
    alone would cast, and keep, it once per GEMM)."""
    from seqmamba.modules.block import project_in

    torch.manual_seed(0)
    block = MambaBlock(d_model=16, d_state=4)
    hidden = torch.randn(2, 40, 16, requires_grad=True)  # L 40: no weight (32 x 16) has its shape
    kept = set()

    def pack(t):
        if t.dtype == torch.bfloat16 and t.shape in ((2, 40, 16), (2, 16, 40)):
            kept.add(t.untyped_storage().data_ptr())
        return t

    with _Copies() as log, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            x, z = project_in(block.in_proj, hidden)
    casts_of_hidden = [n for op, n in log.copies if op.startswith("aten._to_copy") and n == hidden.numel()]
    assert len(casts_of_hidden) == 1 and len(kept) == 1
    (x.float().sum() + z.float().sum()).backward()
    assert hidden.grad is not None and hidden.grad.dtype == torch.float32
