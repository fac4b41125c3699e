"""How many Triton compilations a workload asks for: the scan's and the conv's kernels, dry-run on the CPU.

Triton compiles a kernel once per specialization: its constexprs and launch options, each tensor argument's
dtype and 16-byte alignment, and each integer argument's class (equal to 1, divisible by 16, or neither;
32 or 64 bits) unless the kernel marks the argument ``do_not_specialize``. On the H100 the first fit of a
classifier compiled for 47 s, and every new sequence length in fine-tuning cost 35-120 s more
(docs/benchmarks/cold_start.md). This script runs the real launchers with the GPU's tuning (HOPPER) on CPU
tensors, with every launch replaced by a recorder (no kernel runs, the outputs are garbage), over the shapes
a workload meets, and counts the distinct specializations per kernel: what a fresh GPU machine would compile.

    python3 benchmarks/specializations.py                # fine-tuning + prediction at GUE-like lengths
    python3 benchmarks/specializations.py --lengths 2048 --batches 64
"""

from __future__ import annotations

import argparse
import collections
import contextlib

import torch

from seqmamba.kernels import ScanDirection, conv1d_triton, scan_triton
from seqmamba.kernels._fast_launch import jit_function
from seqmamba.kernels.compile_ahead import specialization
from seqmamba.kernels.scan_tuning import HOPPER


@contextlib.contextmanager
def recording():
    """Launches become records {kernel name: set of specializations}; the GPU's plan and tuning are used."""
    seen: dict[str, set] = collections.defaultdict(set)

    def record(kernel, grid, args, constexprs, direct=True):
        seen[jit_function(kernel).__name__].add(specialization(kernel, args, constexprs))

    saved = (scan_triton.launch, conv1d_triton.launch, scan_triton.interpreting)
    scan_triton.launch = conv1d_triton.launch = record
    scan_triton.interpreting = lambda: False
    scan_triton._plans.clear()
    try:
        yield seen
    finally:
        scan_triton.launch, conv1d_triton.launch, scan_triton.interpreting = saved
        scan_triton._plans.clear()


def bimamba_layer(batch: int, length: int, d_inner: int, d_state: int, train: bool, dtype=torch.bfloat16) -> None:
    """What one bidirectional layer launches: both convs, one fused two-direction scan, and their backward."""
    def inputs():
        x = torch.randn(batch, d_inner, length, dtype=dtype, requires_grad=train)
        return ScanDirection(x, torch.randn(batch, d_inner, length, dtype=dtype), -torch.rand(d_inner, d_state),
                             torch.randn(batch, d_state, length, dtype=dtype),
                             torch.randn(batch, d_state, length, dtype=dtype), D=torch.ones(d_inner),
                             delta_bias=torch.zeros(d_inner))

    w, b = torch.randn(d_inner, 1, 4, dtype=dtype), torch.randn(d_inner, dtype=dtype)
    fwd, rev = inputs(), inputs()
    convs = [conv1d_triton.depthwise_conv1d_triton(d.u, w, b, reverse, "silu")
             for d, reverse in ((fwd, False), (rev, True))]
    z = torch.randn(batch, d_inner, length, dtype=dtype)
    y_f, y_r = scan_triton.selective_scan_bidirectional_triton(fwd, rev, z, True, HOPPER)
    if train:
        (y_f.float().sum() + y_r.float().sum() + sum(c.float().sum() for c in convs)).backward()


def workload(lengths: list[int], batches: list[int], d_inner: int, d_state: int) -> dict[str, set]:
    """Training steps (forward + backward) and prediction (forward) at every (batch, length)."""
    with recording() as seen:
        for length in lengths:
            for batch in batches:
                for train in (True, False):
                    bimamba_layer(batch, length, d_inner, d_state, train)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # GUE's lengths (prom_core 70, tfbs 100, prom_300 300), the E. coli task's 200; batch 64 and the last,
    # partial batches of train, dev and test
    parser.add_argument("--lengths", type=int, nargs="+", default=[70, 100, 200, 300])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 40, 37, 12, 5])
    parser.add_argument("--d-inner", type=int, default=256)
    parser.add_argument("--d-state", type=int, default=16)
    args = parser.parse_args()
    seen = workload(args.lengths, args.batches, args.d_inner, args.d_state)
    print(f"lengths {args.lengths}, batches {args.batches}, d_inner {args.d_inner}, d_state {args.d_state}, bf16,"
          " one bidirectional layer, training and prediction")
    print("| kernel | compiled variants |\n|---|---:|")
    for name, keys in sorted(seen.items()):
        print(f"| {name} | {len(keys)} |")
    print(f"| total | {sum(map(len, seen.values()))} |")


if __name__ == "__main__":
    main()
