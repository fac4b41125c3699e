"""seqmamba's Mamba block and bidirectional encoder side by side with mamba_ssm's, in one process on one GPU.

mamba_ssm (its `Mamba` block, with causal-conv1d's CUDA conv) is built at run time from the two PyPI sdists,
for this GPU only; nothing of theirs is committed. Their Python needs einops (`pip install einops`):

    pip download --no-deps --no-binary :all: mamba-ssm==2.3.2.post1 causal-conv1d==1.7.0
    # (pip runs their setup.py for metadata, which needs torch: where it fails, fetch the two .tar.gz files
    # from the links of https://pypi.org/simple/mamba-ssm/ and https://pypi.org/simple/causal-conv1d/)
    PYTHONPATH=$PWD python3 benchmarks/compare_mamba_ssm.py --mamba-sdist mamba_ssm-2.3.2.post1.tar.gz \\
        --conv-sdist causal_conv1d-1.7.0.tar.gz --out compare.md
    PYTHONPATH=$PWD python3 benchmarks/compare_mamba_ssm.py --ours-only [--keep-scan-inputs]   # our rows alone

For each shape of issue 22 and each precision (bf16 autocast, float32): forward and forward+backward
milliseconds of both, the ratio (theirs / ours: above 1, seqmamba is faster) and the peak memory. Rows of at
most HOST_BOUND_TOKENS tokens wait on the host, whose speed drifts: they are measured in ROUNDS alternating
rounds (ours, theirs, ours, ...), each side's median kept, the rounds' lowest and highest ratio beside it. The two
blocks get the same weights, and the largest relative difference of their float32 outputs is reported, so
the comparison is of the same function. The scan alone is `benchmarks/scan.py --compare SDIST`.

The encoder row compares seqmamba's 4-layer bidirectional encoder (BiMamba: per layer one shared in/out
projection, a forward and a reverse SSM) with what mamba_ssm users build for it: per layer a pre-norm
residual of two `Mamba` blocks, one on the sequence and one on its flipped copy (8 blocks in all).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tarfile
import tempfile
import time
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from block import measure
from mamba_ssm_ref import _NVCC_FLAGS, load_extension
from report import MarkdownTable
from torch import nn

from seqmamba import MambaConfig, MambaEncoder
from seqmamba import encoder as seqmamba_encoder
from seqmamba.modules.block import MambaBlock

BLOCK_SHAPES = [(32, 2048), (1, 131_072), (1, 1_048_576), (64, 256), (1, 4096)]
ENCODER_SHAPES = [(64, 256), (1, 131_072)]
D_MODEL, D_STATE = 256, 16
# Rows of at most this many tokens wait on the host, and the host's speed drifts within a run (one row's ms moved
# by a third between runs): those are measured in ROUNDS alternating rounds, ours then theirs, median of each.
HOST_BOUND_TOKENS, ROUNDS = 1 << 16, 5


def interleaved(ours: Callable[[], dict], theirs: Callable[[], dict], rounds: int) -> tuple[dict, dict, dict]:
    """Measure both sides `rounds` times, alternating; per key the median of each side's rounds (None if any
    round had None), and each ratio key's (lowest, highest) ratio over the rounds.

    Example:
        >>> ours, theirs = iter([{"fwd": 1.0}, {"fwd": 3.0}, {"fwd": 2.0}]), iter([{"fwd": 2.0}, {"fwd": 2.0},
        ...                                                                        {"fwd": 5.0}])
        >>> o, t, spread = interleaved(lambda: next(ours), lambda: next(theirs), 3)
        >>> o, t, [round(r, 2) for r in spread["fwd"]]
        ({'fwd': 2.0}, {'fwd': 2.0}, [0.67, 2.5])
    """
    runs = [(ours(), theirs()) for _ in range(rounds)]

    def median(side: int) -> dict:
        keys = runs[0][side].keys()
        return {k: None if any(r[side][k] is None for r in runs) else statistics.median(r[side][k] for r in runs)
                for k in keys}

    spread = {}
    for key in runs[0][0]:
        ratios = [t[key] / o[key] for o, t in runs if o[key] and t[key] is not None]
        if ratios and not key.endswith("_gb"):
            spread[key] = (min(ratios), max(ratios))
    return median(0), median(1), spread


def _extract(sdist: Path, root: Path) -> Path:
    """The sdist's top folder under root (extracted once)."""
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        if not (root / top).is_dir():
            archive.extractall(root, filter="data")
    return root / top


def _load_causal_conv1d(conv_dir: Path, build: Path):
    from torch.utils.cpp_extension import load

    major, minor = torch.cuda.get_device_capability()
    (build / "causal_conv1d").mkdir(exist_ok=True)
    src = conv_dir / "csrc"
    return load(
        name="causal_conv1d_cuda",
        sources=[str(src / "causal_conv1d.cpp"), *sorted(str(p) for p in src.glob("*.cu"))],
        extra_include_paths=[str(src)], extra_cflags=["-O3", "-std=c++17"],
        extra_cuda_cflags=[*_NVCC_FLAGS, f"-gencode=arch=compute_{major}{minor},code=sm_{major}{minor}"],
        build_directory=str(build / "causal_conv1d"), verbose=False)


