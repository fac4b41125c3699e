"""MambaEncoder: causal and bidirectional stacks, combine modes, gradient checkpointing."""

import pytest
import torch

from seqmamba import MambaConfig, MambaEncoder
from seqmamba.modules.bimamba import BiMambaMixer


def _encoder(seed=0, **kwargs) -> MambaEncoder:
    torch.manual_seed(seed)
    cfg = MambaConfig(**{"d_model": 16, "n_layers": 2, "d_state": 4, **kwargs})
    return MambaEncoder(cfg).double()


def _x(L=32, batch=2, seed=1):
    return torch.randn(batch, L, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def test_causal_outputs_ignore_the_future():
    enc = _encoder()
    x = _x()
    y = enc(x)
    for t in (0, 9, 30):
        x2 = x.clone()
        x2[:, t + 1 :] = torch.randn_like(x2[:, t + 1 :])
        y2 = enc(x2)
        assert torch.equal(y2[:, : t + 1], y[:, : t + 1])
        assert not torch.allclose(y2[:, t + 1 :], y[:, t + 1 :])


@pytest.mark.parametrize("combine", ["add", "gate"])
def test_bidirectional_outputs_depend_on_both_sides(combine):
    enc = _encoder(bidirectional=True, bidirectional_combine=combine)
    x = _x()
    y = enc(x)
    t = 15
    for side in (slice(0, t), slice(t + 1, None)):
        x2 = x.clone()
        x2[:, side] += 1.0
        change = (enc(x2)[:, t] - y[:, t]).abs().max()
        assert change > 1e-6, f"position {t} does not see {side}"


def test_gate_starts_as_the_average_of_both_directions():
    torch.manual_seed(0)
    add_cfg = MambaConfig(d_model=16, n_layers=1, d_state=4, bidirectional=True)
    gate_cfg = MambaConfig(
        d_model=16, n_layers=1, d_state=4, bidirectional=True, bidirectional_combine="gate"
    )
    add, gate = BiMambaMixer(add_cfg).double(), BiMambaMixer(gate_cfg).double()
    missing, unexpected = gate.load_state_dict(add.state_dict(), strict=False)
    assert sorted(missing) == ["gate_proj.bias", "gate_proj.weight"] and not unexpected
    x = _x(L=20)
    torch.testing.assert_close(gate(x), 0.5 * add(x), rtol=1e-12, atol=1e-14)
    gate(x).square().sum().backward()
    assert gate.gate_proj.weight.grad.abs().max() > 0  # the gate can learn away from 0.5


def test_bidirectional_directions_share_projections():
    enc = _encoder(bidirectional=True)
    mixer = enc.layers[0].mixer
    names = {n for n, _ in mixer.named_parameters()}
    assert {"in_proj.weight", "out_proj.weight"} <= names
    assert {"ssm_fwd.A_log", "ssm_rev.A_log", "ssm_fwd.conv1d.weight", "ssm_rev.conv1d.weight"} <= names
    assert not any(n.startswith(("in_proj_", "out_proj_")) for n in names)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradient_checkpointing_gives_the_same_gradients(bidirectional):
    enc = _encoder(bidirectional=bidirectional, bidirectional_combine="gate" if bidirectional else "add")
    x = _x(L=24).requires_grad_()
    grads = []
    for flag in (False, True):
        enc.gradient_checkpointing = flag
        enc.zero_grad()
        x.grad = None
        enc(x).sin().sum().backward()
        grads.append([x.grad.clone()] + [p.grad.clone() for p in enc.parameters()])
    assert enc.config.gradient_checkpointing
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_float32_forward_and_backward():
    torch.manual_seed(0)
    enc = MambaEncoder(MambaConfig(d_model=8, n_layers=1, d_state=4, bidirectional=True))
    x = torch.randn(2, 17, 8, requires_grad=True)
    y = enc(x)
    assert y.dtype == torch.float32 and y.shape == (2, 17, 8)
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


def test_bad_input_shape_and_rc_flag_are_explained():
    enc = _encoder()
    with pytest.raises(ValueError, match="d_model=16"):
        enc(torch.randn(2, 5, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="DNAEncoder"):
        MambaEncoder(MambaConfig(d_model=8, n_layers=1, rc_equivariant=True))


@pytest.mark.parametrize("with_mask", [False, True])
def test_bidirectional_mixer_gives_the_same_through_the_one_call_and_the_two(monkeypatch, with_mask):
    """Where the scan fuses both directions (a GPU, up to FUSED_MAX_ELEMENTS), the mixer builds both
    directions' inputs and makes one call; elsewhere it runs the two branches. Same values and gradients."""
    from seqmamba.modules import bimamba

    torch.manual_seed(0)
    mixer = BiMambaMixer(MambaConfig(d_model=16, n_layers=1, d_state=4, bidirectional=True)).double()
    x = _x(L=20)
    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[1, 15:] = False  # the second row padded at its end
    results = []
    for fused in (False, True):
        monkeypatch.setattr(bimamba, "fuses", lambda u, fused=fused: fused)
        mixer.zero_grad()
        y = mixer(x, mask=mask if with_mask else None)
        y.square().sum().backward()
        results.append([y.detach()] + [p.grad.clone() for p in mixer.parameters()])
    for two, one in zip(*results):
        torch.testing.assert_close(one, two, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_rms_norm_backward_equals_autograds_of_the_formula(dtype):
    from seqmamba.modules.norm import RMSNorm, rms_norm_ref

    torch.manual_seed(0)
    norm = RMSNorm(6, eps=1e-5).to(torch.float64 if dtype == torch.float64 else torch.float32)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    x = (3 * torch.randn(2, 5, 6)).to(dtype).requires_grad_()
    g = torch.randn(2, 5, 6).to(dtype)
    fast = norm(x)
    grads = torch.autograd.grad(fast, [x, norm.weight], g)
    ref = rms_norm_ref(x, norm.weight, norm.eps)
    ref_grads = torch.autograd.grad(ref, [x, norm.weight], g)
    assert torch.equal(fast, ref)  # the same formula, op for op
    tol = dict(atol=1e-2, rtol=1e-2) if dtype == torch.bfloat16 else {}
    for got, want in zip(grads, ref_grads, strict=True):
        assert got.dtype == want.dtype
        torch.testing.assert_close(got, want, **tol)
    if dtype == torch.float64:
        assert torch.autograd.gradcheck(lambda a, w: RMSNorm.forward(norm, a), (x.detach().requires_grad_(),
                                                                                norm.weight))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_rms_norm_without_autograd_is_the_formula(dtype):
    """Without autograd the norm is torch's rms_norm (one fused kernel on a GPU): on a CPU, the formula bit for bit."""
    from seqmamba.modules.norm import RMSNorm, rms_norm_ref

    norm = RMSNorm(16).to(torch.float64 if dtype == torch.float64 else torch.float32)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        x = torch.randn(3, 7, 16, generator=torch.Generator().manual_seed(2)).to(dtype)
        got = norm(x)
    assert got.dtype == dtype and torch.equal(got, rms_norm_ref(x, norm.weight, norm.eps))


def test_rms_norm_keeps_its_input_and_one_scale_per_row_for_the_backward():
    from seqmamba.modules.norm import RMSNorm

    norm = RMSNorm(8)
    x = torch.randn(3, 4, 8, requires_grad=True)
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(tuple(t.shape)) or t, lambda t: t):
        norm(x)
    assert sorted(kept) == [(3, 4, 1), (3, 4, 8), (8,)]  # x, weight, 1/rms: no normalised copy of x
