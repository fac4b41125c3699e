"""Forward kernel of the Triton scan: one program per (batch, block of channels, chunk of the sequence).

A program walks its chunk in tiles of BLOCK_L steps, BLOCK_L chosen so that one thread's 16-byte load
holds a whole tile row (8 bf16 steps, 4 float32). A tile's scan along L then never leaves the thread:
no shuffles, and picking the tile's last step or a state's column out of the (BLOCK_D, BLOCK_N) state
costs about one add (see the note in scan_triton_common.py). Per (channel, state, step)
what is left is an exp2, the input product, one fused multiply-add of the recurrence and one of the
output. The state entering the tile is folded into its first input, h_0 = a_0 h_in + x_0, so the scan's
running decay is never needed. exp is taken as exp2 of delta * (A * log2 e), A pre-scaled on the host.

The states entering each chunk come from kernels/scan_triton_summary.py. For the backward, the state
entering every STATE_EVERY-th tile (the backward's coarser tiles) is saved.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .scan_triton_common import (
    at_position,
    bc_rows,
    bf16_word_rows,
    channel_params,
    column,
    delta_after,
    load_delta,
    program_channels,
    tile_inputs,
    tile_mask,
    tile_positions,
    tile_scan,
    with_column,
    working_dtype,
)


# Counts that change with L and the batch are not specialized on (==1, divisible by 16): a new length reuses
# the compiled kernel (offsets get their alignment from BLOCK_L, d_state and length).
@triton.heuristics({"ACC": working_dtype("A2"), "STORE_LAST": lambda args: args["n_chunks"] == 1})
@triton.jit(do_not_specialize=["blocks_per_group", "n_tiles", "tiles_per_chunk", "n_chunks", "n_state_tiles"])
def scan_fwd_kernel(
    U, U_R, DELTA, DELTA_R, A2, B, B_R, C, C_R, D, Z, BIAS,  # inputs; A2 = A * log2(e), (dim, N), working dtype
    ENTER,  # (batch, dim, n_chunks, N): state entering each chunk
    OUT, TILE_STATES, LAST,  # outputs; TILE_STATES (batch, n_state_tiles, dim, N)
    dim, length, d_state, groups, bc_batch, channels_per_group, blocks_per_group, n_tiles, tiles_per_chunk,
    n_chunks, n_state_tiles,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    STORE_STATES: tl.constexpr, STORE_LAST: tl.constexpr, REVERSE: tl.constexpr, STATE_EVERY: tl.constexpr,
    PREFETCH: tl.constexpr, BIDIRECTIONAL: tl.constexpr, BC_AHEAD: tl.constexpr, BC_KEEP: tl.constexpr,
    UNROLL: tl.constexpr, BC_WORDS: tl.constexpr,
    ACC: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """BIDIRECTIONAL: the second half of the batch programs scans U_R, DELTA_R, B_R, C_R the other way, with
    the second rows of A2, D and BIAS, the same z, into the second half of ENTER and of the outputs.
    Heuristics: ACC from A2's dtype; STORE_LAST (the last state straight from the tiles) in a single chunk."""
    pid = tl.program_id(0).to(tl.int64)  # offsets past 2**31 at long L
    rows = tl.num_programs(0).to(tl.int64) // 2  # BIDIRECTIONAL: the batch of each direction
    if BIDIRECTIONAL and pid >= rows:  # the second half scans the other way
        _fwd_program(pid - rows, U_R, DELTA_R, A2 + dim * d_state, B_R, C_R, D + dim, Z, BIAS + dim,
                     ENTER + rows * dim * n_chunks * d_state, OUT + rows * dim * length,
                     TILE_STATES + rows * dim * n_state_tiles * d_state, LAST + rows * dim * d_state,
                     dim, length, d_state, groups, bc_batch, channels_per_group, blocks_per_group, n_tiles,
                     tiles_per_chunk, n_chunks, n_state_tiles, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, STORE_STATES,
                     STORE_LAST, not REVERSE, STATE_EVERY, PREFETCH, BC_AHEAD, BC_KEEP, UNROLL, BC_WORDS, ACC,
                     BLOCK_D, BLOCK_L, BLOCK_N)
    else:
        _fwd_program(pid, U, DELTA, A2, B, C, D, Z, BIAS, ENTER, OUT, TILE_STATES, LAST,
                     dim, length, d_state, groups, bc_batch, channels_per_group, blocks_per_group, n_tiles,
                     tiles_per_chunk, n_chunks, n_state_tiles, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, STORE_STATES,
                     STORE_LAST, REVERSE, STATE_EVERY, PREFETCH, BC_AHEAD, BC_KEEP, UNROLL, BC_WORDS, ACC, BLOCK_D,
                     BLOCK_L, BLOCK_N)