def load_mamba(mamba_sdist: Path, conv_sdist: Path, build: Path) -> type:
    """mamba_ssm's `Mamba` class, on its two CUDA extensions compiled here for this GPU. The two compile at
    once (each a ninja build of MAX_JOBS jobs): one after the other they took more than 6 minutes on the
    H100 machine's 16 cores."""
    build.mkdir(parents=True, exist_ok=True)
    mamba_dir, conv_dir = _extract(mamba_sdist, build), _extract(conv_sdist, build)
    with ThreadPoolExecutor(2) as pool:  # the compilers run in ninja's processes: threads suffice
        scan_job = pool.submit(load_extension, mamba_dir, build / "selective_scan")
        conv_job = pool.submit(_load_causal_conv1d, conv_dir, build)
        sys.modules["selective_scan_cuda"], sys.modules["causal_conv1d_cuda"] = scan_job.result(), conv_job.result()
    sys.path.insert(0, str(conv_dir))  # the causal_conv1d package (Python), over the extension above
    # The mamba_ssm package without its __init__ (which imports Mamba2/3 and the LM model too).
    package = types.ModuleType("mamba_ssm")
    package.__path__ = [str(mamba_dir / "mamba_ssm")]
    sys.modules["mamba_ssm"] = package
    from mamba_ssm.modules.mamba_simple import Mamba

    return Mamba


def their_block(Mamba: type, ours: MambaBlock) -> nn.Module:
    """A mamba_ssm `Mamba` with our block's weights (the same names, one level flatter)."""
    theirs = Mamba(d_model=D_MODEL, d_state=D_STATE, d_conv=4, expand=2).to(ours.in_proj.weight.device)
    with torch.no_grad():
        for name, source in (("in_proj", ours.in_proj), ("conv1d", ours.ssm.conv1d), ("x_proj", ours.ssm.x_proj),
                             ("dt_proj", ours.ssm.dt_proj), ("out_proj", ours.out_proj)):
            target = getattr(theirs, name)
            target.weight.copy_(source.weight)
            if source.bias is not None:
                target.bias.copy_(source.bias)
        theirs.A_log.copy_(ours.ssm.A_log)
        theirs.D.copy_(ours.ssm.D)
    return theirs


class TheirBidirectional(nn.Module):
    """4 pre-norm residual layers of Mamba(x) + flip(Mamba(flip(x))): mamba_ssm's way to a BiMamba encoder."""

    def __init__(self, Mamba: type, n_layers: int = 4) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.RMSNorm(D_MODEL) for _ in range(n_layers))
        self.fwd = nn.ModuleList(Mamba(d_model=D_MODEL, d_state=D_STATE) for _ in range(n_layers))
        self.rev = nn.ModuleList(Mamba(d_model=D_MODEL, d_state=D_STATE) for _ in range(n_layers))
        self.norm_f = nn.RMSNorm(D_MODEL)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # (batch, L, d_model)
        for norm, fwd, rev in zip(self.norms, self.fwd, self.rev):
            x = norm(hidden)
            hidden = hidden + fwd(x) + rev(x.flip(1)).flip(1)
        return self.norm_f(hidden)


def warm_up(module: nn.Module, batch: int, length: int, device: torch.device, bf16: bool) -> None:
    """One untimed inference forward and one train step (compiles their kernels); skipped if memory runs out."""
    x = torch.randn(batch, length, D_MODEL, device=device)  # (batch, L, d_model)
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            with torch.no_grad():  # inference takes other kernels than training
                module(x)
            loss = module(x).float().square().mean()
        loss.backward()
    except torch.cuda.OutOfMemoryError:
        pass
    module.zero_grad(set_to_none=True)
    torch.cuda.empty_cache()


def _pair(ours: dict, theirs: dict, key: str) -> str:
    if ours[key] is None or theirs[key] is None:
        return "OOM"
    return f"{ours[key]:.2f} / {theirs[key]:.2f}"


def _ratio(ours: dict, theirs: dict, key: str, spread: dict | None = None) -> str:
    """theirs / ours in bold, and where the row had several rounds their lowest-highest ratio."""
    if ours[key] is None or theirs[key] is None:
        return "—"
    low_high = (spread or {}).get(key)
    rounds = f" ({low_high[0]:.2f}-{low_high[1]:.2f})" if low_high and low_high[0] != low_high[1] else ""
    return f"**{theirs[key] / ours[key]:.2f}**{rounds}"


