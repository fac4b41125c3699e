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
tile's states from the saved tile-entering states (O(batch*dim*L*N/bwd_block_l)): no
(batch, dim, L, N) tensor is ever kept. Its dB and dC sum over the blocks of channels of a group: by
default with atomic adds (the last bits vary between runs); with `deterministic` through a partial buffer
per block, summed here in a fixed order (one (batch, G, N, L) copy per block of a group more memory).
`reverse=True` walks chunks, tiles and scans backwards in place: no flipped copies.

Computation is in float32 (float64 for float64 inputs); loads and stores keep the tensors' dtypes.
Block sizes, chunk targets and code paths come from a `ScanTuning` (`scan_tuning.py`: a preset per
architecture), passed down from the caller. Runs on CUDA, or on a CPU under TRITON_INTERPRET=1. The readable
reference is `scan_reference.py`; tests/kernels holds every backend equal to it.
"""
from __future__ import annotations

import torch

from ._fast_launch import interpreting, launch, recording, records_like_forward
from ._launch_math import cdiv, next_power_of_2
from ._validate import grouped, state_dtype
from .scan_tuning import ScanTuning, preset

try:
    import triton
except ImportError:  # pragma: no cover - exercised only where triton is missing
    triton = None


def available() -> bool:
    return triton is not None


LOG2E = 1.4426950408889634  # exp(x) = exp2(x * log2 e): the kernels take exp2 of delta * A2

if triton is not None:
    from .scan_triton_bwd import scan_bwd_kernel as _scan_bwd_kernel
    from .scan_triton_carry import chunk_carry_kernel as _chunk_carry_kernel
    from .scan_triton_fwd import scan_fwd_kernel as _scan_fwd_kernel
    from .scan_triton_summary import bwd_summary_kernel as _bwd_summary_kernel
    from .scan_triton_summary import fwd_summary_kernel as _fwd_summary_kernel


def _options(cap: int = 0) -> dict:
    """Compile options of every launch; cap: a register cap (0: the compiler's choice).

    FP fusion is asked for by name: the recurrences are written as a * h + x to compile to fused multiply-adds,
    and Triton 3.10 turns implicit fusion off by default (3.9 warns that it will)."""
    return dict(enable_fp_fusion=True, **(dict(maxnreg=cap) if cap and not interpreting() else {}))


def _tile_steps(element_size: int, tuning: ScanTuning) -> tuple[int, int]:
    """Forward and backward tile lengths (powers of two, the backward's a multiple of the forward's)."""
    fwd = tuning.block_l or max(2, 16 // element_size)
    return fwd, max(fwd, tuning.bwd_block_l)


def _chunking(n_tiles: int, tile_steps: int, programs: int, target: int, min_steps: int,
              interpret_chunks: int | None = None) -> tuple[int, int]:
    """Tiles per chunk and number of chunks so that programs * chunks reaches `target`.

    `interpret_chunks` (under TRITON_INTERPRET=1): the chunks wanted instead, so that the tests' small
    shapes still cross chunk boundaries."""
    if interpret_chunks is not None or n_tiles == 0:
        want = min(n_tiles, interpret_chunks or 0)
    else:
        want = max(1, min(n_tiles, -(-target // programs), n_tiles * tile_steps // max(1, min_steps)))
    tiles_per_chunk = max(1, -(-n_tiles // want))
    return tiles_per_chunk, max(1, -(-n_tiles // tiles_per_chunk))


class _Plan:
    """Block sizes and grids of one scan call under one tuning. Chunks are whole backward tiles, which are
    whole forward tiles; the summary pass walks chunks in its own (smaller) steps. The forward and the
    backward may cut L into different chunks: the backward's saved states are per backward tile, whatever
    the chunks."""

    def __init__(self, u, A, groups: int, directions: int, tuning: ScanTuning):
        t = self.tuning = tuning
        batch, self.dim, self.length = u.shape
        batch *= directions  # both directions of a bidirectional call share the batch grid axis
        self.batch = batch
        interpret = interpreting()
        self.d_state = A.shape[1]
        self.groups = groups
        self.per_group = self.dim // groups
        self.block_n = next_power_of_2(max(self.d_state, 1))
        self.block_l, self.bwd_block_l = _tile_steps(u.element_size(), t)
        self.state_every = self.bwd_block_l // self.block_l
        self.block_d, self.num_warps = self._forward_block(batch)
        self.blocks_per_group = cdiv(self.per_group, self.block_d)
        self.n_bwd_tiles = cdiv(self.length, self.bwd_block_l)
        programs = batch * groups * self.blocks_per_group
        self.bwd_tiles_per_chunk, self.n_chunks = _chunking(self.n_bwd_tiles, self.bwd_block_l, programs,
                                                             t.target_programs, t.min_chunk_steps,
                                                             3 if interpret else None)
        self.n_tiles = cdiv(self.length, self.block_l)
        self.tiles_per_chunk = self.bwd_tiles_per_chunk * self.state_every
        self.chunk_len = self.bwd_tiles_per_chunk * self.bwd_block_l
        self.grid = (batch, groups * self.blocks_per_group, self.n_chunks)
        self.prefetch = bool(t.prefetch) and (self.block_l < 8 or self.n_chunks > 1)
        self.bc_ahead = bool(t.bc_ahead) and self.block_l < 8
        self.bc_keep = bool(t.bc_keep) and self.block_l < 8
        # A trip past a chunk's tiles must lie past the sequence's end (every step masked): whole trips per chunk.
        # Not in the fused two-direction kernel: unrolled twice, its float32 variant compiled for 59 s against 8
        # (sm_90, on a CPU: Triton's coalescing pass grows with the square of the code) for a forward 1-13 % faster.
        unroll = max(1, t.short_tile_unroll) if self.block_l < 8 and directions == 1 else 1
        self.unroll = unroll if self.n_chunks == 1 or self.tiles_per_chunk % unroll == 0 else 1
        # The summary pass keeps a (BLOCK_D, BLOCK_N, BLOCK_L) accumulator: its own, smaller tiles, which
        # must divide the chunk (powers of two no longer than the backward tile do).
        self.summary_block_l = min(t.summary_block_l, self.bwd_block_l)
        self.summary_block_d = max(1, min(next_power_of_2(self.per_group),
                                          t.summary_tile_values // (self.summary_block_l * self.block_n)))
        self.summary_blocks_per_group = cdiv(self.per_group, self.summary_block_d)
        self.bwd_block_d = max(1, min(next_power_of_2(self.per_group), t.bwd_tile_values // self.bwd_block_l))
        self.bwd_blocks_per_group = cdiv(self.per_group, self.bwd_block_d)
        if t.bwd_target_programs:
            bwd_programs = batch * groups * self.bwd_blocks_per_group
            self.bwd_chunk_tiles, self.bwd_n_chunks = _chunking(self.n_bwd_tiles, self.bwd_block_l, bwd_programs,
                                                                t.bwd_target_programs, t.bwd_min_chunk_steps,
                                                                2 if interpret else None)
        else:
            self.bwd_chunk_tiles, self.bwd_n_chunks = self.bwd_tiles_per_chunk, self.n_chunks
        self.bwd_chunk_len = self.bwd_chunk_tiles * self.bwd_block_l
        self.bwd_grid = (batch, groups * self.bwd_blocks_per_group, self.bwd_n_chunks)
        self.carry_grid = (batch * self.dim,)

    def _forward_block(self, batch: int) -> tuple[int, int]:
        """(channels, warps) of a forward program: block_d on num_warps, or a smaller block (down to
        min_block_d) on proportionally fewer warps, at least one, where that alone brings the grid to the
        warps of target_programs full programs, so that the forward needs no summary pass. In a block smaller
        than a warp's threads a tile row is split across threads (16 channels on one warp: 4 steps in each of
        two)."""
        t = self.tuning
        block_d = max(1, min(next_power_of_2(self.per_group), t.block_d))

        def warps(block: int) -> int:
            return max(1, t.num_warps * block // t.block_d)

        def grid_warps(block: int) -> int:
            return batch * self.groups * cdiv(self.per_group, block) * warps(block)

        want = t.target_programs * t.num_warps
        smaller = block_d
        while t.min_block_d and smaller > t.min_block_d and grid_warps(smaller) < want:
            smaller //= 2
        if grid_warps(block_d) < want <= grid_warps(smaller):
            return smaller, warps(smaller)
        return block_d, t.num_warps

    def carry_blocks(self, n_chunks: int):
        block_k = min(self.tuning.carry_block_chunks, next_power_of_2(n_chunks))
        return dict(BLOCK_K=block_k, BLOCK_N=self.block_n, num_warps=1, **_options())

    def sizes(self, bc_batch: int):
        return (self.dim, self.length, self.d_state, self.groups, bc_batch, self.per_group, self.blocks_per_group,
                self.n_tiles, self.tiles_per_chunk, self.n_chunks, self.n_bwd_tiles)

    def summary_grid(self, n_chunks: int):
        return (self.batch, self.groups * self.summary_blocks_per_group, n_chunks)

    def summary_sizes(self, chunk_len: int, n_chunks: int, bc_batch: int):
        return (self.dim, self.length, self.d_state, self.groups, bc_batch, self.per_group,
                self.summary_blocks_per_group, chunk_len, n_chunks)

    def summary_blocks(self):
        return dict(BLOCK_D=self.summary_block_d, BLOCK_L=self.summary_block_l, BLOCK_N=self.block_n,
                    num_warps=self.tuning.num_warps, **_options())

    def blocks(self):
        return dict(STATE_EVERY=self.state_every, PREFETCH=self.prefetch, BC_AHEAD=self.bc_ahead, BC_KEEP=self.bc_keep,
                    UNROLL=self.unroll, BLOCK_D=self.block_d, BLOCK_L=self.block_l, BLOCK_N=self.block_n,
                    num_warps=self.num_warps, **_options(self.tuning.maxnreg))

    def bwd_sizes(self, bc_batch: int):
        return (self.dim, self.length, self.d_state, self.groups, bc_batch, self.per_group, self.bwd_blocks_per_group,
                self.n_bwd_tiles, self.bwd_chunk_tiles, self.bwd_n_chunks)

    def bwd_blocks(self):
        return dict(BLOCK_D=self.bwd_block_d, BLOCK_L=self.bwd_block_l, BLOCK_N=self.block_n,
                    num_warps=self.tuning.bwd_num_warps, **_options(self.tuning.bwd_maxnreg))


SOFTPLUS_IN_FWD_SUMMARY, SOFTPLUS_IN_FWD, SOFTPLUS_IN_BWD_SUMMARY, SOFTPLUS_IN_BWD = 1, 2, 4, 8  # fast_softplus bits


def _softplus_mode(delta_softplus: bool, work: torch.dtype, kernel_bit: int, tuning: ScanTuning) -> int:
    """A kernel's SOFTPLUS: 0 none, 1 exact, 2 with the approximate log2 (PTX: float32 on an NVIDIA GPU only)."""
    if not delta_softplus:
        return 0
    nvidia = not interpreting() and torch.version.hip is None
    return 2 if tuning.fast_softplus & kernel_bit and work == torch.float32 and nvidia else 1


