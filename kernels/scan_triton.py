"""Triton kernels for the selective scan: a forward and a backward kernel behind one autograd.Function.

One program owns a (batch, block of channels) pair and walks the sequence tile by tile; inside a
tile of BLOCK_L steps the recurrence runs as a parallel associative scan over (decay, input) pairs,
and the state is carried from tile to tile. The forward pass stores the state entering each tile
(O(batch*dim*L*N/BLOCK_L)), from which the backward pass recomputes every state of a tile: no
(batch, dim, L, N) tensor is ever kept. `reverse=True` walks tiles and scans backwards in place.

Everything is computed in float32 (float64 for float64 inputs); loads and stores keep the inputs'
dtypes. Runs on CUDA, or on a CPU under TRITON_INTERPRET=1.
"""

from __future__ import annotations

import os

import torch

from ._validate import check_scan_args, grouped, state_dtype

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is missing
    triton = None


def available() -> bool:
    return triton is not None


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


if triton is not None:

    @triton.jit
    def _combine(a_left, x_left, a_right, x_right):
        # (a, x) composes like h -> a*h + x: "left, then right".
        return a_left * a_right, a_right * x_left + x_right

    @triton.jit
    def _softplus(x):
        return tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x)))

    @triton.jit
    def _load_delta(DELTA, row, offs_l, length, d_mask, bias, HAS_BIAS: tl.constexpr,
                    SOFTPLUS: tl.constexpr, ACC: tl.constexpr):
        """delta after bias and softplus for (BLOCK_D, BLOCK_L) positions; 0 outside the sequence."""
        mask = d_mask[:, None] & (offs_l >= 0)[None, :] & (offs_l < length)[None, :]
        raw = tl.load(DELTA + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
        if HAS_BIAS:
            raw = raw + bias[:, None]
        dt = raw
        if SOFTPLUS:
            dt = _softplus(raw)
        return tl.where(mask, dt, 0.0), raw, mask

    @triton.jit
    def _scan_fwd_kernel(
        U, DELTA, A, B, C, D, Z, BIAS, H0,  # inputs
        OUT, LAST, TILE_STATES,  # outputs
        dim, length, d_state, groups, channels_per_group, blocks_per_group, n_tiles,
        HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
        HAS_H0: tl.constexpr, STORE_STATES: tl.constexpr, REVERSE: tl.constexpr, ACC: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr,
    ):
        pid_b = tl.program_id(0)
        pid_blk = tl.program_id(1)
        group = pid_blk // blocks_per_group
        local_d = (pid_blk % blocks_per_group) * BLOCK_D + tl.arange(0, BLOCK_D)
        d_mask = local_d < channels_per_group
        d = group * channels_per_group + local_d  # (BLOCK_D,)
        n = tl.arange(0, BLOCK_N)
        n_mask = n < d_state
        dn_mask = d_mask[:, None] & n_mask[None, :]
        row = (pid_b * dim + d) * length  # (BLOCK_D,) offset of each channel's sequence
        bc_base = (pid_b * groups + group) * d_state * length

        A_tile = tl.load(A + d[:, None] * d_state + n[None, :], mask=dn_mask, other=0.0).to(ACC)
        bias = tl.zeros([BLOCK_D], dtype=ACC)
        if HAS_BIAS:
            bias = tl.load(BIAS + d, mask=d_mask, other=0.0).to(ACC)
        D_vec = tl.zeros([BLOCK_D], dtype=ACC)
        if HAS_D:
            D_vec = tl.load(D + d, mask=d_mask, other=0.0).to(ACC)
        state_offs = (pid_b * dim + d)[:, None] * d_state + n[None, :]  # (BLOCK_D, BLOCK_N)
        state = tl.zeros([BLOCK_D, BLOCK_N], dtype=ACC)
        if HAS_H0:
            state = tl.load(H0 + state_offs, mask=dn_mask, other=0.0).to(ACC)
        l_idx = tl.arange(0, BLOCK_L)

        for k in range(n_tiles):
            if REVERSE:
                offs_l = length - (k + 1) * BLOCK_L + l_idx
            else:
                offs_l = k * BLOCK_L + l_idx
            dt, _, mask = _load_delta(DELTA, row, offs_l, length, d_mask, bias, HAS_BIAS, SOFTPLUS, ACC)
            u = tl.load(U + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
            l_ok = (offs_l >= 0) & (offs_l < length)
            ln_mask = l_ok[:, None] & n_mask[None, :]
            bc_offs = bc_base + n[None, :] * length + offs_l[:, None]  # (BLOCK_L, BLOCK_N)
            B_tile = tl.load(B + bc_offs, mask=ln_mask, other=0.0).to(ACC)
            C_tile = tl.load(C + bc_offs, mask=ln_mask, other=0.0).to(ACC)

            decay = tl.exp(dt[:, :, None] * A_tile[:, None, :])  # (BLOCK_D, BLOCK_L, BLOCK_N)
            inp = (dt * u)[:, :, None] * B_tile[None, :, :]
            decay_run, h = tl.associative_scan((decay, inp), axis=1, combine_fn=_combine, reverse=REVERSE)
            h = h + decay_run * state[:, None, :]
            if STORE_STATES:
                tl.store(TILE_STATES + ((pid_b * dim + d)[:, None] * n_tiles + k) * d_state + n[None, :],
                         state, mask=dn_mask)
            y = tl.sum(h * C_tile[None, :, :], axis=2)  # (BLOCK_D, BLOCK_L)
            if HAS_D:
                y = y + D_vec[:, None] * u
            if HAS_Z:
                zv = tl.load(Z + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
                y = y * zv * tl.sigmoid(zv)
            tl.store(OUT + row[:, None] + offs_l[None, :], y.to(OUT.dtype.element_ty), mask=mask)
            # The state leaving the tile: the scan's last element in walking order.
            last_idx = 0 if REVERSE else BLOCK_L - 1
            state = tl.sum(tl.where((l_idx == last_idx)[None, :, None], h, 0.0), axis=1)

        tl.store(LAST + state_offs, state, mask=dn_mask)

    @triton.jit
    def _scan_bwd_kernel(
        U, DELTA, A, B, C, D, Z, BIAS, DOUT, TILE_STATES, DLAST,  # inputs
        DU, DDELTA, DZ, DA_PART, DB_PART, DC_PART, DD_PART, DBIAS_PART, DH0,  # outputs
        dim, length, d_state, groups, channels_per_group, blocks_per_group, n_tiles,
        HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
        HAS_H0: tl.constexpr, HAS_DLAST: tl.constexpr, REVERSE: tl.constexpr, ACC: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr,
    ):
        pid_b = tl.program_id(0)
        pid_blk = tl.program_id(1)
        group = pid_blk // blocks_per_group
        block = pid_blk % blocks_per_group
        local_d = block * BLOCK_D + tl.arange(0, BLOCK_D)
        d_mask = local_d < channels_per_group
        d = group * channels_per_group + local_d
        n = tl.arange(0, BLOCK_N)
        n_mask = n < d_state
        dn_mask = d_mask[:, None] & n_mask[None, :]
        row = (pid_b * dim + d) * length
        bc_base = (pid_b * groups + group) * d_state * length
        # Partial dB/dC of this block of channels: (batch, G, blocks_per_group, N, L), summed afterwards.
        part_base = ((pid_b * groups + group) * blocks_per_group + block) * d_state * length
        step = -1 if REVERSE else 1

        A_tile = tl.load(A + d[:, None] * d_state + n[None, :], mask=dn_mask, other=0.0).to(ACC)
        bias = tl.zeros([BLOCK_D], dtype=ACC)
        if HAS_BIAS:
            bias = tl.load(BIAS + d, mask=d_mask, other=0.0).to(ACC)
        D_vec = tl.zeros([BLOCK_D], dtype=ACC)
        if HAS_D:
            D_vec = tl.load(D + d, mask=d_mask, other=0.0).to(ACC)
        state_offs = (pid_b * dim + d)[:, None] * d_state + n[None, :]
        # g = dL/dh at the step after the current tile (in walking order).
        g_carry = tl.zeros([BLOCK_D, BLOCK_N], dtype=ACC)
        if HAS_DLAST:
            g_carry = tl.load(DLAST + state_offs, mask=dn_mask, other=0.0).to(ACC)
        dA_acc = tl.zeros([BLOCK_D, BLOCK_N], dtype=ACC)
        dD_acc = tl.zeros([BLOCK_D], dtype=ACC)
        dbias_acc = tl.zeros([BLOCK_D], dtype=ACC)
        l_idx = tl.arange(0, BLOCK_L)

        for kk in range(n_tiles):
            k = n_tiles - 1 - kk
            if REVERSE:
                offs_l = length - (k + 1) * BLOCK_L + l_idx
            else:
                offs_l = k * BLOCK_L + l_idx
            dt, raw, mask = _load_delta(DELTA, row, offs_l, length, d_mask, bias, HAS_BIAS, SOFTPLUS, ACC)
            u = tl.load(U + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
            l_ok = (offs_l >= 0) & (offs_l < length)
            ln_mask = l_ok[:, None] & n_mask[None, :]
            bc_offs = bc_base + n[None, :] * length + offs_l[:, None]
            B_tile = tl.load(B + bc_offs, mask=ln_mask, other=0.0).to(ACC)
            C_tile = tl.load(C + bc_offs, mask=ln_mask, other=0.0).to(ACC)

            # Recompute this tile's states from the state that entered it.
            h_in = tl.load(TILE_STATES + ((pid_b * dim + d)[:, None] * n_tiles + k) * d_state + n[None, :],
                           mask=dn_mask, other=0.0)
            decay = tl.exp(dt[:, :, None] * A_tile[:, None, :])
            inp = (dt * u)[:, :, None] * B_tile[None, :, :]
            decay_run, h = tl.associative_scan((decay, inp), axis=1, combine_fn=_combine, reverse=REVERSE)
            h = h + decay_run * h_in[:, None, :]  # (BLOCK_D, BLOCK_L, BLOCK_N)

            dout = tl.load(DOUT + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
            if HAS_Z:
                zv = tl.load(Z + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
                y = tl.sum(h * C_tile[None, :, :], axis=2) + D_vec[:, None] * u
                sig = tl.sigmoid(zv)
                dz = dout * y * sig * (1.0 + zv * (1.0 - sig))
                tl.store(DZ + row[:, None] + offs_l[None, :], dz.to(DZ.dtype.element_ty), mask=mask)
                dy = dout * zv * sig
            else:
                dy = dout

            # g_t = C_t dy_t + a_{t+step} g_{t+step}: a scan against the walking order whose decay
            # comes from the neighbouring step (0 beyond the sequence, so g enters from DLAST).
            dt_next, _, _ = _load_delta(DELTA, row, offs_l + step, length, d_mask, bias, HAS_BIAS, SOFTPLUS, ACC)
            decay_next = tl.exp(dt_next[:, :, None] * A_tile[:, None, :])
            w = dy[:, :, None] * C_tile[None, :, :]
            g_run, g = tl.associative_scan((decay_next, w), axis=1, combine_fn=_combine, reverse=not REVERSE)
            g = g + g_run * g_carry[:, None, :]
            first_idx = BLOCK_L - 1 if REVERSE else 0
            g_carry = tl.sum(tl.where((l_idx == first_idx)[None, :, None], g, 0.0), axis=1)

            d_log_decay = g * (h - inp)  # dL/d(dt*A); h - inp = a_t * h_{t-1}
            g_b = tl.sum(g * B_tile[None, :, :], axis=2)  # (BLOCK_D, BLOCK_L)
            ddt = tl.sum(d_log_decay * A_tile[:, None, :], axis=2) + g_b * u
            du = g_b * dt + D_vec[:, None] * dy
            dA_acc += tl.sum(d_log_decay * dt[:, :, None], axis=1)
            dD_acc += tl.sum(dy * u, axis=1)
            if SOFTPLUS:
                ddt = ddt * tl.sigmoid(raw)
            ddt = tl.where(mask, ddt, 0.0)
            dbias_acc += tl.sum(ddt, axis=1)
            tl.store(DU + row[:, None] + offs_l[None, :], du.to(DU.dtype.element_ty), mask=mask)
            tl.store(DDELTA + row[:, None] + offs_l[None, :], ddt.to(DDELTA.dtype.element_ty), mask=mask)
            part_offs = part_base + n[None, :] * length + offs_l[:, None]  # (BLOCK_L, BLOCK_N)
            tl.store(DB_PART + part_offs, tl.sum(g * (dt * u)[:, :, None], axis=0), mask=ln_mask)
            tl.store(DC_PART + part_offs, tl.sum(h * dy[:, :, None], axis=0), mask=ln_mask)

        tl.store(DA_PART + state_offs, dA_acc, mask=dn_mask)
        vec_offs = pid_b * dim + d
        tl.store(DD_PART + vec_offs, dD_acc, mask=d_mask)
        tl.store(DBIAS_PART + vec_offs, dbias_acc, mask=d_mask)
        if HAS_H0:
            # g_carry is now dL/dh at the first step t0, and h_t0 = a_t0 * h0 + x_t0.
            t0 = length - 1 if REVERSE else 0
            dt0, _, _ = _load_delta(DELTA, row, tl.full([1], t0, tl.int32), length, d_mask, bias,
                                    HAS_BIAS, SOFTPLUS, ACC)  # (BLOCK_D, 1)
            tl.store(DH0 + state_offs, g_carry * tl.exp(dt0 * A_tile), mask=dn_mask)


def _block_sizes(d_state: int, channels_per_group: int) -> tuple[int, int, int]:
    block_n = triton.next_power_of_2(max(d_state, 1))
    block_l = 32
    # Keep a (BLOCK_D, BLOCK_L, BLOCK_N) tile at about 4096 values: registers, not local memory.
    block_d = max(1, min(triton.next_power_of_2(channels_per_group), 4096 // (block_l * block_n)))
    return block_d, block_l, block_n


class _TritonScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, initial_state, delta_softplus, reverse):
        batch, dim, length = u.shape
        d_state = A.shape[1]
        work = state_dtype(u, delta, A, B, C, D, z, delta_bias, initial_state)
        acc = tl.float64 if work == torch.float64 else tl.float32
        Bg, Cg = grouped(B).contiguous(), grouped(C).contiguous()
        groups = Bg.shape[1]
        per_group = dim // groups
        block_d, block_l, block_n = _block_sizes(d_state, per_group)
        blocks_per_group = triton.cdiv(per_group, block_d)
        n_tiles = triton.cdiv(length, block_l)
        u, delta = u.contiguous(), delta.contiguous()
        z = z.contiguous() if z is not None else None
        A = A.contiguous()

        out = torch.empty_like(u)
        last = torch.empty(batch, dim, d_state, device=u.device, dtype=work)
        keep = torch.is_grad_enabled() or any(
            t is not None and t.requires_grad for t in (u, delta, A, B, C, D, z, delta_bias, initial_state)
        )
        tile_states = torch.empty(batch, dim, n_tiles if keep else 0, d_state, device=u.device, dtype=work)
        dummy = u
        grid = (batch, groups * blocks_per_group)
        _scan_fwd_kernel[grid](
            u, delta, A, Bg, Cg,
            D if D is not None else dummy, z if z is not None else dummy,
            delta_bias if delta_bias is not None else dummy,
            initial_state.contiguous() if initial_state is not None else dummy,
            out, last, tile_states,
            dim, length, d_state, groups, per_group, blocks_per_group, n_tiles,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=delta_softplus,
            HAS_H0=initial_state is not None, STORE_STATES=keep, REVERSE=reverse, ACC=acc,
            BLOCK_D=block_d, BLOCK_L=block_l, BLOCK_N=block_n,
        )
        ctx.save_for_backward(u, delta, A, Bg, Cg, D, z, delta_bias, initial_state, tile_states)
        ctx.settings = (delta_softplus, reverse, acc, work, B.dim() == 3, C.dim() == 3,
                        (block_d, block_l, block_n, blocks_per_group, n_tiles))
        ctx.set_materialize_grads(False)
        return out, last

    @staticmethod
    def backward(ctx, dout, dlast):
        u, delta, A, Bg, Cg, D, z, delta_bias, initial_state, tile_states = ctx.saved_tensors
        delta_softplus, reverse, acc, work, b_shared, c_shared, blocks = ctx.settings
        block_d, block_l, block_n, blocks_per_group, n_tiles = blocks
        batch, dim, length = u.shape
        d_state = A.shape[1]
        groups = Bg.shape[1]
        dout = torch.zeros_like(u) if dout is None else dout.contiguous()
        f32 = dict(device=u.device, dtype=work)
        du, ddelta = torch.empty_like(u), torch.empty_like(delta)
        dz = torch.empty_like(z) if z is not None else None
        dA_part = torch.empty(batch, dim, d_state, **f32)
        dB_part = torch.empty(batch, groups, blocks_per_group, d_state, length, **f32)
        dC_part = torch.empty_like(dB_part)
        dD_part = torch.empty(batch, dim, **f32)
        dbias_part = torch.empty(batch, dim, **f32)
        dh0 = torch.empty(batch, dim, d_state, **f32) if initial_state is not None else None
        dummy = u
        grid = (batch, groups * blocks_per_group)
        _scan_bwd_kernel[grid](
            u, delta, A, Bg, Cg,
            D if D is not None else dummy, z if z is not None else dummy,
            delta_bias if delta_bias is not None else dummy,
            dout, tile_states, dlast.contiguous() if dlast is not None else dummy,
            du, ddelta, dz if dz is not None else dummy,
            dA_part, dB_part, dC_part, dD_part, dbias_part, dh0 if dh0 is not None else dummy,
            dim, length, d_state, groups, dim // groups, blocks_per_group, n_tiles,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=delta_softplus,
            HAS_H0=initial_state is not None, HAS_DLAST=dlast is not None, REVERSE=reverse, ACC=acc,
            BLOCK_D=block_d, BLOCK_L=block_l, BLOCK_N=block_n,
        )
        dB, dC = dB_part.sum(2), dC_part.sum(2)  # (batch, G, N, L)
        return (
            du,
            ddelta,
            dA_part.sum(0).to(A.dtype),
            (dB.squeeze(1) if b_shared else dB).to(Bg.dtype),
            (dC.squeeze(1) if c_shared else dC).to(Cg.dtype),
            dD_part.sum(0).to(D.dtype) if D is not None else None,
            dz,
            dbias_part.sum(0).to(delta_bias.dtype) if delta_bias is not None else None,
            dh0.to(initial_state.dtype) if dh0 is not None else None,
            None,
            None,
        )


def selective_scan_triton(
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
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Triton selective scan; same contract as `seqmamba.kernels.selective_scan`."""
    if triton is None:
        raise RuntimeError("selective_scan: backend='triton' needs the triton package")
    check_scan_args(u, delta, A, B, C, D, z, delta_bias, initial_state)
    out, last = _TritonScan.apply(u, delta, A, B, C, D, z, delta_bias, initial_state, delta_softplus, reverse)
    return (out, last) if return_last_state else out
