"""DNA input speed: tokenizing MB/s on one core, and `seqmamba windows` wall time and peak memory.

Run from the repository root (prints a Markdown table):

    PYTHONPATH=. python3 benchmarks/dna_io.py [FASTA]

FASTA defaults to the E. coli K-12 genome in ../shared/data/genomes/.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
ECOLI = REPO.parent / "shared" / "data" / "genomes" / "GCF_000005845.2_ASM584v2_genomic.fna.gz"


def best_rate(fn, n_bytes: int, repeats: int = 20) -> float:
    """MB/s (10^6 bytes) of the fastest of ``repeats`` runs: the machine's capability, not its noise."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n_bytes / min(times) / 1e6


def child_run(args: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (kB) of one child process (a fresh child each time)."""
    # RUSAGE_CHILDREN is a maximum over all children so far: measure each run in its own wrapper.
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
               "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", wrapper, *args], check=True, capture_output=True,
                         text=True, env=env).stdout.split()
    return float(out[0]), int(out[1])


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    fasta = Path(sys.argv[1]) if len(sys.argv) > 1 else ECOLI
    from seqmamba import DNATokenizer
    from seqmamba.datasets.fasta import FastaFile
    from seqmamba.datasets.fasta_scan import RecordStart

    genome = b"".join(e for e in FastaFile(fasta).scan() if not isinstance(e, RecordStart))
    text = genome.decode("ascii")
    tok = DNATokenizer()
    n = len(genome)
    rows = [
        ("tokenize bytes -> uint8 ids", best_rate(lambda: tok.encode(genome), n), "MB/s"),
        ("tokenize str -> uint8 ids", best_rate(lambda: tok.encode(text), n), "MB/s"),
        ("tokenize bytes -> int64 ids", best_rate(lambda: tok.encode(genome, dtype=np.int64), n), "MB/s"),
        ("tokenize + soft mask", best_rate(lambda: tok.encode(genome, return_soft_mask=True), n), "MB/s"),
        ("read FASTA.gz (validating scan)",
         best_rate(lambda: sum(1 for _ in FastaFile(fasta).scan()), n, repeats=5), "MB/s"),
    ]
    command = [sys.executable, "-m", "seqmamba.pipelines.cli", "windows", str(fasta),
               "--size", "1000000", "--stride", "100000", "-q"]
    runs = [child_run(command) for _ in range(5)]
    baseline = [child_run([sys.executable, "-c", "pass"]) for _ in range(3)]
    base_rss = statistics.median(r[1] for r in baseline)
    rows += [
        ("`seqmamba windows` 1 Mbp / 100 kbp: wall time (median of 5)",
         statistics.median(r[0] for r in runs), "s"),
        ("`seqmamba windows`: peak RSS", max(r[1] for r in runs) / 1024, "MiB"),
        ("bare `python3 -c pass`: peak RSS", base_rss / 1024, "MiB"),
        ("`seqmamba windows`: peak RSS beyond the interpreter", (max(r[1] for r in runs) - base_rss) / 1024,
         "MiB"),
    ]
    print(f"genome: {fasta.name}, {len(genome):,} bp; Python {platform.python_version()}, "
          f"numpy {np.__version__}; {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print()
    print("| measure | value | unit |")
    print("|---|---:|---|")
    for name, value, unit in rows:
        print(f"| {name} | {value:,.2f} | {unit} |")


if __name__ == "__main__":
    main()
