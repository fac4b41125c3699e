"""Plot the L sweep that `benchmarks/scan.py --sweep-csv` writes: time against L, one line per kernel.

    python3 benchmarks/scan_plot.py docs/benchmarks/scan_sweep.csv -o docs/benchmarks/scan_vs_length.png
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv")
    parser.add_argument("-o", "--out", required=True)
    args = parser.parse_args()
    table = pd.read_csv(args.csv)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, column, title in zip(axes, ("forward_ms", "fwd_bwd_ms"), ("forward", "forward + backward")):
        for backend, rows in table.groupby("backend"):
            ax.plot(rows["length"], rows[column], marker="o", label=backend)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length L (batch 1, dim 256, N 16, bf16)")
        ax.set_ylabel("ms (median)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)


if __name__ == "__main__":
    main()
