"""`seqmamba train forecast`: fit a MambaForecaster on a CSV/Parquet series and save it to a directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import click

from ..datasets.output_safety import FORECASTER, check_not_busy, claim_model_dir, lock_output_dir, refuse_same_file
from ..errors import InputError, naming_output
from .forecast_cmd import _naming, check_fitted_rows, warned_once
from .options import device_option, quiet_option, threads_option
from .train_cmd import train


@train.command("forecast")
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "model_dir", type=click.Path(file_okay=False), required=True,
              help="Directory to write the model to (config.json + model.safetensors).")
@click.option("--lookback", type=click.IntRange(min=1), default=96, show_default=True, help="Input rows.")
@click.option("--horizon", type=click.IntRange(min=1), default=96, show_default=True, help="Forecast rows.")
@click.option("--architecture", type=click.Choice(["variate", "patch"]), default="variate", show_default=True,
              help="variate: one token per variable (S-Mamba); patch: causal over time, streaming.")
@click.option("--d-model", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--n-layers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--d-state", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--patch-len", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--max-epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--linear-path", type=click.Choice(["auto", "normalized", "raw"]), default="auto", show_default=True,
              help="What the variate model's closed-form linear path reads: the RevIN'd window, the raw window, "
                   "or auto (the lower validation MSE of the two).")
@click.option("--linear-init", type=click.Choice(["ridge", "random"]), default="ridge", show_default=True,
              help="ridge: start from the closed-form linear forecast (Mamba head at zero); random: no fit.")
@click.option("--patience", type=click.IntRange(min=1), default=3, show_default=True,
              help="Epochs without a better validation MSE before stopping.")
@click.option("--split", type=click.Choice(["protocol", "all"]), default="protocol", show_default=True,
              help="protocol: train on the standard train span, validate on its validation span (the test "
                   "span stays unseen for `seqmamba evaluate`); all: every row, the last 10% validating.")
@click.option("--missing", type=click.Choice(["error", "interpolate"]), default="error", show_default=True,
              help="NaN cells: an error naming the cell, or linear interpolation.")
@device_option
@click.option("--confirm-fraction", type=click.FloatRange(min=0, max=1, max_open=True), default=0.5,
              show_default=True, help="Share of the validation rows held back from early stopping; the trained "
                                      "network is kept only if it beats the linear start there (0: off).")
@threads_option
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True,
              help="Replace a forecaster already in MODEL_DIR (any other non-empty directory is refused).")
@quiet_option("No progress bar.")
def train_forecast(data: str, model_dir: str, lookback: int, horizon: int, architecture: str, d_model: int,
                   n_layers: int, d_state: int, patch_len: int, max_epochs: int, batch_size: int, lr: float,
                   linear_path: str, linear_init: str, confirm_fraction: float, patience: int, split: str,
                   missing: str, device: str, threads: int | None, seed: int, overwrite: bool, quiet: bool) -> None:
    """Train a forecaster on DATA (CSV/Parquet: a date column, numeric variables).

    \b
    Example:
      seqmamba train forecast ETTh1.csv --lookback 96 --horizon 96 -o etth1_model/
      seqmamba forecast etth1_model/ ETTh1.csv -o forecast.csv --plot forecast.png
      seqmamba evaluate etth1_model/ ETTh1.csv
    """
    from ..datasets.timeseries import read_timeseries, standard_splits
    from ..forecasting import MambaForecaster

    target = Path(model_dir)
    # Before any work: never the directory holding DATA, never a directory that is not a forecaster (".",
    # a folder of data: it would be replaced whole), a forecaster only with --overwrite.
    refuse_same_file([data], target, directory=True)
    check_not_busy(target)
    claim_model_dir(target, FORECASTER, overwrite)
    series = read_timeseries(data, missing=missing, irregular="warn", lookback=lookback, horizon=horizon)
    frame = _frame(series)
    val = None
    if split == "protocol":
        splits = standard_splits(series, lookback)
        check_fitted_rows(series, splits.train.slice, splits.val.end, data)  # named by the file's rows
        frame, val = frame.iloc[splits.train.slice], frame.iloc[splits.val.slice]
    model = MambaForecaster(lookback=lookback, horizon=horizon, d_model=d_model, n_layers=n_layers,
                            d_state=d_state, patch_len=patch_len, architecture=architecture,
                            max_epochs=max_epochs, batch_size=batch_size, lr=lr, patience=patience,
                            linear_path=linear_path, linear_init=linear_init, confirm_fraction=confirm_fraction,
                            device=device, n_threads=threads,
                            random_state=seed, verbose=0 if quiet else 1)
    with _claimed(target, overwrite), warned_once():
        with _naming(data):  # X's rows are the file's (from row 0)
            model.fit(frame, X_val=val)
        write_model_dir(model, target)
    best = "" if model.best_val_mse_ is None else f"; best validation MSE {model.best_val_mse_:.4f}"
    if model.start_val_mse_ is not None:
        best += f" (linear start: {model.start_val_mse_:.4f})"
    if model.confirm_mse_:
        held = model.confirm_mse_
        scores = ", ".join(f"{name} {mse:.4f}" for name, mse in held.items())
        best += f"; held-back validation MSE: {scores}; kept the {model.kept_}"
    click.echo(f"trained {model.n_epochs_} epoch(s) on {len(frame)} rows x {series.n_variables} variables{best}; "
               f"model in {target}", err=True)


def _frame(series):
    """A TimeSeries back to a pandas frame (a `date` column when it has timestamps)."""
    import pandas as pd

    frame = pd.DataFrame(series.values, columns=list(series.columns))
    if series.timestamps is not None:
        frame.insert(0, "date", series.timestamps)
    return frame


@contextlib.contextmanager
def _claimed(target: Path, overwrite: bool):
    """MODEL_DIR created if absent and locked for this run (a second run into it fails at once), claimed
    again under the lock; a MODEL_DIR this run created goes again if the run fails."""
    created = not target.exists()
    with naming_output(target):
        target.mkdir(parents=True, exist_ok=True)
    try:
        with lock_output_dir(target):
            claim_model_dir(target, FORECASTER, overwrite)
            yield
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                target.rmdir()  # only if empty: a model another run put there stays
        raise


def write_model_dir(model, target: Path) -> None:
    """Save into a hidden sibling directory, then rename it into place: MODEL_DIR is whole or absent.

    A failure (`OutputError` naming MODEL_DIR on a full disk) or an interrupt leaves MODEL_DIR as it was.
    """
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: exists and is not a directory")
    with naming_output(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes 0700: the model directory should look like any other
    old = None
    try:
        with naming_output(target):
            model.save(tmp)
            if target.exists():
                old = target.with_name(f".{target.name}.old.{os.getpid()}")
                os.replace(target, old)
            os.replace(tmp, target)
    except BaseException:
        if old is not None and not target.exists():
            os.replace(old, target)  # stopped between the two renames: the user's model goes back
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
        raise
    if old is not None:  # only once the new model is in place
        shutil.rmtree(old, ignore_errors=True)


__all__ = ["train_forecast", "write_model_dir"]
