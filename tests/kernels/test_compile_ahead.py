"""kernels/compile_ahead.py: launches recorded in a dry run, each distinct variant compiled once in a worker
process, markers that spare a warm machine the workers, and a run that never fails because of any of it."""

from __future__ import annotations

import json
import sys
import threading
import types

import pytest
import torch
from process_helpers import env

from seqmamba.kernels import _fast_launch
from seqmamba.kernels import compile_ahead as ahead


class Kernel:
    """Stands in for a triton JITFunction (what launch() and specialization() look at)."""

    def __init__(self) -> None:
        self.params = [types.SimpleNamespace(name=n, is_constexpr=n == "BLOCK", do_not_specialize=False)
                       for n in ("X", "n", "BLOCK")]
        self.arg_names = ["X", "n", "BLOCK"]
        self.launched: list = []

    def __getitem__(self, grid):
        return lambda *args, **kw: self.launched.append((grid, args, kw))


@pytest.fixture
def gpu_like(monkeypatch):
    monkeypatch.setattr(_fast_launch, "interpreting", lambda: False)


def test_launches_inside_a_recording_are_recorded_and_not_made(gpu_like):
    kernel, x = Kernel(), torch.zeros(8)
    with _fast_launch.recording_launches() as launches:
        _fast_launch.launch(kernel, (4,), (x, 16), dict(BLOCK=32))
    assert kernel.launched == [] and launches == [(kernel, (4,), (x, 16), dict(BLOCK=32))]
    _fast_launch.launch(kernel, (4,), (x, 16), dict(BLOCK=32), direct=False)  # outside: launched
    assert len(kernel.launched) == 1


def test_a_variant_travels_as_json_with_triton_dtypes():
    import triton.language as tl

    variant = ahead.Variant("m", "k", (2, 1, 1), ({"tensor": "bfloat16", "aligned": True}, 7, None),
                            (("ACC", ahead._constexpr(tl.float32)), ("BLOCK", 8)), 0)
    back = ahead.Variant.from_json(variant.to_json())
    assert back == variant and ahead._constexpr_value(dict(back.constexprs)["ACC"]) == tl.float32


def stub_variants(*names: str) -> list[ahead.Variant]:
    return [ahead.Variant("compile_ahead_stubs", name, (i + 1, 1, 1), ({"tensor": "float32", "aligned": True}, i),
                          (("BLOCK", 16),), 0) for i, name in enumerate(names)]


def test_workers_compile_every_variant_once_and_survive_failures(tmp_path, monkeypatch):
    log = tmp_path / "warmups.jsonl"
    for key, value in env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AHEAD_STUB_LOG", str(log))
    variants = stub_variants("kernel", "failing", "kernel", "dying", "kernel", "kernel")
    done = ahead.compile_in_workers(variants, workers=2)
    assert done == [True, False, True, False, True, True]  # a raise and a dead worker lose only their own
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(c["grid"][0] for c in calls) == [1, 3, 5, 6]  # each good variant exactly once
    assert all(c["args"] == ["torch.float32", repr(c["grid"][0] - 1)] for c in calls)  # a dtype stands in
    assert all(c["constexprs"] == {"BLOCK": "16"} for c in calls)


def scan_variant(kernel, grid, args, constexprs) -> ahead.Variant:
    """Stands in for variant_of: a variant of the scan's forward (heavy: compiled in workers) per grid."""
    return ahead.Variant("m", "scan_fwd_kernel", grid, (), (), 0)


