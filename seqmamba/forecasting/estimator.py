"""`MambaForecaster`: multivariate forecasting with a scikit-learn style fit / predict / evaluate."""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from ..checkpoint import check_trained
from ..datasets.output_safety import API_HINT, FORECASTER, claim_model_dir
from ..datasets.timeseries import SlidingWindows
from ..datasets.ts_panel import PanelWindows
from ..errors import InputError
from ..tokenizers.timeseries import TimeSeriesTokenizer
from .columns import Roles, check_covariate_params, column_roles
from .confirm import choose_kept, split_validation, state_copy
from .finite import check_forecast, scale_checked
from .frames import check_columns, check_continues, future_index, make_output, named, read_table, typical_step
from .future import future_label, horizon_rows, missing_future, read_future
from .linear_init import fit_skip, validation_mse
from .model import ForecastConfig, PatchStream, build_model
from .overlap import span_of
from .panel import FitData, evaluate_panel, predict_panel, prepare_fit, update_panel
from .persist import load_dir, restore_state, save_dir, state_dict
from .quantiles import QuantileTask, quantile_columns, residual_offsets
from .scoring import evaluate_series

LINEAR_PATHS = ("auto", "normalized", "raw")
LINEAR_INITS = ("ridge", "random")


class MambaForecaster(BaseEstimator):
    """Forecast the next ``horizon`` rows of a multivariate series from its last ``lookback`` rows.

    Every numeric column is a variable (a datetime column or index is the time axis). Values are
    z-scored with the training data's mean and std; the network (see
    :mod:`seqmamba.forecasting.model`) normalises each window again (RevIN) and predicts all
    ``horizon`` steps at once. Training runs through :class:`seqmamba.training.Trainer` (AdamW,
    cosine schedule, progress bar on stderr) with early stopping on the validation MSE.

    The ``"variate"`` network starts as a linear forecaster: its ``(L -> H)`` skip is fitted in
    closed form (ridge least squares over every training window, see
    :mod:`seqmamba.forecasting.linear_init`) and the Mamba head's output layer starts at zero, so
    before the first step the network *is* that linear model. Its validation MSE is measured before
    training and competes with every epoch: early stopping keeps whichever is best. The latest
    ``confirm_fraction`` of the validation rows is held back from early stopping: the linear start, the
    trained network and their even mix (the mean of their forecasts) are scored there, and the mix or
    the network replaces the start only where it is better there by a significance test (see
    :mod:`seqmamba.forecasting.confirm`): training can only replace the start by something shown to be
    better on validation windows it was not selected on.

    Args:
        lookback, horizon: L input rows, H forecast rows.
        d_model, n_layers, d_state: width, depth and SSM state size of the Mamba encoder.
        patch_len: rows per token of the ``"patch"`` architecture (unused by ``"variate"``).
        architecture: ``"variate"`` (default; S-Mamba: one token per variable, a bidirectional
            Mamba across variables; cheapest and most accurate on the standard benchmarks) or
            ``"patch"`` (patch tokens per variable through a causal Mamba over time).
        dropout: on the token embeddings.
        linear_path: what the variate skip reads: ``"normalized"`` (the RevIN'd window),
            ``"raw"`` (the window as given, so the forecast can revert to the series' level) or
            ``"auto"`` (both fitted in closed form, the lower validation MSE kept; "normalized"
            without validation data).
        linear_init: ``"ridge"`` (closed-form skip, zero Mamba head: training starts at the linear
            forecast) or ``"random"`` (both initialised at random, as any layer).
        linear_alpha: ridge penalty of the closed-form fit, per (window, variable) sample.
        linear_lr_scale: the skip's learning rate as a multiple of ``lr`` (0 freezes it at the
            closed-form fit).
        confirm_fraction: share of the validation rows (the latest) held back from early stopping
            to confirm that training beat the linear start (``linear_init="ridge"`` only; 0: no
            confirmation, the early-stopping winner is kept). Where the validation rows are too few to
            hold any back, the start is kept, with a warning.
        confirm_alpha: the level of the one-sided Diebold-Mariano test by which the mix or the trained
            network must beat the simpler forecaster on the held-back windows to replace it (1.0: a lower
            MSE is enough).
        max_epochs, batch_size, lr, weight_decay: the training run (batch_size counts windows).
        patience: epochs without a better validation MSE before stopping (None: never); the best
            epoch's weights are kept.
        validation_fraction: without ``X_val``, the last fraction of ``X`` (windows whose targets
            fall in it) validates; 0 trains on everything with no early stopping.
        max_time: stop training after this many seconds (None: no limit); the best epoch is kept.
        device: "auto", "cpu", "cuda" or "cuda:N".
        n_threads: torch CPU threads while fitting, predicting and evaluating on a CPU (None: torch's count,
            lowered to the cores the load average leaves idle; see :mod:`seqmamba.training.threads`).
        random_state: seed of the weights and the data order (None: a fresh one each fit).
        verbose: 0 silent, 1 a progress bar and one line per evaluation on stderr.
        id_col: the id column of a long frame of many series (neuralforecast's ``"unique_id"``); None (default):
            one wide series. With it, fit learns one model from the windows of every series (each z-scored with
            its own training statistics), and predict / evaluate / update take long frames (see
            :mod:`seqmamba.forecasting.panel`). Nothing is guessed: without ``id_col`` no column is an id.
        past_covariates: columns observed up to the forecast's start only (inputs over the lookback, never
            forecast).
        future_covariates: columns known over the horizon too (calendar features, a schedule): inputs over the
            lookback and the horizon; :meth:`predict` needs their values over the horizon (``future=``).
            Every other value column is a target (forecast). Covariates need ``architecture="variate"``.
        quantiles: levels in (0, 1), e.g. ``[0.1, 0.5, 0.9]``: a quantile head trained with the pinball loss
            (see :mod:`seqmamba.forecasting.quantiles`); predict adds a column ``<target>_q<level>`` per level.
            The point forecast (the target's own column) stays the mean, trained with the MSE.

    Fitted attributes: ``model_`` (the network), ``scaler_`` (a fitted TimeSeriesTokenizer),
    ``n_features_in_``, ``feature_names_in_``, ``freq_``, ``context_`` (the last ``lookback`` rows
    seen, original units), ``last_timestamp_``, ``n_rows_seen_``, ``history_`` (one record per
    epoch), ``best_val_mse_``, ``n_epochs_``, ``start_val_mse_`` (validation MSE before the first
    step), ``linear_val_mse_`` (validation MSE of each closed-form linear path tried, by input),
    ``confirm_mse_`` (``{"start", "blend", "trained"}`` MSE on the held-back rows; empty when not
    confirmed), ``confirm_pvalue_`` (the Diebold-Mariano p-value of ``"blend"`` and of ``"trained"`` against the
    one kept before each was tried), ``kept_`` (``"start"``, ``"blend"``, the even mix of the two forecasts, or
    ``"trained"``: which weights the forecaster holds), and ``train_span_`` / ``val_span_`` (first and
    last timestamp of the training rows and of the validation rows scored in fit; None without
    timestamps): :meth:`evaluate` warns when the rows it scores fall inside them. ``feature_names_in_`` are the
    input's value columns in its order (targets and covariates); ``target_names_`` the targets. With
    ``id_col`` the per-series state is ``series_`` (id -> :class:`~seqmamba.forecasting.panel.SeriesState`:
    scaler, context rows, last timestamp, frequency, fitted spans) and ``ids_`` lists the ids in order; the
    single-series attributes (``scaler_``, ``context_``, ``last_timestamp_``...) are not set.

    Streaming: :meth:`update` appends new rows; it is the only method after fit that changes the
    estimator (``predict(X)`` forecasts from X and keeps nothing). With ``"variate"`` the next
    :meth:`predict` re-encodes the last ``lookback`` rows (the architecture is not causal over time).
    With ``"patch"`` the causal encoder is stepped once per ``patch_len`` new rows from its carried
    state (a forecast covers every row since the last ``lookback`` rows of fit, normalised with that
    window's statistics; rows short of a full patch wait).

    Example:
        >>> t = np.arange(200, dtype=np.float32)
        >>> X = np.stack([np.sin(t / 6), np.cos(t / 9)], axis=1)  # (T, C)
        >>> model = MambaForecaster(lookback=24, horizon=6, d_model=8, n_layers=1, max_epochs=1,
        ...                         batch_size=64, device="cpu", verbose=0).fit(X)
        >>> model.predict().shape  # the 6 rows after X
        (6, 2)
        >>> sorted(model.evaluate(X, start=150))
        ['end', 'mae', 'mse', 'n_windows', 'start']

        Many series in a long frame, a future-known covariate and quantiles:

        >>> import pandas as pd
        >>> def series(uid, n, start):
        ...     ds = pd.date_range(start, periods=n, freq="h")
        ...     return pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.sin(np.arange(n) / 4.0), "hour": ds.hour})
        >>> long = pd.concat([series("a", 120, "2024-01-01"), series("b", 90, "2024-02-01")])
        >>> model = MambaForecaster(lookback=24, horizon=6, d_model=8, n_layers=1, max_epochs=1, device="cpu",
        ...                         verbose=0, id_col="unique_id", future_covariates=["hour"],
        ...                         quantiles=[0.1, 0.5, 0.9]).fit(long)
        >>> ahead = pd.concat([series(u, 6, s) for u, s in (("a", "2024-01-06"), ("b", "2024-02-04 18:00"))])
        >>> out = model.predict(future=ahead)  # the next 6 rows of each series
        >>> list(out.columns), len(out), str(out["ds"].iloc[0])
        (['unique_id', 'ds', 'y', 'y_q0.1', 'y_q0.5', 'y_q0.9'], 12, '2024-01-06 00:00:00')
    """

    def __init__(self, lookback: int = 96, horizon: int = 96, d_model: int = 64, n_layers: int = 2,
                 d_state: int = 2, patch_len: int = 16, architecture: str = "variate", dropout: float = 0.1,
                 linear_path: str = "auto", linear_init: str = "ridge", linear_alpha: float = 1e-3,
                 linear_lr_scale: float = 1.0, confirm_fraction: float = 0.5, confirm_alpha: float = 0.05,
                 max_epochs: int = 10, batch_size: int = 32, lr: float = 1e-4, weight_decay: float = 0.01,
                 patience: int | None = 3,
                 validation_fraction: float = 0.1, max_time: float | None = None, device: str = "auto",
                 n_threads: int | None = None, random_state: int | None = 0, verbose: int = 1,
                 id_col: str | None = None, past_covariates: list[str] | None = None,
                 future_covariates: list[str] | None = None, quantiles: list[float] | None = None) -> None:
        self.lookback = lookback
        self.horizon = horizon
        self.d_model = d_model
        self.n_layers = n_layers
        self.d_state = d_state
        self.patch_len = patch_len
        self.architecture = architecture
        self.dropout = dropout
        self.linear_path = linear_path
        self.linear_init = linear_init
        self.linear_alpha = linear_alpha
        self.linear_lr_scale = linear_lr_scale
        self.confirm_fraction = confirm_fraction
        self.confirm_alpha = confirm_alpha
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.max_time = max_time
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.id_col = id_col
        self.past_covariates = past_covariates
        self.future_covariates = future_covariates
        self.quantiles = quantiles

    # -- fit ---------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None, X_val: Any = None) -> MambaForecaster:
        """Train on every (lookback, horizon) window of ``X`` (of every series of ``X`` with ``id_col``).

        Args:
            X: pandas or polars DataFrame (a datetime column or index; numeric variables), an array
                ``(T, C)``, or a CSV/Parquet path. With ``id_col``: a long frame (the id column, a time
                column, the value columns), see :mod:`seqmamba.forecasting.panel`.
            y: ignored (the targets are X's own future rows).
            X_val: rows to validate on, same columns (the first ``lookback`` rows only feed the
                first window; with ``id_col``, of each series). Without it, ``validation_fraction`` of X
                (of each series) is held out.

        Raises InputError (bad values, too few rows, covariates not in X: the message names the file, series,
        column, row and timestamp). Timestamps that are not on one frequency give a UserWarning naming the
        first row off the most common step: the model works on row order, and forecasts are dated by that step.
        """
        self._config(n_variables=1)  # checks the hyperparameters before any reading
        if self.id_col is not None:
            data, attributes = prepare_fit(self, X, X_val)
        else:
            data, attributes = self._prepare_wide(X, X_val)
        self._train(data, named(X, "fit"))
        for name, value in attributes.items():
            setattr(self, name, value)
        return self

    def _prepare_wide(self, X: Any, X_val: Any) -> tuple[FitData, dict[str, Any]]:
        """One wide series: its windows (train, early-stopping validation, held-back confirmation) and the
        attributes it gives the fitted estimator."""
        try:
            series, kind = read_table(X, irregular="warn")
        except InputError as error:
            if " is not numeric: " not in str(error):
                raise
            # A text column in a wide frame: often the id column of a long frame of many series.
            raise InputError(f"{error} (a long frame of many series? name its id column: id_col=...)") from None
        roles = self._roles(series.columns, named(X, "X"))
        L, H = self.lookback, self.horizon
        values = series.values  # (T, C)
        if len(values) < L + H:
            where = os.fspath(X) if isinstance(X, (str, os.PathLike)) else "X"
            raise InputError(f"{where}: {len(values)} rows, fewer than lookback + horizon = {L} + {H}")
        train_rows, val_rows = values, None
        stamps = series.timestamps
        train_span, val_span = span_of(stamps), None  # by timestamp: evaluate warns when it scores these rows
        val_where, val_stamps, val_first = "X", stamps, 0  # where validation rows are, for messages
        if X_val is not None:
            val_series, _ = read_table(X_val)
            check_columns(val_series, series.columns, named(X_val, "X_val"))
            val_rows = val_series.values
            if len(val_rows) < L + H:
                raise InputError(f"{named(X_val, 'X_val')}: {len(val_rows)} rows, fewer than lookback + horizon = "
                                 f"{L} + {H}")
            val_where, val_stamps = named(X_val, "X_val"), val_series.timestamps
            val_span = span_of(None if val_stamps is None else val_stamps[L:])  # the first L rows only feed
        elif self.validation_fraction:
            self._check_validation_fraction()
            n_val = int(len(values) * self.validation_fraction)
            if n_val >= H and len(values) - n_val >= L + H:
                train_rows, val_rows = values[:-n_val], values[-n_val - L:]  # (T', C), val with warm-up
                val_first = len(values) - n_val - L
                if stamps is not None:
                    train_span, val_span = span_of(stamps[:-n_val]), span_of(stamps[-n_val:])
        scaler = TimeSeriesTokenizer().fit(train_rows)
        # z-scores in float64, checked: validation rows far outside the training scale are named, not inf.
        train_z = scale_checked(scaler, train_rows, named(X, "X"), series.columns, stamps)
        val_z = None if val_rows is None else scale_checked(scaler, val_rows, val_where, series.columns,
                                                            val_stamps, val_first)
        confirm_z = None
        if val_z is not None and self._confirms():
            val_z, confirm_z = split_validation(val_z, L, H, self.confirm_fraction)
        train, val, confirm = (None if z is None else self._windows([z], roles) for z in (train_z, val_z, confirm_z))
        attributes = {"scaler_": scaler, "n_features_in_": series.n_variables,
                      "feature_names_in_": np.asarray(series.columns, dtype=object),
                      "target_names_": np.asarray(roles.targets, dtype=object), "kind_": kind, "freq_": series.freq,
                      "step_": typical_step(series.timestamps), "train_span_": train_span, "val_span_": val_span,
                      **self._context_of(series)}
        return FitData(train, val, confirm, len(roles.targets)), attributes

    def _train(self, data: FitData, where: str) -> None:
        """Build the network (closed-form start), train it, confirm it on the held-back windows; set the fitted
        network and the training summary."""
        from ..training import Callback, SupervisedTask, Trainer, TrainerConfig, resolve_device
        from ..training.threads import cpu_threads

        train, val = data.train, data.val
        seed = self.random_state if self.random_state is not None else int(np.random.SeedSequence().entropy % 2**31)
        if isinstance(seed, np.random.RandomState):  # scikit-learn's convention: an int is drawn from it
            seed = int(seed.randint(2**31))
        device = resolve_device(self.device)
        with cpu_threads(self.n_threads, device):
            model, config, linear_scores = self._build(data.n_targets, train, val, seed)
            if config.quantiles:  # the quantile head starts at the start's error quantiles on the training windows
                model.start_quantiles(residual_offsets(model, train, config.quantiles))
            start = state_copy(model)
            history: list[dict[str, Any]] = []
            start_metrics: dict[str, float] = {}
            deadline = None if self.max_time is None else time.monotonic() + self.max_time
            recorded = ("train_loss", "val_loss", "val_mae", "seconds") + (("val_pinball",) if config.quantiles else ())

            class _History(Callback):
                def on_evaluate(self, trainer: Any, metrics: dict[str, float]) -> None:
                    if trainer.state.global_step == 0:  # the evaluation before the first step
                        start_metrics.update(metrics)

                def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
                    history.append({k: record.get(k) for k in recorded})

                def on_step_end(self, trainer: Any) -> None:
                    if deadline is not None and time.monotonic() > deadline:
                        trainer.should_stop = True

            early = val is not None and self.patience is not None
            task = (QuantileTask(config.quantiles) if config.quantiles
                    else SupervisedTask(F.mse_loss, metric_fns={"mae": F.l1_loss}))
            trainer = Trainer(
                model, task, train, val_data=val,
                config=TrainerConfig(max_epochs=self.max_epochs, batch_size=self.batch_size, lr=self.lr,
                                     weight_decay=self.weight_decay, device=self.device, seed=seed,
                                     patience=self.patience if early else None, restore_best=val is not None,
                                     eval_at_start=val is not None, drop_last=False, quiet=not self.verbose),
                callbacks=[_History()])
            state = trainer.fit()
            # best_step 0: no epoch beat the start even on the early-stopping rows (None: no validation).
            confirm = self.confirm_fraction if val is not None and self._confirms() else 0.0
            kept, confirm_mse, confirm_p = choose_kept(model, start, state.best_step != 0, data.confirm, confirm,
                                                       self.confirm_alpha)
        check_trained(model, where, self.lr)  # a diverged run (NaN loss) would forecast NaN for every input
        self.model_ = model.eval()
        self.config_ = config
        self.kept_, self.confirm_mse_, self.confirm_pvalue_ = kept, confirm_mse, confirm_p
        self.history_ = history
        self.n_epochs_ = len(history)
        self.best_val_mse_ = state.best_metric
        self.start_val_mse_ = start_metrics.get("val_loss")
        self.linear_val_mse_ = linear_scores

    def _confirms(self) -> bool:
        """Whether fit holds validation rows back to confirm training against the linear start."""
        return self.linear_init == "ridge" and self.architecture == "variate"

    def _check_validation_fraction(self) -> None:
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")

    def _roles(self, columns: tuple[str, ...], where: str) -> Roles:
        """The value columns' roles (targets, past and future covariates) under this estimator's parameters."""
        past, future = check_covariate_params(self.past_covariates, self.future_covariates, self.id_col)
        return column_roles(columns, past, future, where)

    def _windows(self, series: list[np.ndarray], roles: Roles) -> SlidingWindows | PanelWindows:
        """Training windows of scaled rows (each ``(T_i, n)`` in the table's column order): plain sliding
        windows for one series without covariates (as always), else windows in the network's column order."""
        if len(series) == 1 and not roles.has_covariates:
            return SlidingWindows(series[0], self.lookback, self.horizon)
        index = list(roles.index)
        return PanelWindows([z[:, index] for z in series], self.lookback, self.horizon,
                            n_targets=len(roles.targets), n_future=len(roles.future))

    def _build(self, n_variables: int, train: SlidingWindows | PanelWindows, val: SlidingWindows | PanelWindows | None,
               seed: int) -> tuple[torch.nn.Module, ForecastConfig, dict[str, float]]:
        """The network to train, its config, and the validation MSE of each closed-form linear path tried.

        With ``linear_init="ridge"`` (variate networks) the skip is fitted in closed form for each
        candidate input (both under ``linear_path="auto"`` when there is validation data), the one
        with the lower validation MSE is kept and the Mamba head starts at zero.
        """
        if self.linear_init not in LINEAR_INITS:
            raise ValueError(f"linear_init must be one of {LINEAR_INITS}, got {self.linear_init!r}")
        if self.linear_path not in LINEAR_PATHS:
            raise ValueError(f"linear_path must be one of {LINEAR_PATHS}, got {self.linear_path!r}")
        if self.linear_lr_scale < 0:
            raise ValueError(f"linear_lr_scale must be >= 0, got {self.linear_lr_scale}")
        if not 0 <= self.confirm_fraction < 1:
            raise ValueError(f"confirm_fraction must be in [0, 1), got {self.confirm_fraction}")
        if not 0 < self.confirm_alpha <= 1:
            raise ValueError(f"confirm_alpha must be in (0, 1], got {self.confirm_alpha}")
        from ..training import seed_everything

        config = self._config(n_variables)
        inputs = ("normalized", "raw") if self.linear_path == "auto" else (self.linear_path,)
        if self.linear_path == "auto" and (val is None or self.linear_init == "random"):
            inputs = ("normalized",)  # nothing to choose by
        seed_everything(seed)
        model = build_model(dataclasses.replace(config, skip_input=inputs[0]))
        if config.architecture != "variate":
            return model, model.config, {}
        for param in model.skip.parameters():
            param._lr_scale = self.linear_lr_scale  # read by the optimizer's param groups
            param.requires_grad_(self.linear_lr_scale > 0)
        if self.linear_init == "random":
            return model, model.config, {}
        # The network's own RevIN module: the skip is fitted on windows normalised exactly as in training.
        fits = {name: fit_skip(train, model.revin, name, self.linear_alpha) for name in inputs}
        scores = {} if val is None else {name: validation_mse(fit, val, model.revin, name)
                                         for name, fit in fits.items()}
        chosen = min(scores, key=scores.get) if scores else inputs[0]
        model.config = dataclasses.replace(model.config, skip_input=chosen)  # forward reads it; no weights depend on it
        model.start_from_linear(torch.from_numpy(fits[chosen].weight), torch.from_numpy(fits[chosen].bias))
        return model, model.config, scores

    def _config(self, n_variables: int) -> ForecastConfig:
        past, future = check_covariate_params(self.past_covariates, self.future_covariates, self.id_col)
        return ForecastConfig(lookback=self.lookback, horizon=self.horizon, n_variables=n_variables,
                              architecture=self.architecture, d_model=self.d_model, n_layers=self.n_layers,
                              d_state=self.d_state, patch_len=self.patch_len, dropout=self.dropout,
                              n_past=len(past), n_future=len(future), quantiles=self.quantiles)

    def _context_of(self, series: Any) -> dict[str, Any]:
        """The streaming state after ``series``: its last ``lookback`` rows (original units, every column)."""
        return {"context_": np.array(series.values[-self.lookback:], dtype=np.float32),  # (L, n)
                "last_timestamp_": None if series.timestamps is None else series.timestamps[-1],
                "n_rows_seen_": len(series.values), "_stream": None}

    # -- predict -----------------------------------------------------------------------------

    def predict(self, X: Any = None, future: Any = None) -> Any:
        """The ``horizon`` rows after the end of ``X`` (or of the data seen by fit/update).

        Returns the caller's kind of table: an array ``(H, C)`` for an array, else a pandas/polars
        frame of the fitted targets with the future timestamps (at the inferred frequency) in the
        input's time column or index (row numbers without timestamps). With ``quantiles``, one more
        column per target and level follows the targets (``OT_q0.1``...; an array gets them as more
        columns, in the same order). Irregular timestamps warn, as in :meth:`fit`; the future ones then
        follow the most common spacing. Raises NotFittedError before fit.

        With ``id_col``, ``X`` is a long frame and the result is one too: the next ``horizon`` rows of
        each series of ``X`` (of every fitted series when X is None), with its id and timestamps at its
        own frequency (see :mod:`seqmamba.forecasting.panel`).

        ``future``: with ``future_covariates``, their values over the horizon (required): a frame with
        the time column (a long frame with the id column too), or an array of ``horizon`` rows in order;
        rows are matched by timestamp (see :mod:`seqmamba.forecasting.future`). InputError without it,
        naming the columns, or naming the series and the first forecast timestamp without a row.

        Prediction never changes the estimator (scikit-learn's rule): ``predict(X)`` forecasts from
        X's last ``lookback`` rows without keeping them, so a later ``predict()``, ``save`` or pickle is
        as before. :meth:`update` is the way to add rows. Raises InputError for a value too far from
        the training scale (naming its column and row) and for a forecast that is not finite.
        """
        self._check_fitted()
        if self.id_col is not None:
            return predict_panel(self, X, future)
        kind, what = self.kind_, "predict"
        context, last, n_rows = self.context_, self.last_timestamp_, self.n_rows_seen_
        freq, step = self.freq_, self.step_
        stamps, first_row = None, max(0, n_rows - len(context))
        if X is not None:
            series, kind = read_table(X, irregular="warn")
            what = named(X, "predict")
            check_columns(series, self._columns, what)
            if len(series) < self.lookback:
                raise InputError(f"{what}: {len(series)} rows, fewer than lookback = {self.lookback}")
            context, n_rows, stamps = series.values[-self.lookback:], len(series), series.timestamps
            last = None if stamps is None else stamps[-1]
            freq, step = series.freq or freq, typical_step(stamps) or step
            first_row = n_rows - self.lookback
        window = scale_checked(self.scaler_, context, what, self._columns, stamps, first_row)  # (L, n)
        index = future_index(last, freq, step, n_rows, self.horizon)
        ahead = self._future_block(future, index, self.scaler_, what)  # (H, n) or None
        stream = self._stream if X is None else None  # an update()d patch stream goes on from its state
        point, quantiles = self._forecast_scaled(self._network_input(window, ahead)[None], stream)
        values = self._unscale(point[0], None if quantiles is None else quantiles[0], self.scaler_)
        columns = self._output_columns()
        check_forecast(values, index, columns, what)
        return make_output(values, index, columns, kind)

    def _forecast_scaled(self, x: np.ndarray, stream: PatchStream | None = None
                         ) -> tuple[np.ndarray, np.ndarray | None]:
        """The network's forecasts ``(B, H, C)`` (and quantiles ``(B, H, C, Q)`` or None) after windows ``x``
        ``(B, L[+H], n)`` (z-scored, the network's column order), or after a patch ``stream``'s state when one
        is given; nothing is stored."""
        from ..training.threads import INFERENCE_REUSE_S, cpu_threads

        device = next(self.model_.parameters()).device
        with torch.no_grad(), cpu_threads(getattr(self, "n_threads", None), device, INFERENCE_REUSE_S):
            if stream is not None:
                return stream.forecast().cpu().numpy(), None
            x = torch.as_tensor(x, device=device).float()  # (B, L[+H], n)
            if self.architecture == "patch":
                return PatchStream(self.model_, x).forecast().cpu().numpy(), None
            if self.config_.quantiles:
                point, quantiles = self.model_(x, quantiles=True)
                return point.cpu().numpy(), quantiles.cpu().numpy()
            return self.model_(x).cpu().numpy(), None  # (B, H, C)

    def _fitted_roles(self) -> Roles:
        return self._roles(self._columns, "model")

    def _output_columns(self) -> list[str]:
        """A forecast's value columns: the targets, then each target's quantiles."""
        targets = list(self._fitted_roles().targets)
        return targets + quantile_columns(targets, self.config_.quantiles)

    def _network_input(self, window: np.ndarray, ahead: np.ndarray | None) -> np.ndarray:
        """A scaled window ``(L, n)`` (table order) and the horizon's future covariates ``(H, n)`` (or None)
        -> the network's input ``(L[+H], n)``: its column order, the horizon's rows after the lookback."""
        roles = self._fitted_roles()
        if not roles.has_covariates:
            return window
        rows = window if ahead is None else np.concatenate([window, ahead])
        return np.ascontiguousarray(rows[:, list(roles.index)], dtype=np.float32)

    def _future_block(self, future: Any, index: pd.Index, scaler: Any, what: str, future_rows: Any = None,
                      series: str = "") -> np.ndarray | None:
        """The future covariates over the forecast's rows ``index``, z-scored, as ``(H, n)`` rows in the
        table's column order (zeros in every other column); None for a model without future covariates.

        ``future`` is the caller's table (read here), or ``future_rows`` one series of it already read."""
        roles = self._fitted_roles()
        if not roles.future:
            if future is not None:
                warnings.warn(f"{what}: future= is ignored: the model was fitted without future_covariates",
                              UserWarning, stacklevel=3)
            return None
        if future is None and future_rows is None:
            raise missing_future(what, roles.future, self.horizon, panel=self.id_col is not None)
        label = future_label(future) if future is not None else "future"
        if future_rows is None:
            future_rows = read_future(future, roles.future, roles.targets + roles.past)
        values = horizon_rows(future_rows, index, label, series)  # (H, F)
        positions = [self._columns.index(c) for c in roles.future]
        block = np.tile(scaler.mean_, (len(index), 1))  # (H, n) at the training mean: z = 0
        block[:, positions] = values
        stamps = index if isinstance(index, pd.DatetimeIndex) else None
        return scale_checked(scaler, block, f"{label}{series}", self._columns, stamps)

    def _unscale(self, point: np.ndarray, quantiles: np.ndarray | None, scaler: Any) -> np.ndarray:
        """Forecasts ``(H, C)`` and quantiles ``(H, C, Q)`` (z-scored) in the targets' units, as the output's
        value columns ``(H, C + C * Q)`` (float32; beyond float32 is inf, which check_forecast names)."""
        targets = [self._columns.index(c) for c in self._fitted_roles().targets]
        mean, scale = scaler.mean_[targets], scaler.scale_[targets]  # (C,)
        with np.errstate(over="ignore"):
            values = point.astype(np.float64) * scale + mean  # (H, C)
            if quantiles is not None:
                q = quantiles.astype(np.float64) * scale[:, None] + mean[:, None]  # (H, C, Q)
                values = np.concatenate([values, q.reshape(len(q), -1)], axis=1)
            return np.asarray(values, dtype=np.float32)

    def update(self, new_rows: Any) -> MambaForecaster:
        """Append rows that follow the data seen so far (same columns); the next :meth:`predict`
        forecasts after them. With ``"patch"`` the encoder state advances one token per
        ``patch_len`` rows (the stream starts from the last ``lookback`` rows seen at the first
        update); with ``"variate"`` the last ``lookback`` rows are kept for re-encoding.

        The rows must come after the last one seen; on a regular series, a gap after it (rows
        missing in between) gives a UserWarning, since the model reads the rows as consecutive. With
        ``id_col``, ``new_rows`` is a long frame: each series' rows are appended to that series (an unknown
        id is an InputError), and the next :meth:`predict` re-encodes each series' last ``lookback`` rows
        (with either architecture).
        """
        self._check_fitted()
        if self.id_col is not None:
            update_panel(self, new_rows)
            return self
        series, _ = read_table(new_rows)
        what = named(new_rows, "update")
        check_columns(series, self._columns, what)
        stamps = series.timestamps
        if stamps is not None and self.last_timestamp_ is not None:
            check_continues(what, stamps[0], self.last_timestamp_, self.freq_, self.step_, self.n_rows_seen_)
        scaled = scale_checked(self.scaler_, series.values, what, self._columns, stamps)
        if self.architecture == "patch":
            device = next(self.model_.parameters()).device
            if self._stream is None:  # starts from the rows seen so far
                window = scale_checked(self.scaler_, self.context_, "update", self._columns)
                self._stream = PatchStream(self.model_, torch.as_tensor(window, device=device)[None].float())
            self._stream.update(torch.as_tensor(scaled, device=device)[None].float())
        self.context_ = np.concatenate([self.context_, series.values])[-self.lookback:]
        self.n_rows_seen_ += len(series)
        if stamps is not None:
            self.last_timestamp_ = stamps[-1]
        return self

    # -- evaluate ----------------------------------------------------------------------------

    def evaluate(self, X: Any, start: int | None = None, end: int | None = None, protocol: str = "auto",
                 batch_size: int = 1024) -> dict[str, float]:
        """MSE and MAE over every window (stride 1) of rows ``[start, end)`` of ``X``, in the z-scored
        space of the training statistics, every variable and step weighed alike (the standard
        long-horizon protocol's metrics).

        Without ``start``/``end`` the span is the protocol's test span of X (ETTh*: rows
        ``[11520 - L, 14400)``; other series: the last 20 %, starting L rows early), ``protocol``
        as in :func:`~seqmamba.datasets.timeseries.standard_splits`; a file path keeps its name
        (``ETTh1.csv`` picks the ETT protocol). The span includes the lookback warm-up rows.
        Returns ``{"mse", "mae", "n_windows", "start", "end"}`` (the span's rows). With ``quantiles`` also
        ``pinball`` (mean pinball loss), ``crps`` (approximated from the quantiles), ``coverage`` (share of
        targets inside the central interval of the lowest and highest level) and its nominal ``interval``
        (see :mod:`seqmamba.forecasting.quantiles`); only the targets are scored.

        With ``id_col``, X is a long frame: the span is taken in each series (rows counted within it; the
        protocol's test span of each), every window of every series is scored alike, and ``start`` / ``end``
        map each series' id to its span, ``series`` to its own scores.
        """
        self._check_fitted()
        if self.id_col is not None:
            return evaluate_panel(self, X, start, end, protocol, batch_size)
        return evaluate_series(self, X, start, end, protocol, batch_size)

    def score(self, X: Any, y: Any = None) -> float:
        """Negative test-span MSE of :meth:`evaluate` (higher is better, as scikit-learn expects)."""
        return -self.evaluate(X)["mse"]

    # -- persistence -------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike, overwrite: bool = True) -> None:
        """Write ``config.json`` (hyperparameters, scaler, columns, time axis) and ``model.safetensors``
        into ``directory``, atomically; no pickle.

        ``directory`` must be new, empty, or a forecaster's directory: a forecaster there is replaced
        (``overwrite=False`` refuses it, as ``seqmamba train forecast`` does without ``--overwrite``). Any
        other directory (data, a DNA model, a forecaster's directory holding other files) is refused with
        `OutputExistsError`, whatever ``overwrite``.
        """
        self._check_fitted()
        claim_model_dir(directory, FORECASTER, overwrite, hint=API_HINT)
        save_dir(self, directory)

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str = "cpu") -> MambaForecaster:
        """A fitted forecaster written by :meth:`save`."""
        return load_dir(cls, directory, device)

    def __getstate__(self) -> dict[str, Any]:
        # The network travels as safetensors bytes + JSON config, never as a pickled nn.Module.
        state = {k: v for k, v in self.__dict__.items() if k not in ("model_", "_stream")}
        if hasattr(self, "model_"):
            state["_weights"] = state_dict(self)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("_weights", None)
        self.__dict__.update(state)
        self._stream = None
        if weights is not None:
            restore_state(self, weights, device="cpu")

    # -- helpers -----------------------------------------------------------------------------

    @property
    def _columns(self) -> tuple[str, ...]:
        return tuple(str(c) for c in self.feature_names_in_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call fit first")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")
