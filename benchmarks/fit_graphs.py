"""A DNA classifier's fit on a GPU with and without CUDA graphs for its training steps (and predictions).

    PYTHONPATH=$PWD python3 benchmarks/fit_graphs.py --out fit_graphs.md

`MambaSequenceClassifier` at its defaults (d_model 64, 2 layers, batch 32) and at d_model 128, fitted for a few
epochs on random 300 bp sequences whose label is whether A is their commonest base (learnable), timed with
`SEQMAMBA_CUDA_GRAPHS=0` (every step eager) and unset (steps and predictions replayed from graphs). A first,
short fit compiles the kernels outside the clock. Reported: fit seconds, steps per second, and the held-out
accuracy of each (the two runs differ only by the capturable AdamW's rounding and the random draws' order).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
from report import MarkdownTable

from seqmamba.estimators import MambaSequenceClassifier

SIZES = [(64, 2), (128, 2)]  # (d_model, n_layers)


def data(n: int, length: int, seed: int) -> tuple[list[str], list[bool]]:
    rng = np.random.default_rng(seed)
    seqs = ["".join(s) for s in rng.choice(list("ACGT"), size=(n, length), p=[0.28, 0.24, 0.24, 0.24])]
    return seqs, [max("ACGT", key=s.count) == "A" for s in seqs]


def fit_seconds(d_model: int, n_layers: int, graphs: bool, X, y, X_test, y_test) -> tuple[float, int, float]:
    os.environ["SEQMAMBA_CUDA_GRAPHS"] = "1" if graphs else "0"
    clf = MambaSequenceClassifier(d_model=d_model, n_layers=n_layers, max_epochs=3, device="cuda", random_state=0)
    torch.cuda.synchronize()
    start = time.perf_counter()
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
        ["d_model", "layers", "fit s eager / graphs", "steps/s eager / graphs", "speed-up",
         "test accuracy eager / graphs"], "|---:|---:|---:|---:|---:|---:|")
    for d_model, n_layers in SIZES:
        for graphs in (False, True):  # compile every kernel both runs take, outside the clock
            fit_seconds(d_model, n_layers, graphs, X[:256], y[:256], X_test[:64], y_test[:64])
        (e_s, steps, e_acc), (g_s, _, g_acc) = (fit_seconds(d_model, n_layers, g, X, y, X_test, y_test)
                                                for g in (False, True))
        table.add(d_model, n_layers, f"{e_s:.2f} / {g_s:.2f}", f"{steps / e_s:.0f} / {steps / g_s:.0f}",
                  f"{e_s / g_s:.2f}x", f"{e_acc:.3f} / {g_acc:.3f}")

if __name__ == "__main__":
    main()
