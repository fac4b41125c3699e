"""A fitted `MambaForecaster` as bytes (pickle) or as a directory (``save``/``load``); never a pickled module.

Directory layout: ``config.json`` (hyperparameters, network config, scaler statistics, columns,
time axis, training summary) and ``model.safetensors`` (the network's weights, the context rows and,
for a streaming ``"patch"`` model, the encoder state under ``stream.*``). Both are written atomically,
weights first.
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

from .. import model_dir
from .._version import __version__
from ..checkpoint import _atomic_write, check_finite_tensors, save_tensors
from ..errors import InputError
from ..model_dir import CONFIG_NAME, WEIGHTS_NAME  # the layout: model_dir.py's
from ..tokenizers.timeseries import TimeSeriesTokenizer
from .frames import TableKind
from .model import ForecastConfig, PatchStream, build_model
from .overlap import span_from_json, span_to_json

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
    tensors["context"] = torch.from_numpy(np.ascontiguousarray(est.context_, dtype=np.float32))
    fitted = {
        "n_features_in_": int(est.n_features_in_),
        "feature_names_in_": [str(c) for c in est.feature_names_in_],
        "kind_": est.kind_.to_dict(),
        "freq_": est.freq_,
        "step_": None if est.step_ is None else str(est.step_),
        "last_timestamp_": None if est.last_timestamp_ is None else est.last_timestamp_.isoformat(),
        "n_rows_seen_": int(est.n_rows_seen_),
        "history_": est.history_,
        "n_epochs_": int(est.n_epochs_),
        "best_val_mse_": est.best_val_mse_,
        "start_val_mse_": getattr(est, "start_val_mse_", None),
        "linear_val_mse_": getattr(est, "linear_val_mse_", {}),
        "confirm_mse_": getattr(est, "confirm_mse_", {}),
        "kept_": getattr(est, "kept_", "trained"),
        "train_span_": span_to_json(getattr(est, "train_span_", None)),
        "val_span_": span_to_json(getattr(est, "val_span_", None)),
    }
    envelope = {"format_version": FORMAT, "model_type": type(est).__name__, "seqmamba_version": __version__,
                "params": est.get_params(), "network": est.config_.to_dict(), "scaler": est.scaler_.to_dict(),
                "fitted": fitted}
    _atomic_write(directory / WEIGHTS_NAME, lambda p: save_tensors(tensors, p))
    text = json.dumps(envelope, indent=2) + "\n"
    _atomic_write(directory / CONFIG_NAME, lambda p: Path(p).write_text(text, encoding="utf-8"))
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
    _read_fitted(est, record, n)
    tensors = model_dir.read_tensors(weights)
    model_dir.check_tensors(weights, tensors, _expected_tensors(config, n, tensors))
    check_finite_tensors(tensors, str(weights))  # the context rows too
    est.context_ = tensors.pop("context").numpy()
    _rebuild(est, tensors, config, device, str(weights))
    return est


def _read_network(record: model_dir.Record) -> tuple[ForecastConfig, int]:
    """config.json's ``network`` as a ForecastConfig, and ``fitted.n_features_in_`` (its variables)."""
    record.check_fields("network", model_dir.hints_of(ForecastConfig))
    config = record.build("network", ForecastConfig.from_dict)
    n = record.positive_int("fitted.n_features_in_")
    if config.n_variables != n:
        raise record.error("network.n_variables", f"{config.n_variables} differs from fitted.n_features_in_ = {n}")
    return config, n


def _read_fitted(est: Any, record: model_dir.Record, n: int) -> None:
    """The scaler and the fitted attributes, each field checked."""
    record.get("scaler.type", str)
    record.check_fields("scaler.params", model_dir.hints_of(TimeSeriesTokenizer))
    for name in ("mean_", "scale_"):
        values = record.get(f"scaler.fitted.{name}", list[float])
        if len(values) != n:
            raise record.error(f"scaler.fitted.{name}", f"{len(values)} values, expected {n} (fitted.n_features_in_)")
    est.scaler_ = record.build("scaler", TimeSeriesTokenizer.from_dict)
    names = record.get("fitted.feature_names_in_", list[str])
    if len(names) != n:
        raise record.error("fitted.feature_names_in_", f"{len(names)} names, expected {n} (fitted.n_features_in_)")
    est.n_features_in_ = n
    est.feature_names_in_ = np.asarray(names, dtype=object)
    kind = record.get("fitted.kind_.kind", str)
    est.kind_ = TableKind(kind, record.get("fitted.kind_.time_name", str | None, None),
                          record.get("fitted.kind_.time_in_index", bool, False))
    est.freq_ = record.get("fitted.freq_", str | None)
    est.step_ = record.build("fitted.step_", lambda v: None if v is None else pd.Timedelta(v))
    est.last_timestamp_ = record.build("fitted.last_timestamp_", lambda v: None if v is None else pd.Timestamp(v))
    est.n_rows_seen_ = record.get("fitted.n_rows_seen_", int)
    est.history_ = record.get("fitted.history_", list)
    est.n_epochs_ = record.get("fitted.n_epochs_", int)
    est.best_val_mse_ = record.get("fitted.best_val_mse_", float | None)
    # Models saved before the closed-form start have neither (their network config lacks skip_input
    # too, which then defaults to the normalised input those models were trained with).
    est.start_val_mse_ = record.get("fitted.start_val_mse_", float | None, None)
    est.linear_val_mse_ = record.get("fitted.linear_val_mse_", dict, {})
    est.confirm_mse_ = record.get("fitted.confirm_mse_", dict, {})
    est.kept_ = record.get("fitted.kept_", str, "trained")
    # The fitted rows' timestamps (evaluate warns when it scores them); models saved before have none.
    est.train_span_ = record.build("fitted.train_span_", span_from_json) if "fitted.train_span_" in record else None
    est.val_span_ = record.build("fitted.val_span_", span_from_json) if "fitted.val_span_" in record else None


def _expected_tensors(config: ForecastConfig, n: int, found: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Name -> shape of every tensor a forecaster with ``config`` saves (a stream's as the file's batch has it)."""
    net = build_model(config)
    expected: dict[str, Any] = {f"model.{k}": v.shape for k, v in net.state_dict().items()}
    expected["context"] = (config.lookback, n)
    pending = found.get("stream.pending")
    if config.architecture == "patch" and pending is not None and pending.ndim == 3 and pending.shape[0] >= 1:
        with torch.no_grad():  # a stream of the file's batch size shows every state's shape
            state = PatchStream(net.eval(), torch.zeros(pending.shape[0], config.lookback, n)).state_tensors()
        expected.update({f"stream.{k}": v.shape for k, v in state.items()})
        if pending.shape[1] < config.patch_len:  # rows waiting for a full patch: 0 to patch_len - 1 of them
            expected["stream.pending"] = pending.shape
    return expected
