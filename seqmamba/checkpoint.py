"""Model checkpoints: a directory with ``config.json`` and ``model.safetensors``; never pickle.

Both files are written to a temporary name in the target directory and renamed into place, so a
crash never leaves a half-written file under the real name. Other files in the directory (tokenizer or
trainer state) are left alone. Weights are written before the config: a crash between the two renames
leaves the old config next to new weights, which loading reports as a mismatch instead of misreading.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import save_file
from torch import nn

from . import model_dir
from .config import MambaConfig
from .datasets.atomic import atomic_path
from .errors import InputError, oserror_from_text
from .model_dir import CONFIG_NAME, FORMAT_VERSION, WEIGHTS_NAME  # the layout: model_dir.py's

M = TypeVar("M", bound=nn.Module)


def _atomic_write(path: Path, write) -> None:
    """Call write(tmp_path) on a temporary file beside ``path``; fsync and rename it into place."""
    with atomic_path(path) as tmp:
        write(str(tmp))


def save_tensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """safetensors' ``save_file``, its I/O failures raised as OSError (a full disk reads as ENOSPC).

    Give it a temporary path only: safetensors writes a file of its own and renames it over ``path``.
    """
    try:
        save_file(tensors, str(path), metadata={"format": "pt"})
    except Exception as error:  # safetensors raises its own type, the OS error only in the text
        os_error = oserror_from_text(error)
        if os_error is None:
            raise
        raise os_error from error


def save_pretrained(model: nn.Module, directory: str | os.PathLike, config: MambaConfig) -> Path:
    """Write ``config.json`` and ``model.safetensors`` for ``model`` into ``directory`` (created)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # safetensors wants contiguous, unshared CPU-or-device tensors; clone detaches views and ties.
    tensors = {name: t.detach().contiguous().clone() for name, t in model.state_dict().items()}
    _atomic_write(directory / WEIGHTS_NAME, lambda p: save_tensors(tensors, p))
    from ._version import __version__

    envelope: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model_type": type(model).__name__,
        "seqmamba_version": __version__,
        "config": config.to_dict(),
    }
    text = json.dumps(envelope, indent=2, sort_keys=True) + "\n"
    _atomic_write(directory / CONFIG_NAME, lambda p: Path(p).write_text(text, encoding="utf-8"))
    return directory


def load_config(directory: str | os.PathLike, model_type: str | None = None) -> MambaConfig:
    """Read and check ``config.json`` (`seqmamba.model_dir`); InputError names the file and the field."""
    record = model_dir.read_config(directory)
    found = record.get("model_type", str)
    if model_type is not None and found != model_type:
        raise model_dir.wrong_kind(record.path, found, model_type)
    record.check_fields("config", model_dir.hints_of(MambaConfig))
    return record.build("config", MambaConfig.from_dict)


def first_non_finite(tensors: Mapping[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding NaN or inf, or None."""
    return next((name for name, tensor in tensors.items()
                 if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())), None)


def check_finite_tensors(tensors: dict[str, torch.Tensor], where: str) -> None:
    """InputError naming ``where`` (the weights file) and the first tensor holding NaN or inf.

    A model with such weights (a diverged training run, a damaged file) answers NaN or inf for every
    input, which no command may report as a result.
    """
    name = first_non_finite(tensors)
    if name is not None:
        tensor = tensors[name]
        bad = ~torch.isfinite(tensor)
        first = tensor[bad].flatten()[0].item()
        raise InputError(f"{where}: tensor {name!r} holds {int(bad.sum())} non-finite value(s) ({first}) of "
                         f"{tensor.numel()}; the model is damaged or its training diverged: retrain it or use "
                         "a good copy")


def check_trained(module: nn.Module, where: str, lr: float) -> None:
    """InputError when training left one of ``module``'s tensors NaN or inf (a diverged run, NaN loss): such
    a model answers NaN for every input, so it is refused before it is kept or saved, by tensor."""
    name = first_non_finite(module.state_dict())
    if name is not None:
        raise InputError(f"{where}: training diverged: the network's tensor {name!r} holds NaN or inf; lower lr "
                         f"(now {lr}) or look for extreme values in the data")


def load_weights(model: nn.Module, directory: str | os.PathLike) -> None:
    """Load ``model.safetensors`` into ``model``; the first missing, unexpected or misshaped tensor is named."""
    path = Path(directory) / WEIGHTS_NAME
    tensors = model_dir.read_tensors(path)
    expected = model.state_dict()
    model_dir.check_tensors(path, tensors, expected)
    check_finite_tensors(tensors, str(path))
    with torch.no_grad():
        for name, target in expected.items():
            target.copy_(tensors[name])


def from_pretrained(
    cls: type[M],
    directory: str | os.PathLike,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> M:
    """Build ``cls(config)`` from ``directory``'s config.json and load its weights."""
    config = load_config(directory, model_type=cls.__name__)
    model = cls(config)
    load_weights(model, directory)
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model.eval()
