"""Issue 23, item 1 (a cheap CPU test): the Mamba path as a residual on top of the frozen linear start.

The default forecaster trains its closed-form linear skip together with the Mamba head (lr 1e-4), and on the
standard sets the held-back check keeps the linear start almost everywhere (docs/results/forecast.md). This
script tries one idea against it: freeze the skip at its closed-form fit (``linear_lr_scale=0``), so the network
can only add a residual to the linear forecast, and give that residual a larger learning rate (1e-3) and more
epochs. Both variants go through the same held-back check (start / even mix / trained on the latest half of the
validation rows), and the variant whose kept model scores lower on validation is the one chosen (``pick``):
every decision on validation rows, none on test. Test scores are printed for the record.

Per setting the table shows, on the z-scored test windows (train statistics, every window): the linear start
(the skip refitted exactly as fit fits it, Mamba head at zero), DLinear fitted in closed form, each variant's kept
model, and the pick; and on validation the numbers the choices were made on.

    # national_illness, lookback 36, the customary horizons (about 4 minutes on a 2-core CPU):
    PYTHONPATH=. python3 benchmarks/forecast_residual.py --dataset national_illness --lookback 36 \\
        --horizons 24 36 48 60
    # ETTh2, lookback 96, horizon 96:
    PYTHONPATH=. python3 benchmarks/forecast_residual.py --dataset ETTh2 --lookback 96 --horizons 96
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from seqmamba.baselines import DLinear, evaluate_windows
from seqmamba.datasets.timeseries import SlidingWindows, read_timeseries, standard_splits
from seqmamba.forecasting import MambaForecaster
from seqmamba.forecasting.linear_init import fit_skip, linear_forecast
from seqmamba.modules.revin import RevIN

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ts"
VARIANTS = {
    "default": {},  # the forecaster's defaults: skip and head trained together at lr 1e-4, 10 epochs
    "residual": dict(linear_lr_scale=0.0, lr=1e-3, max_epochs=30, patience=5),  # frozen skip, the residual trains
}


def start_scores(model: MambaForecaster, train_scaled, test: SlidingWindows, lookback: int) -> dict:
    """Test scores of the linear start, refitted exactly as fit fitted it."""
    revin = RevIN(model.config_.n_variables, affine=False)
    skip = model.config_.skip_input
    fit = fit_skip(SlidingWindows(train_scaled, lookback, model.horizon), revin, skip, model.linear_alpha)
    return evaluate_windows(lambda x: linear_forecast(x, fit, revin if skip == "normalized" else None), test)


def validation_score(model: MambaForecaster) -> tuple[float, str]:
    """What the pick between variants compares: the held-back MSE of the kept candidate, or (validation too
    short to hold rows back) the early-stopping MSE of the best epoch."""
    if model.confirm_mse_:
        return model.confirm_mse_[model.kept_], "held-back"
    return model.best_val_mse_, "early-stopping"


def run(dataset: str, lookback: int, horizon: int, device: str, seed: int) -> dict:
    series = read_timeseries(DATA / f"{dataset}.csv")
    splits = standard_splits(series, lookback)
    train, val, test = (series.values[span.slice] for span in splits)
    row: dict = {"horizon": horizon}
    for name, settings in VARIANTS.items():
        started = time.perf_counter()
        model = MambaForecaster(lookback=lookback, horizon=horizon, device=device, random_state=seed, verbose=0,
                                **settings).fit(train, X_val=val)
        seconds = time.perf_counter() - started
        score, kind = validation_score(model)
        row[name] = {"test": model.evaluate(test, start=0, end=len(test))["mse"], "val": score, "val_kind": kind,
                     "kept": model.kept_, "confirm": model.confirm_mse_, "epochs": model.n_epochs_,
                     "seconds": seconds}
        if "start" not in row:
            scaled = model.scaler_.transform
            windows = SlidingWindows(scaled(test), lookback, horizon)
            row["start"] = start_scores(model, scaled(train), windows, lookback)["mse"]
            row["skip"] = model.config_.skip_input
            row["dlinear"] = evaluate_windows(DLinear(lookback, horizon).fit(scaled(train)).predict, windows)["mse"]
        print(f"{dataset} L={lookback} H={horizon} {name}: test {row[name]['test']:.4f}, {kind} val "
              f"{score:.4f}, kept {model.kept_} {model.confirm_mse_ or ''} p {model.confirm_pvalue_ or ''}, "
              f"{model.n_epochs_} epochs, {seconds:.0f} s",
              file=sys.stderr, flush=True)
    row["pick"] = min(VARIANTS, key=lambda name: row[name]["val"])
    return row


def table(dataset: str, lookback: int, rows: list[dict]) -> str:
    lines = [f"{dataset}, lookback {lookback}: test MSE (z-scored), and the validation MSE each choice was made on",
             "",
             "| H | linear start (input) | DLinear lstsq | default: test (kept; val) | residual: test (kept; val) | "
             "pick (on val) | pick vs start |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = []
        for name in VARIANTS:
            v = row[name]
            cells.append(f"{v['test']:.4f} ({v['kept']}; {v['val_kind']} {v['val']:.4f})")
        pick = row[row["pick"]]["test"]
        lines.append(f"| {row['horizon']} | {row['start']:.4f} ({row['skip']}) | {row['dlinear']:.4f} | "
                     + " | ".join(cells) + f" | {row['pick']}: {pick:.4f} | {100 * (pick / row['start'] - 1):+.1f} % |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="national_illness", help="a CSV stem in ../shared/data/ts/")
    parser.add_argument("--lookback", type=int, default=36)
    parser.add_argument("--horizons", nargs="+", type=int, default=[24, 36, 48, 60])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = [run(args.dataset, args.lookback, h, args.device, args.seed) for h in args.horizons]
    print(table(args.dataset, args.lookback, rows))
    print(f"\n{time.perf_counter() - started:.0f} s on {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