def test_compile_ahead_compiles_what_the_dry_run_launched_once_per_machine(gpu_like, monkeypatch, tmp_path):
    kernel, x = Kernel(), torch.zeros(8)
    monkeypatch.setattr(ahead, "enabled", lambda: True)
    monkeypatch.setattr(ahead, "triton_cache_dir", lambda: tmp_path)
    monkeypatch.setattr(ahead, "_marker", lambda k, v, args, cx: tmp_path / "seqmamba_ahead" / f"{v.grid[0]}")
    monkeypatch.setattr(ahead, "variant_of", scan_variant)
    compiled: list = []
    monkeypatch.setattr(ahead, "compile_in_workers",
                        lambda variants, workers: compiled.append(variants) or [v.grid[0] != 3 for v in variants])

    def dry_run(grids):
        def run():
            for g in grids:
                _fast_launch.launch(kernel, (g,), (x, 16), dict(BLOCK=32))
            raise ValueError("garbage outputs tripped a check")  # what was recorded still compiles
        return run

    assert ahead.compile_ahead(dry_run([1, 2, 2, 3])) == 2
    assert [v.grid[0] for v in compiled[0]] == [1, 2, 3] and kernel.launched == []
    assert ahead.compile_ahead(dry_run([1, 2, 3, 4])) == 1  # 1 and 2 are marked; 3 failed, so it is tried again
    assert [v.grid[0] for v in compiled[1]] == [3, 4]


@pytest.mark.parametrize("started", [False, True])
def test_small_kernels_alone_compile_here_rather_than_in_new_workers(gpu_like, monkeypatch, tmp_path, started):
    """New workers cost about 4 s of imports: a dry run that wants only small kernels (not the scan's full passes)
    compiles them in this process, unless workers were started ahead already. A heavy one sends all to workers."""
    kernel, x = Kernel(), torch.zeros(8)
    monkeypatch.setattr(ahead, "enabled", lambda: True)
    monkeypatch.setattr(ahead, "triton_cache_dir", lambda: tmp_path)
    monkeypatch.setattr(ahead, "_marker", lambda k, v, args, cx: tmp_path / "seqmamba_ahead" / v.name)
    names = {1: "chunk_carry_kernel", 2: "fwd_summary_kernel", 3: "scan_bwd_kernel"}
    monkeypatch.setattr(ahead, "variant_of", lambda k, grid, args, cx: ahead.Variant("m", names[grid[0]], grid, (),
                                                                                        (), 0))
    here, in_workers = [], []
    monkeypatch.setattr(ahead, "compile_variant", lambda v: here.append(v.name) or 0.1)
    monkeypatch.setattr(ahead, "compile_in_workers", lambda variants, workers: in_workers.append(
        [v.name for v in variants]) or [True] * len(variants))
    monkeypatch.setattr(ahead, "_started", [object()] if started else [])

    def dry_run(grids):
        return lambda: [_fast_launch.launch(kernel, (g,), (x, 16), dict(BLOCK=32)) for g in grids]

    assert ahead.compile_ahead(dry_run([1, 2])) == 2
    if started:
        assert here == [] and in_workers == [["chunk_carry_kernel", "fwd_summary_kernel"]]
    else:
        assert here == ["chunk_carry_kernel", "fwd_summary_kernel"] and in_workers == []
    here.clear(), in_workers.clear()
    assert ahead.compile_ahead(dry_run([1, 3])) == 1  # the carry kernel is marked compiled; the backward is heavy
    assert here == [] and in_workers == [["scan_bwd_kernel"]]


def test_switched_off_it_does_not_even_run_the_dry_run(monkeypatch):
    monkeypatch.setenv(ahead.AHEAD_ENV, "0")
    assert not ahead.enabled()
    assert ahead.compile_ahead(lambda: pytest.fail("the dry run ran")) == 0


def test_a_cpu_tensor_or_an_unreachable_kernel_makes_no_variant(monkeypatch):
    kernel = Kernel()
    assert ahead.variant_of(kernel, (1,), (torch.zeros(4), 3), dict(BLOCK=8)) is None  # no module and name
    kernel.fn = types.SimpleNamespace(__module__=__name__, __name__="REACHABLE")
    monkeypatch.setattr(sys.modules[__name__], "REACHABLE", kernel, raising=False)
    meta = torch.empty(4, device="meta")
    assert ahead.variant_of(kernel, (1,), (meta, 3), dict(BLOCK=8)) is None  # not a CUDA tensor


