"""Launching the scan's Triton kernels for less host time per call.

`kernel[grid](*args, **constexprs)` binds and specializes every argument on every call to find the compiled
kernel: on the H100's host about 13 us for an empty kernel of 3 arguments and 41 us for one of 40. The
scan's kernels take 30-50 arguments and a call makes up to six launches, so at short L the GPU waits on
that. Here the compiled kernel is looked up by what decides it (the integer arguments' values, the tensors'
dtypes and 16-byte alignment, the constexprs and options, the device) and launched directly; the first
call of each key goes through Triton as usual, which compiles and caches.
"""

from __future__ import annotations

import os

import torch

_compiled: dict = {}  # (id(kernel), what decides the compiled kernel) -> triton CompiledKernel


def interpreting() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _arg_key(arg) -> object:
    """What Triton specializes an argument on: a tensor's dtype and 16-byte alignment, an integer's value
    (a superset of Triton's divisibility and ==1 checks), other values as they are."""
    if isinstance(arg, torch.Tensor):
        return arg.dtype, arg.data_ptr() % 16 == 0
    return arg


def launch(kernel, grid: tuple, args: tuple, constexprs: dict, direct: bool = True) -> None:
    """kernel[grid](*args, **constexprs), skipping Triton's per-call binding once a call like it was made.

    args: the kernel's leading non-constexpr parameters, in order; constexprs: its constexpr parameters
    and launch options (num_warps, ...) by name; direct=False: always through Triton (A/B timing)."""
    if not direct or interpreting():  # the interpreter runs the kernel's Python: nothing compiled to keep
        kernel[grid](*args, **constexprs)
        return
    key = (id(kernel), torch.cuda.current_device(), *constexprs.items(), *map(_arg_key, args))
    compiled = _compiled.get(key)
    if compiled is None:
        names = _constexpr_names(kernel)
        if len(args) + len(names) != len(kernel.params) or not set(names) <= constexprs.keys():
            raise TypeError(f"launch({kernel.__name__}): give every non-constexpr parameter in args, in order, "
                            f"and every constexpr by name")
        if len(_compiled) > 1024:  # many distinct sizes: keep it bounded
            _compiled.clear()
        _compiled[key] = kernel[grid](*args, **constexprs)
        return
    # The compiled launcher takes a 3-d grid and every parameter in the kernel's order, constexprs included.
    compiled[(*grid, 1, 1)[:3]](*args, *(constexprs[name] for name in _constexpr_names(kernel)))


_names: dict = {}


def _constexpr_names(kernel) -> tuple[str, ...]:
    names = _names.get(kernel)
    if names is None:
        names = _names[kernel] = tuple(p.name for p in kernel.params if p.is_constexpr)
    return names
