"""Device selection: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""

from __future__ import annotations

import os

import torch


def resolve_device(spec: str | torch.device = "auto", local_rank: int | None = None) -> torch.device:
    """The torch.device a spec names, checked against the hardware.

    ``"auto"`` is CUDA when available, else the CPU. Under torchrun (``local_rank`` given, or the
    ``LOCAL_RANK`` variable set), ``"auto"`` and ``"cuda"`` mean this process's GPU, ``cuda:LOCAL_RANK``.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if local_rank is None and "LOCAL_RANK" in os.environ:
        local_rank = int(os.environ["LOCAL_RANK"])
    text = str(spec).strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {spec!r}") from None
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise ValueError(f"device {spec!r}: CUDA is not available here (torch {torch.__version__}); use 'cpu'")
    index = device.index if device.index is not None else (local_rank or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ValueError(f"device {spec!r}: only {count} CUDA device(s) visible (cuda:0..cuda:{count - 1})")
    return torch.device("cuda", index)
