"""A fitted `MambaForecaster` as bytes (pickle) or as a directory (``save``/``load``); never a pickled module.

Directory layout: ``config.json`` (hyperparameters, network config, scaler statistics, columns,
time axis, training summary) and ``model.safetensors`` (the network's weights, the context rows and,
for a streaming ``"patch"`` model, the encoder state under ``stream.*``). Both are written atomically,
weights first.

A forecaster of many series (``id_col``) keeps its per-series state in config.json's ``fitted.panel``
(``ids`` and, per series, its scaler, time axis, end and fitted spans; its top-level ``scaler`` is null) and
the series' context rows in one tensor ``panel.context`` ``(n_series, lookback, n_columns)``. Covariates and
quantiles are in ``network`` (``n_past``, ``n_future``, ``quantiles``) and ``params``; files written before
them load as before.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load, save

from .. import __version__, model_dir
from ..checkpoint import check_finite_tensors, save_tensors
from ..datasets.atomic import atomic_path
from ..errors import InputError
from ..model_dir import CONFIG_NAME, WEIGHTS_NAME  # the layout: model_dir.py's
from ..tokenizers.timeseries import TimeSeriesTokenizer
from .frames import TableKind
from .model import ForecastConfig, PatchStream, build_model
from .overlap import span_from_json, span_to_json
from .panel import SeriesState

FORMAT = 1


def _tensors(est: Any) -> dict[str, torch.Tensor]:
    tensors = {f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in est.model_.state_dict().items()}
    stream = getattr(est, "_stream", None)
    if stream is not None:
        state = stream.state_tensors()
        tensors.update({f"stream.{k}": v.detach().cpu().contiguous().clone() for k, v in state.items()})
    return tensors


def state_dict(est: Any) -> dict[str, Any]:
    """What pickle stores for the network: safetensors bytes and the config as JSON text."""
    return {"safetensors": save(_tensors(est)), "config": json.dumps(est.config_.to_dict())}


def _rebuild(est: Any, tensors: dict[str, torch.Tensor], config: ForecastConfig, device: str, where: str) -> None:
    check_finite_tensors(tensors, where)  # NaN weights would forecast NaN for every input
    model = build_model(config)
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    missing = sorted(set(model.state_dict()) - set(weights))
    if missing:
        raise InputError(f"the saved weights do not match the network: missing {missing[:5]}")
    model.load_state_dict(weights)
    est.model_ = model.to(device).eval()
    est.config_ = config
    stream = {k[len("stream."):]: v.to(device) for k, v in tensors.items() if k.startswith("stream.")}
    est._stream = PatchStream.from_tensors(est.model_, stream) if stream else None


def restore_state(est: Any, weights: dict[str, Any], device: str) -> None:
    """Inverse of :func:`state_dict` (unpickling)."""
    _rebuild(est, load(weights["safetensors"]), ForecastConfig.from_dict(json.loads(weights["config"])), device,
             f"pickled {type(est).__name__}")


def save_dir(est: Any, directory: str | os.PathLike) -> Path:
    """Write a fitted forecaster into ``directory`` (created)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = _tensors(est)
    panel = getattr(est, "series_", None) is not None
    fitted: dict[str, Any] = {
        "n_features_in_": int(est.n_features_in_),
        "feature_names_in_": [str(c) for c in est.feature_names_in_],
        "kind_": est.kind_.to_dict(),
    }
    if panel:
        states = [est.series_[i] for i in est.ids_]
        tensors["panel.context"] = torch.from_numpy(np.ascontiguousarray(np.stack([s.context for s in states]),
                                                                         dtype=np.float32))
        fitted["panel"] = {"ids": list(est.ids_), "series": [_series_to_json(s) for s in states]}
    else:
        tensors["context"] = torch.from_numpy(np.ascontiguousarray(est.context_, dtype=np.float32))
        fitted.update({
            "freq_": est.freq_,
            "step_": None if est.step_ is None else str(est.step_),
            "last_timestamp_": None if est.last_timestamp_ is None else est.last_timestamp_.isoformat(),
            "n_rows_seen_": int(est.n_rows_seen_),
            "train_span_": span_to_json(getattr(est, "train_span_", None)),
            "val_span_": span_to_json(getattr(est, "val_span_", None)),
        })
    fitted.update({
        "history_": est.history_,
        "n_epochs_": int(est.n_epochs_),
        "best_val_mse_": est.best_val_mse_,
        "start_val_mse_": getattr(est, "start_val_mse_", None),
        "linear_val_mse_": getattr(est, "linear_val_mse_", {}),
        "confirm_mse_": getattr(est, "confirm_mse_", {}),
        "confirm_pvalue_": getattr(est, "confirm_pvalue_", {}),
        "kept_": getattr(est, "kept_", "trained"),
    })
    envelope = {"format_version": FORMAT, "model_type": type(est).__name__, "seqmamba_version": __version__,
                "params": _json_params(est.get_params()), "network": est.config_.to_dict(),
                "scaler": None if panel else est.scaler_.to_dict(), "fitted": fitted}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_tensors(tensors, tmp)
    text = json.dumps(envelope, indent=2) + "\n"
    with atomic_path(directory / CONFIG_NAME) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return directory