def _bc_words(plan: _Plan, keep: bool, length: int, *bc: torch.Tensor) -> bool:
    """Whether the forward reads B and C as 32-bit words (bc_words): all bf16, rows of whole words (even length),
    and, under 1, a forward that keeps its tile states or works a smaller block than block_d."""
    words = plan.tuning.bc_words
    if not words or length % 2 or any(t.dtype != torch.bfloat16 for t in bc):
        return False
    return words == 2 or keep or plan.block_d < plan.tuning.block_d


def _batch_rows(*bc: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], int]:
    """B and C, each (batch, G, N, L), as the kernels read them, and their one batch stride. A tensor whose batch
    rows are each one contiguous block, 16-byte aligned, is read where it lies, so B and C can be views of x_proj's
    output (whose batch rows hold dt_low too) with no copy; otherwise all are made contiguous."""
    batch, groups, d_state, length = bc[0].shape
    row = groups * d_state * length
    if batch == 1:  # one row: its stride is never used
        strides = {row}
    else:
        strides = {t.stride(0) for t in bc}
    rows_whole = all(
        all(size == 1 or stride == want for size, stride, want in zip(t.shape[1:], t.stride()[1:],
                                                                       (d_state * length, length, 1)))
        and t.data_ptr() % 16 == 0 and (batch == 1 or (t.stride(0) * t.element_size()) % 16 == 0)
        for t in bc
    )
    if rows_whole and len(strides) == 1:
        return bc, strides.pop()
    return tuple(t.contiguous() for t in bc), row


