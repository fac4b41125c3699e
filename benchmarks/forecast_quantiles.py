"""Quantile forecasts under the standard protocol: coverage of the 10-90 % interval and the pinball loss.

Each setting fits the default MambaForecaster with ``quantiles=[0.1, 0.5, 0.9]`` on the train span (early
stopping and the held-back check on the validation span, as always) and scores the test span: MSE / MAE of the
point (mean) forecast, the mean pinball loss, the CRPS approximated from the three quantiles (2 x pinball),
and the share of test targets inside the 10-90 % interval (nominal 0.8). All in the z-scored space.

    # national_illness (lookback 104) on a 2-core CPU, about a minute:
    PYTHONPATH=. python3 benchmarks/forecast_quantiles.py --dataset national_illness --lookback 104 \\
        --horizons 24 36 48 60
    # ETTh2, lookback 96, horizon 96 (a few minutes on a CPU):
    PYTHONPATH=. python3 benchmarks/forecast_quantiles.py --dataset ETTh2 --lookback 96 --horizons 96
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from seqmamba.datasets.timeseries import read_timeseries, standard_splits
from seqmamba.forecasting import MambaForecaster

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ts"
LEVELS = [0.1, 0.5, 0.9]


def run(dataset: str, lookback: int, horizon: int, device: str, seed: int) -> dict:
    series = read_timeseries(DATA / f"{dataset}.csv")
    train, val, test = (series.values[span.slice] for span in standard_splits(series, lookback))
    started = time.perf_counter()
    model = MambaForecaster(lookback=lookback, horizon=horizon, quantiles=LEVELS, device=device, random_state=seed,
                            verbose=0).fit(train, X_val=val)
    scores = model.evaluate(test, start=0, end=len(test))
    scores.update(kept=model.kept_, epochs=model.n_epochs_, seconds=time.perf_counter() - started)
    print(f"{dataset} L={lookback} H={horizon}: {scores}", file=sys.stderr, flush=True)
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="national_illness", help="a CSV stem in ../shared/data/ts/")
    parser.add_argument("--lookback", type=int, default=104)
    parser.add_argument("--horizons", nargs="+", type=int, default=[24, 36, 48, 60])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"{args.dataset}, lookback {args.lookback}, quantiles {LEVELS}\n")
    print("| H | MSE / MAE (mean forecast) | pinball | CRPS (from quantiles) | coverage of 10-90 % | kept | epochs |")
    print("|---|---|---|---|---|---|---|")
    for horizon in args.horizons:
        s = run(args.dataset, args.lookback, horizon, args.device, args.seed)
        print(f"| {horizon} | {s['mse']:.4f} / {s['mae']:.4f} | {s['pinball']:.4f} | {s['crps']:.4f} | "
              f"{s['coverage']:.3f} | {s['kept']} | {s['epochs']} |", flush=True)
    print(f"\n{time.perf_counter() - started:.0f} s on {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
