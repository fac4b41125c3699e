"""Backward kernel of the Triton scan, laid out like the forward (kernels/scan_triton_fwd.py).

g_t = dL/dh_t runs against the walking order: g_t = C_t dy_t + a_{t+1} g_{t+1}, so its scan takes
its decay from the neighbouring step (delta loaded one step further on). Each tile's states h are
recomputed from the state that entered the tile (saved by the forward), one state dimension at a time.
g entering each chunk from its far end comes from kernels/scan_triton_summary.py.

dB and dC sum over the channels of a group, which several programs (blocks of channels) share: by default
each adds its share with an atomic add, in whatever order the programs run, so the last bits differ from
run to run; under DETERMINISTIC each block stores its share in its own slice of a partial buffer, which the
launcher sums in torch (scan_triton.py). Everything else a program writes is its own.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .scan_triton_common import (
    at_position,
    bc_rows,
    channel_params,
    combine,
    load_delta,
    program_channels,
    tile_positions,
    working_dtype,
)


@triton.jit
def _state_grads(n, A, A2, B, C, DB_SUM, DC_SUM, TILE_STATES, state_offs, bc_base, bc_out, d, d_mask, d_state,
                 length, offs_l, mask, n_idx, l_idx, dt, dt_next, dtu, dy, g_in, g_out, y, gB_sum, ddt_decay,
                 dA_acc, HAS_Z: tl.constexpr, REVERSE: tl.constexpr, DETERMINISTIC: tl.constexpr, ACC: tl.constexpr,
                 BLOCK_L: tl.constexpr):
    """Everything state n contributes in one tile; returns the updated accumulators.

    Only sums over states leave: gB_sum = sum_n g B_n (du and the input's share of ddelta are that times
    delta and u) and ddt_decay = sum_n A_n dL/d(delta A_n), so the loop keeps few tiles alive. B and C are
    read at bc_base; this block's shares of dB and dC go to bc_out (see the module's docstring).
    """
    n_ok = d_mask & ((d * 0 + n) < d_state)  # (BLOCK_D,): a 0-d mask breaks the interpreter
    a = tl.load(A + d * d_state + n, mask=n_ok, other=0.0).to(ACC)
    a2 = tl.load(A2 + d * d_state + n, mask=n_ok, other=0.0).to(ACC)
    B_n, C_n = bc_rows(B, C, bc_base, n, length, offs_l, mask & n_ok[:, None], ACC)
    h_in = tl.load(TILE_STATES + state_offs + n, mask=n_ok, other=0.0).to(ACC)
    # This tile's states h for state n, from the state that entered it, folded into the first input as in
    # the forward (so the scans' running decays go unused), and likewise g from the carry at the far end.
    first_idx = BLOCK_L - 1 if REVERSE else 0  # the tile's first and last steps in walking order
    last_idx = 0 if REVERSE else BLOCK_L - 1
    inp = dtu * B_n
    decay = tl.exp2(a2[:, None] * dt)
    entering = tl.where((l_idx == first_idx)[None, :], decay * h_in[:, None], -0.0)
    _run, h = tl.associative_scan((decay, inp + entering), axis=1, combine_fn=combine, reverse=REVERSE)
    decay_next = tl.exp2(a2[:, None] * dt_next)
    g_in_n = tl.load(g_in + n, mask=n_ok, other=0.0)
    from_carry = tl.where((l_idx == last_idx)[None, :], decay_next * g_in_n[:, None], -0.0)
    _g_run, g = tl.associative_scan((decay_next, dy * C_n + from_carry), axis=1, combine_fn=combine,
                                    reverse=not REVERSE)
    tl.store(g_out + n, at_position(g, l_idx, first_idx), mask=n_ok)
    if HAS_Z:
        y += h * C_n
    d_log_decay = g * (h - inp)  # dL/d(delta*A); h - inp = a_t * h_{t-1}
    gB_sum += g * B_n
    ddt_decay += d_log_decay * a[:, None]
    dA_acc += tl.where(n_idx[None, :] == n, tl.sum(d_log_decay * dt, axis=1)[:, None], 0.0)
    # dB, dC sum over the channels of a group: every block of channels adds its share.
    l_ok = (offs_l >= 0) & (offs_l < length) & ((offs_l * 0 + n) < d_state)
    if DETERMINISTIC:  # this block's own slice: plain stores, summed in torch in a fixed order
        tl.store(DB_SUM + bc_out + n * length + offs_l, tl.sum(g * dtu, axis=0), mask=l_ok)
        tl.store(DC_SUM + bc_out + n * length + offs_l, tl.sum(h * dy, axis=0), mask=l_ok)
    else:
        # Atomics keep the buffer at (batch, G, N, L) rather than one copy per block, at the price of an
        # order that varies between runs. Relaxed: the adds need no ordering against other memory traffic,
        # and the default (acq_rel) fences each one: relaxed took S2's forward+backward from 41.4 to 31.4 ms
        # on the H100.
        tl.atomic_add(DB_SUM + bc_out + n * length + offs_l, tl.sum(g * dtu, axis=0), mask=l_ok, sem="relaxed")
        tl.atomic_add(DC_SUM + bc_out + n * length + offs_l, tl.sum(h * dy, axis=0), mask=l_ok, sem="relaxed")
    return y, gB_sum, ddt_decay, dA_acc


# Counts that change with L and the batch are not specialized on (==1, divisible by 16): a new length reuses
# the compiled kernel (offsets get their alignment from BLOCK_L, d_state and length).
@triton.heuristics({"ACC": working_dtype("A2")})
@triton.jit(do_not_specialize=["blocks_per_group", "n_tiles", "tiles_per_chunk", "n_chunks"])
def scan_bwd_kernel(
    U, U_R, DELTA, DELTA_R, A, A2, B, B_R, C, C_R, D, Z, BIAS, DOUT, TILE_STATES,  # inputs; A2 = A * log2(e)
    G_CARRY,  # (2, batch, dim, n_chunks, N): [0] g = dL/dh entering each chunk from its far end; [1] scratch
    DU, DDELTA, DZ, DA_PART, DB_SUM, DC_SUM, DD_PART, DBIAS_PART, DH0,  # outputs
    dim, length, d_state, groups, bc_batch, channels_per_group, blocks_per_group, n_tiles, tiles_per_chunk, n_chunks,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_H0: tl.constexpr, REVERSE: tl.constexpr, STATES_PER_ITER: tl.constexpr, BIDIRECTIONAL: tl.constexpr,
    DETERMINISTIC: tl.constexpr, ACC: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """BIDIRECTIONAL: the second half of the batch programs differentiates the scan of U_R, DELTA_R, B_R, C_R
    the other way (see scan_triton_fwd.scan_fwd_kernel), into the second half of every output.

    DB_SUM, DC_SUM: (batch, G, N, L), zeroed, that the blocks of a group add into; under DETERMINISTIC
    (batch, G, blocks_per_group, N, L), a slice per block, every element written."""
    pid = tl.program_id(0).to(tl.int64)  # offsets past 2**31 at long L
    rows = tl.num_programs(0).to(tl.int64) // 2  # BIDIRECTIONAL: the batch of each direction
    if BIDIRECTIONAL and pid >= rows:  # the second half scans the other way
        seq = rows * dim * length
        part = rows * n_chunks * dim
        bc = rows * groups * (blocks_per_group if DETERMINISTIC else 1) * d_state * length
        _bwd_program(pid - rows, U_R, DELTA_R, A + dim * d_state, A2 + dim * d_state, B_R, C_R, D + dim, Z,
                     BIAS + dim, DOUT + seq, TILE_STATES + rows * dim * n_tiles * d_state,
                     G_CARRY + rows * dim * n_chunks * d_state, DU + seq, DDELTA + seq, DZ + seq,
                     DA_PART + part * d_state, DB_SUM + bc, DC_SUM + bc, DD_PART + part, DBIAS_PART + part, DH0,
                     dim, length, d_state, groups, bc_batch, channels_per_group, blocks_per_group, n_tiles,
                     tiles_per_chunk, n_chunks, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, HAS_H0, not REVERSE,
                     STATES_PER_ITER, DETERMINISTIC, ACC, BLOCK_D, BLOCK_L, BLOCK_N)
    else:
        _bwd_program(pid, U, DELTA, A, A2, B, C, D, Z, BIAS, DOUT, TILE_STATES, G_CARRY, DU, DDELTA, DZ,
                     DA_PART, DB_SUM, DC_SUM, DD_PART, DBIAS_PART, DH0,
                     dim, length, d_state, groups, bc_batch, channels_per_group, blocks_per_group, n_tiles,
                     tiles_per_chunk, n_chunks, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, HAS_H0, REVERSE, STATES_PER_ITER,
                     DETERMINISTIC, ACC, BLOCK_D, BLOCK_L, BLOCK_N)


@triton.jit
def _bwd_program(
    pid_b, U, DELTA, A, A2, B, C, D, Z, BIAS, DOUT, TILE_STATES, G_CARRY,
    DU, DDELTA, DZ, DA_PART, DB_SUM, DC_SUM, DD_PART, DBIAS_PART, DH0,
    dim, length, d_state, groups, bc_batch, channels_per_group, blocks_per_group, n_tiles, tiles_per_chunk, n_chunks,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_H0: tl.constexpr, REVERSE: tl.constexpr, STATES_PER_ITER: tl.constexpr, DETERMINISTIC: tl.constexpr,
    ACC: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """One program of the backward in one direction; pid_b is its batch row."""
    group, d, d_mask = program_channels(tl.program_id(1), blocks_per_group, channels_per_group, BLOCK_D)
    chunk = tl.program_id(2)
    n_idx = tl.arange(0, BLOCK_N)
    l_idx = tl.arange(0, BLOCK_L)
    dn_mask = d_mask[:, None] & (n_idx < d_state)[None, :]
    row = (pid_b * dim + d) * length
    bc_base = pid_b * bc_batch + group * d_state * length  # B and C: rows of a batch row lie together
    # Where this block's dB and dC go (contiguous): the group's rows, or under DETERMINISTIC the block's own slice
    # of them (program_id(1) = group * blocks_per_group + block).
    if DETERMINISTIC:
        bc_out = (pid_b * groups * blocks_per_group + tl.program_id(1)) * d_state * length
    else:
        bc_out = (pid_b * groups + group) * d_state * length
    step = -1 if REVERSE else 1
    bias, D_vec = channel_params(BIAS, D, d, d_mask, HAS_BIAS, HAS_D, ACC, BLOCK_D)

    # g = dL/dh at the step after the current tile (in walking order) lives in G_CARRY rather than in
    # registers (a (BLOCK_D, BLOCK_N) tile would cost registers and a column pick per state): tile jj reads
    # half jj % 2 and writes the other, so no thread reads what another has just written in the same tile.
    carry_offs = ((pid_b * dim + d) * n_chunks + chunk) * d_state  # (BLOCK_D,)
    carry_half = tl.num_programs(0).to(tl.int64) * dim * n_chunks * d_state
    dA_acc = tl.zeros([BLOCK_D, BLOCK_N], dtype=ACC)
    dD_acc = tl.zeros([BLOCK_D], dtype=ACC)
    dbias_acc = tl.zeros([BLOCK_D], dtype=ACC)
    first_tile = chunk * tiles_per_chunk
    tiles_here = tl.minimum(tiles_per_chunk, n_tiles - first_tile)

    for jj in range(0, tiles_here):
        tile = first_tile + tiles_here - 1 - jj
        offs_l = tile_positions(tile, length, BLOCK_L, REVERSE)
        dt, _raw, mask = load_delta(DELTA, row, offs_l, length, d_mask, bias, HAS_BIAS, SOFTPLUS, ACC)
        # delta of the next step in walking order: 0 beyond the sequence, so g enters from G_ENTER.
        dt_next, _raw_next, _mask_next = load_delta(DELTA, row, offs_l + step, length, d_mask, bias,
                                                    HAS_BIAS, SOFTPLUS, ACC)
        dy = tl.load(DOUT + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
        if HAS_Z:
            zv = tl.load(Z + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
            dy = dy * zv * tl.sigmoid(zv)
        dtu = dt * tl.load(U + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
        gB_sum = tl.zeros([BLOCK_D, BLOCK_L], dtype=ACC)
        ddt_decay = tl.zeros([BLOCK_D, BLOCK_L], dtype=ACC)
        y = tl.zeros([BLOCK_D, BLOCK_L], dtype=ACC)
        g_in = G_CARRY + (jj % 2) * carry_half + carry_offs
        g_out = G_CARRY + ((jj + 1) % 2) * carry_half + carry_offs
        state_offs = ((pid_b * n_tiles + tile) * dim + d) * d_state  # (BLOCK_D,); TILE_STATES is tile-major
        # STATES_PER_ITER states per trip (masked past d_state): independent work for the scheduler to
        # overlap, at the cost of registers.
        for n0 in range(0, d_state, STATES_PER_ITER):
            for k in tl.static_range(STATES_PER_ITER):
                y, gB_sum, ddt_decay, dA_acc = _state_grads(
                    n0 + k, A, A2, B, C, DB_SUM, DC_SUM, TILE_STATES, state_offs, bc_base, bc_out, d, d_mask,
                    d_state, length, offs_l, mask, n_idx, l_idx, dt, dt_next, dtu, dy, g_in, g_out, y, gB_sum,
                    ddt_decay, dA_acc, HAS_Z, REVERSE, DETERMINISTIC, ACC, BLOCK_L)
        tl.debug_barrier()  # this tile's g_out is the next one's g_in, read by other threads too
        # Loaded again rather than kept through the state loop: registers are what limits this kernel.
        u = tl.load(U + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
        dout = tl.load(DOUT + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
        dy = dout
        if HAS_Z:
            zv = tl.load(Z + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
            sig = tl.sigmoid(zv)
            dy = dout * zv * sig
            y += D_vec[:, None] * u
            dz = dout * y * sig * (1.0 + zv * (1.0 - sig))
            tl.store(DZ + row[:, None] + offs_l[None, :], dz.to(DZ.dtype.element_ty), mask=mask)
        dD_acc += tl.sum(dy * u, axis=1)
        ddt = ddt_decay + gB_sum * u
        if SOFTPLUS:
            _dt, raw, _m = load_delta(DELTA, row, offs_l, length, d_mask, bias, HAS_BIAS, SOFTPLUS, ACC)
            ddt = ddt * tl.sigmoid(raw)
        ddt = tl.where(mask, ddt, 0.0)
        dbias_acc += tl.sum(ddt, axis=1)
        du = D_vec[:, None] * dy + gB_sum * dt
        tl.store(DU + row[:, None] + offs_l[None, :], du.to(DU.dtype.element_ty), mask=mask)
        tl.store(DDELTA + row[:, None] + offs_l[None, :], ddt.to(DDELTA.dtype.element_ty), mask=mask)

    # Per-chunk partials: (batch, n_chunks, dim, N) and (batch, n_chunks, dim).
    part_dn = ((pid_b * n_chunks + chunk) * dim + d)[:, None] * d_state + n_idx[None, :]
    tl.store(DA_PART + part_dn, dA_acc, mask=dn_mask)
    part_d = (pid_b * n_chunks + chunk) * dim + d
    tl.store(DD_PART + part_d, dD_acc, mask=d_mask)
    tl.store(DBIAS_PART + part_d, dbias_acc, mask=d_mask)
    if HAS_H0:
        if chunk == 0:
            # The last half written holds dL/dh at the first step t0, and h_t0 = a_t0 * h0 + x_t0.
            t0 = length - 1 if REVERSE else 0
            dt0, _raw0, _mask0 = load_delta(DELTA, row, tl.full([1], t0, tl.int32), length, d_mask, bias,
                                            HAS_BIAS, SOFTPLUS, ACC)  # (BLOCK_D, 1)
            A2_tile = tl.load(A2 + d[:, None] * d_state + n_idx[None, :], mask=dn_mask, other=0.0).to(ACC)
            g_first = tl.load(G_CARRY + (tiles_here % 2) * carry_half + carry_offs[:, None] + n_idx[None, :],
                              mask=dn_mask, other=0.0)
            tl.store(DH0 + (pid_b * dim + d)[:, None] * d_state + n_idx[None, :],
                     g_first * tl.exp2(dt0 * A2_tile), mask=dn_mask)
