"""The selective scan in plain torch ops, fast enough for a CPU.

A Python loop over L steps is dominated by per-op overhead and a fully vectorised scan streams
(batch, dim, L, N) tensors through memory several times. Here each segment of the sequence is cut
into n chunks of c steps and every loop step works on one position of *all* n chunks at once, a
(batch, dim, N, n) slab that stays in cache (chunks innermost, so broadcasts vectorise):

1. walk the c positions from a zero state: each chunk's own final state;
2. walk the n chunks (tiny steps): the state entering each chunk;
3. walk the c positions again from the entering states, emitting y.

That is 2c + n loop steps per segment instead of c*n, with the recurrence's own arithmetic (no
exp/log rescaling, so it is as stable as the reference). The backward pass is written by hand: it
keeps only the states entering each chunk, O(batch*dim*L*N/c), and recomputes one segment's states
at a time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._validate import check_scan_args, grouped, state_dtype

# Per device kind: elements of one loop step's (batch, dim, N, n) slab (a CPU core's cache; a GPU
# wants large launches) and the longest chunk (the backward keeps a segment's c*n states).
STEP_ELEMENTS = {"cpu": 1 << 17, "cuda": 1 << 22}
MAX_CHUNK = {"cpu": 64, "cuda": 256}


def plan_segments(batch: int, dim: int, d_state: int, length: int, device: str = "cpu") -> tuple[int, int]:
    """Chunk length c and chunks per segment n, for a sequence of `length` steps."""
    c = max(1, math.ceil(math.sqrt(length / 2)))  # minimises 2c + L/c
    n = math.ceil(length / c)
    n_max = max(1, STEP_ELEMENTS.get(device, STEP_ELEMENTS["cpu"]) // max(1, batch * dim * d_state))
    if n > n_max:
        n = n_max
        c = max(1, min(MAX_CHUNK.get(device, MAX_CHUNK["cpu"]), math.ceil(length / n)))
    return c, n


def _to_chunks(t: torch.Tensor, c: int) -> torch.Tensor:
    """(..., T) -> (c, ..., n): position k*c+i at [i, ..., k]; zero-padded at the end."""
    n = -(-t.shape[-1] // c)
    t = F.pad(t, (0, n * c - t.shape[-1]))
    return t.unflatten(-1, (n, c)).movedim(-1, 0).contiguous()


def _from_chunks(t: torch.Tensor, length: int) -> torch.Tensor:
    """(c, ..., n) -> (..., length)."""
    return t.movedim(0, -1).flatten(-2)[..., :length]


class _Segment:
    """One segment of the sequence, chunk-major: time k*c + i sits at [i, ..., k]."""

    def __init__(self, dt, u, A, B, C, groups: int, c: int):
        _, dim, length = u.shape
        per_group = dim // groups
        self.length, self.c = length, c
        self.dt = _to_chunks(dt, c).unflatten(2, (groups, per_group))  # (c, batch, G, R, n)
        self.u = _to_chunks(u, c).unflatten(2, (groups, per_group))  # (c, batch, G, R, n)
        self.dtu = self.dt * self.u  # (c, batch, G, R, n)
        self.A = A.view(groups, per_group, -1, 1)  # (G, R, N, 1)
        self.B = _to_chunks(B, c).unsqueeze(3)  # (c, batch, G, 1, N, n)
        self.C = _to_chunks(C, c).unsqueeze(3)  # (c, batch, G, 1, N, n)

    def decay(self, i: int, out: torch.Tensor) -> torch.Tensor:
        """exp(dt * A) at position i of every chunk, written into `out` (batch, G, R, N, n)."""
        return torch.mul(self.dt[i].unsqueeze(-2), self.A, out=out).exp_()

    def input(self, i: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """dt * u * B at position i of every chunk, (batch, G, R, N, n)."""
        return torch.mul(self.dtu[i].unsqueeze(-2), self.B[i], out=out)

    def chunks(self, t: torch.Tensor) -> torch.Tensor:
        """A (batch, dim, T) slice of this segment in the layout (c, batch, G, R, n)."""
        return _to_chunks(t, self.c).view_as(self.dt)

    def unchunk(self, t: torch.Tensor) -> torch.Tensor:
        """(c, batch, G, R, n) -> (batch, dim, T)."""
        return _from_chunks(t.flatten(2, 3), self.length)

    def unchunk_bc(self, t: torch.Tensor) -> torch.Tensor:
        """(c, batch, G, N, n) -> (batch, G, N, T)."""
        return _from_chunks(t, self.length)


def _entering_states(local, chunk_decay, h0, reverse: bool):
    """Pass 2: the state entering each chunk, (batch, G, R, N, n), and the state after the last one.

    local: each chunk's final state from a zero start; chunk_decay: the product of the decays over
    each chunk; h0 (batch, G, R, N) enters the first chunk in walking order.
    """
    n = local.shape[-1]
    entering = torch.empty_like(local)
    carry = h0
    for k in range(n - 1, -1, -1) if reverse else range(n):
        entering[..., k] = carry
        carry = torch.addcmul(local[..., k], chunk_decay[..., k], carry)
    return entering, carry


def _effective_delta(delta, delta_bias, softplus: bool, work: torch.dtype):
    raw = delta.to(work)
    if delta_bias is not None:
        raw = raw + delta_bias.to(work)[:, None]
    return raw, (F.softplus(raw) if softplus else raw)


def _segments(length: int, segment_len: int) -> list[slice]:
    return [slice(s, min(s + segment_len, length)) for s in range(0, length, segment_len)]


class _ChunkedScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, initial_state, delta_softplus, plan):
        work = state_dtype(u, delta, A, B, C, D, z, delta_bias, initial_state)
        batch, dim, length = u.shape
        d_state = A.shape[1]
        Bg, Cg = grouped(B).to(work), grouped(C).to(work)  # (batch, G, N, L)
        groups = Bg.shape[1]
        _, dt = _effective_delta(delta, delta_bias, delta_softplus, work)  # (batch, dim, L)
        x = u.to(work)
        Aw = A.to(work)
        h = initial_state.to(work) if initial_state is not None else x.new_zeros(batch, dim, d_state)
        h = h.view(batch, groups, dim // groups, d_state)  # (batch, G, R, N)
        c, n = plan
        ys, saved_entering = [], []
        for s in _segments(length, c * n):
            seg = _Segment(dt[..., s], x[..., s], Aw, Bg[..., s], Cg[..., s], groups, c)
            slab = (*seg.dt.shape[:-1], d_state, seg.dt.shape[-1])  # (c, batch, G, R, N, n)
            decays = torch.empty(slab, dtype=work, device=x.device)
            inputs = torch.empty(slab, dtype=work, device=x.device)
            local = None  # pass 1: each chunk's final state from a zero start
            for i in range(c):
                a_i, x_i = seg.decay(i, out=decays[i]), seg.input(i, out=inputs[i])
                local = x_i.clone() if local is None else torch.addcmul(x_i, a_i, local)
            chunk_decay = torch.exp(seg.dt.sum(0).unsqueeze(-2) * seg.A)  # (batch, G, R, N, n)
            entering, h = _entering_states(local, chunk_decay, h, reverse=False)
            saved_entering.append(entering)
            y = torch.empty_like(seg.dt)  # (c, batch, G, R, n)
            state = entering
            for i in range(c):  # pass 3, overwriting the inputs with the states
                state = inputs[i].addcmul_(decays[i], state)
                y[i] = torch.linalg.vecdot(state, seg.C[i], dim=-2)
            ys.append(seg.unchunk(y))
        y = torch.cat(ys, dim=-1) if ys else x.new_zeros(x.shape)  # (batch, dim, L)
        if D is not None:
            y = y + D.to(work)[:, None] * x
        out = y * F.silu(z.to(work)) if z is not None else y

        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, initial_state, *saved_entering)
        ctx.y_before_gate = y if z is not None else None  # (batch, dim, L), for dz
        ctx.settings = (delta_softplus, plan, groups, work)
        ctx.set_materialize_grads(False)
        return out.to(u.dtype), h.reshape(batch, dim, d_state)

    @staticmethod
    def backward(ctx, dout, dlast):
        u, delta, A, B, C, D, z, delta_bias, initial_state, *saved_entering = ctx.saved_tensors
        delta_softplus, (c, n), groups, work = ctx.settings
        batch, dim, length = u.shape
        d_state = A.shape[1]
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
        g = dlast.to(work) if dlast is not None else x.new_zeros(batch, dim, d_state)
        g = g.view(batch, groups, dim // groups, d_state)
        ddt = torch.empty_like(x)
        dA = torch.zeros(batch, groups, dim // groups, d_state, n, dtype=work, device=x.device)
        dB, dC = torch.empty_like(Bg), torch.empty_like(Cg)
        for s, entering in reversed(list(zip(_segments(length, c * n), saved_entering))):
            seg = _Segment(dt[..., s], x[..., s], Aw, Bg[..., s], Cg[..., s], groups, c)
            slab = (*seg.dt.shape[:-1], d_state, seg.dt.shape[-1])  # (c, batch, G, R, N, n)
            decays = torch.empty(slab, dtype=work, device=x.device)
            states = torch.empty(slab, dtype=work, device=x.device)
            state = entering
            for i in range(c):
                state = torch.addcmul(seg.input(i), seg.decay(i, out=decays[i]), state, out=states[i])

            dt_next_c = seg.chunks(dt_next[..., s])  # (c, batch, G, R, n)
            dy_c = seg.chunks(dy[..., s]).unsqueeze(-2)  # (c, batch, G, R, 1, n)
            # The decay one step ahead: the next position's, or after a chunk's end the next chunk's first.
            decay_after_chunk = torch.exp(dt_next_c[c - 1].unsqueeze(-2) * seg.A)

            def decay_next(i, decays=decays, last=decay_after_chunk):
                return decays[i + 1] if i + 1 < c else last

            local = None
            for i in range(c - 1, -1, -1):
                w_i = dy_c[i] * seg.C[i]
                local = w_i if local is None else w_i.addcmul_(decay_next(i), local)
            chunk_decay = torch.exp(dt_next_c.sum(0).unsqueeze(-2) * seg.A)
            grad_entering, g_out = _entering_states(local, chunk_decay, g, reverse=True)

            ddt_c, du_c = torch.empty_like(seg.dt), torch.empty_like(seg.dt)
            dB_c = torch.empty((*seg.B.shape[:3], *seg.B.shape[4:]), dtype=work, device=x.device)  # (c, b, G, N, n)
            dC_c = torch.empty_like(dB_c)
            dA_seg = dA[..., : seg.dt.shape[-1]]
            grad = grad_entering
            for i in range(c - 1, -1, -1):
                grad = (dy_c[i] * seg.C[i]).addcmul_(decay_next(i), grad)  # dL/dh at this position
                d_log_decay = (states[i] - seg.input(i)).mul_(grad)  # dL/d(dt*A); h - x = a * h_prev
                grad_b = torch.linalg.vecdot(grad, seg.B[i], dim=-2)  # (batch, G, R, n)
                ddt_c[i] = torch.linalg.vecdot(d_log_decay, seg.A, dim=-2).addcmul_(grad_b, seg.u[i])
                torch.mul(grad_b, seg.dt[i], out=du_c[i])
                dA_seg.addcmul_(d_log_decay, seg.dt[i].unsqueeze(-2))
                torch.sum(grad * seg.dtu[i].unsqueeze(-2), dim=2, out=dB_c[i])
                torch.sum(states[i] * dy_c[i], dim=2, out=dC_c[i])
            g = g_out
            ddt[..., s] = seg.unchunk(ddt_c)
            du[..., s] += seg.unchunk(du_c)
            dB[..., s] = seg.unchunk_bc(dB_c)
            dC[..., s] = seg.unchunk_bc(dC_c)

        d_initial = None
        if initial_state is not None:
            # g is now dL/dh at t=0 (dlast when L=0), and h_0 = a_0 * initial + x_0.
            a0 = torch.exp(dt[..., 0, None] * Aw) if length else 1.0  # (batch, dim, N)
            d_initial = (a0 * g.reshape(batch, dim, d_state)).to(initial_state.dtype)
        if delta_softplus:
            ddt = ddt * torch.sigmoid(raw)
        d_bias = ddt.sum((0, 2)).to(delta_bias.dtype) if delta_bias is not None else None
        dB = dB.squeeze(1) if B.dim() == 3 else dB
        dC = dC.squeeze(1) if C.dim() == 3 else dC
        return (
            du.to(u.dtype),
            ddt.to(delta.dtype),
            dA.sum((0, 4)).reshape(dim, d_state).to(A.dtype),
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
    chunk_len: int | None = None,
    chunks_per_segment: int | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Chunked selective scan; same contract as `seqmamba.kernels.selective_scan`.

    `chunk_len` (c) and `chunks_per_segment` (n) override `plan_segments`' choice.
    """
    shape = check_scan_args(u, delta, A, B, C, D, z, delta_bias, initial_state)
    c, n = plan_segments(shape.batch, shape.dim, shape.d_state, shape.length, u.device.type)
    c, n = chunk_len or c, chunks_per_segment or n
    if c < 1 or n < 1:
        raise ValueError(f"selective_scan: chunk_len and chunks_per_segment must be >= 1, got {c} and {n}")
    if reverse:
        # The (batch, dim, L) inputs are flipped, never (batch, dim, L, N) working tensors.
        u, delta, B, C, z = _flip(u), _flip(delta), _flip(B), _flip(C), _flip(z)
    out, last = _ChunkedScan.apply(u, delta, A, B, C, D, z, delta_bias, initial_state, delta_softplus, (c, n))
    if reverse:
        out = out.flip(-1)
    return (out, last) if return_last_state else out
