"""First pass of a multi-chunk Triton scan: each chunk's end state from a zero start (forward) and
g = dL/dh at each chunk's first step from a zero start at its far end (backward).

Neither needs a scan. The forward end state is a weighted sum,
    h_end[d, n] = sum_l exp(A[d, n] * (delta summed over the chunk's steps after l)) * delta_l u_l B[n, l],
and g at the first step likewise with the decays of the steps before l. The sum is kept as a
(BLOCK_D, BLOCK_N, BLOCK_L) accumulator across the chunk's tiles and reduced over L once at the end,
so the loop body is elementwise: one exp2, two multiplies and an add per (channel, state, step).
"""

from __future__ import annotations

import triton
import triton.language as tl

from .scan_triton_common import (
    channel_params,
    delta_after,
    load_delta,
    program_channels,
    tile_positions,
    working_dtype,
)


@triton.jit
def _chunk_setup(pid_b, A2, BIAS, chunk_len, length, d_state, dim, bc_batch, channels_per_group, blocks_per_group,
                 n_chunks, HAS_BIAS: tl.constexpr, ACC: tl.constexpr, BLOCK_D: tl.constexpr,
                 BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr):
    """What both summary kernels need of their program: masks, A2 (BLOCK_D, BLOCK_N), delta_bias,
    the offsets of the chunk's outputs, of each channel's sequence and of the B/C rows, and the
    program's tiles of BLOCK_L steps."""
    group, d, d_mask = program_channels(tl.program_id(1), blocks_per_group, channels_per_group, BLOCK_D)
    chunk = tl.program_id(2)
    n_idx = tl.arange(0, BLOCK_N)
    dn_mask = d_mask[:, None] & (n_idx < d_state)[None, :]
    A2_tile = tl.load(A2 + d[:, None] * d_state + n_idx[None, :], mask=dn_mask, other=0.0).to(ACC)
    bias, _no_D = channel_params(BIAS, BIAS, d, d_mask, HAS_BIAS, False, ACC, BLOCK_D)
    chunk_offs = ((pid_b * dim + d)[:, None] * n_chunks + chunk) * d_state + n_idx[None, :]  # (BLOCK_D, BLOCK_N)
    row = (pid_b * dim + d) * length
    bc_offs = pid_b * bc_batch + group * d_state * length + n_idx[:, None] * length  # (BLOCK_N, 1)
    tiles = tl.cdiv(chunk_len, BLOCK_L)
    first_tile = chunk * tiles
    tiles_here = tl.minimum(tiles, tl.cdiv(length, BLOCK_L) - first_tile)
    return d_mask, dn_mask, A2_tile, bias, chunk_offs, row, bc_offs, first_tile, tiles_here


@triton.jit
def _summary_inputs(U, DELTA, B, row, bc_offs, n_ok, tile, length, d_mask, BLOCK_L: tl.constexpr,
                    REVERSE: tl.constexpr):
    """u, delta (BLOCK_D, BLOCK_L) and B (BLOCK_N, BLOCK_L) of a tile as stored, and the tile's mask."""
    offs_l = tile_positions(tile, length, BLOCK_L, REVERSE)
    l_ok = ((offs_l >= 0) & (offs_l < length))[None, :]
    mask = d_mask[:, None] & l_ok
    u = tl.load(U + row[:, None] + offs_l[None, :], mask=mask, other=0.0)
    delta = tl.load(DELTA + row[:, None] + offs_l[None, :], mask=mask, other=0.0)
    B_tile = tl.load(B + bc_offs + offs_l[None, :], mask=n_ok & l_ok, other=0.0)
    return u, delta, B_tile, mask


