"""Pieces shared by the Triton scan's forward and backward kernels (kernels/scan_triton_*.py)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


def working_dtype(name: str):
    """A @triton.heuristics rule for ACC, the kernels' working dtype: float64 where the tensor argument `name`,
    which the launcher allocates in that dtype, is float64; float32 otherwise."""
    return lambda args: tl.float64 if args[name].dtype == torch.float64 else tl.float32


@triton.jit
def combine(a_left, x_left, a_right, x_right):
    # (a, x) composes like h -> a*h + x: "left, then right".
    return a_left * a_right, a_right * x_left + x_right


@triton.jit
def softplus(x, FAST: tl.constexpr = False):
    """log(1 + e^x). FAST (float32 on a GPU only: PTX): the log as the hardware's approximate log2, one
    instruction where tl.log compiles to about twenty."""
    if FAST:
        log2_term = tl.inline_asm_elementwise("lg2.approx.ftz.f32 $0, $1;", "=r,r",
                                              [1.0 + tl.exp2(tl.abs(x) * -1.4426950408889634)],
                                              dtype=tl.float32, is_pure=True, pack=1)
        return tl.maximum(x, 0.0) + log2_term * 0.6931471805599453
    return tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x)))


@triton.jit
def tile_mask(d_mask, offs_l, length):
    """(BLOCK_D, BLOCK_L): the program's channels at the tile's positions inside the sequence."""
    return d_mask[:, None] & ((offs_l >= 0) & (offs_l < length))[None, :]


@triton.jit
def delta_after(raw, bias, mask, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """delta after bias and softplus from the raw (BLOCK_D, BLOCK_L) tile (0 where masked), and raw + bias."""
    if HAS_BIAS:
        raw = raw + bias[:, None]
    dt = raw
    if SOFTPLUS:  # 1: exact, 2: FAST (see softplus)
        dt = softplus(raw, SOFTPLUS == 2)
    return tl.where(mask, dt, 0.0), raw


@triton.jit
def tile_inputs(U, DELTA, Z, row, offs_l, d_mask, length, HAS_Z: tl.constexpr):
    """u, delta and z (zeros without HAS_Z) of a (BLOCK_D, BLOCK_L) tile, as stored (not yet converted)."""
    offs = row[:, None] + offs_l[None, :]
    mask = tile_mask(d_mask, offs_l, length)
    u = tl.load(U + offs, mask=mask, other=0.0)
    delta = tl.load(DELTA + offs, mask=mask, other=0.0)
    z = tl.zeros_like(u)
    if HAS_Z:
        z = tl.load(Z + offs, mask=mask, other=0.0)
    return u, delta, z


@triton.jit
def load_delta(DELTA, row, offs_l, length, d_mask, bias, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
               ACC: tl.constexpr):
    """delta after bias and softplus for (BLOCK_D, BLOCK_L) positions (0 outside the sequence), raw + bias,
    and the tile's mask."""
    # The same mask as tile_mask, spelled as the forward was measured with: the other spelling changes the
    # register allocation of the 16-channel forward (96 -> 80 registers, sm_90), whose speed is sensitive.
    mask = d_mask[:, None] & (offs_l >= 0)[None, :] & (offs_l < length)[None, :]
    raw = tl.load(DELTA + row[:, None] + offs_l[None, :], mask=mask, other=0.0).to(ACC)
    dt, raw = delta_after(raw, bias, mask, HAS_BIAS, SOFTPLUS)
    return dt, raw, mask


@triton.jit
def tile_positions(tile, length, BLOCK_L: tl.constexpr, REVERSE: tl.constexpr):
    """Sequence positions of the tile-th tile in walking order (may run off either end)."""
    start = tile * BLOCK_L
    if REVERSE:
        start = length - (tile + 1) * BLOCK_L
    return start + tl.arange(0, BLOCK_L)


@triton.jit
def program_channels(pid_blk, blocks_per_group, channels_per_group, BLOCK_D: tl.constexpr):
    """The block of channels a program owns: group, channel indices (BLOCK_D,) and their mask."""
    group = pid_blk // blocks_per_group
    block = pid_blk % blocks_per_group
    local_d = block * BLOCK_D + tl.arange(0, BLOCK_D)
    d = group * channels_per_group + local_d  # (BLOCK_D,)
    return group, d, local_d < channels_per_group


