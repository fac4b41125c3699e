"""`selective_scan_bidirectional`: a forward and a reverse scan over the same z, as a bidirectional (BiMamba)
block runs them, in one call.

On the Triton backend both directions run in one launch per pass (`_TritonScan` with a second direction):
their programs share the grid, so a short or narrow sequence fills the GPU with half the launches and half
the chunks each direction would need alone. Elsewhere it is the two `selective_scan` calls, which
`selective_scan_bidirectional_ref` spells out and the tests hold the fused path to.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import torch

from ._validate import check_scan_args
from .backend import choose_backend
from .scan import resolve_deterministic, selective_scan

if TYPE_CHECKING:
    from .scan_tuning import ScanTuning

# Above this many elements per direction (batch * dim * L) the two directions run as two Triton calls:
# each fills the GPU alone, and one kernel compiled for both ways holds more registers.
FUSED_MAX_ELEMENTS = 1 << 23

_apart = contextvars.ContextVar("seqmamba_directions_apart", default=False)


@contextlib.contextmanager
def separate_directions() -> Iterator[None]:
    """Within (this thread's calls): `selective_scan_bidirectional` and `fuses` never fuse the two directions.

    For steps replayed from a CUDA graph, the Trainer's `GraphedStep` (its eager steps, its capture and their dry
    run alike, so that all compile and run the same kernels). What the fused kernels save is the host's second
    launch, which a replay does not make; the two-call kernels compile faster (an sm_90 compile of the bf16
    training forward: 18.8 s fused, 4.0 s forward and 9.3 s reverse, in parallel) and at issue 22's long shapes
    their forward+backward was the faster (the fused one ran at 0.82-0.89x, docs/benchmarks/scan.md).

    Example:
        >>> u = torch.zeros(2, 8, 64)
        >>> with separate_directions():
        ...     fuses(u, "triton")
        False
    """
    token = _apart.set(True)
    try:
        yield
    finally:
        _apart.reset(token)


class ScanDirection(NamedTuple):
    """One direction's inputs, as `selective_scan` takes them: u, delta (batch, dim, L); A (dim, N);
    B, C (batch, N, L) or (batch, G, N, L); D, delta_bias (dim,) or None.

    Example:
        >>> import torch
        >>> u = delta = torch.rand(2, 8, 50)
        >>> B = C = torch.randn(2, 4, 50)
        >>> fwd = ScanDirection(u, delta, -torch.rand(8, 4), B, C)
        >>> y_fwd, y_rev = selective_scan_bidirectional(fwd, fwd)
        >>> y_rev.shape
        torch.Size([2, 8, 50])
    """

    u: torch.Tensor
    delta: torch.Tensor
    A: torch.Tensor
    B: torch.Tensor
    C: torch.Tensor
    D: torch.Tensor | None = None
    delta_bias: torch.Tensor | None = None


def _check(fwd: ScanDirection, rev: ScanDirection, z: torch.Tensor | None) -> None:
    shapes = [check_scan_args(d.u, d.delta, d.A, d.B, d.C, d.D, z, d.delta_bias, None) for d in (fwd, rev)]
    if shapes[0] != shapes[1]:
        raise ValueError(f"selective_scan_bidirectional: the two directions' sizes differ: {shapes[0]} and {shapes[1]}")
    for name in ScanDirection._fields:
        a, b = getattr(fwd, name), getattr(rev, name)
        if (a is None) != (b is None):
            raise ValueError(f"selective_scan_bidirectional: {name} must be given for both directions or neither")
        if a is not None and (a.dtype != b.dtype or a.dim() != b.dim()):
            raise ValueError(f"selective_scan_bidirectional: {name} differs between the directions in dtype or"
                             f" layout ({a.dtype}, {a.dim()}-d and {b.dtype}, {b.dim()}-d)")


def fuses(u: torch.Tensor, backend: str = "auto") -> bool:
    """Whether `selective_scan_bidirectional` runs both directions of inputs shaped like u in one launch.

    Where it does not, a caller that builds the directions' inputs can build and scan them one at a time,
    so that only one direction's inputs are alive at once. Never within `separate_directions`.

    Example:
        >>> fuses(torch.zeros(2, 8, 64), "triton"), fuses(torch.zeros(2, 8, 64), "torch")
        (True, False)
    """
    if _apart.get():
        return False
    if backend == "auto":
        backend = choose_backend("selective_scan_bidirectional", backend, u.device, u.shape[-1])
    return backend == "triton" and u.numel() <= FUSED_MAX_ELEMENTS


def selective_scan_bidirectional_ref(
    fwd: ScanDirection, rev: ScanDirection, z: torch.Tensor | None = None, delta_softplus: bool = False,
    backend: str = "reference", tuning: ScanTuning | None = None, deterministic: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two scans one after the other: the forward's and the reverse's y, (batch, dim, L) each."""
    kwargs = dict(z=z, delta_softplus=delta_softplus, backend=backend, tuning=tuning, deterministic=deterministic)
    return (selective_scan(**fwd._asdict(), **kwargs), selective_scan(**rev._asdict(), reverse=True, **kwargs))


def selective_scan_bidirectional(
    fwd: ScanDirection, rev: ScanDirection, z: torch.Tensor | None = None, delta_softplus: bool = False,
    backend: str = "auto", tuning: ScanTuning | None = None, deterministic: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scan `fwd` from t = 0 up and `rev` from t = L-1 down, both gated by the same z.

    Returns (y_fwd, y_rev), (batch, dim, L) each: ``selective_scan(**fwd._asdict(), z=z)`` and
    ``selective_scan(**rev._asdict(), z=z, reverse=True)`` (from the fused path, views of one
    (2, batch, dim, L) buffer). The backends are `selective_scan`'s; "triton" runs both directions in one
    launch per pass up to `FUSED_MAX_ELEMENTS` per direction (not within `separate_directions`), and as two
    calls beyond. tuning: the Triton backend's knobs, and deterministic (None:
    ``torch.are_deterministic_algorithms_enabled()``) a backward that repeats bit for bit, as `selective_scan`
    takes them.
    """
    _check(fwd, rev, z)
    backend = choose_backend("selective_scan_bidirectional", backend, fwd.u.device, fwd.u.shape[-1])
    deterministic = resolve_deterministic(deterministic)
    if not fuses(fwd.u, backend):
        return selective_scan_bidirectional_ref(fwd, rev, z, delta_softplus, backend, tuning, deterministic)
    from .scan_triton import selective_scan_bidirectional_triton

    return selective_scan_bidirectional_triton(fwd, rev, z, delta_softplus, tuning, deterministic)
