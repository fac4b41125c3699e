"""1 vs 2 (vs 4, 8) processes under torchrun: `pretrain` tokens/s and `embed` bases/s, their scaling
efficiency, and whether the merged embeddings equal one process's.

    PYTHONPATH=$PWD python3 benchmarks/scaling.py --genomes DATA/genomes --procs 1 2 4 --out scaling.md   # GPUs
    PYTHONPATH=$PWD python3 benchmarks/scaling.py --genomes ../shared/data/genomes --smoke --out /tmp/s.md # CPU

Each process takes one GPU (``cuda:LOCAL_RANK``); NCCL's NVLink multicast is kept off (NCCL_NVLS_ENABLE=0).
Pretraining keeps the per-process batch, so N processes take N times the tokens a step: the efficiency is
tokens/s of N over N times tokens/s of one. Its rate is that of the last evaluation period (after the first,
which holds the compiling). `embed` runs over every record of the genomes, one row per window; its bases/s
counts the whole command (start, model load and the merge included), as a user waits for it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FULL = {"d_model": 128, "n_layers": 4, "window": 8192, "batch_size": 16, "max_steps": 300, "eval_every": 100}
SMOKE = {"d_model": 8, "n_layers": 1, "window": 256, "batch_size": 2, "max_steps": 6, "eval_every": 3}


def env(device: str) -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(ROOT), out.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out["NCCL_NVLS_ENABLE"] = "0"  # NVLink multicast off (the device machines' rule)
    if device == "cpu":
        out["OMP_NUM_THREADS"] = "1"
    return out


def seqmamba(procs: int, *argv: str, device: str) -> float:
    """Run a seqmamba command under torchrun with ``procs`` processes (plain, for one); its wall seconds."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs)] \
        if procs > 1 else [sys.executable]
    start = time.perf_counter()
    subprocess.run([*launcher, "-m", "seqmamba.pipelines.cli", *argv], check=True, env=env(device))
    return time.perf_counter() - start


def genome_bases(files: list[Path]) -> int:
    from seqmamba.datasets.fasta import FastaFile

    return sum(len(seq) for f in files for _, seq in FastaFile(f).records())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--genomes", type=Path, required=True, help="A folder of *.fa.gz / *.fna.gz genomes.")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--work", type=Path, default=Path("scaling_runs"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, on the CPU")
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else FULL
    device = "cpu" if args.smoke else args.device
    files = sorted(p for p in args.genomes.iterdir() if p.name.endswith((".fa.gz", ".fna.gz")))
    args.work.mkdir(parents=True, exist_ok=True)
    common = ["--d-model", str(sizes["d_model"]), "--n-layers", str(sizes["n_layers"]), "--window",
              str(sizes["window"]), "--batch-size", str(sizes["batch_size"]), "--max-steps", str(sizes["max_steps"]),
              "--eval-every", str(sizes["eval_every"]), "--rc-equivariant", "--device", device, "--overwrite", "-q"]
    rows, pretrain_rate, embed_rate = [], {}, {}
    for n in args.procs:
        model = args.work / f"pretrain_{n}"
        seqmamba(n, "pretrain", *map(str, files), "-o", str(model), *common, device=device)
        records = [json.loads(line) for line in (model / "training" / "metrics.jsonl").read_text().splitlines()]
        pretrain_rate[n] = [r["tokens_per_s"] for r in records if r.get("tokens_per_s")][-1]
    model = args.work / f"pretrain_{args.procs[0]}"
    total = genome_bases(files)
    outputs = {}
    for n in args.procs:
        outputs[n] = args.work / f"embed_{n}.parquet"
        wall = seqmamba(n, "embed", str(model), *map(str, files), "-o", str(outputs[n]), "--per-window", "--device",
                        device, "--overwrite", "-q", device=device)
        embed_rate[n] = total / wall
    import pandas as pd

    base = pd.read_parquet(outputs[args.procs[0]])
    emb = [c for c in base.columns if c.startswith("emb_")]
    for n in args.procs:
        frame = pd.read_parquet(outputs[n])
        same_rows = frame.drop(columns=emb).equals(base.drop(columns=emb))
        diff = float(np.abs(frame[emb].to_numpy() - base[emb].to_numpy()).max()) if same_rows else float("nan")
        one = args.procs[0]
        rows.append((n, pretrain_rate[n], pretrain_rate[n] / (n / one * pretrain_rate[one]), embed_rate[n],
                     embed_rate[n] / (n / one * embed_rate[one]), same_rows, diff))
    name = "CPU" if device == "cpu" else f"{device} ({_gpu_name()})"
    lines = [f"Device: {name}; {platform.node()}; genomes: {len(files)} files, {total:,} bp; pretrain "
             f"{json.dumps(sizes)}, RC-equivariant; embed one row per window.", "",
             "| processes | pretrain tokens/s | efficiency | embed bases/s | efficiency | same rows as 1 "
             "| max abs diff |",
             "|---:|---:|---:|---:|---:|---|---:|"]
    lines += [f"| {n} | {p:,.0f} | {pe:.2f} | {e:,.0f} | {ee:.2f} | {'yes' if s else 'NO'} | {d:.1e} |"
              for n, p, pe, e, ee, s, d in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"


if __name__ == "__main__":
    main()
