"""The selective scan in plain torch ops, fast enough for a CPU.

A Python loop over L steps is dominated by per-op overhead. Here the sequence is cut into chunks of
c steps; one loop walks the c positions of *every* chunk at once, a second one carries the state
from chunk to chunk (n steps), and a third walks the c positions again from the carried states: about
2*sqrt(2L) Python steps instead of L, and the same arithmetic as the recurrence (no exp/log tricks,
so it is as stable as the reference).

Memory: the (batch, dim, N)-expanded tensors exist for one segment of the sequence at a time; the
backward pass is written by hand and recomputes each segment's states from the state that entered
it, so only O(batch*dim*L) activations and one state per segment are kept.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._validate import check_scan_args, grouped, state_dtype

# Elements in one (batch, dim, segment, N) working tensor; a segment's backward holds about ten.
SEGMENT_ELEMENTS = 1 << 21


def _chunk_len(length: int) -> int:
    # Cost ~ 2c + L/c Python steps: minimal at c = sqrt(L/2).
    return max(1, round(math.sqrt(length / 2)))


def _to_chunks(t: torch.Tensor, c: int) -> torch.Tensor:
    """(..., T) -> (c, ..., n): position k*c+i at [i, ..., k]; zero-padded at the end."""
    n = -(-t.shape[-1] // c)
    t = F.pad(t, (0, n * c - t.shape[-1]))
    return t.unflatten(-1, (n, c)).movedim(-1, 0).contiguous()


def _from_chunks(t: torch.Tensor, length: int) -> torch.Tensor:
    """(c, ..., n) -> (..., length)."""
    return t.movedim(0, -1).flatten(-2)[..., :length]


def _bc_to_chunks(t: torch.Tensor, c: int) -> torch.Tensor:
    """B or C (batch, G, N, T) -> (c, batch, G, 1, n, N), broadcastable over the channels of a group."""
    return _to_chunks(t, c).transpose(-1, -2).unsqueeze(3)


def _bc_from_chunks(t: torch.Tensor, length: int) -> torch.Tensor:
    """(c, batch, G, n, N) -> (batch, G, N, length)."""
    return _from_chunks(t.transpose(-1, -2), length)


def scan_chunks(a: torch.Tensor, x: torch.Tensor, h0: torch.Tensor, reverse: bool = False):
    """All states of h_t = a_t * h_{t-1} + x_t (or h_{t+1} when reverse), chunk-major layout.

    a, x: (c, *batch, n, N) with time k*c + i at [i, ..., k, :]; h0: (*batch, N), the state before
    the first step (after the last one when reverse). Returns h like x and the final state.
    """
    c, n = x.shape[0], x.shape[-2]
    positions = range(c - 1, -1, -1) if reverse else range(c)
    chunks = range(n - 1, -1, -1) if reverse else range(n)

    local = torch.zeros_like(x[0])  # (*batch, n, N): each chunk's last state, starting from zero
    for i in positions:
        local = torch.addcmul(x[i], a[i], local)
    decay = a.prod(0)  # (*batch, n, N): how much of the entering state survives the chunk

    entering = torch.empty_like(local)  # (*batch, n, N)
    carry = h0
    for k in chunks:
        entering[..., k, :] = carry
        carry = torch.addcmul(local[..., k, :], decay[..., k, :], carry)

    h = torch.empty_like(x)
    state = entering
    for i in positions:
        state = torch.addcmul(x[i], a[i], state)
        h[i] = state
    return h, carry


class _Segment:
    """One segment of the sequence in chunk-major layout, expanded over the state dimension."""

    def __init__(self, dt, u, A, B, C, groups: int):
        batch, dim, length = u.shape
        self.length = length
        self.c = _chunk_len(length)
        per_group = dim // groups
        self.dt = _to_chunks(dt, self.c).unflatten(2, (groups, per_group))  # (c, batch, G, R, n)
        self.u = _to_chunks(u, self.c).unflatten(2, (groups, per_group))  # (c, batch, G, R, n)
        self.A = A.view(groups, per_group, 1, -1)  # (G, R, 1, N)
        self.B = _bc_to_chunks(B, self.c)  # (c, batch, G, 1, n, N)
        self.C = _bc_to_chunks(C, self.c)  # (c, batch, G, 1, n, N)
        self.a = torch.exp(self.dt[..., None] * self.A)  # (c, batch, G, R, n, N)
        self.x = (self.dt * self.u)[..., None] * self.B  # (c, batch, G, R, n, N)

    def chunks(self, t: torch.Tensor) -> torch.Tensor:
        """A (batch, dim, T) tensor of this segment in the segment's layout (c, batch, G, R, n)."""
        return _to_chunks(t, self.c).view_as(self.dt)

    def unchunk(self, t: torch.Tensor) -> torch.Tensor:
        """(c, batch, G, R, n) -> (batch, dim, T)."""
        return _from_chunks(t.flatten(2, 3), self.length)


