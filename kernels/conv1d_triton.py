"""Triton kernels for the depthwise conv1d (+ SiLU) of a Mamba branch: forward and backward.

The torch path (`conv1d.depthwise_conv1d_ref`) pads x by K-1, runs cuDNN's grouped convolution over
L + K - 1 positions, slices, and applies SiLU in another pass: three or four passes over a (batch, dim, L)
tensor. Here one program reads a (BLOCK_D, BLOCK_L) tile of x at K shifts (the shifts hit the cache),
adds the bias and applies SiLU in registers, and writes y once. Strided x is read in place (the x half of
in_proj's output is a view).

Backward, in two launches:
1. `_conv1d_grad_kernel`: g = dy * silu'(pre) (pre recomputed from x), and per tile the partial sums of
   dweight[d, i] = sum_t g[t] x[t + s_i] and dbias[d] = sum_t g[t]; the partials are summed in torch, in
   a fixed order (no atomics: the same inputs give the same bits).
2. dx = the same forward kernel run on g in the other direction with no bias or activation: the adjoint of
   a causal conv is the anti-causal conv with the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._fast_launch import launch, recording, records_like_forward
from ._launch_math import cdiv
from .scan_triton import triton

if triton is not None:
    import triton.language as tl

    @triton.jit
    def _conv1d_fwd_kernel(
        X, W, BIAS, Y,
        dim, length,
        stride_xb, stride_xd, stride_xl,
        stride_yb, stride_yd, stride_yl,
        K: tl.constexpr, REVERSE: tl.constexpr, HAS_BIAS: tl.constexpr, SILU: tl.constexpr, ACC: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        t = tl.program_id(0) * BLOCK_L + tl.arange(0, BLOCK_L)  # (BLOCK_L,) positions
        d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)  # (BLOCK_D,) channels
        b = tl.program_id(2)
        d_ok = d < dim
        x_rows = X + b * stride_xb + d[:, None] * stride_xd  # (BLOCK_D, 1) row starts
        acc = tl.zeros((BLOCK_D, BLOCK_L), dtype=ACC)
        for i in tl.static_range(K):
            w = tl.load(W + d * K + i, mask=d_ok, other=0.0).to(ACC)  # (BLOCK_D,)
            src = t + (K - 1 - i) if REVERSE else t - (K - 1) + i  # zeros beyond either end
            ok = d_ok[:, None] & ((src >= 0) & (src < length))[None, :]
            xv = tl.load(x_rows + src[None, :] * stride_xl, mask=ok, other=0.0).to(ACC)
            acc += w[:, None] * xv
        if HAS_BIAS:
            acc += tl.load(BIAS + d, mask=d_ok, other=0.0).to(ACC)[:, None]
        if SILU:
            acc = acc * tl.sigmoid(acc)
        out = Y + b * stride_yb + d[:, None] * stride_yd + t[None, :] * stride_yl
        tl.store(out, acc.to(Y.dtype.element_ty), mask=d_ok[:, None] & (t < length)[None, :])

    @triton.jit
    def _conv1d_grad_kernel(
        X, W, BIAS, DY, G, DW_PART, DB_PART,
        dim, length, n_tiles,
        stride_xb, stride_xd, stride_xl,
        stride_gb, stride_gd, stride_gl,
        K: tl.constexpr, REVERSE: tl.constexpr, HAS_BIAS: tl.constexpr, SILU: tl.constexpr, ACC: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr,
    ):
        pid_l = tl.program_id(0)
        t = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
        d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
        b = tl.program_id(2)
        d_ok = d < dim
        t_ok = d_ok[:, None] & (t < length)[None, :]
        x_rows = X + b * stride_xb + d[:, None] * stride_xd
        # dy is contiguous like G (the launcher makes it so).
        g_tile = b * stride_gb + d[:, None] * stride_gd + t[None, :] * stride_gl
        g = tl.load(DY + g_tile, mask=t_ok, other=0.0).to(ACC)  # (BLOCK_D, BLOCK_L)
        if SILU:  # silu'(a) = s (1 + a (1 - s)), s = sigmoid(a), with a recomputed from x
            pre = tl.zeros((BLOCK_D, BLOCK_L), dtype=ACC)
            for i in tl.static_range(K):
                w = tl.load(W + d * K + i, mask=d_ok, other=0.0).to(ACC)
                src = t + (K - 1 - i) if REVERSE else t - (K - 1) + i
                ok = d_ok[:, None] & ((src >= 0) & (src < length))[None, :]
                pre += w[:, None] * tl.load(x_rows + src[None, :] * stride_xl, mask=ok, other=0.0).to(ACC)
            if HAS_BIAS:
                pre += tl.load(BIAS + d, mask=d_ok, other=0.0).to(ACC)[:, None]
            s = tl.sigmoid(pre)
            g = g * s * (1.0 + pre * (1.0 - s))
        g = g.to(G.dtype.element_ty)
        tl.store(G + g_tile, g, mask=t_ok)
        g = g.to(ACC)  # the partial sums see the g that dx will see
        part = (b * n_tiles + pid_l) * dim + d  # row of this tile in the (batch * n_tiles, dim) partials
        for i in tl.static_range(K):
            src = t + (K - 1 - i) if REVERSE else t - (K - 1) + i
            ok = d_ok[:, None] & ((src >= 0) & (src < length))[None, :]
            xv = tl.load(x_rows + src[None, :] * stride_xl, mask=ok, other=0.0).to(ACC)
            tl.store(DW_PART + part * K + i, tl.sum(g * xv, axis=1), mask=d_ok)
        tl.store(DB_PART + part, tl.sum(g, axis=1), mask=d_ok)


@dataclass(frozen=True)
class ConvTuning:
    """Launch shape of the conv kernels."""

    block_d: int = 8  # channels per program: rows of the tile (x rows are contiguous along L)
    block_l: int = 512  # positions per program: long rows keep the loads coalesced and the halo small
    num_warps: int = 4  # 4096 values a tile: 32 per thread


TUNING = ConvTuning()


def _acc(x: torch.Tensor):
    """Accumulate in float32, or float64 for float64 inputs (the tests' exact comparisons)."""
    return tl.float64 if x.dtype == torch.float64 else tl.float32


def _conv_forward(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, reverse: bool, silu: bool,
                  tuning: ConvTuning = TUNING) -> torch.Tensor:
    """Launch `_conv1d_fwd_kernel`: x (batch, dim, L) any strides, w (dim, K) contiguous -> y contiguous."""
    batch, dim, length = x.shape
    y = torch.empty((batch, dim, length), dtype=x.dtype, device=x.device)
    grid = (cdiv(length, tuning.block_l), cdiv(dim, tuning.block_d), batch)
    launch(_conv1d_fwd_kernel, grid, (x, w, bias if bias is not None else w, y, dim, length, *x.stride(), *y.stride()),
           dict(K=w.shape[1], REVERSE=reverse, HAS_BIAS=bias is not None, SILU=silu, ACC=_acc(x),
                BLOCK_D=tuning.block_d, BLOCK_L=tuning.block_l, num_warps=tuning.num_warps))
    return y


class _DepthwiseConv1d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, reverse: bool, silu: bool):
        w = weight.reshape(weight.shape[0], weight.shape[-1]).contiguous()  # (dim, K)
        ctx.save_for_backward(x, w, bias)
        ctx.reverse, ctx.silu, ctx.weight_shape = reverse, silu, weight.shape
        ctx.recorded = recording()  # a dry run's backward records too (it may run in autograd's own thread)
        return _conv_forward(x, w, bias, reverse, silu)

    @staticmethod
    @records_like_forward
    def backward(ctx, dy):
        x, w, bias = ctx.saved_tensors
        batch, dim, length = x.shape
        k = w.shape[1]
        tuning = TUNING
        n_tiles = cdiv(length, tuning.block_l)
        dy = dy.contiguous()
        g = torch.empty((batch, dim, length), dtype=x.dtype, device=x.device)
        part_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        dw_part = torch.empty((batch * n_tiles, dim, k), dtype=part_dtype, device=x.device)
        db_part = torch.empty((batch * n_tiles, dim), dtype=part_dtype, device=x.device)
        grid = (n_tiles, cdiv(dim, tuning.block_d), batch)
        launch(_conv1d_grad_kernel, grid, (x, w, bias if bias is not None else w, dy, g, dw_part, db_part, dim, length,
                                           n_tiles, *x.stride(), *g.stride()),
               dict(K=k, REVERSE=ctx.reverse, HAS_BIAS=bias is not None, SILU=ctx.silu, ACC=_acc(x),
                    BLOCK_D=tuning.block_d, BLOCK_L=tuning.block_l, num_warps=tuning.num_warps))
        dx = _conv_forward(g, w, None, not ctx.reverse, False)  # the adjoint: the other direction
        dweight = dw_part.sum(0).to(w.dtype).reshape(ctx.weight_shape)
        dbias = db_part.sum(0).to(bias.dtype) if bias is not None else None
        return dx, dweight, dbias, None, None


def depthwise_conv1d_triton(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, reverse: bool = False,
    activation: str | None = None,
) -> torch.Tensor:
    """`conv1d.depthwise_conv1d` on the Triton kernels (CUDA tensors, or any under TRITON_INTERPRET=1)."""
    if triton is None:
        raise RuntimeError("depthwise_conv1d_triton: triton is not installed")
    return _DepthwiseConv1d.apply(x, weight, bias, reverse, activation == "silu")
