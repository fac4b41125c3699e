"""Resumable checkpoints: model, optimizer, scheduler, RNG and progress, swapped in atomically.

A run directory holds::

    checkpoint/                  the last good state (what resume=True reads)
        config.json              seqmamba checkpoint conventions (seqmamba.checkpoint)
        model.safetensors
        trainer_state.json       counters, scheduler, optimizer hyperparameters, Python/NumPy RNG
        trainer_state.safetensors  optimizer moments and torch RNG states, one entry per tensor
    best/                        config.json + model.safetensors + eval.json of the best evaluation
    metrics.jsonl

No pickle anywhere. A checkpoint is written whole into a hidden sibling directory (every file
fsynced), then swapped in with two renames; a kill between them leaves ``.checkpoint.old``, which
`find_checkpoint` falls back to. So at every moment one complete checkpoint exists.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from .. import checkpoint as ckpt
from ..datasets.atomic import atomic_directory
from ..errors import naming_output

STATE_JSON = "trainer_state.json"
STATE_TENSORS = "trainer_state.safetensors"
STATE_FORMAT_VERSION = 1


# ---------------------------------------------------------------------------------------- model files

class _NoConfig:
    """Stands in for a MambaConfig when the model has none: config.json then records only its type."""

    def to_dict(self) -> dict[str, Any]:
        return {}


def save_model(model: nn.Module, directory: Path) -> None:
    """config.json + model.safetensors, through the model's own ``save_pretrained`` when it has one."""
    if callable(getattr(model, "save_pretrained", None)):
        model.save_pretrained(directory)
        return
    config = getattr(model, "config", None)
    ckpt.save_pretrained(model, directory, config if callable(getattr(config, "to_dict", None)) else _NoConfig())


def load_model_weights(model: nn.Module, directory: Path) -> None:
    ckpt.load_weights(model, directory)


# --------------------------------------------------------------------------------- JSON + safetensors

def _number(value: Any) -> Any:
    """JSON's fallback for a 0-d tensor (the learning rates of an optimizer whose step a CUDA graph holds)."""
    if torch.is_tensor(value) and value.ndim == 0:
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True, default=_number)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def split_optimizer_state(state: dict) -> tuple[dict, dict[str, torch.Tensor]]:
    """An optimizer state_dict as (JSON-able dict, tensors keyed ``optim.<param>.<name>``)."""
    tensors: dict[str, torch.Tensor] = {}
    per_param: dict[str, dict[str, Any]] = {}
    for index, slots in state["state"].items():
        plain = {}
        for name, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                plain[name] = value
        per_param[str(index)] = plain
    return {"state": per_param, "param_groups": state["param_groups"]}, tensors


def join_optimizer_state(plain: dict, tensors: dict[str, torch.Tensor]) -> dict:
    """Inverse of `split_optimizer_state`."""
    state: dict[int, dict[str, Any]] = {int(i): dict(slots) for i, slots in plain["state"].items()}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    groups = [dict(g) for g in plain["param_groups"]]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    return {"state": state, "param_groups": groups}


def capture_rng(device: torch.device) -> tuple[dict, dict[str, torch.Tensor]]:
    """This process's Python, NumPy and torch (CPU and this CUDA device) RNG states."""
    # The legacy global NumPy RNG on purpose: it is what user code and datasets draw from.
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    version, internal, gauss = random.getstate()
    plain = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }
    tensors = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        tensors["cuda"] = torch.cuda.get_rng_state(device)
    return plain, tensors


def restore_rng(plain: dict, tensors: dict[str, torch.Tensor], device: torch.device) -> None:
    version, internal, gauss = plain["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = plain["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(tensors["torch"])
    if device.type == "cuda" and "cuda" in tensors:
        torch.cuda.set_rng_state(tensors["cuda"], device)


# ------------------------------------------------------------------------------------- directories

def find_checkpoint(run_dir: Path) -> Path | None:
    """The complete checkpoint of ``run_dir``: ``checkpoint/``, or ``.checkpoint.old`` after a kill mid-swap."""
    for candidate in (run_dir / "checkpoint", run_dir / ".checkpoint.old"):
        if (candidate / STATE_JSON).is_file():
            return candidate
    return None


def clean_stale(run_dir: Path) -> None:
    """Remove half-written staging directories a killed run left behind."""
    for stale in run_dir.glob(".*.tmp.*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def write_checkpoint(
    run_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    trainer_state: dict[str, Any],
    rng_per_rank: list[tuple[dict, dict[str, torch.Tensor]]],
) -> Path:
    """Write ``run_dir/checkpoint`` atomically (rank 0 only); returns its path.

    A failure (a full disk: `OutputError` naming the checkpoint) or an interrupt at any point leaves
    the last good checkpoint as it was.
    """
    final = run_dir / "checkpoint"
    with atomic_directory(final) as staged:  # a kill mid-swap leaves .checkpoint.old (find_checkpoint)
        _write_checkpoint_files(staged, model, optimizer, scheduler, trainer_state, rng_per_rank)
    return final


def _write_checkpoint_files(staged: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                            scheduler: torch.optim.lr_scheduler.LRScheduler, trainer_state: dict[str, Any],
                            rng_per_rank: list[tuple[dict, dict[str, torch.Tensor]]]) -> None:
    with naming_output(staged.parent / "checkpoint"):
        save_model(model, staged)
        optim_plain, tensors = split_optimizer_state(optimizer.state_dict())
        rng_plain = []
        for rank, (plain, rng_tensors) in enumerate(rng_per_rank):
            rng_plain.append(plain)
            tensors.update({f"rng.{rank}.{k}": v.cpu().contiguous() for k, v in rng_tensors.items()})
        ckpt.save_tensors(tensors, staged / STATE_TENSORS)
        with open(staged / STATE_TENSORS, "rb") as f:
            os.fsync(f.fileno())
        _write_json(staged / STATE_JSON, {
            "format_version": STATE_FORMAT_VERSION,
            "trainer": trainer_state,
            "scheduler": scheduler.state_dict(),
            "optimizer": optim_plain,
            "rng": rng_plain,
        })


def read_checkpoint(directory: Path) -> dict[str, Any]:
    """Everything `write_checkpoint` stored except the model weights (see `load_model_weights`)."""
    path = directory / STATE_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read the trainer state ({err})") from None
    if data.get("format_version") != STATE_FORMAT_VERSION:
        raise ValueError(f"{path}: trainer state format {data.get('format_version')!r} is not supported "
                         f"(this seqmamba reads {STATE_FORMAT_VERSION})")
    try:
        tensors = load_file(str(directory / STATE_TENSORS), device="cpu")
    except Exception as err:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"{directory / STATE_TENSORS}: cannot read ({err})") from None
    rng = []
    for rank, plain in enumerate(data["rng"]):
        prefix = f"rng.{rank}."
        rng.append((plain, {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}))
    return {
        "trainer": data["trainer"],
        "scheduler": data["scheduler"],
        "optimizer": join_optimizer_state(data["optimizer"], tensors),
        "rng": rng,
    }


def write_best(run_dir: Path, model: nn.Module, info: dict[str, Any]) -> Path:
    """Write ``run_dir/best`` (model + eval.json) atomically."""
    final = run_dir / "best"
    with atomic_directory(final) as staged:
        save_model(model, staged)
        _write_json(staged / "eval.json", info)
    return final