def _forward(dt, u, A, B, C, h, groups, segment_len, keep_states: bool):
    """y without D and z, the last state, and the state entering each segment when asked."""
    batch, dim, length = u.shape
    ys, entering = [], []
    for start in range(0, length, segment_len):
        end = min(start + segment_len, length)
        seg = _Segment(dt[..., start:end], u[..., start:end], A, B[..., start:end], C[..., start:end], groups)
        if keep_states:
            entering.append(h)
        states, h = scan_chunks(seg.a, seg.x, h.view(batch, groups, dim // groups, -1))
        h = h.reshape(batch, dim, -1)
        ys.append(seg.unchunk((states * seg.C).sum(-1)))
    y = torch.cat(ys, dim=-1) if ys else u.new_zeros(u.shape)
    return y, h, entering


def _effective_delta(delta, delta_bias, softplus: bool, work: torch.dtype):
    raw = delta.to(work)
    if delta_bias is not None:
        raw = raw + delta_bias.to(work)[:, None]
    return raw, (F.softplus(raw) if softplus else raw)


class _ChunkedScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, initial_state, delta_softplus, segment_len):
        work = state_dtype(u, delta, A, B, C, D, z, delta_bias, initial_state)
        batch, dim, length = u.shape
        d_state = A.shape[1]
        Bg, Cg = grouped(B), grouped(C)
        groups = Bg.shape[1]
        _, dt = _effective_delta(delta, delta_bias, delta_softplus, work)
        x = u.to(work)  # (batch, dim, L)
        h0 = initial_state.to(work) if initial_state is not None else x.new_zeros(batch, dim, d_state)
        y, last, entering = _forward(
            dt, x, A.to(work), Bg.to(work), Cg.to(work), h0, groups, segment_len, keep_states=True
        )
        if D is not None:
            y = y + D.to(work)[:, None] * x
        out = y * F.silu(z.to(work)) if z is not None else y

        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, initial_state, *entering)
        ctx.y_before_gate = y if z is not None else None  # (batch, dim, L) for dz
        ctx.settings = (delta_softplus, segment_len, groups, work)
        ctx.set_materialize_grads(False)
        return out.to(u.dtype), last

    @staticmethod
    def backward(ctx, dout, dlast):
        u, delta, A, B, C, D, z, delta_bias, initial_state, *entering = ctx.saved_tensors
        delta_softplus, segment_len, groups, work = ctx.settings
        batch, dim, length = u.shape
        per_group = dim // groups
        raw, dt = _effective_delta(delta, delta_bias, delta_softplus, work)
        x = u.to(work)
        Aw = A.to(work)
        Bg, Cg = grouped(B).to(work), grouped(C).to(work)

        dout = torch.zeros_like(x) if dout is None else dout.to(work)
        dz = None
        if z is not None:
            zw = z.to(work)
            sig = torch.sigmoid(zw)
            dz = dout * ctx.y_before_gate * sig * (1 + zw * (1 - sig))
            dy = dout * zw * sig
        else:
            dy = dout
        dD = (dy * x).sum((0, 2)) if D is not None else None
        du = dy * D.to(work)[:, None] if D is not None else torch.zeros_like(x)

        # g_t = dL/dh_t = C_t dy_t + a_{t+1} g_{t+1}: a reverse scan whose decay is one step ahead.
        dt_next = F.pad(dt[..., 1:], (0, 1))
        g = dlast.to(work) if dlast is not None else x.new_zeros(batch, dim, A.shape[1])
        ddt = torch.empty_like(x)
        dA = torch.zeros_like(Aw)
        dB, dC = torch.empty_like(Bg), torch.empty_like(Cg)
        starts = list(range(0, length, segment_len))
        for index in range(len(starts) - 1, -1, -1):
            s = slice(starts[index], min(starts[index] + segment_len, length))
            seg = _Segment(dt[..., s], x[..., s], Aw, Bg[..., s], Cg[..., s], groups)
            h0 = entering[index].view(batch, groups, per_group, -1)
            h, _ = scan_chunks(seg.a, seg.x, h0)  # (c, batch, G, R, n, N)
            dy_c = seg.chunks(dy[..., s])[..., None]  # (c, batch, G, R, n, 1)
            a_next = torch.exp(seg.chunks(dt_next[..., s])[..., None] * seg.A)
            grad_h, g = scan_chunks(a_next, dy_c * seg.C, g.view_as(h0), reverse=True)
            d_log_decay = grad_h * (h - seg.x)  # dL/d(dt*A): (h - x) is a_t * h_{t-1}
            grad_h_b = (grad_h * seg.B).sum(-1)  # (c, batch, G, R, n)
            ddt[..., s] = seg.unchunk((d_log_decay * seg.A).sum(-1) + grad_h_b * seg.u)
            du[..., s] += seg.unchunk(grad_h_b * seg.dt)
            dA += (d_log_decay * seg.dt[..., None]).sum((0, 1, 4)).view(dim, -1)
            dB[..., s] = _bc_from_chunks((grad_h * (seg.dt * seg.u)[..., None]).sum(3), seg.length)
            dC[..., s] = _bc_from_chunks((h * dy_c).sum(3), seg.length)
            g = g.reshape(batch, dim, -1)

        d_initial = None
        if initial_state is not None:
            # g is now dL/dh at t=0 (or dlast when L=0), and h_0 = a_0 * initial + x_0.
            a0 = torch.exp(dt[..., 0, None] * Aw) if length else 1.0  # (batch, dim, N)
            d_initial = (a0 * g).to(initial_state.dtype)
        if delta_softplus:
            ddt = ddt * torch.sigmoid(raw)
        d_bias = ddt.sum((0, 2)).to(delta_bias.dtype) if delta_bias is not None else None
        dB = dB.squeeze(1) if B.dim() == 3 else dB
        dC = dC.squeeze(1) if C.dim() == 3 else dC
        return (
            du.to(u.dtype),
            ddt.to(delta.dtype),
            dA.to(A.dtype),
            dB.to(B.dtype),
            dC.to(C.dtype),
            dD.to(D.dtype) if dD is not None else None,
            dz.to(z.dtype) if dz is not None else None,
            d_bias,
            d_initial,
            None,
            None,
        )


def _flip(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.flip(-1)


def selective_scan_torch(
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
    segment_len: int | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Chunked selective scan; same contract as `seqmamba.kernels.selective_scan`.

    `segment_len` bounds the (batch, dim, segment, N) working set (default: about
    `SEGMENT_ELEMENTS` elements per tensor).
    """
    shape = check_scan_args(u, delta, A, B, C, D, z, delta_bias, initial_state)
    if segment_len is None:
        segment_len = max(64, SEGMENT_ELEMENTS // max(1, shape.batch * shape.dim * shape.d_state))
    if segment_len < 1:
        raise ValueError(f"selective_scan: segment_len must be >= 1, got {segment_len}")
    if reverse:
        # The (batch, dim, L) inputs are flipped, never the (batch, dim, L, N) working tensors.
        u, delta, B, C, z = _flip(u), _flip(delta), _flip(B), _flip(C), _flip(z)
    out, last = _ChunkedScan.apply(
        u, delta, A, B, C, D, z, delta_bias, initial_state, delta_softplus, segment_len
    )
    if reverse:
        out = out.flip(-1)
    return (out, last) if return_last_state else out