@triton.jit
def _fwd_program(
    pid_b, U, DELTA, A2, B, C, D, Z, BIAS, ENTER, OUT, TILE_STATES, LAST,
    dim, length, d_state, groups, bc_batch, channels_per_group, blocks_per_group, n_tiles, tiles_per_chunk,
    n_chunks, n_state_tiles,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    STORE_STATES: tl.constexpr, STORE_LAST: tl.constexpr, REVERSE: tl.constexpr, STATE_EVERY: tl.constexpr,
    PREFETCH: tl.constexpr, BC_AHEAD: tl.constexpr, BC_KEEP: tl.constexpr, UNROLL: tl.constexpr,
    BC_WORDS: tl.constexpr, ACC: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """One program of the scan in one direction; pid_b is its batch row."""
    group, d, d_mask = program_channels(tl.program_id(1), blocks_per_group, channels_per_group, BLOCK_D)
    chunk = tl.program_id(2)
    n_idx = tl.arange(0, BLOCK_N)
    l_idx = tl.arange(0, BLOCK_L)
    dn_mask = d_mask[:, None] & (n_idx < d_state)[None, :]
    row = (pid_b * dim + d) * length  # (BLOCK_D,) offset of each channel's sequence
    bc_base = pid_b * bc_batch + group * d_state * length  # B and C: rows of a batch row lie together
    bias, D_vec = channel_params(BIAS, D, d, d_mask, HAS_BIAS, HAS_D, ACC, BLOCK_D)
    A2_tile = tl.load(A2 + d[:, None] * d_state + n_idx[None, :], mask=dn_mask, other=0.0).to(ACC)
    state = tl.load(ENTER + ((pid_b * dim + d)[:, None] * n_chunks + chunk) * d_state + n_idx[None, :],
                    mask=dn_mask, other=0.0).to(ACC)  # (BLOCK_D, BLOCK_N)
    first_tile = chunk * tiles_per_chunk
    tiles_here = tl.minimum(tiles_per_chunk, n_tiles - first_tile)
    first_idx = BLOCK_L - 1 if REVERSE else 0  # the tile's first and last steps in walking order
    last_idx = 0 if REVERSE else BLOCK_L - 1
    is_first = (l_idx == first_idx)[None, :]  # (1, BLOCK_L)

    # PREFETCH: software pipelining by hand. The next tile's u, delta and z are loaded before this tile's
    # states are worked, so their trip to memory overlaps the work instead of stalling the loop (the last
    # trip loads a tile of the next chunk, unused, rather than test for it).
    if PREFETCH:
        u_raw, delta_raw, z_raw = tile_inputs(U, DELTA, Z, row, tile_positions(first_tile, length, BLOCK_L, REVERSE),
                                              d_mask, length, HAS_Z)
    # UNROLL tiles a trip. The host makes every chunk but the last whole trips, so a tile past tiles_here lies
    # past the sequence's end: its steps are masked (delta 0 leaves the state as it is) and its state not stored.
    for j0 in range(0, tiles_here, UNROLL):
        for k in tl.static_range(UNROLL):
            j = j0 + k
            tile = first_tile + j
            offs_l = tile_positions(tile, length, BLOCK_L, REVERSE)
            mask = tile_mask(d_mask, offs_l, length)
            if PREFETCH:
                u, zv = u_raw.to(ACC), z_raw.to(ACC)  # this tile's, before the next tile's take their place
                dt, _raw = delta_after(delta_raw.to(ACC), bias, mask, HAS_BIAS, SOFTPLUS)
                next_l = tile_positions(tile + 1, length, BLOCK_L, REVERSE)
                u_raw, delta_raw, z_raw = tile_inputs(U, DELTA, Z, row, next_l, d_mask, length, HAS_Z)
            else:  # z only after the states (registers)
                dt, _raw, mask = load_delta(DELTA, row, offs_l, length, d_mask, bias, HAS_BIAS, SOFTPLUS, ACC)
                u = tl.load(U + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
            dtu = dt * u  # (BLOCK_D, BLOCK_L)
            if STORE_STATES:
                keep_tile = tile % STATE_EVERY == 0
                if UNROLL > 1:
                    keep_tile = keep_tile & (tile < n_tiles)
                if keep_tile:
                    # Tile-major, so a program's store is one contiguous block. Channel-major rows lie
                    # n_state_tiles * N apart (2 MiB at L 2^20): at batch 1, dim 256, L 2^20 (H100) keeping the
                    # states took the forward from 4.90 to 6.75 ms that way, to 6.13 ms this way.
                    tl.store(TILE_STATES + ((pid_b * n_state_tiles + tile // STATE_EVERY) * dim + d)[:, None] * d_state
                             + n_idx[None, :], state, mask=dn_mask)
            y = D_vec[:, None] * u
            new_state = state
            # Unrolled over the padded states (masked beyond d_state) so that their loads and scans interleave.
            if BC_AHEAD:
                sB, sC = _bc_state(B, C, bc_base, 0, length, tile, offs_l, mask, d, d_mask, d_state, ACC, BC_KEEP,
                                   BC_WORDS, REVERSE, BLOCK_L)
            for n in tl.static_range(BLOCK_N):
                if not BC_AHEAD:
                    B_n, C_n = _bc_state(B, C, bc_base, n, length, tile, offs_l, mask, d, d_mask, d_state, ACC, BC_KEEP,
                                         BC_WORDS, REVERSE, BLOCK_L)
                else:  # BC_AHEAD: state n+1's rows are on their way while state n is worked
                    B_n, C_n = sB, sC
                    if n + 1 < BLOCK_N:
                        sB, sC = _bc_state(B, C, bc_base, n + 1, length, tile, offs_l, mask, d, d_mask, d_state, ACC,
                                          BC_KEEP, BC_WORDS, REVERSE, BLOCK_L)
                decay = tl.exp2(column(A2_tile, n, n_idx)[:, None] * dt)  # (BLOCK_D, BLOCK_L)
                entering = decay * column(state, n, n_idx)[:, None]
                inp = dtu * B_n + tl.where(is_first, entering, -0.0)
                h = tile_scan(decay, inp, l_idx, REVERSE, BLOCK_L)  # (BLOCK_D, BLOCK_L)
                y += h * C_n
                new_state = with_column(new_state, n, n_idx, at_position(h, l_idx, last_idx))
            state = new_state
            if HAS_Z:
                if not PREFETCH:
                    zv = tl.load(Z + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
                y = y * zv * tl.sigmoid(zv)
            tl.store(OUT + row[:, None] + offs_l[None, :], y.to(OUT.dtype.element_ty), mask=mask)

    if STORE_LAST:
        tl.store(LAST + (pid_b * dim + d)[:, None] * d_state + n_idx[None, :], state, mask=dn_mask)


@triton.jit
def _bc_state(B, C, bc_base, n, length, tile, offs_l, mask, d, d_mask, d_state, ACC: tl.constexpr,
              BC_KEEP: tl.constexpr, BC_WORDS: tl.constexpr, REVERSE: tl.constexpr, BLOCK_L: tl.constexpr):
    """bc_rows of state n, masked beyond d_state. BC_WORDS: bf16 B and C of even length, read as 32-bit words."""
    n_ok = d_mask & ((d * 0 + n) < d_state)  # (BLOCK_D,): a 0-d mask breaks the interpreter
    if BC_WORDS:
        # Even length and even tiles: the tile's steps are whole words, the tile-th tile of length / 2 words.
        words = tile_positions(tile, length // 2, BLOCK_L // 2, REVERSE)  # (BLOCK_L // 2,)
        word_mask = n_ok[:, None] & ((words >= 0) & (words < length // 2))[None, :]
        word_offs = (bc_base + n * length) // 2 + words[None, :] + (d * 0)[:, None]
        return bf16_word_rows(B, word_offs, word_mask), bf16_word_rows(C, word_offs, word_mask)
    return bc_rows(B, C, bc_base, n, length, offs_l, mask & n_ok[:, None], ACC, BC_KEEP)
