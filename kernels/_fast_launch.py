"""Launching the scan's Triton kernels for less host time per call.

`kernel[grid](*args, **constexprs)` binds and specializes every argument on every call to find the compiled
kernel, and the scan's kernels take 30-50 arguments in up to six launches a call, so at short L the GPU waits
on that (the host times are in docs/benchmarks/scan_tune_h100.txt). Here the compiled kernel is looked up by
what decides it (the integer arguments' values, the tensors' dtypes and 16-byte alignment, the constexprs and
options, the device) and launched directly; the first call of each key goes through Triton as usual, which
compiles and caches.

The direct launch uses Triton internals, so it runs only on the Triton versions it was checked against
(`DIRECT_LAUNCH_VERSIONS`); on any other, or where those internals are missing, every launch is Triton's own.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

try:
    import triton
    from triton.runtime.autotuner import Heuristics
except ImportError:  # pragma: no cover - exercised only where triton is missing
    triton = None
    Heuristics = ()

# Oldest and newest Triton (major, minor) whose internals the direct launch is written for: in each,
# JITFunction.run returns the CompiledKernel it launched, whose [grid] takes a 3-d grid and then every
# parameter in the kernel's order, constexprs included, and Heuristics.run fills its constexprs from
# {argument name: value} before calling the JITFunction. Measured on the H100 with 3.6; 3.7-3.9 read.
DIRECT_LAUNCH_VERSIONS = ((3, 6), (3, 9))


def direct_launch_supported(version: str | None) -> bool:
    """Whether Triton `version` (as ``triton.__version__`` spells it) is one the direct launch was checked
    against, and this Triton's CompiledKernel has its [grid] launcher."""
    found = re.match(r"(\d+)\.(\d+)", version or "")
    if found is None:
        return False
    oldest, newest = DIRECT_LAUNCH_VERSIONS
    if not oldest <= (int(found[1]), int(found[2])) <= newest:
        return False
    try:
        from triton.compiler import CompiledKernel
    except ImportError:
        return False
    return callable(getattr(CompiledKernel, "__getitem__", None))


DIRECT = triton is not None and direct_launch_supported(triton.__version__)  # else: every launch is Triton's

# (id(kernel), what decides the compiled kernel) -> (CompiledKernel, its constexprs in order), or None where the
# first call gave back no CompiledKernel to launch (internals not as expected): that key goes through Triton.
_compiled: dict = {}
_UNSEEN = object()


log = logging.getLogger("seqmamba.kernels")
_announced = False  # the compile notice is given once a process
# Inside recording_launches(): where this thread's launches go instead of the GPU. A context variable, so that
# another thread's launches (a server predicting in two threads) are never taken for the dry run's.
_recorded: contextvars.ContextVar[list | None] = contextvars.ContextVar("seqmamba_recorded_launches", default=None)


@contextlib.contextmanager
def recording_launches() -> Iterator[list[tuple]]:
    """Within, in this thread: every launch() is recorded as (kernel, grid, args, constexprs) and not made, so the
    kernels leave their outputs unwritten (kernels/compile_ahead.py's dry runs). Not under the interpreter,
    which compiles nothing."""
    records: list[tuple] = []
    token = _recorded.set(records)
    try:
        yield records
    finally:
        _recorded.reset(token)


def recording() -> list | None:
    """The list this thread's launches are recorded into (`recording_launches`), None where they are made."""
    return _recorded.get()


def records_like_forward(backward: Callable) -> Callable:
    """For the backward of an autograd Function whose forward kept ``ctx.recorded = recording()``: the backward's
    launches are recorded where its forward's were. Autograd runs a CUDA backward in a thread of its own, which
    does not see the recording of the thread that called ``backward()``: without this, a dry run's backward would
    launch (and compile one at a time) instead of being recorded."""

    @functools.wraps(backward)
    def within_forward_recording(ctx, *grads):
        token = _recorded.set(getattr(ctx, "recorded", None))
        try:
            return backward(ctx, *grads)
        finally:
            _recorded.reset(token)

    return within_forward_recording


def triton_cache_dir() -> Path:
    """Where Triton keeps compiled kernels (TRITON_CACHE_DIR, else ~/.triton/cache)."""
    return Path(os.environ.get("TRITON_CACHE_DIR") or Path.home() / ".triton" / "cache")


def _announce_compiling() -> None:
    """Before the first GPU launch of a process: say that kernels get compiled, where Triton's cache is empty
    (a fresh machine compiles for most of a minute before the first step, and nothing else says why)."""
    global _announced
    _announced = True
    cache = triton_cache_dir()
    if not (cache.is_dir() and any(cache.iterdir())):
        log.info("compiling the GPU kernels on first use (about a minute on a new machine; cached in %s for "
                 "later runs)", cache)


