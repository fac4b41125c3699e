"""`seqmamba train forecast`: fit a MambaForecaster on a CSV/Parquet series and save it to a directory."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from ..datasets.atomic import atomic_directory
from ..datasets.output_safety import FORECASTER, check_not_busy, claim_model_dir, lock_output_dir, refuse_same_file
from ..errors import InputError, naming_output
from .forecast_cmd import _naming, check_fitted_rows, warned_once
from .options import device_option, quiet_option, threads_option


@click.command("forecast")
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
@click.option("--confirm-alpha", type=click.FloatRange(min=0, max=1, min_open=True), default=0.05,
              show_default=True, help="Level of the Diebold-Mariano test by which the trained network (or its "
                                      "mix with the start) must beat the linear start there (1: any lower MSE).")
@threads_option
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True,
              help="Replace a forecaster already in MODEL_DIR (any other non-empty directory is refused).")
@quiet_option("No progress bar.")
@click.option("--id-col", default=None,
              help="DATA is a long table of many series: this column names each row's series (e.g. unique_id); "
                   "one model learns from every series, each scaled by its own training rows.")
@click.option("--covariates", multiple=True, metavar="COLUMNS",
              help="Past-observed covariates: columns read as inputs over the lookback, never forecast "
                   "(comma-separated or repeated).")
@click.option("--future-covariates", multiple=True, metavar="COLUMNS",
              help="Future-known covariates (calendar features, a schedule): inputs over the lookback and the "
                   "horizon; `seqmamba forecast` then needs --future (comma-separated or repeated).")
@click.option("--quantiles", default=None, metavar="LEVELS",
              help="Quantile levels, e.g. 0.1,0.5,0.9: a quantile head trained with the pinball loss; the "
                   "forecast gets a column <target>_q<level> per level, evaluate the pinball loss and coverage.")
def train_forecast(data: str, model_dir: str, lookback: int, horizon: int, architecture: str, d_model: int,
                   n_layers: int, d_state: int, patch_len: int, max_epochs: int, batch_size: int, lr: float,
                   linear_path: str, linear_init: str, confirm_fraction: float,
                   confirm_alpha: float, patience: int, split: str,
                   missing: str, device: str, threads: int | None, seed: int, overwrite: bool, quiet: bool,
                   id_col: str | None, covariates: tuple[str, ...], future_covariates: tuple[str, ...],
                   quantiles: str | None) -> None:
    """Train a forecaster on DATA (CSV/Parquet: a date column, numeric variables; with --id-col, a long table
    of many series).

    \b
    Example:
      seqmamba train forecast ETTh1.csv --lookback 96 --horizon 96 -o etth1_model/
      seqmamba forecast etth1_model/ ETTh1.csv -o forecast.csv --plot forecast.png
      seqmamba evaluate etth1_model/ ETTh1.csv
    \b
    Many series, covariates, quantiles:
      seqmamba train forecast long.csv --id-col unique_id --future-covariates hour,weekday \\
          --quantiles 0.1,0.5,0.9 -o model/
      seqmamba forecast model/ long.csv --future next.csv -o forecast.csv --plot forecast.png
    """
    past_names, future_names = column_list(covariates), column_list(future_covariates)
    levels = quantile_levels(quantiles)
    from ..datasets.timeseries import read_timeseries, standard_splits
    from ..forecasting import MambaForecaster

    target = Path(model_dir)
    # Before any work: never the directory holding DATA, never a directory that is not a forecaster (".",
    # a folder of data: it would be replaced whole), a forecaster only with --overwrite.
    refuse_same_file([data], target, directory=True)
    check_not_busy(target)
    claim_model_dir(target, FORECASTER, overwrite)
    if id_col is not None:
        frame, val, what = _panel_frames(data, id_col, missing, split, lookback)
    else:
        try:
            series = read_timeseries(data, missing=missing, irregular="warn", lookback=lookback, horizon=horizon)
        except InputError as error:
            if " is not numeric: " not in str(error):
                raise
            raise InputError(f"{error} (a long table of many series? name its id column: --id-col)") from None
        frame = _frame(series)
        what = f"{series.n_variables} variables"
        val = None
        if split == "protocol":
            splits = standard_splits(series, lookback)
            check_fitted_rows(series, splits.train.slice, splits.val.end, data)  # named by the file's rows
            frame, val = frame.iloc[splits.train.slice], frame.iloc[splits.val.slice]
    model = MambaForecaster(lookback=lookback, horizon=horizon, d_model=d_model, n_layers=n_layers,
                            d_state=d_state, patch_len=patch_len, architecture=architecture,
                            max_epochs=max_epochs, batch_size=batch_size, lr=lr, patience=patience,
                            linear_path=linear_path, linear_init=linear_init, confirm_fraction=confirm_fraction,
                            confirm_alpha=confirm_alpha,
                            device=device, n_threads=threads,
                            random_state=seed, verbose=0 if quiet else 1, id_col=id_col,
                            past_covariates=list(past_names) or None, future_covariates=list(future_names) or None,
                            quantiles=levels)
    with _claimed(target, overwrite), warned_once():
        with _naming(data):  # X's rows are the file's (from row 0)
            model.fit(frame, X_val=val)
        write_model_dir(model, target)
    best = "" if model.best_val_mse_ is None else f"; best validation MSE {model.best_val_mse_:.4f}"
    if model.start_val_mse_ is not None:
        best += f" (linear start: {model.start_val_mse_:.4f})"
    if model.confirm_mse_:
        held = model.confirm_mse_
        scores = ", ".join(f"{name} {mse:.4f}{_p_note(model.confirm_pvalue_, name)}" for name, mse in held.items())
        best += f"; held-back validation MSE: {scores}; kept the {model.kept_}"
    click.echo(f"trained {model.n_epochs_} epoch(s) on {len(frame)} rows x {what}{best}; model in {target}",
               err=True)


def _p_note(pvalues: dict, name: str) -> str:
    """" (p 0.031)" after a held-back candidate's MSE; " (too few windows to test)" where it had none."""
    if name not in pvalues:
        return ""
    return " (too few windows to test)" if pvalues[name] is None else f" (p {pvalues[name]:.2g})"


def column_list(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--covariates a,b --covariates c`` -> ("a", "b", "c")."""
    return tuple(name.strip() for value in values for name in value.split(",") if name.strip())


def quantile_levels(text: str | None) -> list[float] | None:
    """``"0.1,0.5,0.9"`` -> [0.1, 0.5, 0.9]; a usage error names what is wrong."""
    if text is None:
        return None
    try:
        from ..forecasting.model import check_quantiles

        return check_quantiles([float(v) for v in text.split(",") if v.strip()]) or None
    except ValueError as error:
        raise click.BadParameter(f"{text!r}: {error}", param_hint="--quantiles") from None


def _panel_frames(data: str, id_col: str, missing: str, split: str, lookback: int):
    """A long table's training frame, validation frame (None with --split all) and a summary for the last
    line; the protocol's spans are taken in each series (ETTh* ids take the ETT months)."""
    from ..datasets.timeseries import standard_splits
    from ..datasets.ts_panel import read_panel

    panel = read_panel(data, id_col, missing=missing, irregular="warn")
    what = f"{len(panel.columns)} columns of {len(panel)} series"
    if split != "protocol":
        return panel.to_frame(), None, what
    splits = [standard_splits(series, lookback) for series in panel.series]
    return (panel.to_frame([s.train.slice for s in splits]), panel.to_frame([s.val.slice for s in splits]), what)


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
    with atomic_directory(target) as staged:
        model.save(staged)


__all__ = ["train_forecast", "write_model_dir"]
