"""Recurrent (step) and chunked inference of causal encoders against the one-piece forward."""

import pytest
import torch

from seqmamba import MambaConfig, MambaEncoder


def _encoder(dtype=torch.float64, **kwargs) -> MambaEncoder:
    torch.manual_seed(0)
    return MambaEncoder(MambaConfig(**{"d_model": 16, "n_layers": 2, "d_state": 4, **kwargs})).to(dtype)


def _x(L=40, batch=2, dtype=torch.float64):
    return torch.randn(batch, L, 16, generator=torch.Generator().manual_seed(3)).to(dtype)


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_stepping_gives_the_forward_outputs(dtype, tol):
    enc = _encoder(dtype)
    x = _x(dtype=dtype)
    with torch.no_grad():
        expected = enc(x)
        cache = enc.allocate_inference_cache(batch_size=2)
        steps = torch.stack([enc.step(x[:, t], cache) for t in range(x.shape[1])], dim=1)
    assert cache.seqlen_offset == x.shape[1]
    assert steps.dtype == dtype
    torch.testing.assert_close(steps, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("chunk_len", [1, 7, 16, 64])
def test_chunked_forward_equals_the_forward(chunk_len):
    enc = _encoder()
    x = _x()
    with torch.inference_mode():
        torch.testing.assert_close(enc.forward_chunked(x, chunk_len), enc(x), rtol=1e-12, atol=1e-12)


def test_chunked_prefill_then_steps():
    enc = _encoder()
    x = _x()
    with torch.no_grad():
        expected = enc(x)
        cache = enc.allocate_inference_cache(2)
        head = enc.forward_chunked(x[:, :25], chunk_len=10, cache=cache)
        tail = torch.stack([enc.step(x[:, t], cache) for t in range(25, 40)], dim=1)
    torch.testing.assert_close(torch.cat([head, tail], dim=1), expected, rtol=1e-12, atol=1e-12)
    cache.reset()
    assert cache.seqlen_offset == 0 and all(not s.any() for s in cache.ssm_states)


def test_chunked_forward_is_differentiable():
    enc = _encoder()
    x = _x(L=20).requires_grad_()
    (g_full,) = torch.autograd.grad(enc(x).sum(), x)
    (g_chunked,) = torch.autograd.grad(enc.forward_chunked(x, 6).sum(), x)
    torch.testing.assert_close(g_chunked, g_full, rtol=1e-10, atol=1e-12)


def test_bidirectional_encoders_refuse_recurrent_inference():
    enc = _encoder(bidirectional=True)
    with pytest.raises(ValueError, match="causal"):
        enc.allocate_inference_cache(1)
    with pytest.raises(ValueError, match="causal"):
        enc.forward_chunked(_x(), 8)
