"""`selective_scan_bidirectional`: both directions in one Triton launch against the two reference scans."""

from __future__ import annotations

import pytest
import torch
from scan_cases import DEVICE, Case

from seqmamba.kernels import ScanDirection, selective_scan_bidirectional, selective_scan_bidirectional_ref
from seqmamba.kernels.scan import triton_usable

BACKENDS = ["torch"] + (["triton"] if triton_usable(DEVICE) else [])
PER_DIRECTION = ("u", "delta", "A", "B", "C", "D", "delta_bias")


def directions(case: Case, seed: int):
    """Independent inputs for each direction (as a BiMamba block's two branches have) and one shared z."""
    fwd, rev = case.inputs(seed=seed), case.inputs(seed=seed + 1)
    make = lambda values: ScanDirection(**{k: values[k] for k in PER_DIRECTION})  # noqa: E731
    return make(fwd), make(rev), fwd["z"]


def outputs_and_grads(scan, case: Case, seed: int, **kwargs):
    fwd, rev, z = directions(case, seed)
    y = torch.stack(scan(fwd, rev, z, delta_softplus=case.softplus, **kwargs))  # (2, batch, dim, L)
    weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64).to(y.device)
    leaves = [t for t in (*fwd, *rev, z) if t is not None]
    grads = torch.autograd.grad((y.double() * weights).sum(), leaves)
    return [y, *grads]


CASES = {
    "chunks": Case(length=200, dim=3, d_state=3, batch=2),  # 3 chunks under the interpreter
    "groups": Case(dim=8, groups=2, length=45, batch=1),
    "bare": Case(has_D=False, has_z=False, has_bias=False, softplus=False, length=30),
    "L=1": Case(length=1),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_both_directions_match_two_reference_scans(backend, name):
    """Values and the gradients of every input of both directions and of the shared z."""
    case = CASES[name]
    expected = outputs_and_grads(selective_scan_bidirectional_ref, case, seed=3)
    got = outputs_and_grads(selective_scan_bidirectional, case, seed=3, backend=backend)
    assert len(expected) == len(got)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert e.shape == g.shape, f"{name} output {i}"
        torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-9, msg=lambda m, i=i: f"{name} output {i}: {m}")


def test_the_two_directions_must_agree_on_what_they_give():
    fwd, rev, z = directions(Case(), seed=0)
    with pytest.raises(ValueError, match="D must be given for both directions or neither"):
        selective_scan_bidirectional(fwd, rev._replace(D=None), z)
    with pytest.raises(ValueError, match="sizes differ"):
        selective_scan_bidirectional(fwd, directions(Case(length=5), seed=0)[1])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("why", ["size", "separate_directions"])
def test_large_calls_and_graphed_steps_run_two_scans_with_the_same_result(monkeypatch, backend, why):
    """Past FUSED_MAX_ELEMENTS, and within separate_directions (CUDA-graphed training steps), the directions run as
    two calls: the same values and gradients."""
    from seqmamba.kernels import scan_bidirectional, separate_directions

    case = CASES["chunks"]
    fused = outputs_and_grads(selective_scan_bidirectional, case, seed=5, backend=backend)
    if why == "size":
        monkeypatch.setattr(scan_bidirectional, "FUSED_MAX_ELEMENTS", 0)
        split = outputs_and_grads(selective_scan_bidirectional, case, seed=5, backend=backend)
    else:
        with separate_directions():
            assert not scan_bidirectional.fuses(torch.zeros(2, 4, 100), backend="triton")
            split = outputs_and_grads(selective_scan_bidirectional, case, seed=5, backend=backend)
        assert scan_bidirectional.fuses(torch.zeros(2, 4, 100), backend="triton")  # back, on leaving
    for f, s in zip(fused, split):
        torch.testing.assert_close(f, s, rtol=1e-9, atol=1e-9)


def test_fuses_only_on_triton_and_up_to_the_size_limit(monkeypatch):
    from seqmamba.kernels import scan_bidirectional

    u = torch.zeros(2, 4, 100, device=DEVICE)
    assert not scan_bidirectional.fuses(u, backend="torch")
    assert not scan_bidirectional.fuses(u, backend="reference")
    assert scan_bidirectional.fuses(u, backend="triton")
    monkeypatch.setattr(scan_bidirectional, "FUSED_MAX_ELEMENTS", u.numel() - 1)
    assert not scan_bidirectional.fuses(u, backend="triton")
    monkeypatch.setattr(scan_bidirectional, "FUSED_MAX_ELEMENTS", u.numel())
    # "auto" picks triton on CUDA tensors only: on a CPU the directions are never fused
    assert scan_bidirectional.fuses(u) == (DEVICE.type == "cuda" and triton_usable(DEVICE))
