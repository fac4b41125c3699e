"""kernels/_fast_launch.py: the compiled kernel is reused only for calls that Triton would specialize alike, and
only on a Triton whose internals the direct launch was checked against; elsewhere every launch is Triton's."""

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

    def __init__(self, names: list[str], constexprs: set[str], compiled: bool = True) -> None:
        self.__name__ = "fake_kernel"
        self.arg_names = names
        self.params = [types.SimpleNamespace(name=n, is_constexpr=n in constexprs) for n in names]
        self.compiles: list[tuple] = []
        self.direct: list[tuple] = []
        self.compiled = compiled  # False: Triton gives back no CompiledKernel (internals not as expected)

    def run(self, *args, grid, warmup, **kw):  # what triton's Heuristics calls
        self.compiles.append((grid, args, kw))
        return FakeCompiled(self) if self.compiled else None

    def __getitem__(self, grid):
        return lambda *args, **kw: self.run(*args, grid=grid, warmup=False, **kw)


@pytest.fixture
def fake_gpu(monkeypatch):
    """A GPU and a Triton the direct launch was checked against, whatever this machine has."""
    monkeypatch.setattr(_fast_launch, "DIRECT", True)
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
    """fast_launch=0 in kernels/scan_tuning.py: the A/B switch."""
    kernel = FakeKernel(["X", "BLOCK"], {"BLOCK"})
    for _ in range(2):
        _fast_launch.launch(kernel, (1,), (torch.zeros(4),), dict(BLOCK=8), direct=False)
    assert len(kernel.compiles) == 2 and kernel.direct == []


@pytest.mark.parametrize(("version", "direct"), [
    ("3.6.0", True), ("3.9.0", True), ("3.7.1+git0123abc", True),  # the versions checked, local builds too
    ("3.5.1", False), ("3.10.0", False), ("4.0.0", False), ("", False), ("main", False), (None, False),
])
def test_direct_launch_only_on_the_triton_versions_it_was_checked_against(version, direct):
    if direct:
        pytest.importorskip("triton")  # and this Triton's CompiledKernel has its [grid] launcher
    assert _fast_launch.direct_launch_supported(version) is direct


def test_any_other_triton_launches_through_triton_every_time(fake_gpu, monkeypatch):
    """The fallback: a Triton of another version (DIRECT false) gets kernel[grid](...) on every call."""
    monkeypatch.setattr(_fast_launch, "DIRECT", False)
    kernel = FakeKernel(["X", "n", "BLOCK"], {"BLOCK"})
    for _ in range(3):
        _fast_launch.launch(kernel, (2,), (torch.zeros(4), 3), dict(BLOCK=8, num_warps=1))
    assert len(kernel.compiles) == 3 and kernel.direct == []
    assert _fast_launch._compiled == {}


def test_no_compiled_kernel_back_from_triton_keeps_the_call_on_triton(fake_gpu):
    """Where Triton's launch returns no CompiledKernel to launch directly, that call stays on Triton's path."""
    kernel = FakeKernel(["X", "BLOCK"], {"BLOCK"}, compiled=False)
    for _ in range(3):
        _fast_launch.launch(kernel, (1,), (torch.zeros(4),), dict(BLOCK=8))
    assert len(kernel.compiles) == 3 and kernel.direct == []


def test_constexprs_from_heuristics_are_kept_with_the_compiled_kernel(fake_gpu):
    """A kernel under @triton.heuristics: the caller leaves out what the heuristics derive; the direct launch
    passes the values Triton's Heuristics derived for the first call, in the kernel's order."""
    heuristics = pytest.importorskip("triton.runtime.autotuner").Heuristics
    inner = FakeKernel(["X", "n", "WIDE", "BLOCK", "ONE"], {"WIDE", "BLOCK", "ONE"})
    kernel = heuristics(inner, inner.arg_names, {"WIDE": lambda args: args["X"].dtype == torch.float64,
                                                 "ONE": lambda args: args["n"] == 1})
    _fast_launch.launch(kernel, (3,), (torch.zeros(4, dtype=torch.float64), 1), dict(BLOCK=16, num_warps=1))
    (_grid, _args, kw), = inner.compiles
    assert (kw["WIDE"], kw["ONE"], kw["BLOCK"]) == (True, True, 16)
    _fast_launch.launch(kernel, (3,), (torch.ones(4, dtype=torch.float64), 1), dict(BLOCK=16, num_warps=1))
    (grid, params), = inner.direct
    assert grid == (3, 1, 1) and params[1:] == (1, True, 16, True)
    _fast_launch.launch(kernel, (3,), (torch.ones(4), 1), dict(BLOCK=16, num_warps=1))  # float32: compiled anew
    assert len(inner.compiles) == 2 and inner.compiles[1][2]["WIDE"] is False
    assert _fast_launch.jit_function(kernel) is inner


@pytest.mark.parametrize("cached", [False, True])
def test_the_first_gpu_launch_says_kernels_get_compiled_where_the_cache_is_empty(fake_gpu, monkeypatch, tmp_path,
                                                                                 caplog, cached):
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))
    if cached:
        (tmp_path / "ABC123").mkdir()  # a kernel compiled by an earlier run
    monkeypatch.setattr(_fast_launch, "_announced", False)
    kernel = FakeKernel(["X", "BLOCK"], {"BLOCK"})
    with caplog.at_level("INFO", logger="seqmamba.kernels"):
        for block in (32, 64):  # two compiles, one notice at most
            _fast_launch.launch(kernel, (1,), (torch.zeros(4),), dict(BLOCK=block))
    notices = [r for r in caplog.records if "compiling the GPU kernels" in r.getMessage()]
    assert len(notices) == (0 if cached else 1)
    if not cached:
        assert str(tmp_path) in notices[0].getMessage()


def test_a_launch_runs_on_its_tensors_device_not_the_current_one(fake_gpu, monkeypatch):
    """Triton launches on the current CUDA device: tensors on cuda:1 (a torchrun rank, device='cuda:1') get their
    kernels there, inside torch.cuda.device(1), whatever device is current."""
    entered = []

    class Device:
        def __init__(self, index):
            self.index = index

        def __enter__(self):
            entered.append(self.index)
            monkeypatch.setattr(torch.cuda, "current_device", lambda: self.index)

        def __exit__(self, *exc):
            monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)

    monkeypatch.setattr(torch.cuda, "device", Device)
    monkeypatch.setattr(_fast_launch, "_launch_device", lambda args: 1)  # the tensors lie on cuda:1
    kernel = FakeKernel(["X", "BLOCK"], {"BLOCK"})
    _fast_launch.launch(kernel, (1,), (torch.zeros(4),), dict(BLOCK=32))
    assert entered == [1] and len(kernel.compiles) == 1
    monkeypatch.setattr(_fast_launch, "_launch_device", lambda args: 0)  # on the current device: no switch
    _fast_launch.launch(kernel, (1,), (torch.zeros(4),), dict(BLOCK=32))
    assert entered == [1]
