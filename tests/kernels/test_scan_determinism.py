"""The Triton scan's deterministic backward: no atomic adds, the reference's gradients, the same bits every run,
and `torch.use_deterministic_algorithms(True)` as the switch users know."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from scan_cases import DEVICE, Case, assert_close, run, tuning

from seqmamba.kernels import (
    ScanDirection,
    selective_scan,
    selective_scan_bidirectional,
    selective_scan_bidirectional_ref,
)
from seqmamba.kernels.scan import triton_usable

pytestmark = pytest.mark.skipif(not triton_usable(DEVICE), reason="needs triton (CUDA, or TRITON_INTERPRET=1)")

# A backward block of 2 channels (bwd_tile_values 32 over 16-step tiles): several blocks share each group's dB and
# dC, which is where the atomic path adds in a varying order. (At the interpreter's defaults a group of up to 32
# channels is one block.)
SEVERAL_BLOCKS = dict(bwd_tile_values=32)


def blocks_per_group(case: Case, knobs: dict) -> int:
    from seqmamba.kernels import scan_triton

    u = case.inputs()["u"]
    return scan_triton._Plan(u, torch.zeros(case.dim, case.d_state), case.groups or 1, 1,
                             tuning(**knobs)).bwd_blocks_per_group


CASES = {  # the backward tests' shapes (test_scan_backends.py): (case, knobs, backward blocks per group)
    "groups-blocks": (Case(dim=16, groups=2, length=150, d_state=3, batch=1), SEVERAL_BLOCKS, 4),
    "groups-blocks-reverse": (Case(dim=16, groups=2, length=150, d_state=3, batch=1, reverse=True), SEVERAL_BLOCKS, 4),
    "shared-bc-batch2": (Case(dim=8, length=45, batch=2), SEVERAL_BLOCKS, 4),
    "reverse-groups-batch2": (Case(reverse=True, groups=3, dim=12, length=33), SEVERAL_BLOCKS, 2),
    "three-chunks-one-block": (Case(length=200, dim=3, d_state=3, batch=1), {}, 1),
}


@pytest.fixture
def atomic_adds(monkeypatch):
    """Counts the atomic read-modify-writes the interpreter runs (tl.atomic_add ends there)."""
    if DEVICE.type == "cuda":
        pytest.skip("counts the atomics of Triton's CPU interpreter")
    from triton.runtime import interpreter

    calls = []
    real = interpreter.InterpreterBuilder.create_atomic_rmw

    def counted(self, *args, **kwargs):
        calls.append(args[0])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(interpreter.InterpreterBuilder, "create_atomic_rmw", counted)
    return calls


@pytest.fixture
def deterministic_algorithms():
    """torch.use_deterministic_algorithms(True) for one test (which also fills torch.empty with NaN, so a slice
    of the partial buffer left unwritten would show)."""
    was, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn_only)


@pytest.mark.parametrize("name", list(CASES))
def test_deterministic_backward_matches_reference_float64(name):
    case, knobs, blocks = CASES[name]
    assert blocks_per_group(case, knobs) == blocks
    expected = run(case, case.inputs(seed=5), "reference")
    got = run(case, case.inputs(seed=5), "triton", tuning=tuning(**knobs), deterministic=True)
    assert_close(expected, got, rtol=1e-10, atol=1e-10, label=f"deterministic {name}")


def directions(case: Case, seed: int):
    fwd, rev = case.inputs(seed=seed), case.inputs(seed=seed + 1)
    names = ("u", "delta", "A", "B", "C", "D", "delta_bias")
    return ScanDirection(**{k: fwd[k] for k in names}), ScanDirection(**{k: rev[k] for k in names}), fwd["z"]


def bidirectional_grads(scan, case: Case, **kwargs):
    fwd, rev, z = directions(case, seed=3)
    y = torch.stack(scan(fwd, rev, z, delta_softplus=case.softplus, **kwargs))
    weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64).to(y.device)
    leaves = [t for t in (*fwd, *rev, z) if t is not None]
    return [y, *torch.autograd.grad((y.double() * weights).sum(), leaves)]


@pytest.mark.parametrize("case", [Case(dim=8, groups=2, length=45, batch=2), Case(length=200, dim=4, d_state=3)],
                         ids=["groups-blocks-batch2", "shared-bc-chunks"])
def test_deterministic_bidirectional_matches_two_reference_scans(case):
    """The second direction's programs write past the first's partial slices (the launch offsets its pointers)."""
    expected = bidirectional_grads(selective_scan_bidirectional_ref, case)
    got = bidirectional_grads(selective_scan_bidirectional, case, backend="triton", tuning=tuning(**SEVERAL_BLOCKS),
                              deterministic=True)
    for i, (e, g) in enumerate(zip(expected, got)):
        torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-9, msg=lambda m, i=i: f"output {i}: {m}")


SMALL = Case(dim=8, groups=2, length=40, d_state=3, batch=1)  # 2 blocks per group under SEVERAL_BLOCKS


def test_deterministic_backward_adds_nothing_atomically(atomic_adds):
    case, knobs = SMALL, SEVERAL_BLOCKS
    run(case, case.inputs(seed=1), "triton", tuning=tuning(**knobs))
    assert atomic_adds, "the default backward adds dB and dC atomically (else this probe counts nothing)"
    atomic_adds.clear()
    run(case, case.inputs(seed=1), "triton", tuning=tuning(**knobs), deterministic=True)
    bidirectional_grads(selective_scan_bidirectional, case, backend="triton", tuning=tuning(**knobs),
                        deterministic=True)
    assert atomic_adds == []


def test_use_deterministic_algorithms_selects_it(atomic_adds, deterministic_algorithms):
    """None follows PyTorch's setting; False still forces the atomics. Under the setting torch.empty is NaN-filled:
    the partial buffer is written whole."""
    case, knobs = dataclasses.replace(SMALL, reverse=True), SEVERAL_BLOCKS
    expected = run(case, case.inputs(seed=2), "reference")
    got = run(case, case.inputs(seed=2), "triton", tuning=tuning(**knobs))
    assert atomic_adds == []
    assert_close(expected, got, rtol=1e-10, atol=1e-10, label="under use_deterministic_algorithms")
    bidirectional_grads(selective_scan_bidirectional, SMALL, backend="triton", tuning=tuning(**knobs))
    assert atomic_adds == []
    run(case, case.inputs(seed=2), "triton", tuning=tuning(**knobs), deterministic=False)
    assert atomic_adds


@pytest.mark.parametrize("reverse", [False, True])
def test_two_runs_give_the_same_bits(reverse):
    """float32, as on a GPU, where the atomic path's order varies (the interpreter runs programs one by one):
    on a GPU 64 channels in 4 backward blocks of Hopper's 16, over several chunks."""
    if DEVICE.type == "cuda":
        case, knobs = Case(dim=64, length=3000, d_state=16, batch=2, reverse=reverse), None
    else:
        case, knobs = dataclasses.replace(SMALL, batch=2, reverse=reverse), tuning(**SEVERAL_BLOCKS)
    runs = [run(case, case.inputs(seed=4, dtype=torch.float32), "triton", tuning=knobs, deterministic=True)
            for _ in range(2)]
    for key in runs[0]:
        assert torch.equal(runs[0][key], runs[1][key]), key


def test_deterministic_takes_none_or_a_bool():
    x = Case().inputs()
    with pytest.raises(TypeError, match="deterministic must be None, True or False"):
        selective_scan(**x, deterministic="yes")
    with pytest.raises(TypeError, match="deterministic must be None, True or False"):
        selective_scan_bidirectional(*directions(Case(), seed=0), deterministic=1)
