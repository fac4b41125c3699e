"""`selective_scan`: one entry point, three backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ._validate import check_scan_args
from .backend import BACKENDS, CPU_SHORT_LENGTH, choose_backend, triton_usable
from .scan_reference import selective_scan_ref
from .scan_torch import selective_scan_torch

if TYPE_CHECKING:  # importing it imports triton, which a CPU-only call never needs
    from .scan_tuning import ScanTuning

__all__ = ["BACKENDS", "CPU_SHORT_LENGTH", "selective_scan", "triton_usable"]


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
    tuning: ScanTuning | None = None,
    deterministic: bool | None = None,
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
            ``CPU_SHORT_LENGTH`` steps, torch beyond), "reference", "torch" or "triton"
            (`kernels.backend.choose_backend` decides).
        tuning: the Triton backend's knobs (`kernels.scan_tuning.ScanTuning`); default: the preset of
            u's device. The other backends have none.
        deterministic: gradients that repeat bit for bit on the same inputs. ``None`` (default) follows
            ``torch.are_deterministic_algorithms_enabled()``, so ``torch.use_deterministic_algorithms(True)``
            switches it on; True/False force it. Only the Triton backward changes (a partial buffer per block of
            channels, summed in a fixed order, instead of atomic adds into dB and dC): the forward and the other
            backends repeat bit for bit either way.

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
    check_scan_args(u, delta, A, B, C, D, z, delta_bias, initial_state)
    deterministic = resolve_deterministic(deterministic)
    backend = choose_backend("selective_scan", backend, u.device, u.shape[-1])
    kwargs = dict(reverse=reverse, initial_state=initial_state)
    args = (u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    if backend == "reference":
        return selective_scan_ref(*args, **kwargs)
    if backend == "torch":
        return selective_scan_torch(*args, **kwargs)
    from .scan_triton import scan_checked  # arguments checked above: at short L every microsecond shows

    return scan_checked(*args, **kwargs, tuning=tuning, deterministic=deterministic)


def resolve_deterministic(deterministic: bool | None) -> bool:
    """A call's `deterministic`: PyTorch's global setting where it is None (read when the scan is called)."""
    if deterministic is None:
        return torch.are_deterministic_algorithms_enabled()
    if not isinstance(deterministic, bool):
        raise TypeError(f"deterministic must be None, True or False, got {deterministic!r}")
    return deterministic
