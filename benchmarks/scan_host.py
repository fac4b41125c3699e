"""Host CPU time per Triton scan call (GPU only): `time.thread_time` over 300 calls queued back to back, for the
forward (no grad) and forward+backward, with the kernels launched through Triton's own path (FAST_LAUNCH=0 in the
GPU's preset) and directly (1), alternated over 5 rounds; prints the median and every round.

    PYTHONPATH=$PWD python3 benchmarks/scan_host.py

CPU time, unlike wall time, leaves out the time the thread is off the CPU, which on a shared host moves by
more than what a launch costs.
"""

from __future__ import annotations

import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from scan import make_inputs, scan_fns, tuned

from seqmamba.kernels import selective_scan

SHAPES = [(1, 256, 4096), (32, 256, 300)]  # (batch, dim, L), bf16: host-bound when called eagerly


def main() -> None:
    device = torch.device("cuda")
    for shape in SHAPES:
        x = make_inputs(*shape, 16, torch.bfloat16, device)
        fns = {fast: scan_fns(x, "triton", scan=partial(selective_scan, tuning=tuned({"FAST_LAUNCH": fast}, device)))
               for fast in (0, 1)}
        per_call = {(name, fast): [] for name in ("fwd", "fwd+bwd") for fast in (0, 1)}
        for _ in range(5):
            for fast in (0, 1):
                for name, fn in zip(("fwd", "fwd+bwd"), fns[fast]):
                    fn()
                    torch.cuda.synchronize()
                    start = time.thread_time()
                    for _ in range(300):
                        fn()
                    per_call[(name, fast)].append((time.thread_time() - start) / 300 * 1e6)
                    torch.cuda.synchronize()
        for (name, fast), rounds in per_call.items():
            print(f"{shape} {name} FAST_LAUNCH={fast}: host CPU {statistics.median(rounds):.0f} us/call "
                  f"(rounds {', '.join(f'{t:.0f}' for t in rounds)})", flush=True)


if __name__ == "__main__":
    main()
