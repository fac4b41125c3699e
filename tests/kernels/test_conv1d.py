"""The depthwise conv1d (+ SiLU): the Triton kernels against the torch reference, values and gradients."""

import pytest
import torch
from scan_cases import DEVICE

from seqmamba.kernels import depthwise_conv1d, depthwise_conv1d_ref
from seqmamba.kernels.scan import triton_usable

needs_triton = pytest.mark.skipif(
    not triton_usable(DEVICE),
    reason="the Triton conv kernels need the triton package (Linux), and CUDA or TRITON_INTERPRET=1",
)


def test_reference_is_the_causal_conv_of_the_reversed_sequence():
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(2, 3, 11, generator=g), torch.randn(3, 1, 4, generator=g), torch.randn(3, generator=g)
    flipped = depthwise_conv1d_ref(x.flip(-1), w, b).flip(-1)
    torch.testing.assert_close(depthwise_conv1d_ref(x, w, b, reverse=True), flipped)
    # position t of the causal conv sees x[t-3..t] only
    y = depthwise_conv1d_ref(x, w, b)
    x2 = x.clone()
    x2[..., 6:] += 1.0
    torch.testing.assert_close(depthwise_conv1d_ref(x2, w, b)[..., :6], y[..., :6])


@needs_triton
@pytest.mark.parametrize("shape", [(2, 5, 37, 4), (1, 9, 1030, 4), (3, 3, 7, 2), (1, 4, 3, 4), (2, 2, 20, 1)])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("activation", [None, "silu"])
@pytest.mark.parametrize("has_bias", [True, False])
def test_triton_matches_reference_float64(shape, reverse, activation, has_bias):
    batch, dim, length, k = shape
    g = torch.Generator().manual_seed(sum(shape))
    xz = torch.randn(batch, 2 * dim, length, generator=g, dtype=torch.float64).to(DEVICE)
    x = xz[:, :dim]  # a strided view, as the x half of in_proj's output is
    w = torch.randn(dim, 1, k, generator=g, dtype=torch.float64).to(DEVICE).requires_grad_(True)
    b = torch.randn(dim, generator=g, dtype=torch.float64).to(DEVICE).requires_grad_(True) if has_bias else None
    x_ref, x_tri = x.detach().clone().requires_grad_(True), x.detach().requires_grad_(True)
    y_ref = depthwise_conv1d_ref(x_ref, w, b, reverse, activation)
    y_tri = depthwise_conv1d(x_tri, w, b, reverse, activation, backend="triton")
    torch.testing.assert_close(y_tri, y_ref, rtol=1e-12, atol=1e-12)
    assert depthwise_conv1d(x, w, b, reverse, activation, backend="triton").shape == y_ref.shape
    dy = torch.randn(y_ref.shape, generator=g, dtype=torch.float64).to(DEVICE)
    wrt = [w] + ([b] if has_bias else [])
    grads_ref = torch.autograd.grad(y_ref, [x_ref, *wrt], dy)
    grads_tri = torch.autograd.grad(y_tri, [x_tri, *wrt], dy)
    for name, got, want in zip(("dx", "dweight", "dbias"), grads_tri, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, msg=name)


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_triton_low_precision_inputs_keep_their_dtype(dtype):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 8, 300, generator=g).to(DEVICE, dtype)
    w, b = torch.randn(8, 1, 4, generator=g).to(DEVICE), torch.randn(8, generator=g).to(DEVICE)
    y = depthwise_conv1d(x, w, b, activation="silu", backend="triton")
    assert y.dtype == dtype
    want = depthwise_conv1d_ref(x.double(), w.double(), b.double(), activation="silu")
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(y.double(), want, rtol=tol, atol=tol)


@needs_triton
def test_triton_backward_is_deterministic():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 6, 700, generator=g, dtype=torch.float32).to(DEVICE).requires_grad_(True)
    w = torch.randn(6, 1, 4, generator=g).to(DEVICE).requires_grad_(True)
    b = torch.randn(6, generator=g).to(DEVICE).requires_grad_(True)
    dy = torch.randn(2, 6, 700, generator=g).to(DEVICE)
    runs = [torch.autograd.grad(depthwise_conv1d(x, w, b, True, "silu", backend="triton"), [x, w, b], dy)
            for _ in range(2)]
    for first, second in zip(*runs):
        assert torch.equal(first, second)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="activation"):
        depthwise_conv1d(torch.zeros(1, 2, 3), torch.zeros(2, 1, 4), activation="relu")
    with pytest.raises(ValueError, match=r"\(batch, dim, L\)"):
        depthwise_conv1d(torch.zeros(2, 3), torch.zeros(2, 1, 4))
    with pytest.raises(ValueError, match="backend"):
        depthwise_conv1d(torch.zeros(1, 2, 3), torch.zeros(2, 1, 4), backend="cuda")
