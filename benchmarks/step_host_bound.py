"""How host-bound a small training step is on the GPU: wall time per step against the GPU's kernel time per step
(torch.profiler), for a bidirectional DNAEncoder with a pooled 2-class head, bf16 autocast, AdamW and gradient
clipping, at the DNA classifier's default size (d_model 64, 2 layers, batch 32, L 1,024) and two others.

    PYTHONPATH=$PWD python3 benchmarks/step_host_bound.py
    PYTHONPATH=$PWD python3 benchmarks/step_host_bound.py --block   # one block's forward, compare_mamba_ssm.md's
    PYTHONPATH=$PWD python3 benchmarks/step_host_bound.py --encoder # the bidirectional encoder's forward

Where wall time is well above kernel time the GPU waits on the host's Python, launches and torch calls. The
last column is what a CUDA graph of the whole step (forward, backward, clipping and a capturable AdamW, captured
once for the batch's shape) would take: the bound for graphing the Trainer's step.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import Callable

import torch
from scan_short import graphed
from torch.profiler import ProfilerActivity, profile

from seqmamba import MambaConfig, MambaEncoder
from seqmamba.dna import DNAEncoder
from seqmamba.modules.block import MambaBlock

SIZES = [(64, 32, 1024), (256, 32, 1024), (128, 8, 4096)]  # (d_model, batch, L)
BLOCK_SHAPES = [(1, 4096), (64, 256), (32, 2048), (1, 1_048_576)]  # (batch, L): compare_mamba_ssm.md's
ENCODER_SHAPES = [(64, 256), (1, 131_072)]


def make_step(d_model: int, batch: int, length: int, device: torch.device,
              capturable: bool = False) -> Callable[[], None]:
    """One training step of a fresh bidirectional DNAEncoder with a pooled 2-class head on one random batch
    (``capturable``: its AdamW is one whose step a CUDA graph can hold, gradients kept in place)."""
    encoder = DNAEncoder(MambaConfig(d_model=d_model, n_layers=2, d_state=16, bidirectional=True,
                                     vocab_size=5)).to(device)
    head = torch.nn.Linear(d_model, 2).to(device)
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-3, capturable=capturable)
    ids = torch.randint(0, 4, (batch, length), device=device)  # (batch, L)
    labels = torch.randint(0, 2, (batch,), device=device)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = head(encoder(ids).mean(1))  # (batch, 2)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=not capturable)  # a graph needs the gradients at fixed addresses
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    for _ in range(5):  # compiles the kernels
        step()
    torch.cuda.synchronize()
    return step


def wall_ms(fn: Callable[[], None], calls: int = 20) -> float:
    """Median wall ms of `calls` calls, each waited for."""
    wall = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        wall.append((time.perf_counter() - start) * 1e3)
    return statistics.median(wall)


def measure(d_model: int, batch: int, length: int, device: torch.device) -> tuple[float, float, list[str]]:
    """Median wall ms per step (20 steps), GPU kernel ms per step (10 profiled steps), the top kernels."""
    return wall_and_kernels(make_step(d_model, batch, length, device))


def wall_and_kernels(fn: Callable[[], None]) -> tuple[float, float, list[str]]:
    """Median wall ms of a call of fn (20 calls), its GPU kernel ms (10 profiled calls), its top kernels."""
    wall = wall_ms(fn)
    with profile(activities=[ProfilerActivity.CUDA], acc_events=True) as prof:
        for _ in range(10):
            fn()
        torch.cuda.synchronize()
    events = prof.key_averages()
    gpu = sum(e.self_device_time_total for e in events) / 10 / 1e3
    top = sorted(events, key=lambda e: -e.self_device_time_total)[:6]
    lines = [f"    {e.key[:60]:60s} {e.self_device_time_total / 10 / 1e3:.3f} ms x{e.count // 10}" for e in top]
    return wall, gpu, lines


def graphed_ms(d_model: int, batch: int, length: int, device: torch.device) -> float:
    """Median wall ms per replay of a CUDA graph holding the whole step (20 replays)."""
    return wall_ms(graphed(make_step(d_model, batch, length, device, capturable=True)))


def forwards(device: torch.device, module: torch.nn.Module, shapes: list[tuple[int, int]],
             profiled: tuple[int, int, bool]) -> None:
    """The same split for a module's forward (d_model 256, no grad) at the comparison's shapes, then where the
    host's time goes at ``profiled`` (batch, L, bf16), from a cProfile of 200 forwards."""
    host_profile: list[Callable[[], None]] = [lambda: None]
    print("| batch | L | precision | wall ms | GPU kernels ms |\n|---:|---:|---|---:|---:|")
    for batch, length in shapes:
        x = torch.randn(batch, length, 256, device=device)  # (batch, L, d_model)
        for bf16 in (True, False):
            def forward(x=x, bf16=bf16) -> None:
                with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                    module(x)

            for _ in range(5):  # compiles, allocator warm
                forward()
            wall, gpu, _ = wall_and_kernels(forward)
            print(f"| {batch} | {length:,} | {'bf16' if bf16 else 'fp32'} | {wall:.2f} | {gpu:.2f} |", flush=True)
            if (batch, length, bf16) == profiled:
                host_profile[0] = forward
    print(f"\nWhere the host's time goes, batch {profiled[0]}, L {profiled[1]:,}, bf16 (cProfile of 200 "
          "forwards, the Python functions with the most time of their own):")
    profiler = cProfile.Profile()
    profiler.runcall(lambda: [host_profile[0]() for _ in range(200)])
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--block", action="store_true", help="one Mamba block's forward instead of a training step")
    parser.add_argument("--encoder", action="store_true",
                        help="the 4-layer bidirectional encoder's forward (compare_mamba_ssm.md's) instead")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("step_host_bound.py: needs a CUDA GPU (it compares wall time with GPU kernel time)")
    device = torch.device("cuda")
    torch.manual_seed(0)
    print(f"{torch.cuda.get_device_name()}; torch {torch.__version__}")
    if args.block:
        forwards(device, MambaBlock(d_model=256, d_state=16).to(device), BLOCK_SHAPES, (1, 4096, True))
        return
    if args.encoder:
        config = MambaConfig(d_model=256, n_layers=4, d_state=16, bidirectional=True)
        forwards(device, MambaEncoder(config).to(device), ENCODER_SHAPES, (64, 256, True))
        return
    for d_model, batch, length in SIZES:
        wall, gpu, lines = measure(d_model, batch, length, device)
        try:
            graphed = f"{graphed_ms(d_model, batch, length, device):.2f} ms/step"
        except Exception as err:  # say why the step could not be captured
            graphed = f"capture failed: {err!r}"[:160]
        print(f"d_model {d_model}, batch {batch}, L {length}: wall {wall:.2f} ms/step, GPU kernels {gpu:.2f} ms/step "
              f"({wall / gpu:.1f}x); whole step as one CUDA graph: {graphed}", flush=True)
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