# Read once, as Triton reads it once per kernel when the kernel is decorated: a later change of the variable
# changes neither. (Reading os.environ took about 2 µs, several times per scan call.)
_INTERPRETING = os.environ.get("TRITON_INTERPRET", "0") == "1"


def interpreting() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1, as set at import)."""
    return _INTERPRETING


def _arg_key(arg) -> object:
    """What Triton specializes an argument on: a tensor's dtype and 16-byte alignment, an integer's value
    (a superset of Triton's divisibility and ==1 checks), other values as they are."""
    if isinstance(arg, torch.Tensor):
        return arg.dtype, arg.data_ptr() % 16 == 0
    return arg


def launch(kernel, grid: tuple, args: tuple, constexprs: dict, direct: bool = True) -> None:
    """kernel[grid](*args, **constexprs), skipping Triton's per-call binding once a call like it was made.

    args: the kernel's leading non-constexpr parameters, in order; constexprs: its constexpr parameters
    and launch options (num_warps, ...) by name, but those its @triton.heuristics derive; direct=False:
    always through Triton (A/B timing). A heuristic may read only what the lookup key holds (the
    tensors' dtypes, other arguments' values, the constexprs): its value is kept with the compiled kernel."""
    if interpreting():  # the interpreter runs the kernel's Python: nothing to keep
        kernel[grid](*args, **constexprs)
        return
    records = _recorded.get()
    if records is not None:
        records.append((kernel, grid, args, constexprs))
        return
    if not _announced:
        _announce_compiling()
    device = _launch_device(args)
    if device is not None and device != torch.cuda.current_device():
        # Triton launches on the current device: a model on cuda:1 (a torchrun rank, or device="cuda:1")
        # must not have its kernels run on cuda:0.
        with torch.cuda.device(device):
            launch(kernel, grid, args, constexprs, direct)
        return
    if not (direct and DIRECT):
        kernel[grid](*args, **constexprs)
        return
    key = (id(kernel), torch.cuda.current_device(), *constexprs.items(), *map(_arg_key, args))
    entry = _compiled.get(key, _UNSEEN)
    if entry is _UNSEEN:
        if len(_compiled) > 1024:  # many distinct sizes: keep it bounded
            _compiled.clear()
        start = time.perf_counter()
        _compiled[key] = _first_launch(kernel, grid, args, constexprs)
        seconds = time.perf_counter() - start
        if seconds > 1.0:  # a compile, not a lookup in Triton's cache
            log.debug("compiled %s in %.1f s", jit_function(kernel).__name__, seconds)
    elif entry is None:
        kernel[grid](*args, **constexprs)
    else:
        # The compiled launcher takes a 3-d grid and every parameter in the kernel's order, constexprs included.
        compiled, all_constexprs = entry
        compiled[(*grid, 1, 1)[:3]](*args, *all_constexprs)


def _launch_device(args: tuple) -> int | None:
    """The CUDA device index of the launch's first tensor argument (None: not a CUDA tensor)."""
    for arg in args:
        if isinstance(arg, torch.Tensor):
            return arg.device.index if arg.is_cuda else None
    return None


def _first_launch(kernel, grid: tuple, args: tuple, constexprs: dict):
    """Launch through Triton; return what later calls alike need to launch directly (a _compiled value)."""
    jit, values = kernel, dict(constexprs)
    while isinstance(jit, Heuristics):  # as Heuristics.run does: each rule sees the arguments and the constexprs
        for name, rule in jit.values.items():
            values[name] = rule({**dict(zip(jit.arg_names, args)), **values})
        jit = jit.fn
    names = _constexpr_names(jit)
    if len(args) + len(names) != len(jit.params) or not set(names) <= values.keys():
        raise TypeError(f"launch({jit.__name__}): give every non-constexpr parameter in args, in order, "
                        f"and every constexpr by name")
    compiled = kernel[grid](*args, **constexprs)
    if not callable(getattr(compiled, "__getitem__", None)):  # not the CompiledKernel expected
        return None
    return compiled, tuple(values[name] for name in names)


_names: dict = {}


def _constexpr_names(kernel) -> tuple[str, ...]:
    names = _names.get(kernel)
    if names is None:
        names = _names[kernel] = tuple(p.name for p in kernel.params if p.is_constexpr)
    return names


def jit_function(kernel):
    """The JITFunction under a kernel's @triton.heuristics (for its compile caches: benchmarks/scan_tune.py)."""
    while isinstance(kernel, Heuristics):
        kernel = kernel.fn
    return kernel