# Counts that change with L and the batch are not specialized on (==1, divisible by 16): a new length reuses
# the compiled kernel (offsets get their alignment from BLOCK_L, d_state and length).
@triton.heuristics({"ACC": working_dtype("A2")})
@triton.jit(do_not_specialize=["blocks_per_group", "n_chunks"])
def fwd_summary_kernel(
    U, U_R, DELTA, DELTA_R, A2, B, B_R, BIAS, CHUNK_LOCAL, CHUNK_DECAY,
    dim, length, d_state, groups, bc_batch, channels_per_group, blocks_per_group, chunk_len, n_chunks,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, REVERSE: tl.constexpr, BIDIRECTIONAL: tl.constexpr,
    ACC: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """BIDIRECTIONAL: the second half of the batch programs summarises U_R, DELTA_R, B_R the other way
    (see scan_triton_fwd.scan_fwd_kernel)."""
    pid = tl.program_id(0).to(tl.int64)  # offsets past 2**31 at long L
    rows = tl.num_programs(0).to(tl.int64) // 2  # BIDIRECTIONAL: the batch of each direction
    if BIDIRECTIONAL and pid >= rows:  # the second half scans the other way
        _fwd_summary_program(pid - rows, U_R, DELTA_R, A2 + dim * d_state, B_R, BIAS + dim,
                             CHUNK_LOCAL + rows * dim * n_chunks * d_state,
                             CHUNK_DECAY + rows * dim * n_chunks * d_state, dim, length, d_state, groups,
                             bc_batch, channels_per_group, blocks_per_group, chunk_len, n_chunks, HAS_BIAS, SOFTPLUS,
                             not REVERSE, ACC, BLOCK_D, BLOCK_L, BLOCK_N)
    else:
        _fwd_summary_program(pid, U, DELTA, A2, B, BIAS, CHUNK_LOCAL, CHUNK_DECAY, dim, length, d_state, groups,
                             bc_batch, channels_per_group, blocks_per_group, chunk_len, n_chunks, HAS_BIAS, SOFTPLUS,
                             REVERSE, ACC, BLOCK_D, BLOCK_L, BLOCK_N)


@triton.jit
def _fwd_summary_program(
    pid_b, U, DELTA, A2, B, BIAS, CHUNK_LOCAL, CHUNK_DECAY,
    dim, length, d_state, groups, bc_batch, channels_per_group, blocks_per_group, chunk_len, n_chunks,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, REVERSE: tl.constexpr, ACC: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr,
):
    d_mask, dn_mask, A2_tile, bias, chunk_offs, row, bc_offs, first_tile, tiles_here = _chunk_setup(
        pid_b, A2, BIAS, chunk_len, length, d_state, dim, bc_batch, channels_per_group, blocks_per_group,
        n_chunks, HAS_BIAS, ACC, BLOCK_D, BLOCK_L, BLOCK_N)
    n_ok = (tl.arange(0, BLOCK_N) < d_state)[:, None]
    acc = tl.zeros([BLOCK_D, BLOCK_N, BLOCK_L], dtype=ACC)
    later = tl.zeros([BLOCK_D], dtype=ACC)  # delta summed over the tiles already seen
    # Walk the chunk from its far end, so the time left after a step is `later` plus the rest of its tile.
    # The next tile's u, delta and B are loaded before this one is worked (software pipelining by hand; the
    # last trip loads a tile of the neighbouring chunk, unused, rather than test for it).
    u_raw, delta_raw, B_raw, mask = _summary_inputs(U, DELTA, B, row, bc_offs, n_ok, first_tile + tiles_here - 1,
                                                    length, d_mask, BLOCK_L, REVERSE)
    for jj in range(0, tiles_here):
        u, B_tile = u_raw.to(ACC), B_raw.to(ACC)  # (BLOCK_D, BLOCK_L), (BLOCK_N, BLOCK_L)
        dt, _raw = delta_after(delta_raw.to(ACC), bias, mask, HAS_BIAS, SOFTPLUS)
        u_raw, delta_raw, B_raw, mask = _summary_inputs(U, DELTA, B, row, bc_offs, n_ok,
                                                        first_tile + tiles_here - 2 - jj, length, d_mask,
                                                        BLOCK_L, REVERSE)
        tile_dt = tl.sum(dt, axis=1)  # (BLOCK_D,)
        prefix = tl.cumsum(dt, axis=1)
        if REVERSE:
            left = prefix - dt  # the walk runs towards lower positions
        else:
            left = tile_dt[:, None] - prefix
        left += later[:, None]  # (BLOCK_D, BLOCK_L)
        acc += tl.exp2(A2_tile[:, :, None] * left[:, None, :]) * ((dt * u)[:, None, :] * B_tile[None, :, :])
        later += tile_dt
    tl.store(CHUNK_LOCAL + chunk_offs, tl.sum(acc, axis=2), mask=dn_mask)
    tl.store(CHUNK_DECAY + chunk_offs, tl.exp2(A2_tile * later[:, None]), mask=dn_mask)


# Counts that change with L and the batch are not specialized on (==1, divisible by 16): a new length reuses
# the compiled kernel (offsets get their alignment from BLOCK_L, d_state and length).
@triton.heuristics({"ACC": working_dtype("A2")})
@triton.jit(do_not_specialize=["blocks_per_group", "n_chunks"])
def bwd_summary_kernel(
    DELTA, DELTA_R, A2, C, C_R, Z, BIAS, DOUT, G_LOCAL, G_DECAY,
    dim, length, d_state, groups, bc_batch, channels_per_group, blocks_per_group, chunk_len, n_chunks,
    HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, REVERSE: tl.constexpr,
    BIDIRECTIONAL: tl.constexpr, ACC: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """BIDIRECTIONAL: the second half of the batch programs takes DELTA_R, C_R, the second rows of A2 and
    BIAS, the same z and the second half of DOUT, the other way (see scan_triton_fwd.scan_fwd_kernel)."""
    pid = tl.program_id(0).to(tl.int64)  # offsets past 2**31 at long L
    rows = tl.num_programs(0).to(tl.int64) // 2  # BIDIRECTIONAL: the batch of each direction
    if BIDIRECTIONAL and pid >= rows:  # the second half scans the other way
        _bwd_summary_program(pid - rows, DELTA_R, A2 + dim * d_state, C_R, Z, BIAS + dim,
                             DOUT + rows * dim * length, G_LOCAL + rows * dim * n_chunks * d_state,
                             G_DECAY + rows * dim * n_chunks * d_state, dim, length, d_state, groups,
                             bc_batch, channels_per_group, blocks_per_group, chunk_len, n_chunks, HAS_Z, HAS_BIAS,
                             SOFTPLUS, not REVERSE, ACC, BLOCK_D, BLOCK_L, BLOCK_N)
    else:
        _bwd_summary_program(pid, DELTA, A2, C, Z, BIAS, DOUT, G_LOCAL, G_DECAY, dim, length, d_state, groups,
                             bc_batch, channels_per_group, blocks_per_group, chunk_len, n_chunks, HAS_Z, HAS_BIAS,
                             SOFTPLUS, REVERSE, ACC, BLOCK_D, BLOCK_L, BLOCK_N)


@triton.jit
def _bwd_summary_program(
    pid_b, DELTA, A2, C, Z, BIAS, DOUT, G_LOCAL, G_DECAY,
    dim, length, d_state, groups, bc_batch, channels_per_group, blocks_per_group, chunk_len, n_chunks,
    HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, REVERSE: tl.constexpr, ACC: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr,
):
    d_mask, dn_mask, A2_tile, bias, chunk_offs, row, bc_offs, first_tile, tiles_here = _chunk_setup(
        pid_b, A2, BIAS, chunk_len, length, d_state, dim, bc_batch, channels_per_group, blocks_per_group,
        n_chunks, HAS_BIAS, ACC, BLOCK_D, BLOCK_L, BLOCK_N)
    n_ok = (tl.arange(0, BLOCK_N) < d_state)[:, None]
    step = -1 if REVERSE else 1
    acc = tl.zeros([BLOCK_D, BLOCK_N, BLOCK_L], dtype=ACC)
    earlier = tl.zeros([BLOCK_D], dtype=ACC)  # delta of the next step, summed over the tiles already seen
    # g_t = C_t dy_t + a_{t+1} g_{t+1}: the decay from the chunk's first step to l uses the deltas of
    # the steps after each earlier one, loaded one step further on.
    for j in range(0, tiles_here):
        offs_l = tile_positions(first_tile + j, length, BLOCK_L, REVERSE)
        dt_next, _raw, _m = load_delta(DELTA, row, offs_l + step, length, d_mask, bias, HAS_BIAS, SOFTPLUS, ACC)
        mask = d_mask[:, None] & ((offs_l >= 0) & (offs_l < length))[None, :]
        dy = tl.load(DOUT + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
        if HAS_Z:
            zv = tl.load(Z + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
            dy = dy * zv * tl.sigmoid(zv)
        l_ok = ((offs_l >= 0) & (offs_l < length))[None, :]
        C_tile = tl.load(C + bc_offs + offs_l[None, :], mask=n_ok & l_ok, other=0.0).to(ACC)  # (BLOCK_N, BLOCK_L)
        tile_next = tl.sum(dt_next, axis=1)
        prefix = tl.cumsum(dt_next, axis=1)
        if REVERSE:
            before = tile_next[:, None] - prefix
        else:
            before = prefix - dt_next
        before += earlier[:, None]
        acc += tl.exp2(A2_tile[:, :, None] * before[:, None, :]) * (dy[:, None, :] * C_tile[None, :, :])
        earlier += tile_next
    tl.store(G_LOCAL + chunk_offs, tl.sum(acc, axis=2), mask=dn_mask)
    tl.store(G_DECAY + chunk_offs, tl.exp2(A2_tile * earlier[:, None]), mask=dn_mask)
