"""Forward kernel of the Triton scan with a tile that spans a warp's lanes along L (inference forward).

scan_triton_fwd.py gives each thread a whole tile row (one channel, 8 bf16 or 4 float32 steps), so the GPU
fills only when batch x dim x chunks reaches a few thousand rows, and every chunk but one needs the summary
pass first: two exps per (channel, state, step). Here a tile is (BLOCK_D channels, LANES x VEC steps): each
thread holds VEC consecutive steps (one 16-byte load), the LANES threads of a row hold consecutive blocks.
So batch x dim rows alone bring LANES times as many threads, wide inputs (batch 2, dim 512) run in one
chunk, and the scan takes one exp per (channel, state, step).

Per state and tile, a thread
1. scans its VEC steps: the running decay a_cum and the state h_loc from a zero start (in registers);
2. joins the lanes' totals (a_tot, x_tot) with a warp scan (tl.associative_scan across lanes), the state
   entering the tile folded into lane 0's total first;
3. takes the state entering its own steps from the lane before (one gather, i.e. a shuffle; lane 0 keeps
   the tile's entering state) and finishes h = a_cum * h_in + h_loc.
The gather hands lane 0 the tile's last state as well (the lane "before" lane 0 is the last one), which is
all the next tile needs: the states carried between tiles are read in lane 0 only.

`REVERSE` walks down: lane 0 takes the tile's highest block of VEC steps, so the lane scan still runs up
the lanes and only each thread's own VEC steps are scanned downwards (written out, in registers).

The readable reference is scan_reference.py; tests/kernels holds this kernel equal to it.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .scan_triton_common import bf16_word_rows, combine, delta_after, program_channels


@triton.jit
def _pick(t, v_idx, index):
    """t[:, :, index] of a (BLOCK_D, LANES, K) tile whose last axis lies in one thread (a compile-time pick)."""
    return tl.sum(tl.where(v_idx[None, None, :] == index, t, -0.0), axis=2)


@triton.jit
def _with(t, v_idx, index, values):
    """t with t[:, :, index] replaced by values (BLOCK_D, LANES)."""
    return tl.where(v_idx[None, None, :] == index, values[:, :, None], t)


@triton.jit
def _thread_scan(decay, inp, v_idx, REVERSE: tl.constexpr, VEC: tl.constexpr):
    """(running decay, state from zero) along each thread's VEC steps, inclusive, in walking order."""
    if REVERSE:
        run_a = _pick(decay, v_idx, VEC - 1)
        run_x = _pick(inp, v_idx, VEC - 1)
        a_cum = decay
        h_loc = inp
        for i in tl.static_range(VEC - 2, -1, -1):
            a_i = _pick(decay, v_idx, i)
            run_a = a_i * run_a
            run_x = a_i * run_x + _pick(inp, v_idx, i)
            a_cum = _with(a_cum, v_idx, i, run_a)
            h_loc = _with(h_loc, v_idx, i, run_x)
        return a_cum, h_loc
    return tl.associative_scan((decay, inp), axis=2, combine_fn=combine)