def _stacked(first: torch.Tensor | None, second: torch.Tensor | None) -> torch.Tensor | None:
    """A per-direction parameter ((dim,) or (dim, N)) of both directions as one (2, ...) tensor."""
    if first is None:
        return None
    return first.contiguous() if second is None else torch.stack((first, second)).contiguous()


def _states_entering_chunks(plan: _Plan, inputs: tuple, bc_batch: int, flags: dict, h0: torch.Tensor, has_h0: bool,
                            last: torch.Tensor) -> torch.Tensor:
    """The forward's passes 1 and 2: each chunk's summary from a zero start, then the carry over the chunks.
    Returns the state entering every chunk, (rows, dim, n_chunks, N), and writes the last state into `last`."""
    rows, n_chunks, d_state = last.shape[0], plan.n_chunks, plan.d_state
    local = torch.empty(rows, plan.dim, n_chunks, d_state, device=last.device, dtype=last.dtype)
    decay, enter = torch.empty_like(local), torch.empty_like(local)
    fast = plan.tuning.fast_launch
    launch(_fwd_summary_kernel, plan.summary_grid(n_chunks),
           (*inputs, local, decay, *plan.summary_sizes(plan.chunk_len, n_chunks, bc_batch)),
           dict(**flags, **plan.summary_blocks()), fast)
    launch(_chunk_carry_kernel, plan.carry_grid, (h0, local, decay, enter, last, d_state, n_chunks),
           dict(HAS_H0=has_h0, BACKWARD=False, **plan.carry_blocks(n_chunks)), fast)
    return enter