@triton.jit
def channel_params(BIAS, D, d, d_mask, HAS_BIAS: tl.constexpr, HAS_D: tl.constexpr, ACC: tl.constexpr,
                   BLOCK_D: tl.constexpr):
    """delta_bias and D for a block of channels (zeros where absent)."""
    bias = tl.zeros([BLOCK_D], dtype=ACC)
    if HAS_BIAS:
        bias = tl.load(BIAS + d, mask=d_mask, other=0.0).to(ACC)
    D_vec = tl.zeros([BLOCK_D], dtype=ACC)
    if HAS_D:
        D_vec = tl.load(D + d, mask=d_mask, other=0.0).to(ACC)
    return bias, D_vec


# The picks below are a where-and-sum. Where the picked axis lies in one thread's registers and the index
# is a compile-time constant, that compiles to about one add per pick (seen in the PTX of the forward).
# The filler is -0.0 because x + (-0.0) == x for every x, so the compiler may drop even that add.


@triton.jit
def column(matrix, index, n_idx):
    """matrix[:, index] of a small (BLOCK_D, BLOCK_N) register tile."""
    return tl.sum(tl.where(n_idx[None, :] == index, matrix, -0.0), axis=1)


@triton.jit
def with_column(matrix, index, n_idx, values):
    """matrix with column `index` replaced by values (BLOCK_D,)."""
    return tl.where(n_idx[None, :] == index, values[:, None], matrix)


@triton.jit
def at_position(tile, l_idx, index):
    """tile[:, index] of a (BLOCK_D, BLOCK_L) tile."""
    return tl.sum(tl.where(l_idx[None, :] == index, tile, -0.0), axis=1)


@triton.jit
def tile_scan(decay, inp, l_idx, REVERSE: tl.constexpr, BLOCK_L: tl.constexpr):
    """h_l = decay_l * h_(l-1) + inp_l along axis 1 of a (BLOCK_D, BLOCK_L) tile whose rows lie in one thread,
    walking up the axis (down when REVERSE).

    `tl.associative_scan(..., reverse=True)` brought 23 shuffles per state into the forward's tile loop (a
    local sm_90 compile: 2,165 SASS instructions against 1,798 walking up), though nothing crosses threads.
    Written out step by step, the picks fold to register reads as in the upward scan. Where a row is split
    between two threads (16 channels on one warp) the picks become shuffles (1,950 instructions against the
    library's 1,460), yet it measured faster there too: S3's reverse forward 1.42 ms against 2.53 (H100).
    """
    if REVERSE:
        run = at_position(inp, l_idx, BLOCK_L - 1)  # (BLOCK_D,)
        h = inp
        for i in tl.static_range(BLOCK_L - 2, -1, -1):
            run = at_position(decay, l_idx, i) * run + at_position(inp, l_idx, i)
            h = tl.where(l_idx[None, :] == i, run[:, None], h)
    else:
        # The running decay (first output) goes unused: where the scan stays in a thread it is removed.
        _run, h = tl.associative_scan((decay, inp), axis=1, combine_fn=combine)
    return h


@triton.jit
def bf16_word_rows(P, word_offs, mask):
    """bf16 rows read as 32-bit words (word_offs, mask: (rows, words)), widened to float32 (rows, 2 * words).
    A word's high half widens with one AND, its low half with one shift; widened one value at a time, every
    other value costs a byte permute and a shift (sm_90 SASS)."""
    words = tl.load(P.to(tl.pointer_type(tl.uint32), bitcast=True) + word_offs, mask=mask, other=0)
    low = (words << 16).to(tl.float32, bitcast=True)
    high = (words & 0xFFFF0000).to(tl.float32, bitcast=True)
    return tl.interleave(low, high)


@triton.jit
def bc_rows(B, C, bc_base, n, length, offs_l, mask, ACC: tl.constexpr, KEEP: tl.constexpr = False):
    """Row n of B and C at the tile's steps, as (BLOCK_D, BLOCK_L) broadcasts: loading them in the
    tile's own layout (the rows repeat, served by L1) avoids a shared-memory layout change per state.
    KEEP: ask L1 to evict these lines last (the next tiles read the rest of them)."""
    offs = bc_base + n * length + offs_l[None, :]  # (BLOCK_D, BLOCK_L) after broadcasting with mask
    if KEEP:
        B_n = tl.load(B + offs, mask=mask, other=0.0, eviction_policy="evict_last").to(ACC)
        C_n = tl.load(C + offs, mask=mask, other=0.0, eviction_policy="evict_last").to(ACC)
    else:
        B_n = tl.load(B + offs, mask=mask, other=0.0).to(ACC)
        C_n = tl.load(C + offs, mask=mask, other=0.0).to(ACC)
    return B_n, C_n
