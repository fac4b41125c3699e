"""Tiny models trained through the real CLI, shared by the command-line tests (bad input, output safety,
finite results): the options, the training table, a toy series, and one set-up that trains both models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from seqmamba.pipelines.cli import main

TINY_DNA = ["--d-model", "8", "--n-layers", "1", "--d-state", "4", "--max-len", "64", "--epochs", "1",
            "--batch-size", "8", "--device", "cpu", "-q"]
TINY_FORECAST = ["--lookback", "24", "--horizon", "6", "--d-model", "8", "--n-layers", "1", "--max-epochs", "1",
                 "--device", "cpu", "-q"]
GOOD_TABLE = "sequence,label\n" + "".join(f"{'AT' * 10},AT\n{'GC' * 10},GC\n" for _ in range(4))


def series(path: Path, n: int, **columns) -> Path:
    """A daily series with columns a and b (overridden or extended by ``columns``), written as CSV."""
    t = np.arange(n, dtype=np.float64)
    frame = pd.DataFrame({"date": pd.date_range("2022-01-01", periods=n, freq="D"), "a": np.sin(t / 4),
                          "b": np.cos(t / 6)})
    for name, values in columns.items():
        frame[name] = values
    frame.to_csv(path, index=False)
    return path


def train_tiny_models(root: Path) -> Path:
    """root/dna (a classifier trained on root/train.csv) and root/fc (a forecaster on root/toy.csv, columns a, b;
    lookback 24, horizon 6), both through `seqmamba train`."""
    (root / "train.csv").write_text(GOOD_TABLE)
    assert main(["train", "dna", "--train", str(root / "train.csv"), "-o", str(root / "dna"), *TINY_DNA]) == 0
    series(root / "toy.csv", 120)
    assert main(["train", "forecast", str(root / "toy.csv"), "-o", str(root / "fc"), *TINY_FORECAST]) == 0
    return root