def _grads_entering_chunks(plan: _Plan, inputs: tuple, bc_batch: int, flags: dict, dlast: torch.Tensor,
                           has_dlast: bool, g_enter: torch.Tensor) -> None:
    """The backward's passes 1 and 2, against the walking order: each chunk's g = dL/dh at its first step from
    a zero start at its far end, then the carry over the chunks into `g_enter` (rows, dim, n_chunks, N)."""
    rows, dim, n_chunks, d_state = g_enter.shape
    g_local = torch.empty_like(g_enter)
    g_decay = torch.empty_like(g_enter)
    fast = plan.tuning.fast_launch
    launch(_bwd_summary_kernel, plan.summary_grid(n_chunks),
           (*inputs, g_local, g_decay, *plan.summary_sizes(plan.bwd_chunk_len, n_chunks, bc_batch)),
           dict(**flags, **plan.summary_blocks()), fast)
    launch(_chunk_carry_kernel, plan.carry_grid,
           (dlast, g_local, g_decay, g_enter, torch.empty(rows, dim, d_state, device=g_enter.device,
                                                          dtype=g_enter.dtype), d_state, n_chunks),
           dict(HAS_H0=has_dlast, BACKWARD=True, **plan.carry_blocks(n_chunks)), fast)


class _TritonScan(torch.autograd.Function):
    """One scan, or two over the same z in one launch per pass (`rev` given): the second runs the other way
    with its own inputs, and the outputs come stacked (2, batch, dim, L). deterministic: a backward whose
    gradients repeat bit for bit (no atomics); the forward is so either way."""

    @staticmethod
    def forward(ctx, tuning, deterministic, grad_enabled, delta_softplus, reverse, z, initial_state, u, delta, A,
                B, C, D, delta_bias, *rev):
        dirs = 2 if rev else 1
        u_r, delta_r, A_r, B_r, C_r, D_r, bias_r = rev if rev else (None,) * 7
        batch, dim, length = u.shape
        d_state = A.shape[1]
        work = state_dtype(u, delta, A, B, C, D, z, delta_bias, initial_state, *rev)
        bc, bc_batch = _batch_rows(grouped(B), grouped(C), *((grouped(B_r), grouped(C_r)) if rev else ()))
        Bg, Cg, Bg_r, Cg_r = bc if rev else (*bc, *bc)
        u, delta = u.contiguous(), delta.contiguous()
        u_r, delta_r = (u_r.contiguous(), delta_r.contiguous()) if rev else (u, delta)
        A_all, D_all, bias_all = _stacked(A, A_r), _stacked(D, D_r), _stacked(delta_bias, bias_r)
        z = z.contiguous() if z is not None else None
        h0 = initial_state.contiguous() if initial_state is not None else None
        plan = _plan(u, A, Bg.shape[1], dirs, tuning)
        rows = dirs * batch
        f = dict(device=u.device, dtype=work)

        out = u.new_empty(rows, dim, length)
        last = torch.empty(rows, dim, d_state, **f)
        # The backward recomputes tiles from their entering states: keep them only where a backward can follow.
        # (Under no_grad, needs_input_grad still names the parameters: inference would store them for nothing.)
        keep = grad_enabled and any(ctx.needs_input_grad)
        tile_states = torch.empty(rows, plan.n_bwd_tiles if keep else 0, dim, d_state, **f)
        dummy = u
        D_arg = D_all if D_all is not None else dummy
        bias_arg = bias_all if bias_all is not None else dummy
        words = _bc_words(plan, keep, length, Bg, Cg, Bg_r, Cg_r)
        flags = dict(HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
                     SOFTPLUS=_softplus_mode(delta_softplus, work, SOFTPLUS_IN_FWD if words else 0, tuning),
                     REVERSE=reverse, BIDIRECTIONAL=bool(rev), BC_WORDS=words, **plan.blocks())
        A2 = (A_all.to(work) * LOG2E).contiguous()  # (dirs, dim, N) or (dim, N)
        args = (u, u_r, delta, delta_r, A2, Bg, Bg_r, Cg, Cg_r, D_arg, z if z is not None else dummy, bias_arg)
        if plan.n_chunks == 1:
            enter = (h0.view(batch, dim, 1, d_state).to(work) if h0 is not None
                     else torch.zeros(rows, dim, 1, d_state, **f))
        else:
            summary_flags = dict(HAS_BIAS=delta_bias is not None, REVERSE=reverse, BIDIRECTIONAL=bool(rev),
                                 SOFTPLUS=_softplus_mode(delta_softplus, work, SOFTPLUS_IN_FWD_SUMMARY, tuning))
            enter = _states_entering_chunks(plan, (u, u_r, delta, delta_r, A2, Bg, Bg_r, bias_arg), bc_batch,
                                            summary_flags, h0 if h0 is not None else dummy, h0 is not None, last)
        launch(_scan_fwd_kernel, plan.grid, (*args, enter, out, tile_states, last, *plan.sizes(bc_batch)),
               dict(STORE_STATES=keep, **flags), tuning.fast_launch)
        ctx.save_for_backward(u, delta, A_all, A2, Bg, Cg, D_all, z, bias_all, initial_state, tile_states,
                              *((u_r, delta_r, Bg_r, Cg_r) if rev else ()))
        shared = (B.dim() == 3, C.dim() == 3)
        ctx.settings = (delta_softplus, reverse, work, shared, plan, dirs, (A.dtype, Bg.dtype, Cg.dtype),
                        deterministic, bc_batch)
        ctx.set_materialize_grads(False)
        ctx.recorded = recording()  # a dry run's backward records too (it may run in autograd's own thread)
        if rev:
            return out.view(dirs, batch, dim, length), last.view(dirs, batch, dim, d_state)
        return out, last

    @staticmethod
    @records_like_forward
    def backward(ctx, dout, dlast):
        u, delta, A_all, A2, Bg, Cg, D_all, z, bias_all, initial_state, tile_states, *rev = ctx.saved_tensors
        delta_softplus, reverse, work, shared, plan, dirs, dtypes, deterministic, bc_batch = ctx.settings
        tuning = plan.tuning
        u_r, delta_r, Bg_r, Cg_r = rev if rev else (u, delta, Bg, Cg)
        batch, dim, length = u.shape
        rows = dirs * batch
        d_state = A_all.shape[-1]
        groups = Bg.shape[1]
        dout = u.new_zeros(rows, dim, length) if dout is None else dout.contiguous().view(rows, dim, length)
        f = dict(device=u.device, dtype=work)
        du, ddelta = u.new_empty(rows, dim, length), delta.new_empty(rows, dim, length)
        dz = z.new_empty(rows, dim, length) if z is not None else None
        n_chunks = plan.bwd_n_chunks
        dA_part = torch.empty(rows, n_chunks, dim, d_state, **f)
        # dB and dC: zeros the blocks of a group add into, or under deterministic a slice per block, each
        # written whole by its block and summed below.
        per_block = (plan.bwd_blocks_per_group,) if deterministic else ()
        dB = (torch.empty if deterministic else torch.zeros)(rows, groups, *per_block, d_state, length, **f)
        dC = torch.empty_like(dB) if deterministic else torch.zeros_like(dB)
        dD_part = torch.empty(rows, n_chunks, dim, **f)
        dbias_part = torch.empty(rows, n_chunks, dim, **f)
        dh0 = torch.empty(batch, dim, d_state, **f) if initial_state is not None else None
        dummy = u
        flags = dict(HAS_D=D_all is not None, HAS_Z=z is not None, HAS_BIAS=bias_all is not None,
                     SOFTPLUS=_softplus_mode(delta_softplus, work, SOFTPLUS_IN_BWD, tuning),
                     HAS_H0=initial_state is not None, REVERSE=reverse, STATES_PER_ITER=tuning.bwd_states_per_iter,
                     BIDIRECTIONAL=bool(rev), DETERMINISTIC=deterministic, **plan.bwd_blocks())
        A_work = A_all.to(work).contiguous()
        bias_or_dummy = bias_all if bias_all is not None else dummy
        z_or_dummy = z if z is not None else dummy
        inputs = (u, u_r, delta, delta_r, A_work, A2, Bg, Bg_r, Cg, Cg_r, D_all if D_all is not None else dummy,
                  z_or_dummy, bias_or_dummy, dout, tile_states)
        outputs = (du, ddelta, dz if dz is not None else dummy, dA_part, dB, dC, dD_part, dbias_part,
                   dh0 if dh0 is not None else dummy)
        dlast = dlast.contiguous() if dlast is not None else None
        g_carry = torch.empty(2, rows, dim, n_chunks, d_state, **f)  # [0]: g entering each chunk; [1]: scratch
        g_enter = g_carry[0]
        if n_chunks == 1:
            if dlast is not None:
                g_enter.copy_(dlast.view(rows, dim, 1, d_state))
            else:
                g_enter.zero_()
        else:
            summary_flags = dict(HAS_Z=z is not None, HAS_BIAS=bias_all is not None, REVERSE=reverse,
                                 BIDIRECTIONAL=bool(rev),
                                 SOFTPLUS=_softplus_mode(delta_softplus, work, SOFTPLUS_IN_BWD_SUMMARY, tuning))
            _grads_entering_chunks(plan, (delta, delta_r, A2, Cg, Cg_r, z_or_dummy, bias_or_dummy, dout), bc_batch,
                                   summary_flags, dlast.view(rows, dim, d_state) if dlast is not None else dummy,
                                   dlast is not None, g_enter)
        launch(_scan_bwd_kernel, plan.bwd_grid, (*inputs, g_carry, *outputs, *plan.bwd_sizes(bc_batch)), flags,
               tuning.fast_launch)
        if deterministic:  # the blocks' shares, in block order (a torch reduction: no atomics either)
            dB, dC = _sum_blocks(dB), _sum_blocks(dC)
        A_dtype, B_dtype, C_dtype = dtypes

        def per_direction(part: torch.Tensor) -> torch.Tensor:
            """(rows, n_chunks, ...) partial sums -> (dim, ...) per direction, (2, dim, ...) stacked."""
            summed = part.view(dirs, batch * n_chunks, *part.shape[2:]).sum(1)
            return summed if dirs == 2 else summed[0]

        def direction(t: torch.Tensor, k: int) -> torch.Tensor:
            return t[k * batch:(k + 1) * batch]

        def bc_grad(t: torch.Tensor, is_shared: bool, dtype: torch.dtype) -> torch.Tensor:
            return (t.squeeze(1) if is_shared else t).to(dtype)

        dA = per_direction(dA_part).to(A_dtype)
        dD = per_direction(dD_part).to(D_all.dtype) if D_all is not None else None
        dbias = per_direction(dbias_part).to(bias_all.dtype) if bias_all is not None else None
        grads = []
        for k in range(dirs):
            grads += [direction(du, k), direction(ddelta, k), dA[k] if dirs == 2 else dA,
                      bc_grad(direction(dB, k), shared[0], B_dtype), bc_grad(direction(dC, k), shared[1], C_dtype),
                      None if dD is None else (dD[k] if dirs == 2 else dD),
                      None if dbias is None else (dbias[k] if dirs == 2 else dbias)]
        if dz is not None and dirs == 2:
            dz = dz.view(dirs, batch, dim, length).sum(0)
        dh0 = dh0.to(initial_state.dtype) if dh0 is not None else None
        return (None, None, None, None, None, dz, dh0, *grads)


