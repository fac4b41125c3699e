"""Short and middle sequence lengths on the GPU: the Triton scan's time per call as called (eager) and as a
CUDA-graph replay of the same call, which leaves out the host's Python and launch costs (GPU only).

At these sizes a call can be bound by the host, the GPU or both; the two columns tell which. Each setting
is a comma-separated list of KNOB=value (a field of kernels/scan_tuning.py's ScanTuning, in upper case),
replaced in the GPU's preset (none: the preset as it is):

    python benchmarks/scan_short.py                                  # the preset, bf16
    python benchmarks/scan_short.py --float32 MIN_CHUNK_STEPS=512,BWD_MIN_CHUNK_STEPS=512 ""
    python benchmarks/scan_short.py --graph-only MIN_CHUNK_STEPS=128 MIN_CHUNK_STEPS=64
    python benchmarks/scan_short.py --eager-only --queued FAST_LAUNCH=0 "" FAST_LAUNCH=0 ""   # host A/B

--queued times eager calls as the wall time per call of 200 calls queued back to back (median of 5): the
pace of the host or of the GPU, whichever is slower, without do_bench's cache flush between calls.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import scan
from scan import make_inputs, scan_fns, tuned
from triton.testing import do_bench

from seqmamba.kernels import selective_scan

# (batch, dim, L): a GUE-sized batch, forecast tokens, and batch-1 sequences of 4K to 64K steps.
SHAPES = [(32, 256, 300), (16, 128, 96), (4, 256, 1024), (1, 256, 4096), (1, 256, 16384), (1, 256, 65536),
          (8, 512, 2048), (64, 512, 1024)]


def graphed(fn: Callable[[], None]) -> Callable[[], None]:
    """fn captured once in a CUDA graph (after warm-up on a side stream, as torch's docs do it); returns replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def queued(fn: Callable[[], None], calls: int = 200, repeats: int = 5) -> float:
    """ms per call of `calls` calls queued back to back, median of `repeats`."""
    fn()
    torch.cuda.synchronize()
    per_call = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
        per_call.append((time.perf_counter() - start) / calls * 1e3)
    return statistics.median(per_call)


def parse_setting(text: str) -> dict[str, int]:
    """'KNOB=value,...' -> {KNOB: value}; stops with one line on a misspelt knob or a value not an integer."""
    return scan.parse_setting(text, "scan_short.py")


def main() -> None:
    args = sys.argv[1:]
    flags = {"--float32", "--graph-only", "--eager-only", "--queued"}
    unknown = [a for a in args if a.startswith("--") and a not in flags]
    if unknown or {"--graph-only", "--eager-only"} <= set(args):
        problem = f"{unknown[0]} is not a flag" if unknown else "--graph-only and --eager-only exclude each other"
        sys.exit(f"scan_short.py: {problem} (flags: {', '.join(sorted(flags))})")
    dtype = torch.float32 if "--float32" in args else torch.bfloat16
    graph_only = "--graph-only" in args
    eager_only = "--eager-only" in args
    eager = queued if "--queued" in args else (lambda f: do_bench(f, return_mode="median"))
    settings = [parse_setting(a) for a in args if not a.startswith("--")] or [{}]
    device = torch.device("cuda")  # after the settings are read: a bad one stops before any GPU work
    inputs = [make_inputs(*shape, 16, dtype, device) for shape in SHAPES]
    kind = "eager (queued)" if "--queued" in args else "eager"
    columns = ("graph fwd / fwd+bwd ms" if graph_only else f"{kind} fwd / fwd+bwd ms" if eager_only
               else f"{kind} fwd / fwd+bwd, graph fwd / fwd+bwd ms")
    print(f"{torch.cuda.get_device_name()}; torch {torch.__version__}; {str(dtype)[6:]}; {columns}")
    print("setting | " + " | ".join("x".join(map(str, shape)) for shape in SHAPES))
    for setting in settings:
        tuned_scan = partial(selective_scan, tuning=tuned(setting, device))
        cells = []
        for x in inputs:
            fwd, fwd_bwd = scan_fns(x, "triton", scan=tuned_scan)
            times = [] if graph_only else [eager(f) for f in (fwd, fwd_bwd)]
            if not eager_only:
                times += [do_bench(graphed(f), return_mode="median") for f in (fwd, fwd_bwd)]
            cells.append(", ".join(f"{a:.3f} / {b:.3f}" for a, b in zip(times[::2], times[1::2])))
            torch.cuda.empty_cache()
        label = ",".join(f"{k}={v}" for k, v in setting.items()) or "preset"
        print(f"{label} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
