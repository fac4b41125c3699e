"""`depthwise_conv1d`: the short depthwise convolution (+ SiLU) in front of every selective scan.

Causal (position t sees t-K+1..t, the forward branch of a Mamba block) or anti-causal (t sees t..t+K-1,
the reverse branch of a bidirectional block, equal to the causal conv of the reversed sequence read
back in order). One entry point, two backends: the torch reference below, and a Triton kernel
(`conv1d_triton`) that fuses the padding, the convolution and the activation into one pass over x.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .backend import choose_backend

ACTIVATIONS = (None, "silu")
BACKENDS = ("auto", "reference", "triton")


def depthwise_conv1d_ref(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, reverse: bool = False,
    activation: str | None = None,
) -> torch.Tensor:
    """The reference: x (batch, dim, L), weight (dim, K) or (dim, 1, K), bias (dim,) -> (batch, dim, L).

    Causal: y[t] = sum_i w[i] x[t - (K-1) + i]; reverse: y[t] = sum_i w[i] x[t + (K-1) - i]; zeros
    beyond the ends. ``activation="silu"`` applies SiLU after the bias.

    Example:
        >>> x = torch.arange(5.0).view(1, 1, 5)
        >>> depthwise_conv1d_ref(x, torch.tensor([[1.0, 10.0]])).tolist()    # x[t-1] + 10 x[t]
        [[[0.0, 10.0, 21.0, 32.0, 43.0]]]
        >>> depthwise_conv1d_ref(x, torch.tensor([[1.0, 10.0]]), reverse=True).tolist()  # x[t+1] + 10 x[t]
        [[[1.0, 12.0, 23.0, 34.0, 40.0]]]
    """
    weight = weight.reshape(weight.shape[0], 1, weight.shape[-1])  # (dim, 1, K)
    d, k, length = x.shape[1], weight.shape[-1], x.shape[-1]
    if reverse:  # the kernel flipped (K numbers, not activations), padded on the right
        y = F.conv1d(x, weight.flip(-1), bias, padding=k - 1, groups=d)[..., k - 1:]
    else:
        y = F.conv1d(x, weight, bias, padding=k - 1, groups=d)[..., :length]
    return F.silu(y) if activation == "silu" else y


def depthwise_conv1d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, reverse: bool = False,
    activation: str | None = None, backend: str = "auto",
) -> torch.Tensor:
    """Depthwise conv over time (+ activation), x (batch, dim, L) -> (batch, dim, L) in x's dtype.

    ``backend``: ``"auto"`` (Triton on CUDA tensors, the torch reference elsewhere), ``"reference"`` or
    ``"triton"`` (also on CPU tensors under ``TRITON_INTERPRET=1``); `backend.choose_backend` decides. Both
    differentiate x, weight and bias.

    Example:
        >>> x = torch.randn(2, 8, 100)
        >>> w, b = torch.randn(8, 1, 4), torch.randn(8)
        >>> y = depthwise_conv1d(x, w, b, activation="silu")
        >>> torch.allclose(y, depthwise_conv1d_ref(x, w, b, activation="silu"))
        True
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"depthwise_conv1d: activation must be one of {ACTIVATIONS}, got {activation!r}")
    if x.dim() != 3 or weight.shape[0] != x.shape[1] or weight.dim() not in (2, 3):
        raise ValueError(f"depthwise_conv1d: x must be (batch, dim, L) and weight (dim, K) or (dim, 1, K), got "
                         f"{tuple(x.shape)} and {tuple(weight.shape)}")
    if choose_backend("depthwise_conv1d", backend, x.device, x.shape[-1], BACKENDS) == "reference":
        return depthwise_conv1d_ref(x, weight, bias, reverse, activation)
    from .conv1d_triton import depthwise_conv1d_triton

    return depthwise_conv1d_triton(x, weight, bias, reverse, activation)
