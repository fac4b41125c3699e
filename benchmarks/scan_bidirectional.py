"""The fused bidirectional scan against two single-direction calls (GPU): forward and forward+backward.

Shapes S1-S3 of the scan issue plus two short ones (batch 1, dim 256, L 4096 and 16384), bf16, N 16, as
a BiMamba block calls them: each direction its own u, delta, A, B, C, D and delta bias, one shared z.

    python benchmarks/scan_bidirectional.py --out docs/benchmarks/scan_bidirectional.md
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from scan import GPU_SHAPES, make_inputs, timed

from seqmamba.kernels import ScanDirection, selective_scan_bidirectional_ref
from seqmamba.kernels.scan_triton import selective_scan_bidirectional_triton

SHAPES = {**GPU_SHAPES, "short-4k": (1, 256, 4096), "short-16k": (1, 256, 16384)}
PER_DIRECTION = ("u", "delta", "A", "B", "C", "D", "delta_bias")


def timings(shape, fused: bool, device) -> tuple[float, float]:
    """(forward ms, forward+backward ms) of one bidirectional scan, fused or as two calls."""
    fwd_in, rev_in = (make_inputs(*shape, 16, torch.bfloat16, device, seed=s) for s in (0, 1))
    leaves = {f"{k}{s}": v[k].detach().clone().requires_grad_() for s, v in (("", fwd_in), ("_r", rev_in))
              for k in PER_DIRECTION}
    z = fwd_in["z"].detach().clone().requires_grad_()

    def call():
        fwd = ScanDirection(**{k: leaves[k] for k in PER_DIRECTION})
        rev = ScanDirection(**{k: leaves[f"{k}_r"] for k in PER_DIRECTION})
        if fused:  # whatever the size (selective_scan_bidirectional fuses only up to FUSED_MAX_ELEMENTS)
            return selective_scan_bidirectional_triton(fwd, rev, z, True)
        return selective_scan_bidirectional_ref(fwd, rev, z, delta_softplus=True, backend="triton")

    def forward():
        with torch.no_grad():
            call()

    def forward_backward():
        for v in (*leaves.values(), z):
            v.grad = None
        y_fwd, y_rev = call()
        (y_fwd.float().sum() + y_rev.float().sum()).backward()

    return timed(forward, device), timed(forward_backward, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the markdown table here as well")
    args = parser.parse_args()
    device = torch.device("cuda")
    lines = [
        f"Device: {torch.cuda.get_device_name()}; torch {torch.__version__}; python {platform.python_version()}; "
        "bf16, N 16, delta_softplus with delta_bias, D, shared z; median ms of triton.testing.do_bench.",
        "",
        "| shape (batch, dim, L) | two calls fwd | fused fwd | ratio | two calls fwd+bwd | fused fwd+bwd | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, shape in SHAPES.items():
        two, one = timings(shape, False, device), timings(shape, True, device)
        lines.append(f"| {name} {shape} | {two[0]:.3f} | {one[0]:.3f} | {two[0] / one[0]:.2f} | {two[1]:.3f} | "
                     f"{one[1]:.3f} | {two[1] / one[1]:.2f} |")
        print(lines[-1], flush=True)
        torch.cuda.empty_cache()
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
