"""Forward kernel of the Triton scan: one program per (batch, block of channels, chunk of the sequence).

A program walks the BLOCK_L-step tiles of its chunk. Inside a tile the (BLOCK_D, BLOCK_L) slab of
u and delta stays in registers while a loop over the N state dimensions runs one associative scan per
state on (decay, input) pairs, so y accumulates in registers and B/C rows are loaded once per block of
channels. exp is taken as exp2 of delta * (A * log2 e), A pre-scaled on the host.

SUMMARY=True is the cheap first pass of a multi-chunk scan: a chunk's end state from a zero start is a
weighted sum, sum_l exp(A * (time left after l)) * delta_l u_l B_l, with the time left from one cumsum
of delta per tile: no scan, one exp per (channel, state, step).
"""

from __future__ import annotations

import triton
import triton.language as tl

from .scan_triton_common import (
    at_position,
    channel_params,
    column,
    combine,
    load_delta,
    program_channels,
    tile_positions,
    with_column,
)


@triton.jit
def scan_fwd_kernel(
    U, DELTA, A2, B, C, D, Z, BIAS,  # inputs; A2 = A * log2(e), (dim, N) in the working dtype
    ENTER,  # (batch, dim, n_chunks, N): state entering each chunk (read in the full pass)
    OUT, TILE_STATES, CHUNK_LOCAL, CHUNK_DECAY, LAST,  # outputs
    dim, length, d_state, groups, channels_per_group, blocks_per_group, n_tiles, tiles_per_chunk, n_chunks,
    SUMMARY: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr, STORE_STATES: tl.constexpr, STORE_LAST: tl.constexpr, REVERSE: tl.constexpr,
    ACC: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)  # offsets past 2**31 at long L
    group, d, d_mask = program_channels(tl.program_id(1), blocks_per_group, channels_per_group, BLOCK_D)
    chunk = tl.program_id(2)
    n_idx = tl.arange(0, BLOCK_N)
    l_idx = tl.arange(0, BLOCK_L)
    dn_mask = d_mask[:, None] & (n_idx < d_state)[None, :]
    row = (pid_b * dim + d) * length  # (BLOCK_D,) offset of each channel's sequence
    bc_base = (pid_b * groups + group) * d_state * length
    chunk_offs = ((pid_b * dim + d)[:, None] * n_chunks + chunk) * d_state + n_idx[None, :]  # (BLOCK_D, BLOCK_N)
    bias, D_vec = channel_params(BIAS, D, d, d_mask, HAS_BIAS, HAS_D, ACC, BLOCK_D)

    if SUMMARY:
        state = tl.zeros([BLOCK_D, BLOCK_N], dtype=ACC)
    else:
        state = tl.load(ENTER + chunk_offs, mask=dn_mask, other=0.0).to(ACC)
    dt_sum = tl.zeros([BLOCK_D], dtype=ACC)
    first_tile = chunk * tiles_per_chunk
    tiles_here = tl.minimum(tiles_per_chunk, n_tiles - first_tile)
    last_idx = 0 if REVERSE else BLOCK_L - 1  # the tile's last step in walking order

    for j in range(0, tiles_here):
        offs_l = tile_positions(first_tile + j, length, BLOCK_L, REVERSE)
        l_mask = (offs_l >= 0) & (offs_l < length)
        dt, _raw, mask = load_delta(DELTA, row, offs_l, length, d_mask, bias, HAS_BIAS, SOFTPLUS, ACC)
        u = tl.load(U + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
        dtu = dt * u  # (BLOCK_D, BLOCK_L)
        if SUMMARY:
            tile_dt = tl.sum(dt, axis=1)  # (BLOCK_D,)
            dt_sum += tile_dt
            # Time left after step l in walking order (delta summed over the later steps of the tile).
            prefix = tl.cumsum(dt, axis=1)
            if REVERSE:
                left = prefix - dt
            else:
                left = tile_dt[:, None] - prefix
            new_state = state
            for n in range(0, d_state):
                a2 = tl.load(A2 + d * d_state + n, mask=d_mask, other=0.0).to(ACC)  # (BLOCK_D,)
                B_n = tl.load(B + bc_base + n * length + offs_l, mask=l_mask, other=0.0).to(ACC)  # (BLOCK_L,)
                local = tl.sum(tl.exp2(a2[:, None] * left) * dtu * B_n[None, :], axis=1)
                carried = column(state, n, n_idx) * tl.exp2(a2 * tile_dt)
                new_state = with_column(new_state, n, n_idx, carried + local)
            state = new_state
        else:
            if STORE_STATES:
                tl.store(TILE_STATES + ((pid_b * dim + d)[:, None] * n_tiles + first_tile + j) * d_state
                         + n_idx[None, :], state, mask=dn_mask)
            y = D_vec[:, None] * u
            new_state = state
            for n in range(0, d_state):
                a2 = tl.load(A2 + d * d_state + n, mask=d_mask, other=0.0).to(ACC)
                B_n = tl.load(B + bc_base + n * length + offs_l, mask=l_mask, other=0.0).to(ACC)
                C_n = tl.load(C + bc_base + n * length + offs_l, mask=l_mask, other=0.0).to(ACC)
                decay = tl.exp2(a2[:, None] * dt)  # (BLOCK_D, BLOCK_L)
                run, h = tl.associative_scan((decay, dtu * B_n[None, :]), axis=1, combine_fn=combine,
                                             reverse=REVERSE)
                h = h + run * column(state, n, n_idx)[:, None]
                y += h * C_n[None, :]
                new_state = with_column(new_state, n, n_idx, at_position(h, l_idx, last_idx))
            state = new_state
            if HAS_Z:
                zv = tl.load(Z + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
                y = y * zv * tl.sigmoid(zv)
            tl.store(OUT + row[:, None] + offs_l[None, :], y.to(OUT.dtype.element_ty), mask=mask)

    if SUMMARY:
        A2_tile = tl.load(A2 + d[:, None] * d_state + n_idx[None, :], mask=dn_mask, other=0.0).to(ACC)
        tl.store(CHUNK_LOCAL + chunk_offs, state, mask=dn_mask)
        tl.store(CHUNK_DECAY + chunk_offs, tl.exp2(dt_sum[:, None] * A2_tile), mask=dn_mask)
    if STORE_LAST:
        tl.store(LAST + (pid_b * dim + d)[:, None] * d_state + n_idx[None, :], state, mask=dn_mask)
