"""The Triton scan's tuning knobs: one frozen `ScanTuning` per architecture, passed to the launchers.

A call takes `preset(device)` unless it is given a tuning (`selective_scan(..., tuning=...)`); a benchmark or a
test changes knobs with `dataclasses.replace(HOPPER, block_d=32)`, never by changing this module. The
measurements behind Hopper's values, and the sweeps that chose them, are in docs/benchmarks/scan_tune_h100.txt.
"""

from __future__ import annotations

import dataclasses
import functools

import torch

from ._fast_launch import interpreting


@dataclasses.dataclass(frozen=True)
class ScanTuning:
    """What a launch plan is made of, beyond the call's sizes. Every knob is a non-negative integer (0/1 for
    on/off), as benchmarks/scan_tune.py and scan_short.py sweep them (``KNOB=value``, the name in upper case)."""

    # How L is cut into chunks, so that (batch x channel blocks x chunks) programs fill the GPU.
    target_programs: int  # forward programs wanted: enough to fill the GPU a few times; more chunks only add carry work
    min_chunk_steps: int  # no forward chunk shorter: a short chunk leaves its program too little to walk
    bwd_target_programs: int  # the backward's own program target (0: it takes the forward's chunks)
    bwd_min_chunk_steps: int  # the same floor for the backward, whose programs walk longer tiles
    # Tiles and blocks of the forward.
    block_l: int  # steps per tile (0: one 16-byte load per row, so that a tile's scan stays in one thread)
    block_d: int  # channels per program, one tile row per thread
    num_warps: int  # warps of a program of block_d channels
    min_block_d: int  # the block halves down to this (0: never) where that, not chunking, fills the GPU
    prefetch: int  # load the next tile's u, delta and z a trip ahead (short tiles or several chunks)
    bc_ahead: int  # short (float32) tiles: load the next state's B and C rows while working this state
    bc_keep: int  # short tiles: ask L1 to keep B and C's lines (evict_last) for the following tiles
    short_tile_unroll: int  # short tiles per trip of the loop: a longer stretch for ptxas to interleave
    bc_words: int  # read bf16 B and C as 32-bit words: 0 never, 1 where that measured faster, 2 always
    maxnreg: int  # register cap (0: the compiler's): more warps per SM against spills
    # The summary and carry passes of a scan in several chunks.
    summary_block_l: int  # steps of the summary's (channels, states, steps) accumulator
    summary_tile_values: int  # that accumulator's size in values, which registers bound
    carry_block_chunks: int  # chunks the carry pass scans at once
    # The backward.
    bwd_block_l: int  # steps per backward tile (a multiple of the forward's): one saved state per tile
    bwd_tile_values: int  # a program's block in values (bwd_tile_values // bwd_block_l channels), which registers bound
    bwd_num_warps: int  # warps of a backward program
    bwd_states_per_iter: int  # states per trip of the loop over states: more overlap, more registers
    bwd_maxnreg: int  # the backward's register cap (0: the compiler's)
    # Every pass, and the host.
    fast_softplus: int  # kernels (SOFTPLUS_IN_* bits) taking softplus with the approximate log2 (NVIDIA): fewer steps
    fast_launch: int  # launch compiled kernels directly (kernels/_fast_launch.py); 0: through Triton every call

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if type(value) is not int or value < 0:
                raise ValueError(f"ScanTuning.{field.name} must be a non-negative int, got {value!r}")


# sm_90 (H100, H200): every value measured on the H100 (docs/benchmarks/scan_tune_h100.txt).
HOPPER = ScanTuning(
    target_programs=1024, min_chunk_steps=32, bwd_target_programs=2048, bwd_min_chunk_steps=128,
    block_l=0, block_d=64, num_warps=2, min_block_d=16, prefetch=1, bc_ahead=1, bc_keep=1, short_tile_unroll=2,
    bc_words=1, maxnreg=0,
    summary_block_l=16, summary_tile_values=2048, carry_block_chunks=64,
    bwd_block_l=32, bwd_tile_values=512, bwd_num_warps=1, bwd_states_per_iter=1, bwd_maxnreg=0,
    fast_softplus=15, fast_launch=1,
)

# Other GPUs: nothing measured there yet, so Hopper's values until a chip's own sweep says otherwise.
DEFAULT = dataclasses.replace(HOPPER)

# Triton's CPU interpreter (TRITON_INTERPRET=1, the tests): tiles of 8 and 16 steps and carry blocks of 2 chunks,
# so that the tests' short sequences cross tiles, saved-state tiles and carry blocks. (Speed means nothing there;
# the plan also cuts every interpreted scan into 3 forward and 2 backward chunks.)
INTERPRETER = dataclasses.replace(DEFAULT, block_l=8, bwd_block_l=16, carry_block_chunks=2)


def preset(device: torch.device) -> ScanTuning:
    """The tuning a call on `device` takes by default: the interpreter's under TRITON_INTERPRET=1, Hopper's on
    an NVIDIA sm_90 GPU, DEFAULT elsewhere."""
    if interpreting():
        return INTERPRETER
    if device.type != "cuda":
        return DEFAULT
    return _gpu_preset(torch.cuda.current_device() if device.index is None else device.index)


@functools.cache
def _gpu_preset(index: int) -> ScanTuning:
    # ROCm reports its gfx generation as a capability ((9, 4) on an MI300): only CUDA's (9, 0) is Hopper.
    if torch.version.hip is None and torch.cuda.get_device_capability(index) == (9, 0):
        return HOPPER
    return DEFAULT