def test_workers_started_ahead_take_the_work_and_only_on_a_fresh_machine(tmp_path, monkeypatch):
    log = tmp_path / "warmups.jsonl"
    for key, value in env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AHEAD_STUB_LOG", str(log))
    monkeypatch.setattr(ahead, "enabled", lambda: True)
    monkeypatch.setattr(ahead, "triton_cache_dir", lambda: tmp_path)
    assert ahead.start_workers(3) == 3
    started = {p.pid for p in ahead._started}
    assert ahead.compile_in_workers(stub_variants("kernel", "kernel"), workers=2) == [True, True]
    assert {json.loads(line)["pid"] for line in log.read_text().splitlines()} <= started
    assert ahead._started == []  # the third, not needed, was closed
    (tmp_path / "seqmamba_ahead").mkdir()  # something was compiled ahead here before: no early start
    assert ahead.start_workers(3) == 0


def test_another_threads_launches_are_made_while_one_thread_records(gpu_like):
    import threading

    kernel, x = Kernel(), torch.zeros(8)
    inside, release = threading.Event(), threading.Event()

    def dry_run():
        with _fast_launch.recording_launches() as launches:
            inside.set()
            release.wait(10)
            return launches

    thread = threading.Thread(target=dry_run)
    thread.start()
    inside.wait(10)
    _fast_launch.launch(kernel, (1,), (x, 16), dict(BLOCK=32), direct=False)  # this thread is not recording
    release.set()
    thread.join()
    assert len(kernel.launched) == 1


def test_workers_started_for_nothing_end_when_the_dry_run_launches_nothing(tmp_path, monkeypatch, gpu_like):
    for key, value in env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(ahead, "enabled", lambda: True)
    monkeypatch.setattr(ahead, "triton_cache_dir", lambda: tmp_path)
    assert ahead.start_workers(2) == 2
    procs = list(ahead._started)
    assert ahead.compile_ahead(lambda: None) == 0
    assert ahead._started == [] and all(p.poll() is not None for p in procs)


class CudaLike(torch.Tensor):
    """A CPU tensor that says it lies on cuda:1: variant_of's view of a GPU launch's argument."""

    @property
    def is_cuda(self):
        return True

    @property
    def device(self):
        return torch.device("cuda", 1)


def test_a_gpu_launch_becomes_a_variant_a_worker_can_rebuild(monkeypatch):
    import triton.language as tl

    kernel = Kernel()
    kernel.fn = types.SimpleNamespace(__module__=__name__, __name__="REACHABLE")
    monkeypatch.setattr(sys.modules[__name__], "REACHABLE", kernel, raising=False)
    x = torch.zeros(16, dtype=torch.bfloat16).as_subclass(CudaLike)
    variant = ahead.variant_of(kernel, (3,), (x, x[1:], 1000, None), dict(BLOCK=8, ACC=tl.float32))
    assert variant == ahead.Variant(
        __name__, "REACHABLE", (3,),
        ({"tensor": "bfloat16", "aligned": True}, {"tensor": "bfloat16", "aligned": False}, 1000, None),
        (("ACC", {"tl_dtype": "fp32"}), ("BLOCK", 8)), 1)
    assert ahead.variant_of(kernel, (3,), (x, 1000), dict(BLOCK=object())) is None  # JSON cannot carry it


def scan_inputs(length: int) -> tuple[torch.Tensor, ...]:
    """u (requiring grad), delta, z (1, 64, L); B, C (1, 16, L); A (64, 16); D (64,): a scan's CPU inputs."""
    g = torch.Generator().manual_seed(0)
    u = torch.randn(1, 64, length, generator=g, requires_grad=True)
    delta, z = torch.rand(1, 64, length, generator=g), torch.randn(1, 64, length, generator=g)
    B, C = torch.randn(1, 16, length, generator=g), torch.randn(1, 16, length, generator=g)
    return u, delta, z, B, C, -torch.rand(64, 16, generator=g), torch.ones(64)


