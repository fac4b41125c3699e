"""Sweep the Triton scan's tuning knobs on the benchmark shapes (GPU only); prints one line per setting.

    python benchmarks/scan_tune.py
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from scan import GPU_SHAPES, make_inputs, scan_fns, timed

from seqmamba.kernels import scan_triton


def main() -> None:
    device = torch.device("cuda")
    settings = list(itertools.product([64, 128, 256], [1024, 2048, 4096], [512, 1024, 2048], [4, 8]))
    if len(sys.argv) > 1:
        settings = [tuple(int(v) for v in arg.split(",")) for arg in sys.argv[1:]]
    inputs = {name: make_inputs(*shape, 16, torch.bfloat16, device) for name, shape in GPU_SHAPES.items()}
    print("block_l tile_values target_programs num_warps | " + " | ".join(f"{n} fwd, fwd+bwd ms" for n in inputs))
    for block_l, tile_values, target, warps in settings:
        scan_triton.BLOCK_L, scan_triton.TILE_VALUES = block_l, tile_values
        scan_triton.TARGET_PROGRAMS, scan_triton.NUM_WARPS = target, warps
        cells = []
        try:
            for x in inputs.values():
                fwd, fwd_bwd = scan_fns(x, "triton")
                cells.append(f"{timed(fwd, device):.2f}, {timed(fwd_bwd, device):.2f}")
        except Exception as error:  # out of resources for this setting
            cells.append(f"failed: {type(error).__name__}")
        print(f"{block_l} {tile_values} {target} {warps} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