@triton.jit
def scan_lanes_kernel(
    U, DELTA, A2, B, C, D, Z, BIAS,  # inputs; A2 = A * log2(e), (dim, N), working dtype
    ENTER,  # (batch, dim, n_chunks, N): state entering each chunk
    OUT, LAST,
    dim, length, d_state, groups, channels_per_group, blocks_per_group, n_tiles, tiles_per_chunk, n_chunks,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    STORE_LAST: tl.constexpr, REVERSE: tl.constexpr, BC_WORDS: tl.constexpr, ACC: tl.constexpr,
    BLOCK_D: tl.constexpr, LANES: tl.constexpr, VEC: tl.constexpr, BLOCK_N: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)  # offsets past 2**31 at long L
    group, d, d_mask = program_channels(tl.program_id(1), blocks_per_group, channels_per_group, BLOCK_D)
    chunk = tl.program_id(2)
    lane = tl.arange(0, LANES)
    v_idx = tl.arange(0, VEC)
    TILE: tl.constexpr = LANES * VEC
    # Each lane's block of VEC steps inside a tile, in walking order (reverse: lane 0 holds the highest).
    if REVERSE:
        block_start = (LANES - 1 - lane) * VEC
    else:
        block_start = lane * VEC
    steps = block_start[:, None] + v_idx[None, :]  # (LANES, VEC)
    word_steps = block_start[:, None] // 2 + tl.arange(0, VEC // 2)[None, :]  # (LANES, VEC // 2), BC_WORDS only
    last_v = 0 if REVERSE else VEC - 1
    lane0 = (lane == 0)[None, :]  # (1, LANES)
    before = ((lane + LANES - 1) % LANES)[None, :] + tl.zeros([BLOCK_D, LANES], dtype=tl.int32)  # lane k <- k - 1

    row = (pid_b * dim + d) * length  # (BLOCK_D,) offset of each channel's sequence
    bc_base = (pid_b * groups + group) * d_state * length
    # The states carried from tile to tile live in ENTER's row of this chunk, read and written by lane 0: a
    # (BLOCK_D, LANES, BLOCK_N) register tensor would spread the states over the lanes (the compiler's layout
    # for it), and every pick of one state would then cross them.
    at_lane0 = d_mask[:, None] & lane0  # (BLOCK_D, LANES)
    carried = ENTER + (((pid_b * dim + d) * n_chunks + chunk) * d_state)[:, None] + (lane * 0)[None, :]
    a2_row = A2 + (d * d_state)[:, None] + (lane * 0)[None, :]  # (BLOCK_D, LANES): every lane reads A2[d, n]
    bias = tl.zeros([BLOCK_D], dtype=ACC)
    if HAS_BIAS:
        bias = tl.load(BIAS + d, mask=d_mask, other=0.0).to(ACC)
    D_vec = tl.zeros([BLOCK_D], dtype=ACC)
    if HAS_D:
        D_vec = tl.load(D + d, mask=d_mask, other=0.0).to(ACC)

    first_tile = chunk * tiles_per_chunk
    tiles_here = tl.minimum(tiles_per_chunk, n_tiles - first_tile)
    for j in range(0, tiles_here):
        tile = first_tile + j
        if REVERSE:
            start = length - (tile + 1) * TILE
        else:
            start = tile * TILE
        pos = start + steps  # (LANES, VEC)
        l_ok = ((pos >= 0) & (pos < length))[None, :, :]
        mask = d_mask[:, None, None] & l_ok  # (BLOCK_D, LANES, VEC)
        if BC_WORDS:
            w_pos = start // 2 + word_steps
            w_ok = ((w_pos >= 0) & (w_pos < length // 2))[None, :, :]
        offs = row[:, None, None] + pos[None, :, :]
        u = tl.load(U + offs, mask=mask, other=0.0).to(ACC)
        raw = tl.load(DELTA + offs, mask=mask, other=0.0).to(ACC)
        dt, _raw = delta_after(raw, bias[:, None], mask, HAS_BIAS, SOFTPLUS)  # it adds bias[:, None]
        dtu = dt * u
        y = D_vec[:, None, None] * u
        bc_offs = bc_base + pos[None, :, :] + (d * 0)[:, None, None]  # (BLOCK_D, LANES, VEC): the rows repeat
        for n in tl.static_range(BLOCK_N):
            n_ok = (d * 0 + n) < d_state  # (BLOCK_D,): a 0-d mask breaks the interpreter
            bc_mask = mask & n_ok[:, None, None]
            if BC_WORDS:  # bf16 B and C of even length: a thread's VEC steps are VEC // 2 whole 32-bit words
                w_offs = (bc_base + n * length + start) // 2 + word_steps[None, :, :] + (d * 0)[:, None, None]
                w_mask = d_mask[:, None, None] & w_ok & n_ok[:, None, None]
                B_n = bf16_word_rows(B, w_offs, w_mask)
                C_n = bf16_word_rows(C, w_offs, w_mask)
            else:
                B_n = tl.load(B + bc_offs + n * length, mask=bc_mask, other=0.0).to(ACC)
                C_n = tl.load(C + bc_offs + n * length, mask=bc_mask, other=0.0).to(ACC)
            a2_n = tl.load(a2_row + n, mask=d_mask[:, None] & n_ok[:, None], other=0.0).to(ACC)  # (BLOCK_D, LANES)
            entering = tl.load(carried + n, mask=at_lane0 & n_ok[:, None], other=0.0)  # lane 0: entering the tile
            decay = tl.exp2(a2_n[:, :, None] * dt)  # (BLOCK_D, LANES, VEC)
            a_cum, h_loc = _thread_scan(decay, dtu * B_n, v_idx, REVERSE, VEC)
            a_tot = _pick(a_cum, v_idx, last_v)  # (BLOCK_D, LANES): each lane's block as one step
            x_tot = _pick(h_loc, v_idx, last_v)
            x_tot = tl.where(lane0, a_tot * entering + x_tot, x_tot)
            _run, lane_h = tl.associative_scan((a_tot, x_tot), axis=1, combine_fn=combine)
            from_before = tl.gather(lane_h, before, axis=1)  # lane 0: the tile's last state
            h_in = tl.where(lane0, entering, from_before)
            h = a_cum * h_in[:, :, None] + h_loc
            y += h * C_n
            tl.store(carried + n, from_before, mask=at_lane0 & n_ok[:, None])
        if HAS_Z:
            zv = tl.load(Z + offs, mask=mask, other=0.0).to(ACC)
            y = y * zv * tl.sigmoid(zv)
        tl.store(OUT + offs, y.to(OUT.dtype.element_ty), mask=mask)

    if STORE_LAST:
        last = LAST + ((pid_b * dim + d) * d_state)[:, None] + (lane * 0)[None, :]
        for n in tl.static_range(BLOCK_N):
            n_ok = ((d * 0 + n) < d_state)[:, None]
            tl.store(last + n, tl.load(carried + n, mask=at_lane0 & n_ok, other=0.0), mask=at_lane0 & n_ok)
