"""The reference scan against values worked out by hand, and its gradients against finite differences."""

import math

import pytest
import torch

from seqmamba.kernels import selective_scan_ref


def test_single_step_by_hand():
    u = torch.tensor([[[2.0]]], dtype=torch.float64)  # (1, 1, 1)
    delta = torch.tensor([[[0.5]]], dtype=torch.float64)
    A = torch.tensor([[-1.0, -2.0]], dtype=torch.float64)  # (1, 2)
    B = torch.tensor([[[1.0], [3.0]]], dtype=torch.float64)  # (1, 2, 1)
    C = torch.tensor([[[4.0], [5.0]]], dtype=torch.float64)
    h0 = torch.tensor([[[1.0, 1.0]]], dtype=torch.float64)
    D = torch.tensor([0.25], dtype=torch.float64)
    z = torch.tensor([[[1.5]]], dtype=torch.float64)
    y, last = selective_scan_ref(u, delta, A, B, C, D, z, return_last_state=True, initial_state=h0)
    h = [math.exp(-0.5) + 0.5 * 1.0 * 2.0, math.exp(-1.0) + 0.5 * 3.0 * 2.0]
    silu = 1.5 / (1 + math.exp(-1.5))
    assert last.flatten().tolist() == pytest.approx(h)
    assert y.item() == pytest.approx((4 * h[0] + 5 * h[1] + 0.25 * 2.0) * silu)


def test_reverse_is_forward_on_flipped_inputs():
    g = torch.Generator().manual_seed(0)
    u, delta = torch.randn(2, 3, 9, generator=g), torch.rand(2, 3, 9, generator=g)
    A = -torch.rand(3, 4, generator=g)
    B, C = torch.randn(2, 4, 9, generator=g), torch.randn(2, 4, 9, generator=g)
    y_rev, last_rev = selective_scan_ref(u, delta, A, B, C, return_last_state=True, reverse=True)
    y_flip, last_flip = selective_scan_ref(
        u.flip(-1), delta.flip(-1), A, B.flip(-1), C.flip(-1), return_last_state=True
    )
    torch.testing.assert_close(y_rev, y_flip.flip(-1))
    torch.testing.assert_close(last_rev, last_flip)


def test_gradcheck():
    g = torch.Generator().manual_seed(1)

    def r(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64, requires_grad=True)

    args = (r(1, 2, 5), r(1, 2, 5), (-torch.rand(2, 3, generator=g, dtype=torch.float64)).requires_grad_(),
            r(1, 3, 5), r(1, 3, 5), r(2), r(1, 2, 5), r(2))
    assert torch.autograd.gradcheck(lambda *a: selective_scan_ref(*a, delta_softplus=True), args)
