"""The Mamba block and the bidirectional encoder at issue 22's shapes, and where their time goes.

For each shape: forward and forward+backward milliseconds (bf16 autocast, as in training) with the conv
on its Triton kernel and on the torch reference, so the conv's share shows, and with the projections as
batched GEMMs (seqmamba/modules/channels.py) and as torch.matmul / F.linear (the path before it, which
copies the activations' layout); then a torch.profiler table of the GPU kernels of one block forward at
the longest shape (what is left besides the scan).

    PYTHONPATH=$PWD python3 benchmarks/block.py --out block.md          # GPU
    PYTHONPATH=$PWD python3 benchmarks/block.py --smoke --out /tmp/b.md # CPU, tiny: checks that it runs
"""

from __future__ import annotations

import argparse
import functools
import platform
from pathlib import Path

import torch
from encoder import peak_gb, time_ms

from seqmamba import MambaConfig, MambaEncoder
from seqmamba.kernels import depthwise_conv1d
from seqmamba.modules import bimamba as bimamba_module
from seqmamba.modules import block as block_module
from seqmamba.modules import channels
from seqmamba.modules import ssm as ssm_module
from seqmamba.modules.block import MambaBlock

# (what, batch, L): issue 22's table
BLOCK_SHAPES = [("block", 32, 2048), ("block", 1, 131_072), ("block", 1, 1_048_576), ("block", 64, 256),
                ("encoder", 64, 256), ("encoder", 1, 131_072)]
SMOKE_SHAPES = [("block", 2, 256), ("encoder", 2, 128)]


def build(what: str, d_model: int, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    if what == "block":
        return MambaBlock(d_model=d_model, d_state=16).to(device)
    return MambaEncoder(MambaConfig(d_model=d_model, n_layers=4, d_state=16, bidirectional=True)).to(device)


def measure(module: torch.nn.Module, batch: int, length: int, d_model: int, device: torch.device,
            bf16: bool = True) -> dict:
    """Forward and forward+backward ms (median) and peak GB of ``module`` on a random (batch, L, d_model) input,
    in bf16 autocast (as in training) or float32; None where it runs out of memory."""
    x = torch.randn(batch, length, d_model, device=device)  # (batch, L, d_model)

    def forward():
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            module(x)

    def train_step():
        module.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = module(x).float().square().mean()
        loss.backward()

    out = {}
    for name, fn in (("fwd", forward), ("fwd+bwd", train_step)):
        try:
            out[f"{name}_gb"] = peak_gb(fn, device)
            out[name] = time_ms(fn, device)
        except torch.cuda.OutOfMemoryError:
            out[name] = out[f"{name}_gb"] = None
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def conv_backend(name: str) -> None:
    """Point the Mamba branch's conv at one backend (this script's A/B switch)."""
    ssm_module.depthwise_conv1d = functools.partial(depthwise_conv1d, backend=name)


def matmul_first(weight: torch.Tensor, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The projection before channels.py: torch.matmul folds batch and L, copying x (batch, in, L) transposed."""
    out = torch.matmul(weight, x)  # (batch, out, L)
    return out if bias is None else out + bias[:, None].to(out.dtype)


def linear_last(weight: torch.Tensor, y: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The out projection before channels.py: F.linear of the transposed y (batch, in, L) -> (batch, L, out)."""
    return torch.nn.functional.linear(y.transpose(1, 2), weight, bias)


PROJECTIONS = {"bmm": (channels.channels_first_linear, channels.channels_last_linear),
               "matmul": (matmul_first, linear_last)}


def projection_path(name: str) -> None:
    """Point every projection of the block, the SSM and BiMamba at one path (this script's A/B switch)."""
    first, last = PROJECTIONS[name]
    ssm_module.channels_first_linear = block_module.channels_first_linear = first
    bimamba_module.channels_first_linear = first
    block_module.channels_last_linear = bimamba_module.channels_last_linear = last


def profile_table(d_model: int, batch: int, length: int, device: torch.device, rows: int = 15) -> str:
    from torch.profiler import ProfilerActivity, profile

    block = build("block", d_model, device)
    x = torch.randn(batch, length, d_model, device=device)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
        for _ in range(3):
            block(x)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            block(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
    key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--d-model", type=int, default=256)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    shapes = SMOKE_SHAPES if args.smoke else BLOCK_SHAPES
    d_model = 16 if args.smoke else args.d_model
    backends = ("triton", "reference") if device.type == "cuda" else ("reference",)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    lines = [f"Device: {name}; torch {torch.__version__}; d_model {d_model}, d_state 16, bf16 autocast. "
             "ms per call (median); conv = the Mamba branch's depthwise conv + SiLU backend.", "",
             "| what | batch | L | conv | projections | fwd ms | fwd+bwd ms | fwd peak GB | fwd+bwd peak GB |",
             "|---|---:|---:|---|---|---:|---:|---:|---:|"]
    fast_conv = "triton" if device.type == "cuda" else "reference"
    runs = [(backend, "bmm") for backend in backends] + [(fast_conv, "matmul")]
    for what, batch, length in shapes:
        for backend, projections in runs:
            conv_backend(backend)
            projection_path(projections)
            r = measure(build(what, d_model, device), batch, length, d_model, device)
            fmt = lambda v, spec=".2f": "—" if v is None else format(v, spec)  # noqa: E731
            line = (f"| {what} | {batch} | {length:,} | {backend} | {projections} | {fmt(r['fwd'])} | "
                    f"{fmt(r['fwd+bwd'])} | {fmt(r.get('fwd_gb'))} | {fmt(r.get('fwd+bwd_gb'))} |")
            lines.append(line)
            print(line, flush=True)
    conv_backend(fast_conv)
    projection_path("bmm")
    batch, length = (1, 1_048_576) if not args.smoke else (2, 256)
    lines += ["", f"GPU kernels of one block forward, batch {batch}, L {length:,} (torch.profiler):", "", "```",
              profile_table(d_model, batch, length, device), "```"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
