"""Short and middle sequence lengths on the GPU: the Triton scan's time per call as called (eager) and as a
CUDA-graph replay of the same call, which leaves out the host's Python and launch costs (GPU only).

At these sizes a call can be bound by the host, the GPU or both; the two columns tell which. Each setting
is a comma-separated list of KNOB=value for kernels/scan_triton.py (none: the defaults):

    python benchmarks/scan_short.py                                  # defaults, bf16
    python benchmarks/scan_short.py --float32 MIN_CHUNK_STEPS=512,BWD_MIN_CHUNK_STEPS=512 ""
    python benchmarks/scan_short.py --graph-only MIN_CHUNK_STEPS=128 MIN_CHUNK_STEPS=64
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from scan import make_inputs, scan_fns
from triton.testing import do_bench

from seqmamba.kernels import scan_triton

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


def parse_setting(text: str) -> dict[str, int]:
    """'KNOB=value,...' -> {KNOB: value}; a misspelt knob would otherwise set nothing and measure the defaults."""
    setting = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name not in scan_triton._PLAN_KNOBS or not value.lstrip("-").isdigit():
            sys.exit(f"scan_short.py: setting {text!r}: {item!r} is not KNOB=integer with a knob of "
                     f"kernels/scan_triton.py ({', '.join(scan_triton._PLAN_KNOBS)})")
        setting[name] = int(value)
    return setting


def main() -> None:
    args = sys.argv[1:]
    dtype = torch.float32 if "--float32" in args else torch.bfloat16
    graph_only = "--graph-only" in args
    settings = [parse_setting(a) for a in args if not a.startswith("--")] or [{}]
    device = torch.device("cuda")  # after the settings are read: a bad one stops before any GPU work
    inputs = [make_inputs(*shape, 16, dtype, device) for shape in SHAPES]
    defaults = {name: getattr(scan_triton, name) for setting in settings for name in setting}
    columns = "graph fwd / fwd+bwd ms" if graph_only else "eager fwd / fwd+bwd, graph fwd / fwd+bwd ms"
    print(f"{torch.cuda.get_device_name()}; torch {torch.__version__}; {str(dtype)[6:]}; {columns}")
    print("setting | " + " | ".join("x".join(map(str, shape)) for shape in SHAPES))
    for setting in settings:
        for name, value in {**defaults, **setting}.items():
            setattr(scan_triton, name, value)
        cells = []
        for x in inputs:
            fwd, fwd_bwd = scan_fns(x, "triton")
            times = [] if graph_only else [do_bench(f, return_mode="median") for f in (fwd, fwd_bwd)]
            times += [do_bench(graphed(f), return_mode="median") for f in (fwd, fwd_bwd)]
            cells.append(", ".join(f"{a:.3f} / {b:.3f}" for a, b in zip(times[::2], times[1::2])))
            torch.cuda.empty_cache()
        label = ",".join(f"{k}={v}" for k, v in setting.items()) or "defaults"
        print(f"{label} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
