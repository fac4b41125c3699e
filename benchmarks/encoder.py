"""Encoder benchmark: a 4-layer d_model 256 bidirectional encoder at long lengths, and recurrent steps.

On a GPU (bf16 autocast, batch 1): forward and forward+backward tokens/s and peak memory at
L = 16,384, 131,072 and 1,048,576 (plus forward+backward with gradient checkpointing at the longest),
and the latency of one recurrent step of a 4-layer causal encoder, eager and as a captured CUDA graph.

    python benchmarks/encoder.py --out encoder.md          # GPU, the real sizes
    python benchmarks/encoder.py --smoke --out /tmp/x.md   # CPU, tiny sizes: checks that it runs
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from seqmamba import MambaConfig, MambaEncoder
from seqmamba.kernels.scan import triton_usable

FULL = dict(d_model=256, n_layers=4, d_state=16, lengths=[16_384, 131_072, 1_048_576])
SMOKE = dict(d_model=16, n_layers=2, d_state=4, lengths=[256, 1024])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], object], device: torch.device, repeats: int = 5) -> float:
    """Median milliseconds per call: triton's do_bench on CUDA when importable, else events/clock."""
    if device.type == "cuda":
        try:
            from triton.testing import do_bench

            return float(do_bench(fn, warmup=25, rep=200, return_mode="median"))
        except ImportError:
            pass
        fn()
        times = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
        return statistics.median(times)
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def peak_gb(fn: Callable[[], object], device: torch.device) -> float | None:
    """Peak allocated GPU memory (GB) during one call; None on a CPU."""
    if device.type != "cuda":
        fn()
        return None
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    _sync(device)
    return torch.cuda.max_memory_allocated(device) / 1e9


def _autocast(device: torch.device):
    # bf16 autocast on the GPU as in training; a CPU smoke run checks the same mixed-precision code path.
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _bench_length(enc: MambaEncoder, length: int, checkpointed_too: bool, device: torch.device) -> list[dict]:
    x = torch.randn(1, length, enc.config.d_model, device=device)  # (batch, L, d_model)

    def forward():
        with torch.no_grad(), _autocast(device):
            enc(x)

    def train_step():
        enc.zero_grad(set_to_none=True)
        with _autocast(device):
            loss = enc(x).float().square().mean()
        loss.backward()

    cases = [("forward", forward, False), ("forward+backward", train_step, False)]
    if checkpointed_too:
        cases.append(("forward+backward, checkpointing", train_step, True))
    rows = []
    for name, fn, checkpointing in cases:
        enc.gradient_checkpointing = checkpointing
        row = dict(what=name, L=length, ms=None, tokens_s=None, peak_gb=None)
        try:
            row["peak_gb"] = peak_gb(fn, device)
            row["ms"] = time_ms(fn, device)
            row["tokens_s"] = length / row["ms"] * 1e3
        except torch.cuda.OutOfMemoryError:
            row["note"] = "out of memory"
        finally:
            enc.zero_grad(set_to_none=True)
            enc.gradient_checkpointing = False
            if device.type == "cuda":
                torch.cuda.empty_cache()
        rows.append(row)
    return rows


def bench_bidirectional(sizes: dict, device: torch.device) -> list[dict]:
    torch.manual_seed(0)
    cfg = MambaConfig(d_model=sizes["d_model"], n_layers=sizes["n_layers"], d_state=sizes["d_state"],
                      bidirectional=True)
    enc = MambaEncoder(cfg).to(device)
    lengths = sizes["lengths"]
    rows = []
    for length in lengths:
        # Checkpointing is what makes training fit at the longest length; measure it there.
        rows += _bench_length(enc, length, checkpointed_too=length == lengths[-1], device=device)
    return rows


def bench_step(sizes: dict, device: torch.device) -> list[dict]:
    torch.manual_seed(0)
    cfg = MambaConfig(d_model=sizes["d_model"], n_layers=sizes["n_layers"], d_state=sizes["d_state"])
    enc = MambaEncoder(cfg).to(device).eval()
    rows = []
    with torch.inference_mode():
        cache = enc.allocate_inference_cache(batch_size=1)
        x_t = torch.randn(1, cfg.d_model, device=device)  # (batch, d_model)
        ms = time_ms(lambda: enc.step(x_t, cache), device, repeats=50)
        rows.append(dict(what="step, eager", ms=ms))
        if device.type != "cuda":
            rows.append(dict(what="step, CUDA graph", ms=None, note="needs CUDA"))
            return rows
        try:
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):  # warm up (Triton compiles) outside the capture
                for _ in range(3):
                    enc.step(x_t, cache)
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                enc.step(x_t, cache)
            ms = time_ms(graph.replay, device, repeats=50)
            rows.append(dict(what="step, CUDA graph", ms=ms))
        except Exception as err:  # report, do not hide, why capture failed
            rows.append(dict(what="step, CUDA graph", ms=None, note=f"capture failed: {err!r}"[:120]))
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def render(bidir: list[dict], steps: list[dict], sizes: dict, device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    backend = "triton" if triton_usable(device) and device.type == "cuda" else "torch (chunked)"
    lines = [
        f"Device: {name}; torch {torch.__version__}; scan backend: {backend}.",
        "",
        f"Bidirectional encoder: {sizes['n_layers']} layers, d_model {sizes['d_model']}, "
        f"d_state {sizes['d_state']}, batch 1, bf16 autocast.",
        "",
        "| pass | L | ms | tokens/s | peak memory (GB) | note |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in bidir:
        lines.append(
            f"| {r['what']} | {r['L']:,} | {_fmt(r['ms'], '.2f')} | {_fmt(r['tokens_s'], ',.0f')} "
            f"| {_fmt(r['peak_gb'], '.2f')} | {r.get('note', '')} |"
        )
    lines += [
        "",
        f"Recurrent step: causal encoder, {sizes['n_layers']} layers, d_model {sizes['d_model']}, batch 1, "
        "float32.",
        "",
        "| step | latency (µs) | note |",
        "|---|---:|---|",
    ]
    for r in steps:
        lines.append(f"| {r['what']} | {_fmt(None if r['ms'] is None else r['ms'] * 1e3, '.1f')} "
                     f"| {r.get('note', '')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on any device (checks that it runs)")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--lengths", type=int, nargs="+", help="override the sequence lengths")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    sizes = dict(SMOKE if args.smoke else FULL)
    if args.lengths:
        sizes["lengths"] = args.lengths
    if device.type != "cuda" and not args.smoke:
        print("note: no CUDA device; the full sizes on a CPU take very long (use --smoke)", file=sys.stderr)
    table = render(bench_bidirectional(sizes, device), bench_step(sizes, device), sizes, device)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table, encoding="utf-8")
    return table


if __name__ == "__main__":
    main()