def ours_only(device: torch.device, out: Path | None) -> None:
    """seqmamba's rows of the table, ms and peak GB, without mamba_ssm."""
    torch.manual_seed(0)
    block = MambaBlock(d_model=D_MODEL, d_state=D_STATE).to(device)
    encoder = MambaEncoder(MambaConfig(d_model=D_MODEL, n_layers=4, d_state=D_STATE, bidirectional=True)).to(device)
    rows = [("block", block, shape) for shape in BLOCK_SHAPES] + [("encoder", encoder, s) for s in ENCODER_SHAPES]
    table = MarkdownTable(out, f"Device: {torch.cuda.get_device_name()}; torch {torch.__version__}; d_model {D_MODEL}, "
                          f"d_state {D_STATE}; seqmamba alone, ms per call (median).",
                          ["what", "precision", "batch", "L", "fwd ms", "fwd+bwd ms", "peak GB fwd+bwd"],
                          "|---|---|---:|---:|---:|---:|---:|")
    for bf16 in (True, False):
        for what, module, (batch, length) in rows:
            warm_up(module, batch, length, device, bf16)
            o = measure(module, batch, length, D_MODEL, device, bf16)
            table.add(what, "bf16" if bf16 else "fp32", batch, f"{length:,}",
                      *("OOM" if o[k] is None else f"{o[k]:.2f}" for k in ("fwd", "fwd+bwd", "fwd+bwd_gb")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mamba-sdist", type=Path)
    parser.add_argument("--conv-sdist", type=Path)
    parser.add_argument("--build", type=Path, default=None, help="build folder (reused: no second compile)")
    parser.add_argument("--ours-only", action="store_true",
                        help="seqmamba's rows alone (no sdists, no build): after a change of ours")
    parser.add_argument("--keep-scan-inputs", action="store_true",
                        help="training keeps the scan's inputs at every length (no recompute in the backward)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not args.ours_only and not (args.mamba_sdist and args.conv_sdist):
        parser.error("give --mamba-sdist and --conv-sdist (or --ours-only)")
    if not torch.cuda.is_available():
        sys.exit("compare_mamba_ssm.py: needs a CUDA GPU (mamba_ssm has no CPU path)")
    if args.keep_scan_inputs:
        seqmamba_encoder.RECOMPUTE_MIN_TOKENS = sys.maxsize
    device = torch.device("cuda")
    if args.ours_only:
        ours_only(device, args.out)
        return
    started = time.perf_counter()
    build = args.build or Path(os.environ.get("MAMBA_SSM_BUILD_DIR") or tempfile.mkdtemp())
    with ThreadPoolExecutor(1) as pool:  # their compile (minutes of nvcc) overlaps ours (Triton's JIT)
        mamba_job = pool.submit(load_mamba, args.mamba_sdist, args.conv_sdist, build)
        torch.manual_seed(0)
        ours_block = MambaBlock(d_model=D_MODEL, d_state=D_STATE).to(device)
        config = MambaConfig(d_model=D_MODEL, n_layers=4, d_state=D_STATE, bidirectional=True)
        ours_encoder = MambaEncoder(config).to(device)
        for bf16 in (True, False):  # one untimed train step per shape compiles what the timed runs use
            for module, shapes in ((ours_block, BLOCK_SHAPES), (ours_encoder, ENCODER_SHAPES)):
                for batch, length in shapes:
                    warm_up(module, batch, length, device, bf16)
        print(f"seqmamba warmed in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        Mamba = mamba_job.result()
    print(f"mamba_ssm built in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    theirs_block = their_block(Mamba, ours_block)
    with torch.no_grad():  # the same function: float32 outputs on one input
        x = torch.randn(2, 1024, D_MODEL, device=device)
        a, b = ours_block(x), theirs_block(x)
        same = float((a - b).abs().max() / b.abs().max())
    theirs_encoder = TheirBidirectional(Mamba).to(device)
    lines = [f"Device: {torch.cuda.get_device_name()}; torch {torch.__version__}; d_model {D_MODEL}, "
             f"d_state {D_STATE}. ms per call (median); ratio = mamba_ssm / seqmamba (above 1: seqmamba faster). "
             f"The blocks hold the same weights; their float32 outputs differ by {same:.1e} (max, relative).", "",
             f"Rows of at most {HOST_BOUND_TOKENS:,} tokens: the median of {ROUNDS} alternating rounds, with the "
             "lowest and highest ratio of a round.", "",
             "| what | precision | batch | L | fwd ms ours / theirs | fwd ratio | fwd+bwd ms ours / theirs "
             "| fwd+bwd ratio | peak GB fwd+bwd ours / theirs |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [("block", ours_block, theirs_block, shape) for shape in BLOCK_SHAPES]
    rows += [("encoder", ours_encoder, theirs_encoder, shape) for shape in ENCODER_SHAPES]
    for bf16 in (True, False):  # every bf16 row first: a run cut short still has the precision training uses
        for what, ours, theirs, (batch, length) in rows:
            rounds = ROUNDS if batch * length <= HOST_BOUND_TOKENS else 1
            o, t, spread = interleaved(*(functools.partial(measure, m, batch, length, D_MODEL, device, bf16)
                                         for m in (ours, theirs)), rounds)
            line = (f"| {what} | {'bf16' if bf16 else 'fp32'} | {batch} | {length:,} | {_pair(o, t, 'fwd')} "
                    f"| {_ratio(o, t, 'fwd', spread)} | {_pair(o, t, 'fwd+bwd')} | {_ratio(o, t, 'fwd+bwd', spread)} "
                    f"| {_pair(o, t, 'fwd+bwd_gb')} |")
            lines.append(line)
            print(line, flush=True)
            if args.out:  # row by row: a run cut short keeps its rows
                args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
