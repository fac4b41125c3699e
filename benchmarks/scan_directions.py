"""Forward time of the Triton scan walking each way, on the issue's shapes (GPU, bf16): a bidirectional
encoder runs both in every layer. Also forward+backward at S3.

    PYTHONPATH=$PWD python3 benchmarks/scan_directions.py [label]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from scan import GPU_SHAPES, make_inputs, scan_fns, timed


def main() -> None:
    device = torch.device("cuda")
    label = sys.argv[1] if len(sys.argv) > 1 else "triton"
    for name in ("S3", "S1", "S2"):
        inputs = make_inputs(*GPU_SHAPES[name], 16, torch.bfloat16, device)
        forward, forward_backward = scan_fns(inputs, "triton")
        reverse, _ = scan_fns(inputs, "triton", reverse=True)
        line = f"{label} {name}: fwd {timed(forward, device):.3f} reverse fwd {timed(reverse, device):.3f}"
        if name == "S3":
            line += f" fwd+bwd {timed(forward_backward, device):.3f}"
        print(line, flush=True)
        del inputs
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
