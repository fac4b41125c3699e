"""`seqmamba forecast` (the rows after a series' end, as CSV and optionally a plot) and `seqmamba evaluate`
(MSE/MAE over the standard protocol's test span)."""

from __future__ import annotations

import contextlib
import time
import warnings
from typing import TYPE_CHECKING

import click

from ..errors import InputError
from .options import device_option, quiet_option, threads_option

if TYPE_CHECKING:
    from ..datasets.timeseries import TimeSeries


def _load(model_dir: str, device: str = "auto", threads: int | None = None):
    from ..forecasting import MambaForecaster
    from ..training.device import resolve_device

    model = MambaForecaster.load(model_dir, device=str(resolve_device(device)))
    model.n_threads = threads  # this run's, not the one saved with the model
    return model


@click.command("forecast")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="CSV file to write [default: stdout].")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, writable=True),
              help="Also draw history and forecast per variable into this image (.png, .pdf, .svg; "
                   "needs matplotlib: pip install 'seqmamba[plot]').")
@click.option("--history", type=click.IntRange(min=1), default=None,
              help="Rows of history drawn before the forecast [default: 3 x lookback].")
@click.option("--missing", type=click.Choice(["error", "interpolate"]), default="error", show_default=True)
@device_option
@threads_option
@quiet_option("No summary on stderr.")
@click.option("--overwrite", is_flag=True,
              help="Replace the -o file and the --plot image if they exist (atomically) [default: refuse].")
@click.option("--future", "future", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CSV/Parquet of the future covariates over the forecast's rows (the time column, the "
                   "covariates; the id column too for many series): needed by a model trained with "
                   "--future-covariates.")
def forecast(model_dir: str, data: str, output: str | None, plot_path: str | None, history: int | None,
             missing: str, device: str, threads: int | None, quiet: bool, overwrite: bool,
             future: str | None) -> None:
    """Forecast the rows after the end of DATA with the model in MODEL_DIR (of each series of DATA for a
    model of many series: a long table out, the id and time columns first). Quantile columns follow the
    targets, and --plot shades the interval between the lowest and highest quantile.

    \b
    Example:
      seqmamba forecast etth1_model/ ETTh1.csv -o forecast.csv --plot forecast.png
      seqmamba forecast model/ long.csv --future next.csv -o forecast.csv
    """
    from ..datasets.atomic import output_or_stdout
    from ..datasets.output_safety import check_output_free, refuse_same_file
    from ..datasets.timeseries import read_timeseries

    for path in (output, plot_path):
        refuse_same_file([model_dir, data] + ([future] if future else []), path)
        check_output_free(path, overwrite)
    refuse_same_file([output], plot_path, role="the -o output")
    if plot_path is not None:
        _require_matplotlib()
    started = time.perf_counter()
    model = _load(model_dir, device, threads)
    needs = list(model.future_covariates or [])
    if needs and future is None:
        many = " of each series" if model.id_col is not None else ""
        raise InputError(f"{model_dir}: the model was trained with future covariates {needs}: pass --future FILE "
                         f"holding them over the next {model.horizon} rows{many} (the forecast's timestamps)")
    targets = [str(c) for c in model.target_names_]
    if model.id_col is not None:
        from ..datasets.ts_panel import read_panel

        panel = read_panel(data, model.id_col, missing=missing, irregular="warn")
        frame = panel.to_frame()
        with _naming(data, future), warned_once():
            result = model.predict(frame, future=future)  # id, time column, targets (and quantiles)
        index, where = False, f"{len(panel)} series x {model.horizon}; after each series' last row in {data}"
    else:
        series = read_timeseries(data, missing=missing, irregular="warn")  # the warning names the file and row
        frame = _as_frame(series)
        with _naming(data, future), warned_once():
            result = model.predict(frame, future=future)  # pandas frame: date column (or row numbers) + variables
        index, where = series.timestamps is None, f"after row {len(frame):,} of {data}"
    with output_or_stdout(output) as handle:
        result.to_csv(handle, index=index, index_label="row")
    if plot_path is not None:
        from .forecast_plot import plot_forecast, plot_panel_forecast

        n_history, title = history or 3 * model.lookback, f"{data}: {model_dir}"
        if model.id_col is not None:
            plot_panel_forecast(frame, result, plot_path, n_history, model.id_col, panel.time_name, targets,
                                title=title)
        else:
            plot_forecast(frame, result, plot_path, n_history, title=title, variables=targets)
    if not quiet:
        click.echo(f"wrote {len(result):,} forecast rows x {len(targets)} variable(s) ({where}) to "
                   f"{output or 'stdout'} in {time.perf_counter() - started:.1f} s", err=True)


