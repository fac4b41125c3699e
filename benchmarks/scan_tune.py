"""Sweep the Triton scan's tuning knobs on the benchmark shapes (GPU only); prints one line per setting.

Each argument is one setting, replaced in the GPU's preset (kernels/scan_tuning.py): values comma-separated in
the order of ORDER (trailing knobs keep the preset's), or KNOB=value pairs as benchmarks/scan_short.py takes them:

    python benchmarks/scan_tune.py 0,64,1024,2 0,64,1024,2,16,2048,0,512,1,32
    python benchmarks/scan_tune.py BLOCK_D=32,NUM_WARPS=1 BC_WORDS=2
    python benchmarks/scan_tune.py --forward-only 0,64 0,32   # skip the backward (quicker)
    python benchmarks/scan_tune.py --float32 0,64              # float32 inputs instead of bf16
    python benchmarks/scan_tune.py --shapes S3 0,64            # only these shapes (comma-separated)
    python benchmarks/scan_tune.py --regs 0,64                 # also registers and spills of each kernel
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from scan import GPU_SHAPES, make_inputs, parse_setting, scan_fns, timed, tuned

from seqmamba.kernels import scan_triton, selective_scan
from seqmamba.kernels._fast_launch import jit_function
from seqmamba.kernels.scan_tuning import ScanTuning

# The knobs of a comma-separated setting, in order (the order the tune log's commands use).
ORDER = ("BLOCK_L", "BLOCK_D", "TARGET_PROGRAMS", "NUM_WARPS", "SUMMARY_BLOCK_L", "SUMMARY_TILE_VALUES",
         "BWD_STATES_PER_ITER", "BWD_TILE_VALUES", "BWD_NUM_WARPS", "BWD_BLOCK_L", "MIN_BLOCK_D",
         "BWD_TARGET_PROGRAMS", "MAXNREG", "BWD_MAXNREG", "CARRY_BLOCK_CHUNKS", "PREFETCH", "BC_AHEAD", "BC_KEEP",
         "SHORT_TILE_UNROLL", "FAST_SOFTPLUS", "BC_WORDS")


KERNELS = ("_scan_fwd_kernel", "_scan_bwd_kernel", "_fwd_summary_kernel", "_bwd_summary_kernel")


def registers() -> str:
    """Registers / spilled registers of the kernels compiled since the last call (their caches are emptied)."""
    cells = []
    for name in KERNELS:
        fn = jit_function(getattr(scan_triton, name))
        compiled = [k for cache in fn.device_caches.values() for k in cache[0].values()]
        fn.device_caches.clear()
        if compiled:
            cells.append(name.strip("_") + " " + ",".join(sorted({f"{k.n_regs}/{k.n_spills}" for k in compiled})))
    return "; ".join(cells)


def setting_tuning(arg: str, device: torch.device) -> ScanTuning:
    """One setting: KNOB=value pairs, or values in the order of ORDER."""
    if "=" in arg:
        return tuned(parse_setting(arg, "scan_tune.py"), device)
    values = arg.split(",")
    if len(values) > len(ORDER) or not all(v.isdigit() for v in values):
        sys.exit(f"scan_tune.py: setting {arg!r} is not up to {len(ORDER)} integers in the order {', '.join(ORDER)}")
    return tuned(dict(zip(ORDER, map(int, values))), device)


def main() -> None:
    device = torch.device("cuda")
    args = sys.argv[1:]
    forward_only = "--forward-only" in args
    dtype = torch.float32 if "--float32" in args else torch.bfloat16
    shapes = dict(GPU_SHAPES)
    if "--shapes" in args:
        names = args.pop(args.index("--shapes") + 1).split(",")
        shapes = {name: GPU_SHAPES[name] for name in names}
    settings = [setting_tuning(arg, device) for arg in args if not arg.startswith("--")] or [tuned({}, device)]
    inputs = {name: make_inputs(*shape, 16, dtype, device) for name, shape in shapes.items()}
    print(" ".join(ORDER) + " | " + " | ".join(f"{n} fwd / fwd+bwd ms" for n in inputs))
    for tuning in settings:
        cells = []
        for x in inputs.values():
            try:
                fwd, fwd_bwd = scan_fns(x, "triton", scan=partial(selective_scan, tuning=tuning))
                both = "-" if forward_only else f"{timed(fwd_bwd, device):.2f}"
                cells.append(f"{timed(fwd, device):.2f} / {both}")
            except Exception as error:  # out of resources for this setting
                cells.append(f"failed: {type(error).__name__}")
        print(" ".join(str(getattr(tuning, k.lower())) for k in ORDER) + " | " + " | ".join(cells), flush=True)
        if "--regs" in args:
            print("    registers/spills: " + registers(), flush=True)


if __name__ == "__main__":
    main()
