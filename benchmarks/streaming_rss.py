"""`seqmamba classify` and `embed` on FASTAs of 1 to 10,000 records: wall time and peak RSS per run.

Streaming means memory stays flat as the record count grows. Each run is a fresh child process, measured
by its own wrapper (RUSAGE_CHILDREN keeps a maximum over all children, so one wrapper per run).

Run from the repository root (prints a Markdown table):

    PYTHONPATH=. nice python3 benchmarks/streaming_rss.py [--sizes 1000 3000 10000] [--repo PATH]

``--repo`` runs the commands of another checkout (e.g. an export of an older commit) on the same data
and model. Records are 200-1,000 bp (seed 0); the model is tiny (d_model 8, one layer, windows of 1,024
bases, batches of 64), trained once on 64 short sequences, so the table measures the pipeline rather
than the network. Children run with OMP_NUM_THREADS=1 unless it is set.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
LENGTHS = (200, 1001)


def write_fasta(path: Path, n: int, seed: int = 0) -> int:
    """n records of 200-1,000 random bases, 60 a line; returns the bases."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    total = 0
    with open(path, "w") as handle:
        for i in range(n):
            seq = letters[rng.integers(0, 4, int(rng.integers(*LENGTHS)))].tobytes().decode()
            total += len(seq)
            handle.write(f">rec{i} synthetic\n" + "".join(seq[j:j + 60] + "\n" for j in range(0, len(seq), 60)))
    return total


def train_tiny_model(folder: Path, repo: Path) -> Path:
    rng = np.random.default_rng(1)
    rows = ["sequence,label"]
    for i in range(64):
        label = "AT" if i % 2 else "GC"
        rows.append("".join(rng.choice(list(label), 200)) + "," + label)
    (folder / "train.csv").write_text("\n".join(rows) + "\n")
    model = folder / "model"
    seqmamba(repo, ["train", "dna", "--train", str(folder / "train.csv"), "-o", str(model), "--d-model", "8",
                    "--n-layers", "1", "--d-state", "4", "--max-len", "1024", "--batch-size", "64", "--epochs", "1",
                    "--device", "cpu", "-q"])
    return model


def seqmamba(repo: Path, args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    subprocess.run([sys.executable, "-m", "seqmamba.pipelines.cli", *args], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def child_run(repo: Path, args: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (kB) of one `seqmamba` child process."""
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
               "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    env = {**os.environ, "PYTHONPATH": str(repo)}
    command = [sys.executable, "-c", wrapper, sys.executable, "-m", "seqmamba.pipelines.cli", *args]
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout.split()
    return float(out[0]), int(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 1000, 3000, 10000])
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose commands run")
    args = parser.parse_args()
    # One thread: on 2 shared cores, OpenMP threads spin-waiting on each other make runs several times slower.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        model = train_tiny_model(folder, args.repo)
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}, "
              f"torch {torch.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
              f"commands from {args.repo}; {time.strftime('%Y-%m-%d')}\n")
        print("| records | Mbp | command | wall s | records/s | peak RSS MiB |")
        print("|---:|---:|---|---:|---:|---:|")
        for n in args.sizes:
            fasta = folder / f"{n}.fa"
            bases = write_fasta(fasta, n)
            for command, output in (("classify", "out.tsv"), ("embed", "emb.parquet")):
                (folder / output).unlink(missing_ok=True)  # an existing output is refused (--overwrite: new code)
                seconds, rss_kb = child_run(args.repo, [command, str(model), str(fasta), "-o",
                                                        str(folder / output), "-q"])
                print(f"| {n:,} | {bases / 1e6:.2f} | {command} | {seconds:.1f} | {n / seconds:,.0f} | "
                      f"{rss_kb / 1024:.0f} |", flush=True)


if __name__ == "__main__":
    main()
