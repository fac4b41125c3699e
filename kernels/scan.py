"""`selective_scan`: one entry point, three backends."""

from __future__ import annotations

import torch

from ._validate import check_scan_args
from .scan_reference import selective_scan_ref
from .scan_torch import selective_scan_torch

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


def _auto_backend(u: torch.Tensor) -> str:
    if u.device.type == "cuda" and triton_usable(u.device):
        return "triton"
    return "reference" if u.device.type == "cpu" and u.shape[-1] <= CPU_SHORT_LENGTH else "torch"


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    *,
    reverse: bool = False,
    initial_state: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Selective state-space scan (Mamba's S6), with mamba_ssm's ``selective_scan_fn`` semantics.

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t;  y_t = <C_t, h_t> + D * u_t;  y *= silu(z).

    Args:
        u, delta, z: (batch, dim, L).
        A: (dim, N), real (negative for a decaying state).
        B, C: (batch, N, L) shared by all channels, or (batch, G, N, L) with dim % G == 0.
        D, delta_bias: (dim,).
        delta_softplus: apply softplus to delta + delta_bias.
        return_last_state: also return the state after the last step, (batch, dim, N).
        reverse: run t from L-1 down to 0 (the backward half of a bidirectional encoder).
        initial_state: (batch, dim, N), the state before the first step.
        backend: "auto" (triton on CUDA tensors; on a CPU the reference recurrence up to
            ``CPU_SHORT_LENGTH`` steps, torch beyond), "reference", "torch" or "triton".

    Returns:
        y (batch, dim, L) in u's dtype, and the last state (float32; float64 for float64 inputs)
        when ``return_last_state``.

    Example:
        >>> import torch
        >>> from seqmamba.kernels import selective_scan
        >>> u = delta = torch.rand(2, 8, 100)
        >>> A = -torch.rand(8, 16)
        >>> B = C = torch.randn(2, 16, 100)
        >>> selective_scan(u, delta, A, B, C).shape
        torch.Size([2, 8, 100])
    """
    if backend not in BACKENDS:
        raise ValueError(f"selective_scan: backend must be one of {BACKENDS}, got {backend!r}")
    check_scan_args(u, delta, A, B, C, D, z, delta_bias, initial_state)
    if backend == "auto":
        backend = _auto_backend(u)
    kwargs = dict(reverse=reverse, initial_state=initial_state)
    args = (u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    if backend == "reference":
        return selective_scan_ref(*args, **kwargs)
    if backend == "torch":
        return selective_scan_torch(*args, **kwargs)
    if not triton_usable(u.device):
        raise ValueError(
            f"selective_scan: backend='triton' needs CUDA tensors (or TRITON_INTERPRET=1 and an importable"
            f" triton), got tensors on {u.device}"
        )
    from .scan_triton import scan_checked  # arguments checked above: at short L every microsecond shows

    return scan_checked(*args, **kwargs)
