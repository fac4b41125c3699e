"""kernels/_fast_launch.py: the compiled kernel is reused only for calls that Triton would specialize alike."""

from __future__ import annotations

import types

import pytest
import torch

from seqmamba.kernels import _fast_launch


class FakeCompiled:
    """A compiled kernel: compiled[grid](*all_params) launches directly (recorded in its kernel)."""

    def __init__(self, kernel: FakeKernel) -> None:
        self.kernel = kernel

    def __getitem__(self, grid):
        return lambda *all_params: self.kernel.direct.append((grid, all_params))


class FakeKernel:
    """Stands in for a triton JITFunction: kernel[grid](*args, **kw) 'compiles' (recorded) and returns a
    FakeCompiled."""

    def __init__(self, names: list[str], constexprs: set[str]) -> None:
        self.__name__ = "fake_kernel"
        self.params = [types.SimpleNamespace(name=n, is_constexpr=n in constexprs) for n in names]
        self.compiles: list[tuple] = []
        self.direct: list[tuple] = []

    def __getitem__(self, grid):
        def jit_launch(*args, **kw):
            self.compiles.append((grid, args, kw))
            return FakeCompiled(self)
        return jit_launch


@pytest.fixture
def fake_gpu(monkeypatch):
    monkeypatch.setattr(_fast_launch, "interpreting", lambda: False)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(_fast_launch, "_compiled", {})


def test_second_call_alike_launches_the_compiled_kernel_directly(fake_gpu):
    kernel = FakeKernel(["X", "n", "FLAG", "BLOCK"], {"FLAG", "BLOCK"})
    x = torch.zeros(8)
    _fast_launch.launch(kernel, (4,), (x, 16), dict(BLOCK=32, FLAG=True, num_warps=2))
    assert len(kernel.compiles) == 1 and kernel.direct == []
    _fast_launch.launch(kernel, (5,), (torch.ones(8), 16), dict(BLOCK=32, FLAG=True, num_warps=2))
    assert len(kernel.compiles) == 1
    (grid, params), = kernel.direct
    assert grid == (5, 1, 1) and params[1:] == (16, True, 32)  # a 3-d grid; every parameter in the kernel's order


@pytest.mark.parametrize("change", ["int value", "dtype", "alignment", "constexpr", "option"])
def test_any_change_triton_specializes_on_goes_through_triton(fake_gpu, change):
    kernel = FakeKernel(["X", "n", "BLOCK"], {"BLOCK"})
    x = torch.zeros(16)
    _fast_launch.launch(kernel, (1,), (x, 16), dict(BLOCK=32, num_warps=2))
    args, kw = (x, 16), dict(BLOCK=32, num_warps=2)
    if change == "int value":
        args = (x, 17)
    elif change == "dtype":
        args = (x.double(), 16)
    elif change == "alignment":
        args = (x[1:], 16)  # 4 bytes past a 16-byte boundary
    elif change == "constexpr":
        kw = dict(BLOCK=64, num_warps=2)
    else:
        kw = dict(BLOCK=32, num_warps=4)
    _fast_launch.launch(kernel, (1,), args, kw)
    assert len(kernel.compiles) == 2 and kernel.direct == []


def test_a_call_that_leaves_out_a_parameter_is_refused(fake_gpu):
    kernel = FakeKernel(["X", "n", "BLOCK"], {"BLOCK"})
    with pytest.raises(TypeError, match="every non-constexpr parameter"):
        _fast_launch.launch(kernel, (1,), (torch.zeros(4),), dict(BLOCK=32))
    with pytest.raises(TypeError, match="every constexpr"):
        _fast_launch.launch(kernel, (1,), (torch.zeros(4), 3), dict(num_warps=1))


def test_the_interpreter_always_goes_through_triton(monkeypatch):
    monkeypatch.setattr(_fast_launch, "interpreting", lambda: True)
    kernel = FakeKernel(["X", "BLOCK"], {"BLOCK"})
    for _ in range(2):
        _fast_launch.launch(kernel, (1,), (torch.zeros(4),), dict(BLOCK=8))
    assert len(kernel.compiles) == 2 and kernel.direct == []


def test_direct_false_always_goes_through_triton(fake_gpu):
    """FAST_LAUNCH=0 in kernels/scan_triton.py: the A/B switch."""
    kernel = FakeKernel(["X", "BLOCK"], {"BLOCK"})
    for _ in range(2):
        _fast_launch.launch(kernel, (1,), (torch.zeros(4),), dict(BLOCK=8), direct=False)
    assert len(kernel.compiles) == 2 and kernel.direct == []
