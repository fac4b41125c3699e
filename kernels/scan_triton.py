"""Triton selective scan, parallel over batch, channels *and* the sequence: the autograd wrapper and launch plan.

The sequence is cut into chunks; a program walks the tiles of one (batch, block of channels, chunk).
Chunks are made independent in three steps:

1. summary (`scan_triton_summary.py`): every chunk's final state from a zero start, and its total decay
   exp(A * sum dt), as weighted sums (no scan);
2. carry (`scan_triton_carry.py`): a scan over the chunks gives the state entering each chunk;
3. full (`scan_triton_fwd.py`): every chunk again from its entering state, in tiles short enough for
   one thread to hold a tile row, writing y and the state entering each backward tile.

A single chunk (enough programs already) skips 1 and 2. The backward (`scan_triton_bwd.py`) mirrors this
for g = dL/dh, which runs against the walking order, in its own longer tiles, and recomputes each
tile's states from the saved tile-entering states (O(batch*dim*L*N/BWD_BLOCK_L)): no
(batch, dim, L, N) tensor is ever kept.
`reverse=True` walks chunks, tiles and scans backwards in place: no flipped copies.

Computation is in float32 (float64 for float64 inputs); loads and stores keep the tensors' dtypes.
Runs on CUDA, or on a CPU under TRITON_INTERPRET=1. The readable reference is `scan_reference.py`;
tests/kernels holds every backend equal to it.
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


LOG2E = 1.4426950408889634  # exp(x) = exp2(x * log2 e): the kernels take exp2 of delta * A2

if triton is not None:
    from .scan_triton_bwd import scan_bwd_kernel as _scan_bwd_kernel
    from .scan_triton_carry import chunk_carry_kernel as _chunk_carry_kernel
    from .scan_triton_fwd import scan_fwd_kernel as _scan_fwd_kernel
    from .scan_triton_summary import bwd_summary_kernel as _bwd_summary_kernel
    from .scan_triton_summary import fwd_summary_kernel as _fwd_summary_kernel


# Tuning knobs (benchmarks/scan_tune.py sweeps them; docs/benchmarks/scan_tune_h100.txt has the sweeps).
# Enough programs to fill the GPU several times over; beyond that, more chunks only add carry work.
TARGET_PROGRAMS = 1024
# No chunk shorter than this (steps): at batch 1, dim 256, L 65,536 it took the forward from 0.78 to 0.63 ms
# on the H100; shorter and longer floors measured no better (docs/benchmarks/scan.md).
MIN_CHUNK_STEPS = 512
# The forward's tile: 0 = one 16-byte load of the input's dtype per row (8 bf16, 4 float32 steps), which
# keeps a tile's scan inside one thread. The backward's tiles are coarser (states are saved per backward
# tile and it sums over channels), and must be a multiple of the forward's.
BLOCK_L = 0
BWD_BLOCK_L = 32
# Channels per forward program (its tile is (BLOCK_D, BLOCK_L)), on NUM_WARPS warps: one tile row per thread.
BLOCK_D = 64
NUM_WARPS = 2
# Where halving the block of channels (down to this; 0: never) fills the GPU, the forward does that instead
# of cutting L into chunks, and so needs no summary pass (see _Plan._forward_block).
MIN_BLOCK_D = 16
# The backward's own program target for its chunking (0: it uses the forward's chunks). Its programs are
# smaller (BWD_TILE_VALUES // BWD_BLOCK_L channels), so it reaches a target with fewer chunks: at batch 32,
# dim 1024, L 2048 one chunk instead of two took forward+backward from 7.68 to 7.07 ms (bf16, H100).
BWD_TARGET_PROGRAMS = 2048
# The forward loads a tile's u, delta and z one trip of its loop ahead (1; 0: as it works the tile) where its
# tiles are short (float32) or it runs in chunks. H100, fwd ms at S1 / S2 / S3: float32 4.26 / 9.52 / 1.70
# without, 3.79 / 8.43 / 1.47 with; bf16 2.57 / 5.30 / 0.97 without, 2.58 / 5.10 / 1.07 with (S3 is one chunk).
PREFETCH = 1
# Chunks the carry pass scans at once (kernels/scan_triton_carry.py).
CARRY_BLOCK_CHUNKS = 64
# The summary pass's (BLOCK_D, BLOCK_N, BLOCK_L) accumulator: its steps and its size in values.
SUMMARY_BLOCK_L = 16
SUMMARY_TILE_VALUES = 2048
# The backward's own block, in values: BWD_TILE_VALUES // BWD_BLOCK_L channels. It keeps many tiles alive,
# so registers bound it.
BWD_TILE_VALUES = 512
BWD_NUM_WARPS = 1
# States per trip of the backward's loop over states (more registers, more overlap; a full unroll measured
# slower); the forward always unrolls.
BWD_STATES_PER_ITER = 1
# Register caps of the forward and backward kernels (0: the compiler's choice); fewer registers fit more
# warps on an SM, at the price of spills.
MAXNREG = 0
BWD_MAXNREG = 0


def _reg_cap(cap: int) -> dict:
    return dict(maxnreg=cap) if cap and not interpreting() else {}


def _tile_steps(element_size: int) -> tuple[int, int]:
    """Forward and backward tile lengths (powers of two, the backward's a multiple of the forward's)."""
    if interpreting():
        return 8, 16  # small enough that the tests' short sequences cross tiles, state tiles and chunks
    fwd = BLOCK_L or max(2, 16 // element_size)
    return fwd, max(fwd, BWD_BLOCK_L)


def _chunking(n_tiles: int, tile_steps: int, programs: int, target: int, interpret_chunks: int | None = None
              ) -> tuple[int, int]:
    """Tiles per chunk and number of chunks so that programs * chunks reaches `target`.

    `interpret_chunks` (under TRITON_INTERPRET=1): the chunks wanted instead, so that the tests' small
    shapes still cross chunk boundaries."""
    if interpret_chunks is not None or n_tiles == 0:
        want = min(n_tiles, interpret_chunks or 0)
    else:
        want = max(1, min(n_tiles, -(-target // programs), n_tiles * tile_steps // max(1, MIN_CHUNK_STEPS)))
    tiles_per_chunk = max(1, -(-n_tiles // want))
    return tiles_per_chunk, max(1, -(-n_tiles // tiles_per_chunk))


class _Plan:
    """Block sizes and grids of one scan call. Chunks are whole backward tiles, which are whole forward
    tiles; the summary pass walks chunks in its own (smaller) steps. The forward and the backward may cut
    L into different chunks: the backward's saved states are per backward tile, whatever the chunks."""

    def __init__(self, u, A, groups):
        batch, self.dim, self.length = u.shape
        self.batch = batch
        interpret = interpreting()
        self.d_state = A.shape[1]
        self.groups = groups
        self.per_group = self.dim // groups
        self.block_n = triton.next_power_of_2(max(self.d_state, 1))
        self.block_l, self.bwd_block_l = _tile_steps(u.element_size())
        self.state_every = self.bwd_block_l // self.block_l
        self.block_d, self.num_warps = self._forward_block(batch)
        self.blocks_per_group = triton.cdiv(self.per_group, self.block_d)
        self.n_bwd_tiles = triton.cdiv(self.length, self.bwd_block_l)
        programs = batch * groups * self.blocks_per_group
        self.bwd_tiles_per_chunk, self.n_chunks = _chunking(self.n_bwd_tiles, self.bwd_block_l, programs,
                                                             TARGET_PROGRAMS, 3 if interpret else None)
        self.n_tiles = triton.cdiv(self.length, self.block_l)
        self.tiles_per_chunk = self.bwd_tiles_per_chunk * self.state_every
        self.chunk_len = self.bwd_tiles_per_chunk * self.bwd_block_l
        self.grid = (batch, groups * self.blocks_per_group, self.n_chunks)
        self.prefetch = bool(PREFETCH) and (self.block_l < 8 or self.n_chunks > 1)
        # The summary pass keeps a (BLOCK_D, BLOCK_N, BLOCK_L) accumulator: its own, smaller tiles, which
        # must divide the chunk (powers of two no longer than the backward tile do).
        self.summary_block_l = min(SUMMARY_BLOCK_L, self.bwd_block_l)
        self.summary_block_d = max(1, min(triton.next_power_of_2(self.per_group),
                                          SUMMARY_TILE_VALUES // (self.summary_block_l * self.block_n)))
        self.summary_blocks_per_group = triton.cdiv(self.per_group, self.summary_block_d)
        self.bwd_block_d = max(1, min(triton.next_power_of_2(self.per_group), BWD_TILE_VALUES // self.bwd_block_l))
        self.bwd_blocks_per_group = triton.cdiv(self.per_group, self.bwd_block_d)
        if BWD_TARGET_PROGRAMS:
            bwd_programs = batch * groups * self.bwd_blocks_per_group
            self.bwd_chunk_tiles, self.bwd_n_chunks = _chunking(self.n_bwd_tiles, self.bwd_block_l, bwd_programs,
                                                                BWD_TARGET_PROGRAMS, 2 if interpret else None)
        else:
            self.bwd_chunk_tiles, self.bwd_n_chunks = self.bwd_tiles_per_chunk, self.n_chunks
        self.bwd_chunk_len = self.bwd_chunk_tiles * self.bwd_block_l
        self.bwd_grid = (batch, groups * self.bwd_blocks_per_group, self.bwd_n_chunks)
        self.carry_grid = (batch * self.dim,)

    def _forward_block(self, batch: int) -> tuple[int, int]:
        """(channels, warps) of a forward program: BLOCK_D on NUM_WARPS, or a smaller block (down to
        MIN_BLOCK_D) on proportionally fewer warps, at least one, where that alone brings the grid to the
        warps of TARGET_PROGRAMS full programs. A block smaller than a warp's rows repeats rows across
        threads: at batch 32, dim 1024, L 2048 (bf16, H100) 16 channels on one warp ran the forward in
        0.97 ms, against 1.28 ms for 64 channels in 2 chunks and 1.37 ms for 32 channels in one."""
        block_d = max(1, min(triton.next_power_of_2(self.per_group), BLOCK_D))

        def warps(block: int) -> int:
            return max(1, NUM_WARPS * block // BLOCK_D)

        def grid_warps(block: int) -> int:
            return batch * self.groups * triton.cdiv(self.per_group, block) * warps(block)

        want = TARGET_PROGRAMS * NUM_WARPS
        smaller = block_d
        while MIN_BLOCK_D and smaller > MIN_BLOCK_D and grid_warps(smaller) < want:
            smaller //= 2
        if grid_warps(block_d) < want <= grid_warps(smaller):
            return smaller, warps(smaller)
        return block_d, NUM_WARPS

    def carry_blocks(self, n_chunks: int):
        block_k = 2 if interpreting() else min(CARRY_BLOCK_CHUNKS, triton.next_power_of_2(n_chunks))
        return dict(BLOCK_K=block_k, BLOCK_N=self.block_n, num_warps=1)

    def sizes(self):
        return (self.dim, self.length, self.d_state, self.groups, self.per_group, self.blocks_per_group,
                self.n_tiles, self.tiles_per_chunk, self.n_chunks, self.n_bwd_tiles)

    def summary_grid(self, n_chunks: int):
        return (self.batch, self.groups * self.summary_blocks_per_group, n_chunks)

    def summary_sizes(self, chunk_len: int, n_chunks: int):
        return (self.dim, self.length, self.d_state, self.groups, self.per_group, self.summary_blocks_per_group,
                chunk_len, n_chunks)

    def summary_blocks(self):
        return dict(BLOCK_D=self.summary_block_d, BLOCK_L=self.summary_block_l, BLOCK_N=self.block_n,
                    num_warps=NUM_WARPS)

    def blocks(self):
        return dict(STATE_EVERY=self.state_every, PREFETCH=self.prefetch, BLOCK_D=self.block_d, BLOCK_L=self.block_l,
                    BLOCK_N=self.block_n, num_warps=self.num_warps, **_reg_cap(MAXNREG))

    def bwd_sizes(self):
        return (self.dim, self.length, self.d_state, self.groups, self.per_group, self.bwd_blocks_per_group,
                self.n_bwd_tiles, self.bwd_chunk_tiles, self.bwd_n_chunks)

    def bwd_blocks(self):
        return dict(BLOCK_D=self.bwd_block_d, BLOCK_L=self.bwd_block_l, BLOCK_N=self.block_n,
                    num_warps=BWD_NUM_WARPS, **_reg_cap(BWD_MAXNREG))


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
        tile_states = torch.empty(batch, dim, plan.n_bwd_tiles if keep else 0, d_state, **f)
        dummy = u
        flags = dict(HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
                     SOFTPLUS=delta_softplus, REVERSE=reverse, ACC=acc, **plan.blocks())
        A2 = (A.to(work) * LOG2E).contiguous()  # (dim, N)
        args = (u, delta, A2, Bg, Cg, D if D is not None else dummy, z if z is not None else dummy,
                delta_bias if delta_bias is not None else dummy)
        if plan.n_chunks == 1:
            enter = (h0.view(batch, dim, 1, d_state).to(work) if h0 is not None
                     else torch.zeros(batch, dim, 1, d_state, **f))
        else:
            local = torch.empty(batch, dim, plan.n_chunks, d_state, **f)
            decay = torch.empty_like(local)
            enter = torch.empty_like(local)
            _fwd_summary_kernel[plan.summary_grid(plan.n_chunks)](
                u, delta, A2, Bg, delta_bias if delta_bias is not None else dummy, local, decay,
                *plan.summary_sizes(plan.chunk_len, plan.n_chunks), HAS_BIAS=delta_bias is not None,
                SOFTPLUS=delta_softplus, REVERSE=reverse, ACC=acc, **plan.summary_blocks(),
            )
            _chunk_carry_kernel[plan.carry_grid](
                h0 if h0 is not None else dummy, local, decay, enter, last, d_state, plan.n_chunks,
                HAS_H0=h0 is not None, BACKWARD=False, ACC=acc, **plan.carry_blocks(plan.n_chunks),
            )
        _scan_fwd_kernel[plan.grid](
            *args, enter, out, tile_states, last, *plan.sizes(), STORE_STATES=keep, STORE_LAST=plan.n_chunks == 1,
            **flags,
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
        n_chunks = plan.bwd_n_chunks
        dA_part = torch.empty(batch, n_chunks, dim, d_state, **f)
        dB = torch.zeros(batch, groups, d_state, length, **f)
        dC = torch.zeros_like(dB)
        dD_part = torch.empty(batch, n_chunks, dim, **f)
        dbias_part = torch.empty(batch, n_chunks, dim, **f)
        dh0 = torch.empty(batch, dim, d_state, **f) if initial_state is not None else None
        dummy = u
        flags = dict(HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
                     SOFTPLUS=delta_softplus, HAS_H0=initial_state is not None, REVERSE=reverse,
                     STATES_PER_ITER=BWD_STATES_PER_ITER, ACC=acc, **plan.bwd_blocks())
        A_work = A.to(work).contiguous()
        A2 = (A_work * LOG2E).contiguous()
        bias_or_dummy = delta_bias if delta_bias is not None else dummy
        z_or_dummy = z if z is not None else dummy
        inputs = (u, delta, A_work, A2, Bg, Cg, D if D is not None else dummy, z_or_dummy, bias_or_dummy, dout,
                  tile_states)
        outputs = (du, ddelta, dz if dz is not None else dummy, dA_part, dB, dC, dD_part, dbias_part,
                   dh0 if dh0 is not None else dummy)
        dlast = dlast.contiguous() if dlast is not None else None
        g_carry = torch.empty(2, batch, dim, n_chunks, d_state, **f)  # [0]: g entering each chunk; [1]: scratch
        g_enter = g_carry[0]
        if n_chunks == 1:
            if dlast is not None:
                g_enter.copy_(dlast.view(batch, dim, 1, d_state))
            else:
                g_enter.zero_()
        else:
            g_local = torch.empty(batch, dim, n_chunks, d_state, **f)
            g_decay = torch.empty_like(g_local)
            _bwd_summary_kernel[plan.summary_grid(n_chunks)](
                delta, A2, Cg, z_or_dummy, bias_or_dummy, dout, g_local, g_decay,
                *plan.summary_sizes(plan.bwd_chunk_len, n_chunks),
                HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=delta_softplus, REVERSE=reverse,
                ACC=acc, **plan.summary_blocks(),
            )
            _chunk_carry_kernel[plan.carry_grid](
                dlast if dlast is not None else dummy, g_local, g_decay, g_enter, torch.empty_like(dA_part[:, 0]),
                d_state, n_chunks, HAS_H0=dlast is not None, BACKWARD=True, ACC=acc, **plan.carry_blocks(n_chunks),
            )
        _scan_bwd_kernel[plan.bwd_grid](
            *inputs, g_carry, *outputs, *plan.bwd_sizes(), **flags,
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
