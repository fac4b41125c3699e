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

from .._version import __version__
from ..checkpoint import _atomic_write, check_finite_tensors, save_tensors
from ..errors import InputError
from ..tokenizers.timeseries import TimeSeriesTokenizer
from .frames import TableKind
from .model import ForecastConfig, PatchStream, build_model
from .overlap import span_from_json, span_to_json

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
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
    """A fitted forecaster from a directory written by :func:`save_dir`."""
    from safetensors.torch import load_file

    directory = Path(directory)
    path = directory / CONFIG_NAME
    if not path.is_file() or not (directory / WEIGHTS_NAME).is_file():
        raise InputError(f"{directory}: not a saved forecaster (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: invalid JSON: {error.msg} (line {error.lineno})") from None
    if envelope.get("model_type") != cls.__name__ or envelope.get("format_version") != FORMAT:
        raise InputError(f"{path}: holds a {envelope.get('model_type')!r} (format {envelope.get('format_version')!r}), "
                         f"not a {cls.__name__} of format {FORMAT}")
    est = cls(**envelope["params"])
    fitted = envelope["fitted"]
    est.scaler_ = TimeSeriesTokenizer.from_dict(envelope["scaler"])
    est.n_features_in_ = fitted["n_features_in_"]
    est.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
    kind = fitted["kind_"]
    est.kind_ = TableKind(kind["kind"], kind.get("time_name"), bool(kind.get("time_in_index")))
    est.freq_ = fitted["freq_"]
    est.step_ = None if fitted["step_"] is None else pd.Timedelta(fitted["step_"])
    est.last_timestamp_ = None if fitted["last_timestamp_"] is None else pd.Timestamp(fitted["last_timestamp_"])
    est.n_rows_seen_ = fitted["n_rows_seen_"]
    est.history_ = fitted["history_"]
    est.n_epochs_ = fitted["n_epochs_"]
    est.best_val_mse_ = fitted["best_val_mse_"]
    # Models saved before the closed-form start have neither (their network config lacks skip_input
    # too, which then defaults to the normalised input those models were trained with).
    est.start_val_mse_ = fitted.get("start_val_mse_")
    est.linear_val_mse_ = fitted.get("linear_val_mse_", {})
    est.confirm_mse_ = fitted.get("confirm_mse_", {})
    est.kept_ = fitted.get("kept_", "trained")
    # The fitted rows' timestamps (evaluate warns when it scores them); models saved before have none.
    est.train_span_ = span_from_json(fitted.get("train_span_"))
    est.val_span_ = span_from_json(fitted.get("val_span_"))
    tensors = load_file(directory / WEIGHTS_NAME, device="cpu")
    check_finite_tensors(tensors, str(directory / WEIGHTS_NAME))  # the context rows too
    est.context_ = tensors.pop("context").numpy()
    _rebuild(est, tensors, ForecastConfig.from_dict(envelope["network"]), device, str(directory / WEIGHTS_NAME))
    return est
