"""Triton kernels for the selective scan, parallel over batch, channels *and* the sequence.

The sequence is cut into tiles of BLOCK_L steps; inside a tile the recurrence runs as a parallel
associative scan over (decay, input) pairs. Tiles are grouped into chunks, and each program walks
the tiles of one (batch, block of channels, chunk). Chunks are made independent in three steps:

1. `summary`: every chunk's final state from a zero start, and its total decay exp(A * sum dt);
2. `carry`: a short walk over the chunks gives the state entering each chunk;
3. `full`: every chunk again from its entering state, writing y and the state entering each tile.

A single chunk (enough programs already) skips 1 and 2. The backward pass mirrors this for
g = dL/dh, which runs against the walking order, and recomputes each tile's states from the saved
tile-entering states (O(batch*dim*L*N/BLOCK_L)): no (batch, dim, L, N) tensor is ever kept.
`reverse=True` walks chunks, tiles and scans backwards in place: no flipped copies.

Computation is in float32 (float64 for float64 inputs); loads and stores keep the tensors' dtypes.
Runs on CUDA, or on a CPU under TRITON_INTERPRET=1.
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
    def _tile_positions(tile, length, BLOCK_L: tl.constexpr, REVERSE: tl.constexpr):
        """Sequence positions of the tile-th tile in walking order (may run off either end)."""
        start = tile * BLOCK_L
        if REVERSE:
            start = length - (tile + 1) * BLOCK_L
        return start + tl.arange(0, BLOCK_L)

    @triton.jit
    def _program_channels(pid_blk, blocks_per_group, channels_per_group, BLOCK_D: tl.constexpr):
        group = pid_blk // blocks_per_group
        block = pid_blk % blocks_per_group
        local_d = block * BLOCK_D + tl.arange(0, BLOCK_D)
        d = group * channels_per_group + local_d  # (BLOCK_D,)
        return group, block, d, local_d < channels_per_group

    @triton.jit
    def _scan_fwd_kernel(
        U, DELTA, A, B, C, D, Z, BIAS,  # inputs
        ENTER,  # (batch, dim, n_chunks, N): state entering each chunk (read in the full pass)
        OUT, TILE_STATES, CHUNK_LOCAL, CHUNK_DECAY, LAST,  # outputs
        dim, length, d_state, groups, channels_per_group, blocks_per_group, n_tiles, tiles_per_chunk, n_chunks,
        SUMMARY: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr, STORE_STATES: tl.constexpr, STORE_LAST: tl.constexpr, REVERSE: tl.constexpr,
        ACC: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr,
    ):
        pid_b = tl.program_id(0).to(tl.int64)  # offsets past 2**31 at long L
        group, _block, d, d_mask = _program_channels(tl.program_id(1), blocks_per_group, channels_per_group, BLOCK_D)
        chunk = tl.program_id(2)
        n = tl.arange(0, BLOCK_N)
        n_mask = n < d_state
        dn_mask = d_mask[:, None] & n_mask[None, :]
        row = (pid_b * dim + d) * length  # (BLOCK_D,) offset of each channel's sequence
        bc_base = (pid_b * groups + group) * d_state * length
        chunk_offs = ((pid_b * dim + d)[:, None] * n_chunks + chunk) * d_state + n[None, :]  # (BLOCK_D, BLOCK_N)

        A_tile = tl.load(A + d[:, None] * d_state + n[None, :], mask=dn_mask, other=0.0).to(ACC)
        bias = tl.zeros([BLOCK_D], dtype=ACC)
        if HAS_BIAS:
            bias = tl.load(BIAS + d, mask=d_mask, other=0.0).to(ACC)
        D_vec = tl.zeros([BLOCK_D], dtype=ACC)
        if HAS_D:
            D_vec = tl.load(D + d, mask=d_mask, other=0.0).to(ACC)
        if SUMMARY:
            state = tl.zeros([BLOCK_D, BLOCK_N], dtype=ACC)
        else:
            state = tl.load(ENTER + chunk_offs, mask=dn_mask, other=0.0).to(ACC)
        dt_sum = tl.zeros([BLOCK_D], dtype=ACC)
        l_idx = tl.arange(0, BLOCK_L)
        first_tile = chunk * tiles_per_chunk
        tiles_here = tl.minimum(tiles_per_chunk, n_tiles - first_tile)

        for j in range(0, tiles_here):
            tile = first_tile + j
            offs_l = _tile_positions(tile, length, BLOCK_L, REVERSE)
            dt, _raw, mask = _load_delta(DELTA, row, offs_l, length, d_mask, bias, HAS_BIAS, SOFTPLUS, ACC)
            u = tl.load(U + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
            nl_mask = n_mask[:, None] & ((offs_l >= 0) & (offs_l < length))[None, :]
            bc_offs = bc_base + n[:, None] * length + offs_l[None, :]  # (BLOCK_N, BLOCK_L)
            B_tile = tl.load(B + bc_offs, mask=nl_mask, other=0.0).to(ACC)

            decay = tl.exp(dt[:, None, :] * A_tile[:, :, None])  # (BLOCK_D, BLOCK_N, BLOCK_L)
            inp = (dt * u)[:, None, :] * B_tile[None, :, :]
            decay_run, h = tl.associative_scan((decay, inp), axis=2, combine_fn=_combine, reverse=REVERSE)
            h = h + decay_run * state[:, :, None]
            if SUMMARY:
                dt_sum += tl.sum(dt, axis=1)
            else:
                if STORE_STATES:
                    tl.store(TILE_STATES + ((pid_b * dim + d)[:, None] * n_tiles + tile) * d_state + n[None, :],
                             state, mask=dn_mask)
                C_tile = tl.load(C + bc_offs, mask=nl_mask, other=0.0).to(ACC)
                y = tl.sum(h * C_tile[None, :, :], axis=1)  # (BLOCK_D, BLOCK_L)
                if HAS_D:
                    y = y + D_vec[:, None] * u
                if HAS_Z:
                    zv = tl.load(Z + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
                    y = y * zv * tl.sigmoid(zv)
                tl.store(OUT + row[:, None] + offs_l[None, :], y.to(OUT.dtype.element_ty), mask=mask)
            # The state leaving the tile: the scan's last element in walking order.
            last_idx = 0 if REVERSE else BLOCK_L - 1
            state = tl.sum(tl.where((l_idx == last_idx)[None, None, :], h, 0.0), axis=2)

        if SUMMARY:
            tl.store(CHUNK_LOCAL + chunk_offs, state, mask=dn_mask)
            tl.store(CHUNK_DECAY + chunk_offs, tl.exp(dt_sum[:, None] * A_tile), mask=dn_mask)
        if STORE_LAST:
            tl.store(LAST + (pid_b * dim + d)[:, None] * d_state + n[None, :], state, mask=dn_mask)

    @triton.jit
    def _chunk_carry_kernel(
        H0, CHUNK_LOCAL, CHUNK_DECAY, ENTER, FINAL,
        dim, d_state, n_chunks,
        HAS_H0: tl.constexpr, BACKWARD: tl.constexpr, ACC: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
    ):
        """Walk the chunks: ENTER[k] = h; h = DECAY[k] * h + LOCAL[k]. BACKWARD walks k downwards."""
        pid_b = tl.program_id(0).to(tl.int64)  # offsets past 2**31 at long L
        d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
        n = tl.arange(0, BLOCK_N)
        dn_mask = (d < dim)[:, None] & (n < d_state)[None, :]
        state_offs = (pid_b * dim + d)[:, None] * d_state + n[None, :]
        h = tl.zeros([BLOCK_D, BLOCK_N], dtype=ACC)
        if HAS_H0:
            h = tl.load(H0 + state_offs, mask=dn_mask, other=0.0).to(ACC)
        for j in range(0, n_chunks):
            k = n_chunks - 1 - j if BACKWARD else j
            offs = ((pid_b * dim + d)[:, None] * n_chunks + k) * d_state + n[None, :]
            tl.store(ENTER + offs, h, mask=dn_mask)
            h = tl.load(CHUNK_DECAY + offs, mask=dn_mask, other=0.0) * h + tl.load(
                CHUNK_LOCAL + offs, mask=dn_mask, other=0.0)
        tl.store(FINAL + state_offs, h, mask=dn_mask)

    @triton.jit
    def _scan_bwd_kernel(
        U, DELTA, A, B, C, D, Z, BIAS, DOUT, TILE_STATES,  # inputs
        G_ENTER,  # (batch, dim, n_chunks, N): g = dL/dh entering each chunk from its far end
        DU, DDELTA, DZ, DA_PART, DB_SUM, DC_SUM, DD_PART, DBIAS_PART, DH0,  # outputs
        G_LOCAL, G_DECAY,  # summary outputs
        dim, length, d_state, groups, channels_per_group, blocks_per_group, n_tiles, tiles_per_chunk, n_chunks,
        SUMMARY: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr, HAS_H0: tl.constexpr, REVERSE: tl.constexpr, ACC: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr,
    ):
        pid_b = tl.program_id(0).to(tl.int64)  # offsets past 2**31 at long L
        group, _block, d, d_mask = _program_channels(tl.program_id(1), blocks_per_group, channels_per_group, BLOCK_D)
        chunk = tl.program_id(2)
        n = tl.arange(0, BLOCK_N)
        n_mask = n < d_state
        dn_mask = d_mask[:, None] & n_mask[None, :]
        row = (pid_b * dim + d) * length
        bc_base = (pid_b * groups + group) * d_state * length
        chunk_offs = ((pid_b * dim + d)[:, None] * n_chunks + chunk) * d_state + n[None, :]
        step = -1 if REVERSE else 1

        A_tile = tl.load(A + d[:, None] * d_state + n[None, :], mask=dn_mask, other=0.0).to(ACC)
        bias = tl.zeros([BLOCK_D], dtype=ACC)
        if HAS_BIAS:
            bias = tl.load(BIAS + d, mask=d_mask, other=0.0).to(ACC)
        D_vec = tl.zeros([BLOCK_D], dtype=ACC)
        if HAS_D:
            D_vec = tl.load(D + d, mask=d_mask, other=0.0).to(ACC)
        # g = dL/dh at the step after the current tile (in walking order).
        if SUMMARY:
            g_carry = tl.zeros([BLOCK_D, BLOCK_N], dtype=ACC)
        else:
            g_carry = tl.load(G_ENTER + chunk_offs, mask=dn_mask, other=0.0).to(ACC)
        dA_acc = tl.zeros([BLOCK_D, BLOCK_N], dtype=ACC)
        dD_acc = tl.zeros([BLOCK_D], dtype=ACC)
        dbias_acc = tl.zeros([BLOCK_D], dtype=ACC)
        dt_next_sum = tl.zeros([BLOCK_D], dtype=ACC)
        l_idx = tl.arange(0, BLOCK_L)
        first_tile = chunk * tiles_per_chunk
        tiles_here = tl.minimum(tiles_per_chunk, n_tiles - first_tile)

        for jj in range(0, tiles_here):
            tile = first_tile + tiles_here - 1 - jj
            offs_l = _tile_positions(tile, length, BLOCK_L, REVERSE)
            dt, raw, mask = _load_delta(DELTA, row, offs_l, length, d_mask, bias, HAS_BIAS, SOFTPLUS, ACC)
            nl_mask = n_mask[:, None] & ((offs_l >= 0) & (offs_l < length))[None, :]
            bc_offs = bc_base + n[:, None] * length + offs_l[None, :]
            C_tile = tl.load(C + bc_offs, mask=nl_mask, other=0.0).to(ACC)
            dout = tl.load(DOUT + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
            dy = dout
            if HAS_Z:
                zv = tl.load(Z + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
                sig = tl.sigmoid(zv)
                dy = dout * zv * sig

            # g_t = C_t dy_t + a_{t+step} g_{t+step}: a scan against the walking order whose decay
            # comes from the neighbouring step (0 beyond the sequence, so g enters from G_ENTER).
            dt_next, _raw_next, _mask_next = _load_delta(DELTA, row, offs_l + step, length, d_mask, bias,
                                                         HAS_BIAS, SOFTPLUS, ACC)
            decay_next = tl.exp(dt_next[:, None, :] * A_tile[:, :, None])
            w = dy[:, None, :] * C_tile[None, :, :]
            g_run, g = tl.associative_scan((decay_next, w), axis=2, combine_fn=_combine, reverse=not REVERSE)
            g = g + g_run * g_carry[:, :, None]
            first_idx = BLOCK_L - 1 if REVERSE else 0
            g_carry = tl.sum(tl.where((l_idx == first_idx)[None, None, :], g, 0.0), axis=2)

            if SUMMARY:
                dt_next_sum += tl.sum(dt_next, axis=1)
            else:
                # Recompute this tile's states from the state that entered it.
                u = tl.load(U + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
                B_tile = tl.load(B + bc_offs, mask=nl_mask, other=0.0).to(ACC)
                h_in = tl.load(TILE_STATES + ((pid_b * dim + d)[:, None] * n_tiles + tile) * d_state + n[None, :],
                               mask=dn_mask, other=0.0)
                decay = tl.exp(dt[:, None, :] * A_tile[:, :, None])
                inp = (dt * u)[:, None, :] * B_tile[None, :, :]
                decay_run, h = tl.associative_scan((decay, inp), axis=2, combine_fn=_combine, reverse=REVERSE)
                h = h + decay_run * h_in[:, :, None]  # (BLOCK_D, BLOCK_N, BLOCK_L)
                if HAS_Z:
                    y = tl.sum(h * C_tile[None, :, :], axis=1) + D_vec[:, None] * u
                    dz = dout * y * sig * (1.0 + zv * (1.0 - sig))
                    tl.store(DZ + row[:, None] + offs_l[None, :], dz.to(DZ.dtype.element_ty), mask=mask)

                d_log_decay = g * (h - inp)  # dL/d(dt*A); h - inp = a_t * h_{t-1}
                g_b = tl.sum(g * B_tile[None, :, :], axis=1)  # (BLOCK_D, BLOCK_L)
                ddt = tl.sum(d_log_decay * A_tile[:, :, None], axis=1) + g_b * u
                du = g_b * dt + D_vec[:, None] * dy
                dA_acc += tl.sum(d_log_decay * dt[:, None, :], axis=2)
                dD_acc += tl.sum(dy * u, axis=1)
                if SOFTPLUS:
                    ddt = ddt * tl.sigmoid(raw)
                ddt = tl.where(mask, ddt, 0.0)
                dbias_acc += tl.sum(ddt, axis=1)
                tl.store(DU + row[:, None] + offs_l[None, :], du.to(DU.dtype.element_ty), mask=mask)
                tl.store(DDELTA + row[:, None] + offs_l[None, :], ddt.to(DDELTA.dtype.element_ty), mask=mask)
                # dB, dC sum over the channels of a group: every block of channels adds its share
                # (atomics keep the buffer at (batch, G, N, L) rather than one copy per block).
                tl.atomic_add(DB_SUM + bc_offs, tl.sum(g * (dt * u)[:, None, :], axis=0), mask=nl_mask)
                tl.atomic_add(DC_SUM + bc_offs, tl.sum(h * dy[:, None, :], axis=0), mask=nl_mask)

        if SUMMARY:
            tl.store(G_LOCAL + chunk_offs, g_carry, mask=dn_mask)
            tl.store(G_DECAY + chunk_offs, tl.exp(dt_next_sum[:, None] * A_tile), mask=dn_mask)
        else:
            # Per-chunk partials: (batch, n_chunks, dim, N) and (batch, n_chunks, dim).
            part_dn = ((pid_b * n_chunks + chunk) * dim + d)[:, None] * d_state + n[None, :]
            tl.store(DA_PART + part_dn, dA_acc, mask=dn_mask)
            part_d = (pid_b * n_chunks + chunk) * dim + d
            tl.store(DD_PART + part_d, dD_acc, mask=d_mask)
            tl.store(DBIAS_PART + part_d, dbias_acc, mask=d_mask)
            if HAS_H0:
                if chunk == 0:
                    # g_carry is now dL/dh at the first step t0, and h_t0 = a_t0 * h0 + x_t0.
                    t0 = length - 1 if REVERSE else 0
                    dt0, _raw0, _mask0 = _load_delta(DELTA, row, tl.full([1], t0, tl.int32), length, d_mask, bias,
                                            HAS_BIAS, SOFTPLUS, ACC)  # (BLOCK_D, 1)
                    tl.store(DH0 + (pid_b * dim + d)[:, None] * d_state + n[None, :],
                             g_carry * tl.exp(dt0 * A_tile), mask=dn_mask)


# Tuning knobs (benchmarks/scan_tune.py sweeps them). Enough programs to fill the GPU several times
# over; beyond that, longer chunks waste less work on the summary pass.
TARGET_PROGRAMS = 2048
BLOCK_L = 64
# Values in one (BLOCK_D, BLOCK_N, BLOCK_L) tile: small enough to live in registers.
TILE_VALUES = 2048
NUM_WARPS = 4


def _block_sizes(d_state: int, channels_per_group: int) -> tuple[int, int, int]:
    block_n = triton.next_power_of_2(max(d_state, 1))
    block_l = BLOCK_L
    block_d = max(1, min(triton.next_power_of_2(channels_per_group), TILE_VALUES // (block_l * block_n)))
    return block_d, block_l, block_n


def _chunking(n_tiles: int, programs: int, interpret: bool) -> tuple[int, int]:
    """Tiles per chunk and number of chunks so that programs * chunks reaches TARGET_PROGRAMS."""
    if interpret or n_tiles == 0:
        want = min(n_tiles, 3)  # small shapes in tests still cross chunk boundaries
    else:
        want = max(1, min(n_tiles, -(-TARGET_PROGRAMS // programs)))
    tiles_per_chunk = max(1, -(-n_tiles // want))
    return tiles_per_chunk, max(1, -(-n_tiles // tiles_per_chunk))


class _Plan:
    """Block sizes and grid of one scan call."""

    def __init__(self, u, A, groups):
        batch, self.dim, self.length = u.shape
        self.d_state = A.shape[1]
        self.groups = groups
        self.per_group = self.dim // groups
        self.block_d, self.block_l, self.block_n = _block_sizes(self.d_state, self.per_group)
        self.blocks_per_group = triton.cdiv(self.per_group, self.block_d)
        self.n_tiles = triton.cdiv(self.length, self.block_l)
        programs = batch * groups * self.blocks_per_group
        self.tiles_per_chunk, self.n_chunks = _chunking(self.n_tiles, programs, interpreting())
        self.grid = (batch, groups * self.blocks_per_group, self.n_chunks)
        self.carry_block_d = max(1, min(triton.next_power_of_2(self.dim), 2048 // self.block_n))
        self.carry_grid = (batch, triton.cdiv(self.dim, self.carry_block_d))

    def sizes(self):
        return (self.dim, self.length, self.d_state, self.groups, self.per_group, self.blocks_per_group,
                self.n_tiles, self.tiles_per_chunk, self.n_chunks)

    def blocks(self):
        return dict(BLOCK_D=self.block_d, BLOCK_L=self.block_l, BLOCK_N=self.block_n, num_warps=NUM_WARPS)


class _TritonScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, initial_state, delta_softplus, reverse):
        batch, dim, _ = u.shape
        d_state = A.shape[1]
        work = state_dtype(u, delta, A, B, C, D, z, delta_bias, initial_state)
        acc = tl.float64 if work == torch.float64 else tl.float32
        Bg, Cg = grouped(B).contiguous(), grouped(C).contiguous()
        u, delta, A = u.contiguous(), delta.contiguous(), A.contiguous()
        z = z.contiguous() if z is not None else None
        h0 = initial_state.contiguous() if initial_state is not None else None
        plan = _Plan(u, A, Bg.shape[1])
        f = dict(device=u.device, dtype=work)

        out = torch.empty_like(u)
        last = torch.empty(batch, dim, d_state, **f)
        keep = any(ctx.needs_input_grad)  # the backward recomputes tiles from their entering states
        tile_states = torch.empty(batch, dim, plan.n_tiles if keep else 0, d_state, **f)
        dummy = u
        flags = dict(HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
                     SOFTPLUS=delta_softplus, REVERSE=reverse, ACC=acc, **plan.blocks())
        args = (u, delta, A, Bg, Cg, D if D is not None else dummy, z if z is not None else dummy,
                delta_bias if delta_bias is not None else dummy)
        if plan.n_chunks == 1:
            enter = (h0.view(batch, dim, 1, d_state).to(work) if h0 is not None
                     else torch.zeros(batch, dim, 1, d_state, **f))
        else:
            local = torch.empty(batch, dim, plan.n_chunks, d_state, **f)
            decay = torch.empty_like(local)
            enter = torch.empty_like(local)
            _scan_fwd_kernel[plan.grid](
                *args, dummy, dummy, dummy, local, decay, dummy, *plan.sizes(),
                SUMMARY=True, STORE_STATES=False, STORE_LAST=False, **flags,
            )
            _chunk_carry_kernel[plan.carry_grid](
                h0 if h0 is not None else dummy, local, decay, enter, last, dim, d_state, plan.n_chunks,
                HAS_H0=h0 is not None, BACKWARD=False, ACC=acc, BLOCK_D=plan.carry_block_d, BLOCK_N=plan.block_n,
            )
        _scan_fwd_kernel[plan.grid](
            *args, enter, out, tile_states, dummy, dummy, last, *plan.sizes(),
            SUMMARY=False, STORE_STATES=keep, STORE_LAST=plan.n_chunks == 1, **flags,
        )
        ctx.save_for_backward(u, delta, A, Bg, Cg, D, z, delta_bias, initial_state, tile_states)
        ctx.settings = (delta_softplus, reverse, acc, work, B.dim() == 3, C.dim() == 3, plan)
        ctx.set_materialize_grads(False)
        return out, last

    @staticmethod
    def backward(ctx, dout, dlast):
        u, delta, A, Bg, Cg, D, z, delta_bias, initial_state, tile_states = ctx.saved_tensors
        delta_softplus, reverse, acc, work, b_shared, c_shared, plan = ctx.settings
        batch, dim, length = u.shape
        d_state = A.shape[1]
        groups = Bg.shape[1]
        dout = torch.zeros_like(u) if dout is None else dout.contiguous()
        f = dict(device=u.device, dtype=work)
        du, ddelta = torch.empty_like(u), torch.empty_like(delta)
        dz = torch.empty_like(z) if z is not None else None
        n_chunks = plan.n_chunks
        dA_part = torch.empty(batch, n_chunks, dim, d_state, **f)
        dB = torch.zeros(batch, groups, d_state, length, **f)
        dC = torch.zeros_like(dB)
        dD_part = torch.empty(batch, n_chunks, dim, **f)
        dbias_part = torch.empty(batch, n_chunks, dim, **f)
        dh0 = torch.empty(batch, dim, d_state, **f) if initial_state is not None else None
        dummy = u
        flags = dict(HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
                     SOFTPLUS=delta_softplus, HAS_H0=initial_state is not None, REVERSE=reverse, ACC=acc,
                     **plan.blocks())
        inputs = (u, delta, A, Bg, Cg, D if D is not None else dummy, z if z is not None else dummy,
                  delta_bias if delta_bias is not None else dummy, dout, tile_states)
        outputs = (du, ddelta, dz if dz is not None else dummy, dA_part, dB, dC, dD_part, dbias_part,
                   dh0 if dh0 is not None else dummy)
        dlast = dlast.contiguous() if dlast is not None else None
        if n_chunks == 1:
            g_enter = (dlast.view(batch, dim, 1, d_state).to(work) if dlast is not None
                       else torch.zeros(batch, dim, 1, d_state, **f))
        else:
            g_local = torch.empty(batch, dim, n_chunks, d_state, **f)
            g_decay = torch.empty_like(g_local)
            g_enter = torch.empty_like(g_local)
            _scan_bwd_kernel[plan.grid](
                *inputs, dummy, *[dummy] * len(outputs), g_local, g_decay, *plan.sizes(), SUMMARY=True, **flags,
            )
            _chunk_carry_kernel[plan.carry_grid](
                dlast if dlast is not None else dummy, g_local, g_decay, g_enter, torch.empty_like(dA_part[:, 0]),
                dim, d_state, n_chunks, HAS_H0=dlast is not None, BACKWARD=True, ACC=acc,
                BLOCK_D=plan.carry_block_d, BLOCK_N=plan.block_n,
            )
        _scan_bwd_kernel[plan.grid](
            *inputs, g_enter, *outputs, dummy, dummy, *plan.sizes(), SUMMARY=False, **flags,
        )
        return (
            du,
            ddelta,
            dA_part.sum((0, 1)).to(A.dtype),
            (dB.squeeze(1) if b_shared else dB).to(Bg.dtype),
            (dC.squeeze(1) if c_shared else dC).to(Cg.dtype),
            dD_part.sum((0, 1)).to(D.dtype) if D is not None else None,
            dz,
            dbias_part.sum((0, 1)).to(delta_bias.dtype) if delta_bias is not None else None,
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
