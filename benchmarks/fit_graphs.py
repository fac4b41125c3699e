"""A DNA classifier's fit on a GPU with and without CUDA graphs for its training steps (and predictions).

    PYTHONPATH=$PWD python3 benchmarks/fit_graphs.py --out fit_graphs.md

`MambaSequenceClassifier` at its defaults (d_model 64, 2 layers, batch 32) and at d_model 128, fitted for a few
epochs on random 300 bp sequences whose label is whether A is their commonest base (learnable), timed with
`SEQMAMBA_CUDA_GRAPHS=0` (every step eager) and unset (steps and predictions replayed from graphs). A first,
short fit compiles the kernels outside the clock. Reported: fit seconds, steps per second, and the held-out
accuracy of each (the two runs differ only by the capturable AdamW's rounding and the random draws' order).

Graphed steps scan a bidirectional layer's two directions in two launches (`seqmamba.kernels.separate_directions`);
the third run ("fused") replays graphs of the fused two-direction kernels instead, for the A/B of that choice.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator

import numpy as np
import torch
from report import MarkdownTable

from seqmamba.estimators import MambaSequenceClassifier
from seqmamba.training import ahead as ahead_module
from seqmamba.training import graphs as graphs_module

SIZES = [(64, 2), (128, 2)]  # (d_model, n_layers)


def data(n: int, length: int, seed: int) -> tuple[list[str], list[bool]]:
    rng = np.random.default_rng(seed)
    seqs = ["".join(s) for s in rng.choice(list("ACGT"), size=(n, length), p=[0.28, 0.24, 0.24, 0.24])]
    return seqs, [max("ACGT", key=s.count) == "A" for s in seqs]


MODES = ("eager", "graphs", "fused")  # every step eager; graphed steps (directions apart); graphed, fused kernels


@contextlib.contextmanager
def fused_in_graphs() -> Iterator[None]:
    """Within: the graphed steps, their evaluation and their dry run keep the fused two-direction kernels."""
    saved = graphs_module.separate_directions, ahead_module.separate_directions
    graphs_module.separate_directions = ahead_module.separate_directions = contextlib.nullcontext
    try:
        yield
    finally:
        graphs_module.separate_directions, ahead_module.separate_directions = saved


def fit_seconds(d_model: int, n_layers: int, mode: str, X, y, X_test, y_test) -> tuple[float, int, float]:
    os.environ["SEQMAMBA_CUDA_GRAPHS"] = "0" if mode == "eager" else "1"
    clf = MambaSequenceClassifier(d_model=d_model, n_layers=n_layers, max_epochs=3, device="cuda", random_state=0)
    torch.cuda.synchronize()
    start = time.perf_counter()
    with fused_in_graphs() if mode == "fused" else contextlib.nullcontext():
        clf.fit(X, y)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    steps = 3 * (len(X) // clf.batch_size)
    return seconds, steps, float((clf.predict(X_test) == np.asarray(y_test)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4096, help="training sequences")
    parser.add_argument("--out")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("fit_graphs.py: needs a CUDA GPU")
    X, y = data(args.n, 300, 0)
    X_test, y_test = data(1024, 300, 1)
    table = MarkdownTable(
        args.out, f"Device: {torch.cuda.get_device_name()}; torch {torch.__version__}. {args.n} sequences of 300 bp, "
        "3 epochs, bf16; seconds of `fit` after a warm-up fit.",
        ["d_model", "layers", "fit s eager / graphs / graphs fused", "steps/s eager / graphs / graphs fused",
         "speed-up of graphs", "test accuracy eager / graphs / graphs fused"], "|---:|---:|---:|---:|---:|---:|")
    for d_model, n_layers in SIZES:
        for mode in MODES:  # compile every kernel the runs take, outside the clock
            fit_seconds(d_model, n_layers, mode, X[:256], y[:256], X_test[:64], y_test[:64])
        runs = [fit_seconds(d_model, n_layers, mode, X, y, X_test, y_test) for mode in MODES]
        seconds, steps, accuracy = [r[0] for r in runs], runs[0][1], [r[2] for r in runs]
        table.add(d_model, n_layers, " / ".join(f"{s:.2f}" for s in seconds),
                  " / ".join(f"{steps / s:.0f}" for s in seconds), f"{seconds[0] / seconds[1]:.2f}x",
                  " / ".join(f"{a:.3f}" for a in accuracy))

if __name__ == "__main__":
    main()
