"""How the Triton scan takes its inputs as they lie: views off the 16-byte grid, and B and C read in place as views
of x_proj's output (a batch stride), against the reference or against contiguous copies."""

from __future__ import annotations

import pytest
import torch
from scan_cases import DEVICE, Case, assert_close, run, tuning

from seqmamba.kernels.scan import triton_usable

pytestmark = pytest.mark.skipif(not triton_usable(DEVICE), reason="needs triton (CUDA, or TRITON_INTERPRET=1)")



def test_triton_repeated_calls_and_views_off_the_16_byte_grid():
    """On a GPU the second call of a kind launches the kernels compiled by the first (kernels/_fast_launch.py);
    inputs that start 4 bytes past a 16-byte boundary must get kernels compiled for them, not those."""
    case = Case(length=64, dim=4, d_state=4, batch=2)
    expected = run(case, case.inputs(seed=29, dtype=torch.float32), "reference")
    for _ in range(2):
        got = run(case, case.inputs(seed=29, dtype=torch.float32), "triton")
        assert_close(expected, got, rtol=1e-5, atol=1e-5, label="aligned")
    shifted = {}
    for key, value in case.inputs(seed=29, dtype=torch.float32).items():
        if value is None:
            shifted[key] = None
            continue
        flat = torch.cat([value.detach().new_zeros(1), value.detach().flatten()])  # one float32 ahead
        shifted[key] = flat[1:].view(value.shape).requires_grad_()
        assert shifted[key].data_ptr() % 16 == 4
    for _ in range(2):
        assert_close(expected, run(case, shifted, "triton"), rtol=1e-5, atol=1e-5, label="off the grid")


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("dtype", "words"), [(torch.float64, 0), (torch.bfloat16, 2)])
def test_triton_reads_b_and_c_where_they_lie_in_x_proj_output(reverse, dtype, words):
    """A Mamba block's B and C are views of x_proj's output (batch, dt_rank + 2N, L): each batch row whole,
    the batch stride (dt_rank + 2N) * L. The kernels read them there (no copy: `_batch_rows` hands back the views)
    and every pass, over several chunks both ways, gives what contiguous copies give, gradients too. A view
    whose rows are not whole, or off the 16-byte grid, is copied."""
    from seqmamba.kernels import scan_triton

    knobs = tuning(min_chunk_steps=1, bwd_min_chunk_steps=1, target_programs=3, bwd_target_programs=2,
                   bc_words=words)
    case = Case(length=200, dim=3, d_state=3, batch=2, reverse=reverse)
    values = {k: (v.detach() if v is not None else None) for k, v in case.inputs(seed=37).items()}
    rank = 8  # dt_rank: the rows of x_dbl before B
    packed = torch.cat([torch.randn(2, rank, 200, dtype=torch.float64), values["B"].cpu(), values["C"].cpu()], 1)
    packed = packed.to(device=DEVICE, dtype=dtype)  # (batch, dt_rank + 2N, L)
    B, C = packed[:, rank:rank + 3], packed[:, rank + 3:]  # (batch, N, L) views, batch stride 14 * 200
    rows, stride = scan_triton._batch_rows(B.unsqueeze(1), C.unsqueeze(1))
    assert stride == (rank + 6) * 200 and rows[0].data_ptr() == B.data_ptr() and rows[1].data_ptr() == C.data_ptr()
    work = torch.float64 if dtype == torch.float64 else torch.float32
    others = {k: (v.to(work).requires_grad_() if v is not None else None) for k, v in values.items()
              if k not in ("B", "C")}
    leaf = packed.detach().clone().requires_grad_()  # the views' gradients go through it
    as_views = run(case, {**others, "B": leaf[:, rank:rank + 3], "C": leaf[:, rank + 3:]}, "triton", tuning=knobs)
    copies = {"B": B.detach().contiguous().requires_grad_(), "C": C.detach().contiguous().requires_grad_()}
    as_copies = run(case, {**others, **copies}, "triton", tuning=knobs)
    tol = 1e-12 if dtype == torch.float64 else 1e-6  # on a GPU the backward's atomics add in any order
    assert_close(as_copies, as_views, rtol=tol, atol=tol, label="views against copies")
    shifted = torch.cat([packed.new_zeros(1), packed.flatten()])[1:].view(packed.shape)  # 1 element off the grid
    misaligned = shifted[:, rank:rank + 3].unsqueeze(1)  # rows whole, not 16-byte aligned
    rows, stride = scan_triton._batch_rows(misaligned, misaligned)
    assert rows[0].is_contiguous() and stride == 3 * 200
    strided_l = packed[:, rank:rank + 3, ::2].unsqueeze(1)  # steps not adjacent
    assert scan_triton._batch_rows(strided_l, strided_l)[0][0].is_contiguous()
