"""Small hyperparameter sweep for MambaForecaster on one data set and horizon, chosen on the VALIDATION span.

Prints validation and test MSE for each setting; pick by validation only (the test span stays unseen
for the choice). GPU recommended:

    python benchmarks/forecast_sweep.py --data ../shared/data/ts --set ETTh1 --horizon 96
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

from seqmamba.datasets.timeseries import read_timeseries, standard_splits
from seqmamba.forecasting import MambaForecaster

GRID = {"lr": [1e-4, 3e-4], "d_model": [64, 128, 256], "dropout": [0.1, 0.3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--set", default="ETTh1")
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    series = read_timeseries(args.data / f"{args.set}.csv")
    train, val, test = (series.values[span.slice] for span in standard_splits(series, 96))
    print("lr d_model dropout | val mse | test mse / mae | epochs | s", flush=True)
    for lr, d_model, dropout in itertools.product(*GRID.values()):
        start = time.perf_counter()
        model = MambaForecaster(lookback=96, horizon=args.horizon, lr=lr, d_model=d_model, dropout=dropout,
                                device=args.device, random_state=0, verbose=0)
        model.fit(train, X_val=val)
        v = model.evaluate(val, start=0, end=len(val))
        t = model.evaluate(test, start=0, end=len(test))
        print(f"{lr} {d_model} {dropout} | {v['mse']:.4f} | {t['mse']:.4f} / {t['mae']:.4f} | {model.n_epochs_} | "
              f"{time.perf_counter() - start:.1f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