def _sum_blocks(part: torch.Tensor) -> torch.Tensor:
    """(rows, G, blocks, N, L) shares of the blocks of each group -> (rows, G, N, L); one block: a view."""
    return part.squeeze(2) if part.shape[2] == 1 else part.sum(2)


_plans: dict = {}  # launch plans by sizes and tuning


def _plan(u: torch.Tensor, A: torch.Tensor, groups: int, directions: int, tuning: ScanTuning) -> _Plan:
    """The launch plan for these sizes, made once: at short L the host's Python is what the GPU waits on."""
    key = (tuple(u.shape), u.element_size(), A.shape[1], groups, directions, interpreting(), tuning)
    plan = _plans.get(key)
    if plan is None:
        if len(_plans) > 256:  # many distinct lengths (variable-length inference): keep it bounded
            _plans.clear()
        plan = _plans[key] = _Plan(u, A, groups, directions, tuning)
    return plan


def scan_checked(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor | None,
    z: torch.Tensor | None, delta_bias: torch.Tensor | None, delta_softplus: bool, return_last_state: bool, *,
    reverse: bool, initial_state: torch.Tensor | None, tuning: ScanTuning | None = None,
    deterministic: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The Triton scan, same contract as `seqmamba.kernels.selective_scan`, which validates the arguments and
    checks that triton is there (validated once: at short L every microsecond shows). tuning: the knobs
    (default: `scan_tuning.preset` of u's device); deterministic: a backward without atomics (resolved by the
    caller: a bool)."""
    tuning = tuning or preset(u.device)
    out, last = _TritonScan.apply(tuning, deterministic, torch.is_grad_enabled(), delta_softplus, reverse, z,
                                  initial_state, u, delta, A, B, C, D, delta_bias)
    return (out, last) if return_last_state else out


def selective_scan_bidirectional_triton(fwd, rev, z: torch.Tensor | None, delta_softplus: bool,
                                        tuning: ScanTuning | None = None,
                                        deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Both directions in one launch per pass; see `seqmamba.kernels.selective_scan_bidirectional`."""
    if triton is None:
        raise RuntimeError("selective_scan_bidirectional: backend='triton' needs the triton package")
    tuning = tuning or preset(fwd.u.device)
    out, _last = _TritonScan.apply(tuning, deterministic, torch.is_grad_enabled(), delta_softplus, False, z, None,
                                   *fwd, *rev)  # (2, b, d, L)
    return out[0], out[1]