@contextlib.contextmanager
def _naming(data: str, other: str | None = None):
    """Input errors of the estimator name the method, not the file: put the file in front (its rows are the
    file's; `X` is the estimator's name for them). Errors that name ``other`` (the --future file) are its own."""
    try:
        yield
    except InputError as error:
        message = str(error).removeprefix("X: ")
        if message.startswith(data) or (other is not None and message.startswith(other)):
            raise InputError(message) from None
        raise InputError(f"{data}: {message}") from None


@contextlib.contextmanager
def warned_once():
    """The file was read (and warned about) by name: the estimator's warning about the same frame is a repeat."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"DataFrame: (series .*: )?irregular timestamps",
                                category=UserWarning)
        yield


@click.command("evaluate")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@click.option("--protocol", type=click.Choice(["auto", "etth", "ettm", "ratio"]), default="auto", show_default=True,
              help="Which standard split's test span: auto reads it from the file name (ETTh*, ETTm*).")
@click.option("--start", type=int, default=None, help="Evaluate rows [start, end) instead (warm-up included).")
@click.option("--end", type=int, default=None)
@device_option
@threads_option
@quiet_option("No summary on stderr (the scores still go to stdout).")
def evaluate(model_dir: str, data: str, protocol: str, start: int | None, end: int | None, device: str,
             threads: int | None, quiet: bool) -> None:
    """MSE and MAE of the model in MODEL_DIR on DATA's test span (z-scored with the training statistics,
    every window, every variable; for a model of many series, the span of each series of DATA, every window
    of every series alike). A model with quantiles adds the mean pinball loss, the CRPS approximated from the
    quantiles, and the coverage of the interval between its lowest and highest quantile.

    \b
    Example:
      seqmamba evaluate etth1_model/ ETTh1.csv
    """
    started = time.perf_counter()
    model = _load(model_dir, device, threads)
    with _naming(data):
        scores = model.evaluate(data, start=start, end=end, protocol=protocol)
    what = "test span rows" if start is None and end is None else "rows"
    if isinstance(scores["start"], dict):  # many series: each its own span
        where = f"{what} of {len(scores['series'])} series"
        if scores.get("skipped"):
            where += f"; {len(scores['skipped'])} series too short for a window"
    else:
        where = f"{what} [{scores['start']}, {scores['end']})"
    quantile = ""
    if "pinball" in scores:
        quantile = (f"  pinball {scores['pinball']:.4f}  crps {scores['crps']:.4f}  coverage {scores['coverage']:.3f} "
                    f"(of the {scores['interval']:.0%} interval)")
    click.echo(f"mse {scores['mse']:.4f}  mae {scores['mae']:.4f}{quantile}  ({scores['n_windows']} windows, {where}, "
               f"lookback {model.lookback}, horizon {model.horizon})")
    if not quiet:
        device_used = next(model.model_.parameters()).device
        click.echo(f"evaluated {model_dir} on {data} in {time.perf_counter() - started:.1f} s on {device_used}",
                   err=True)


def check_fitted_rows(series: TimeSeries, train: slice, end: int, data: str) -> None:
    """The rows `train forecast` fits on (``[0, end)``), z-scored with the training rows' statistics as fit
    will: a value the network cannot compute with is named here by file, column, row and line (fit sees
    only the validation slice, whose row numbers are not the file's)."""
    from ..forecasting.finite import scale_checked
    from ..tokenizers.timeseries import TimeSeriesTokenizer

    scaler = TimeSeriesTokenizer().fit(series.values[train])
    csv = not data.lower().endswith((".parquet", ".pq"))
    scale_checked(scaler, series.values[:end], data, series.columns, series.timestamps, csv=csv)


def _as_frame(series):
    import pandas as pd

    frame = pd.DataFrame(series.values, columns=list(series.columns))
    if series.timestamps is not None:
        frame.insert(0, "date", series.timestamps)
    return frame


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError("--plot needs matplotlib, which is not installed: pip install 'seqmamba[plot]' "
                         "(or pip install matplotlib)") from None
