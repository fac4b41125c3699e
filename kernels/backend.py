"""Which backend runs a call: the one place that decides it, for `selective_scan`, `selective_scan_bidirectional`,
`selective_state_update` and `depthwise_conv1d`.

``reference`` is the readable torch version (for the scan, the recurrence step by step), ``torch`` the chunked
scan for CPUs, ``triton`` the GPU kernels (also runnable on a CPU under TRITON_INTERPRET=1). "auto" takes Triton
on CUDA tensors; elsewhere the chunked scan, but on a CPU the reference for short sequences and for an operation
that has no ``torch`` backend.
"""

from __future__ import annotations

import torch

BACKENDS = ("auto", "reference", "torch", "triton")
# On a CPU the chunked torch scan pays a fixed cost per call (chunk layouts, a hand-written backward
# over three passes) that only a long sequence earns back; below this length the plain step-by-step
# recurrence is faster (forward + backward, 256 channels, d_state 2, 2 threads: L=7 4.4 ms vs 10.6 ms,
# L=16 13.1 vs 13.4, L=32 39 vs 15). Short sequences are what the variate forecaster runs: C tokens.
CPU_SHORT_LENGTH = 12


def triton_usable(device: torch.device) -> bool:
    """Triton runs on CUDA tensors, or on CPU tensors under TRITON_INTERPRET=1."""
    try:
        from . import scan_triton
    except ImportError:  # triton itself is importable, but this build lacks what the kernels use
        return False
    return scan_triton.available() and (device.type == "cuda" or scan_triton.interpreting())


def choose_backend(op: str, backend: str, device: torch.device, length: int,
                   backends: tuple[str, ...] = BACKENDS) -> str:
    """The backend that runs `op` ("selective_scan", ...) on tensors on `device` with `length` steps (1 for a
    recurrent step): `backend` itself unless it is "auto". backends: the names `op` takes. ValueError for a
    name not among them, or for "triton" where Triton cannot run."""
    if backend not in backends:
        raise ValueError(f"{op}: backend must be one of {backends}, got {backend!r}")
    if backend == "auto":
        if device.type == "cuda" and triton_usable(device):
            return "triton"
        short_on_cpu = device.type == "cpu" and length <= CPU_SHORT_LENGTH
        return "torch" if "torch" in backends and not short_on_cpu else "reference"
    if backend == "triton" and not triton_usable(device):
        raise ValueError(f"{op}: backend='triton' needs CUDA tensors (or TRITON_INTERPRET=1 and an importable"
                         f" triton), got tensors on {device}")
    return backend