def load_dir(cls: type, directory: str | os.PathLike, device: str = "cpu") -> Any:
    """A fitted forecaster from a directory written by :func:`save_dir`.

    Every field of config.json and every tensor of model.safetensors is checked before any is used
    (`seqmamba.model_dir`): InputError names the file and the field, or the tensor whose shape differs
    from the one the config implies; a DNA model or an encoder checkpoint is refused by name.
    """
    directory = Path(directory)
    path, weights = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    if not path.is_file() or not weights.is_file():
        found = model_dir.directory_kind(directory)
        if found is not None and found[0] != model_dir.FORECASTER:
            raise model_dir.wrong_kind(path, found[1], cls.__name__)
        raise InputError(f"{directory}: not a saved forecaster (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    record = model_dir.read_config(directory, model_dir.FORECASTER, cls.__name__)
    config, n = _read_network(record)
    params = record.check_fields("params", model_dir.hints_of(cls))
    for name in ("lookback", "horizon"):
        if name in params and params[name] != getattr(config, name):
            raise record.error(f"params.{name}", f"{params[name]} differs from network.{name} = "
                                                 f"{getattr(config, name)} (an edited file?)")
    known = set(cls._get_param_names())
    est = cls(**{k: v for k, v in params.items() if k in known})  # older or newer records load
    n_series = _read_fitted(est, record, n)
    tensors = model_dir.read_tensors(weights)
    model_dir.check_tensors(weights, tensors, _expected_tensors(config, n, tensors, n_series))
    check_finite_tensors(tensors, str(weights))  # the context rows too
    if n_series is None:
        est.context_ = tensors.pop("context").numpy()
    else:
        for state, context in zip((est.series_[i] for i in est.ids_), tensors.pop("panel.context").numpy()):
            state.context = context
    _rebuild(est, tensors, config, device, str(weights))
    est.target_names_ = np.asarray(est._roles(est._columns, str(path)).targets, dtype=object)
    return est


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters as JSON keeps them (a tuple of covariates or quantiles becomes a list); a
    ``np.random.RandomState`` as ``random_state`` is saved as None (its draws are in the weights already)."""
    return {k: list(v) if isinstance(v, tuple) else None if isinstance(v, np.random.RandomState) else v
            for k, v in params.items()}


def _series_to_json(state: SeriesState) -> dict[str, Any]:
    return {"scaler": state.scaler.to_dict(), "freq": state.freq,
            "step": None if state.step is None else str(state.step),
            "last_timestamp": None if state.last_timestamp is None else state.last_timestamp.isoformat(),
            "n_rows_seen": int(state.n_rows_seen), "train_span": span_to_json(state.train_span),
            "val_span": span_to_json(state.val_span)}


def _read_panel(est: Any, record: model_dir.Record, n: int) -> int:
    """``fitted.panel``: the ids and each series' state (its context rows come from the weights file)."""
    ids = record.get("fitted.panel.ids", list)
    entries = record.get("fitted.panel.series", list[dict])
    if len(entries) != len(ids) or not ids:
        raise record.error("fitted.panel.series", f"{len(entries)} entries for {len(ids)} ids")
    for k, series_id in enumerate(ids):
        if isinstance(series_id, bool) or not isinstance(series_id, (str, int)):
            raise record.error(f"fitted.panel.ids.{k}",
                               f"expected a string or an integer, got {model_dir.shown(series_id)}")
    if len(set(ids)) != len(ids):
        raise record.error("fitted.panel.ids", "an id appears twice")
    states = {}
    for k, series_id in enumerate(ids):
        sub = model_dir.Record(record.path, {"s": entries[k]})
        key = f"fitted.panel.series.{k}"
        try:
            for name in ("mean_", "scale_"):
                values = sub.get(f"s.scaler.fitted.{name}", list[float])
                if len(values) != n:
                    raise sub.error(f"s.scaler.fitted.{name}", f"{len(values)} values, expected {n}")
            scaler = sub.build("s.scaler", TimeSeriesTokenizer.from_dict)
            states[series_id] = SeriesState(
                scaler, np.zeros((0, n), np.float32),
                sub.build("s.last_timestamp", lambda v: None if v is None else pd.Timestamp(v)),
                sub.get("s.n_rows_seen", int), sub.get("s.freq", str | None),
                sub.build("s.step", lambda v: None if v is None else pd.Timedelta(v)),
                sub.build("s.train_span", span_from_json), sub.build("s.val_span", span_from_json))
        except InputError as error:  # name the field by its place in the file
            raise InputError(str(error).replace("field 's.", f"field '{key}.")) from None
    est.ids_ = list(ids)
    est.series_ = states
    return len(ids)


def _read_network(record: model_dir.Record) -> tuple[ForecastConfig, int]:
    """config.json's ``network`` as a ForecastConfig, and ``fitted.n_features_in_`` (its input columns:
    targets and covariates)."""
    record.check_fields("network", model_dir.hints_of(ForecastConfig))
    config = record.build("network", ForecastConfig.from_dict)
    n = record.positive_int("fitted.n_features_in_")
    if config.n_inputs != n:
        raise record.error("network.n_variables", f"{config.n_variables} targets + {config.n_past} past + "
                                                  f"{config.n_future} future covariates differ from "
                                                  f"fitted.n_features_in_ = {n}")
    return config, n


def _read_fitted(est: Any, record: model_dir.Record, n: int) -> int | None:
    """The scaler(s) and the fitted attributes, each field checked; the number of series of a forecaster of
    many series (None: one wide series)."""
    names = record.get("fitted.feature_names_in_", list[str])
    if len(names) != n:
        raise record.error("fitted.feature_names_in_", f"{len(names)} names, expected {n} (fitted.n_features_in_)")
    est.n_features_in_ = n
    est.feature_names_in_ = np.asarray(names, dtype=object)
    kind = record.get("fitted.kind_.kind", str)
    est.kind_ = TableKind(kind, record.get("fitted.kind_.time_name", str | None, None),
                          record.get("fitted.kind_.time_in_index", bool, False))
    est.history_ = record.get("fitted.history_", list)
    est.n_epochs_ = record.get("fitted.n_epochs_", int)
    est.best_val_mse_ = record.get("fitted.best_val_mse_", float | None)
    # Models saved before the closed-form start have neither (their network config lacks skip_input
    # too, which then defaults to the normalised input those models were trained with).
    est.start_val_mse_ = record.get("fitted.start_val_mse_", float | None, None)
    est.linear_val_mse_ = record.get("fitted.linear_val_mse_", dict, {})
    est.confirm_mse_ = record.get("fitted.confirm_mse_", dict, {})
    est.confirm_pvalue_ = record.get("fitted.confirm_pvalue_", dict, {})
    est.kept_ = record.get("fitted.kept_", str, "trained")
    if "fitted.panel" in record:
        if est.id_col is None:
            raise record.error("params.id_col", "null, but fitted.panel holds many series (an edited file?)")
        return _read_panel(est, record, n)
    if est.id_col is not None:
        raise record.error("fitted.panel", f"missing (expected the series of a model with id_col {est.id_col!r})")
    record.get("scaler.type", str)
    record.check_fields("scaler.params", model_dir.hints_of(TimeSeriesTokenizer))
    for name in ("mean_", "scale_"):
        values = record.get(f"scaler.fitted.{name}", list[float])
        if len(values) != n:
            raise record.error(f"scaler.fitted.{name}", f"{len(values)} values, expected {n} (fitted.n_features_in_)")
    est.scaler_ = record.build("scaler", TimeSeriesTokenizer.from_dict)
    est.freq_ = record.get("fitted.freq_", str | None)
    est.step_ = record.build("fitted.step_", lambda v: None if v is None else pd.Timedelta(v))
    est.last_timestamp_ = record.build("fitted.last_timestamp_", lambda v: None if v is None else pd.Timestamp(v))
    est.n_rows_seen_ = record.get("fitted.n_rows_seen_", int)
    # The fitted rows' timestamps (evaluate warns when it scores them); models saved before have none.
    est.train_span_ = record.build("fitted.train_span_", span_from_json) if "fitted.train_span_" in record else None
    est.val_span_ = record.build("fitted.val_span_", span_from_json) if "fitted.val_span_" in record else None
    return None


def _expected_tensors(config: ForecastConfig, n: int, found: dict[str, torch.Tensor], n_series: int | None = None
                      ) -> dict[str, Any]:
    """Name -> shape of every tensor a forecaster with ``config`` saves (a stream's as the file's batch has it;
    the series' context rows for a forecaster of ``n_series`` series)."""
    net = build_model(config)
    expected: dict[str, Any] = {f"model.{k}": v.shape for k, v in net.state_dict().items()}
    if n_series is None:
        expected["context"] = (config.lookback, n)
    else:
        expected["panel.context"] = (n_series, config.lookback, n)
    pending = found.get("stream.pending")
    if config.architecture == "patch" and pending is not None and pending.ndim == 3 and pending.shape[0] >= 1:
        with torch.no_grad():  # a stream of the file's batch size shows every state's shape
            state = PatchStream(net.eval(), torch.zeros(pending.shape[0], config.lookback, n)).state_tensors()
        expected.update({f"stream.{k}": v.shape for k, v in state.items()})
        if pending.shape[1] < config.patch_len:  # rows waiting for a full patch: 0 to patch_len - 1 of them
            expected["stream.pending"] = pending.shape
    return expected
