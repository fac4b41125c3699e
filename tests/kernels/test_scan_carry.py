"""The carry pass of the multi-chunk Triton scan against the chunk-by-chunk walk it replaces."""

from __future__ import annotations

import pytest
import torch
from scan_cases import DEVICE

from seqmamba.kernels.scan import triton_usable

pytestmark = pytest.mark.skipif(not triton_usable(DEVICE), reason="needs triton (CUDA, or TRITON_INTERPRET=1)")


def walk(h0, local, decay, backward):
    """ENTER[k] = h; h = decay[k] * h + local[k], one chunk at a time. (batch, dim, n_chunks, N) tensors."""
    h = h0.clone()
    enter = torch.empty_like(local)
    order = range(local.shape[2] - 1, -1, -1) if backward else range(local.shape[2])
    for k in order:
        enter[:, :, k] = h
        h = decay[:, :, k] * h + local[:, :, k]
    return enter, h


@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("has_h0", [False, True])
@pytest.mark.parametrize(("n_chunks", "block_k"), [(1, 2), (5, 2), (8, 4), (3, 8)])
def test_carry_matches_the_chunk_walk(backward, has_h0, n_chunks, block_k):
    """Whole and partial blocks of chunks, both walking directions, with and without a starting state."""
    from seqmamba.kernels.scan_triton_carry import chunk_carry_kernel

    g = torch.Generator().manual_seed(n_chunks * 10 + block_k)
    batch, dim, d_state = 2, 3, 5  # d_state below its padded block: the masked states must stay out
    local = torch.randn(batch, dim, n_chunks, d_state, generator=g, dtype=torch.float64).to(DEVICE)
    decay = torch.rand(batch, dim, n_chunks, d_state, generator=g, dtype=torch.float64).to(DEVICE)
    h0 = torch.randn(batch, dim, d_state, generator=g, dtype=torch.float64).to(DEVICE)
    enter, final = torch.full_like(local, float("nan")), torch.full_like(h0, float("nan"))
    import triton.language as tl

    chunk_carry_kernel[(batch * dim,)](h0, local, decay, enter, final, d_state, n_chunks, HAS_H0=has_h0,
                                       BACKWARD=backward, ACC=tl.float64, BLOCK_K=block_k, BLOCK_N=8)
    expected_enter, expected_final = walk(h0 if has_h0 else torch.zeros_like(h0), local, decay, backward)
    torch.testing.assert_close(enter, expected_enter, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(final, expected_final, rtol=1e-12, atol=1e-12)
