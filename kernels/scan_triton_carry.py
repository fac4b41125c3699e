"""Second pass of a multi-chunk Triton scan: the state entering each chunk, from the chunk summaries.

Chunk k maps the state entering it to DECAY[k] * h + LOCAL[k] (elementwise over (channel, state)), so the
entering states are an exclusive scan of those maps along the chunks. A loop over chunks one at a time
waits on two dependent loads per chunk: at batch 1, dim 256, L 2^20 (256 chunks, two programs) that walk
took 0.50 ms on the H100, a twelfth of the forward. Here each program owns one (batch, channel) row, loads
BLOCK_K chunks at once and scans them with `tl.associative_scan`, so the loads of a block are in flight
together and only the block's last state is carried from block to block.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .scan_triton_common import combine, working_dtype


# Counts that change with L and the batch are not specialized on (==1, divisible by 16): a new length reuses
# the compiled kernel (offsets get their alignment from BLOCK_L, d_state and length).
@triton.heuristics({"ACC": working_dtype("CHUNK_LOCAL")})
@triton.jit(do_not_specialize=["n_chunks"])
def chunk_carry_kernel(
    H0, CHUNK_LOCAL, CHUNK_DECAY, ENTER, FINAL,  # (batch, dim, n_chunks, N) but H0 and FINAL (batch, dim, N)
    d_state, n_chunks,
    HAS_H0: tl.constexpr, BACKWARD: tl.constexpr, ACC: tl.constexpr, BLOCK_K: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """ENTER[k] = h; h = DECAY[k] * h + LOCAL[k], k walking up (or down when BACKWARD); FINAL = h. Chunks are
    numbered in the scan's walking order, so a reverse scan's forward pass walks up as well."""
    row = tl.program_id(0).to(tl.int64)  # batch * dim + channel; offsets past 2**31 at long L
    n = tl.arange(0, BLOCK_N)
    k_idx = tl.arange(0, BLOCK_K)
    n_ok = (n < d_state)[None, :]
    h = tl.zeros([BLOCK_N], dtype=ACC)
    if HAS_H0:
        h = tl.load(H0 + row * d_state + n, mask=n < d_state, other=0.0).to(ACC)
    first_walked = BLOCK_K - 1 if BACKWARD else 0  # block positions in walking order
    last_walked = 0 if BACKWARD else BLOCK_K - 1
    step = -1 if BACKWARD else 1
    n_blocks = tl.cdiv(n_chunks, BLOCK_K)
    for j in range(0, n_blocks):
        start = (n_blocks - 1 - j) * BLOCK_K if BACKWARD else j * BLOCK_K
        k = start + k_idx  # (BLOCK_K,)
        ok = (k < n_chunks)[:, None] & n_ok
        offs = (row * n_chunks + k[:, None]) * d_state + n[None, :]  # (BLOCK_K, BLOCK_N)
        # Past the last chunk the map is the identity (decay 1, local 0), so the walk's end carries through.
        decay = tl.load(CHUNK_DECAY + offs, mask=ok, other=1.0).to(ACC)
        local = tl.load(CHUNK_LOCAL + offs, mask=ok, other=0.0).to(ACC)
        is_first = (k_idx == first_walked)[:, None]
        local = tl.where(is_first, decay * h[None, :] + local, local)  # the state entering the block
        _run, after = tl.associative_scan((decay, local), axis=0, combine_fn=combine, reverse=BACKWARD)
        # ENTER of the next chunk in walking order is the state after this one: one step along, as a store.
        next_k = k + step
        tl.store(ENTER + offs + step * d_state, after, mask=(next_k >= 0)[:, None] & (next_k < n_chunks)[:, None]
                 & n_ok)
        tl.store(ENTER + offs, tl.broadcast_to(h[None, :], (BLOCK_K, BLOCK_N)), mask=is_first & ok)
        h = tl.sum(tl.where((k_idx == last_walked)[:, None], after, 0.0), axis=0)
    tl.store(FINAL + row * d_state + n, h, mask=n < d_state)
