"""Argument checks shared by every scan backend, so each backend sees the same normalised inputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclass(frozen=True)
class ScanShape:
    batch: int
    dim: int
    length: int
    d_state: int
    groups: int  # B/C groups; channel d reads group d // (dim // groups)


def _fail(message: str) -> None:
    raise ValueError(message)


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def check_scan_args(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    z: torch.Tensor | None,
    delta_bias: torch.Tensor | None,
    initial_state: torch.Tensor | None,
) -> ScanShape:
    """Validate `selective_scan` arguments and return their sizes; ValueError names the culprit."""
    for name, t in (("u", u), ("delta", delta), ("A", A), ("B", B), ("C", C)):
        if not isinstance(t, torch.Tensor):
            _fail(f"selective_scan: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _FLOAT_DTYPES:
            _fail(f"selective_scan: {name} must be a floating tensor, got {t.dtype}")
    if u.dim() != 3:
        _fail(f"selective_scan: u must be (batch, dim, L), got shape {_shape(u)}")
    batch, dim, length = u.shape
    if delta.shape != u.shape:
        _fail(f"selective_scan: delta must have u's shape {_shape(u)}, got {_shape(delta)}")
    if A.dim() != 2 or A.shape[0] != dim:
        _fail(f"selective_scan: A must be (dim, N) = ({dim}, N), got {_shape(A)}")
    if A.is_complex():
        _fail("selective_scan: A must be real (complex A is not supported)")
    d_state = A.shape[1]
    groups = None
    for name, t in (("B", B), ("C", C)):
        if t.dim() == 3:
            expected, g = (batch, d_state, length), 1
        elif t.dim() == 4:
            expected, g = (batch, t.shape[1], d_state, length), t.shape[1]
        else:
            _fail(f"selective_scan: {name} must be (batch, N, L) or (batch, G, N, L), got {_shape(t)}")
        if tuple(t.shape) != expected:
            want = "(batch, N, L)" if t.dim() == 3 else "(batch, G, N, L)"
            _fail(
                f"selective_scan: {name} must be {want} = {expected} for u {_shape(u)} and A {_shape(A)},"
                f" got {_shape(t)}"
            )
        if g < 1 or dim % g != 0:
            _fail(f"selective_scan: dim ({dim}) must be divisible by {name}'s groups ({g}), {name} is {_shape(t)}")
        if groups is not None and g != groups:
            _fail(f"selective_scan: B and C must have the same groups, got B {_shape(B)} and C {_shape(C)}")
        groups = g
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and (not isinstance(t, torch.Tensor) or tuple(t.shape) != (dim,)):
            got = _shape(t) if isinstance(t, torch.Tensor) else type(t).__name__
            _fail(f"selective_scan: {name} must be (dim,) = ({dim},), got {got}")
    if z is not None and (not isinstance(z, torch.Tensor) or z.shape != u.shape):
        got = _shape(z) if isinstance(z, torch.Tensor) else type(z).__name__
        _fail(f"selective_scan: z must have u's shape {_shape(u)}, got {got}")
    if initial_state is not None and (
        not isinstance(initial_state, torch.Tensor) or tuple(initial_state.shape) != (batch, dim, d_state)
    ):
        got = _shape(initial_state) if isinstance(initial_state, torch.Tensor) else type(initial_state).__name__
        _fail(f"selective_scan: initial_state must be (batch, dim, N) = ({batch}, {dim}, {d_state}), got {got}")
    devices = {t.device for t in (u, delta, A, B, C, D, z, delta_bias, initial_state) if t is not None}
    if len(devices) > 1:
        _fail(f"selective_scan: all tensors must be on one device, got {sorted(str(d) for d in devices)}")
    return ScanShape(batch, dim, length, d_state, groups)


def state_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    """The recurrence's working precision: float64 when any input is float64, else float32."""
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else torch.float32


def grouped(t: torch.Tensor) -> torch.Tensor:
    """B or C as (batch, G, N, L), whether it came shared (batch, N, L) or grouped."""
    return t.unsqueeze(1) if t.dim() == 3 else t


def check_state_update_args(state, x, dt, A, B, C, D, z, dt_bias) -> int:
    """Validate shapes; return the number of B/C groups. ValueError names the argument."""
    if state.dim() != 3:
        raise ValueError(f"selective_state_update: state must be (batch, dim, N), got {_shape(state)}")
    batch, dim, d_state = state.shape
    for name, t in (("x", x), ("dt", dt), ("z", z)):
        if t is not None and tuple(t.shape) != (batch, dim):
            raise ValueError(
                f"selective_state_update: {name} must be (batch, dim) = ({batch}, {dim}), got {_shape(t)}"
            )
    if tuple(A.shape) != (dim, d_state):
        raise ValueError(f"selective_state_update: A must be (dim, N) = ({dim}, {d_state}), got {_shape(A)}")
    groups = None
    for name, t in (("B", B), ("C", C)):
        if t.dim() == 2 and tuple(t.shape) == (batch, d_state):
            g = 1
        elif t.dim() == 3 and t.shape[0] == batch and t.shape[2] == d_state and t.shape[1] > 0:
            g = t.shape[1]
        else:
            raise ValueError(
                f"selective_state_update: {name} must be (batch, N) or (batch, G, N) with batch={batch},"
                f" N={d_state}, got {_shape(t)}"
            )
        if dim % g:
            raise ValueError(f"selective_state_update: dim ({dim}) must be divisible by {name}'s groups ({g})")
        if groups is not None and g != groups:
            raise ValueError(
                f"selective_state_update: B and C must have the same groups, got {_shape(B)} and {_shape(C)}"
            )
        groups = g
    for name, t in (("D", D), ("dt_bias", dt_bias)):
        if t is not None and tuple(t.shape) != (dim,):
            raise ValueError(f"selective_state_update: {name} must be (dim,) = ({dim},), got {_shape(t)}")
    return groups