def test_a_new_length_reuses_the_compiled_scan_kernels(gpu_like, monkeypatch):
    """The loop counts that change with L are not specialized on: L 256 and L 4,096 (both multiples of 16)
    make the same forward, summary and backward variants (only the small carry kernel's block follows the
    chunk count)."""
    from seqmamba.kernels import scan_triton
    from seqmamba.kernels.scan_tuning import HOPPER

    monkeypatch.setattr(scan_triton, "interpreting", lambda: False)
    scan_triton._plans.clear()
    variants = []
    for length in (256, 4096):
        u, delta, z, B, C, A, D = scan_inputs(length)
        with _fast_launch.recording_launches() as launches:
            out = scan_triton.scan_checked(u, delta, A, B, C, D, z, torch.zeros(64), True, False, reverse=False,
                                           initial_state=None, tuning=HOPPER)
            out.sum().backward()
        variants.append({_fast_launch.jit_function(k).__name__: ahead.specialization(k, args, cx)
                         for k, _grid, args, cx in launches})
    scan_triton._plans.clear()
    short, long = variants
    assert {"scan_fwd_kernel", "fwd_summary_kernel", "bwd_summary_kernel", "scan_bwd_kernel"} <= short.keys()
    for name in ("scan_fwd_kernel", "fwd_summary_kernel", "bwd_summary_kernel", "scan_bwd_kernel"):
        assert short[name] == long[name], name


def test_a_backward_run_in_another_thread_is_recorded_with_its_forward(gpu_like, monkeypatch):
    """Autograd runs a CUDA backward in a thread of its own, which does not see the caller's recording: the scan's and
    the conv's backward record where their forward did, so a dry run compiles the backward's kernels ahead too (on
    the H100 they were compiled one at a time inside the dry run: 8 s of a first fit's 37)."""
    from seqmamba.kernels import conv1d_triton, scan_triton
    from seqmamba.kernels.scan_tuning import HOPPER

    monkeypatch.setattr(scan_triton, "interpreting", lambda: False)
    scan_triton._plans.clear()
    x, delta, z, B, C, A, D = scan_inputs(256)
    with _fast_launch.recording_launches() as launches:
        u = conv1d_triton.depthwise_conv1d_triton(x, torch.randn(64, 1, 4), None, False, "silu")
        out = scan_triton.scan_checked(u, delta, A, B, C, D, z, torch.zeros(64), True, False, reverse=False,
                                       initial_state=None, tuning=HOPPER)
    errors = []

    def backward() -> None:  # outside the recording, as autograd's device thread is
        try:
            out.sum().backward()
        except Exception as error:  # a launch made for real: CPU tensors, no interpreter
            errors.append(error)

    thread = threading.Thread(target=backward)
    thread.start()
    thread.join()
    scan_triton._plans.clear()
    assert errors == []
    names = [_fast_launch.jit_function(k).__name__ for k, *_ in launches]
    assert {"scan_bwd_kernel", "_conv1d_grad_kernel"} <= set(names)
    assert _fast_launch.recording() is None


def test_the_dry_runs_tensors_and_autograd_graph_go_when_it_ends(gpu_like, monkeypatch, tmp_path):
    """A backward records where its forward did through the list its autograd node keeps (ctx.recorded), and the
    list holds every launch's tensors: compile_ahead empties it, so the dry run's outputs and graph are freed. On
    the H100 the graph's AccumulateGrad nodes outlived the dry run and made the Trainer's first CUDA graph capture
    fail (a stream mismatch inside the capture)."""
    import gc
    import weakref

    from seqmamba.kernels import scan_triton
    from seqmamba.kernels.scan_tuning import HOPPER

    monkeypatch.setattr(scan_triton, "interpreting", lambda: False)
    monkeypatch.setattr(ahead, "enabled", lambda: True)
    monkeypatch.setattr(ahead, "triton_cache_dir", lambda: tmp_path)
    monkeypatch.setattr(ahead, "compile_in_workers", lambda variants, workers: [True] * len(variants))
    monkeypatch.setattr(ahead, "variant_of", scan_variant)
    monkeypatch.setattr(ahead, "_marker", lambda k, v, args, cx: tmp_path / "seqmamba_ahead" / repr(v.grid))
    scan_triton._plans.clear()
    u, delta, z, B, C, A, D = scan_inputs(256)
    outputs = []

    def dry_run() -> None:
        out = scan_triton.scan_checked(u, delta, A, B, C, D, z, torch.zeros(64), True, False, reverse=False,
                                       initial_state=None, tuning=HOPPER)
        outputs.append(weakref.ref(out))
        out.sum().backward()

    assert ahead.compile_ahead(dry_run) > 0
    scan_triton._plans.clear()
    gc.collect()
    assert outputs and outputs[0]() is None
