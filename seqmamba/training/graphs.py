"""A whole training step (forward, backward, clipping, AdamW) replayed from a CUDA graph.

At the sizes of most DNA classifiers (d_model 64-128, windows of a few hundred to a few thousand bases) a
training step's GPU work is a third of its wall time: the rest is the host launching some thousand kernels one
by one (docs/encoders.md, "Short inputs on a GPU"). `GraphedStep` captures the step once per batch shape and
replays it, so the host launches one graph per step.

What a captured step needs, and the `Trainer` provides when ``TrainerConfig(cuda_graphs=True)``:

- an AdamW built with ``capturable=True`` and tensor learning rates (`optim.build_optimizer`), so the schedule's
  changes reach the graph (`LRScheduler` fills the tensors in place);
- gradients that stay allocated: ``zero_grad(set_to_none=False)`` everywhere, and the graph zeroes them first;
- autocast without its weight-cast cache (``cache_enabled=False``), whose casts a graph cannot keep;
- one process, one micro-batch per step, no gradient checkpointing (the Trainer checks).

Its steps scan a bidirectional block's two directions in two launches (`kernels.separate_directions`), as its
compile-ahead dry run does (`ahead.compile_step_kernels(graphed=True)`). `GraphedEvaluation` replays the
Trainer's evaluation in the same way.

The reference is the eager step in the same order, `eager_step`; a shape's first ``capture_after`` batches run
through it (the first also compiles the kernels). Random draws inside the step (dropout, MLM masks on the CUDA
generator) advance per replay as they do per eager step, but draw other numbers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..inference import CaptureSchedule
from ..kernels import separate_directions
from .data import map_tensors


def eager_step(model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], batch: Any,
               optimizer: torch.optim.Optimizer, max_grad_norm: float | None,
               autocast: Callable[[], contextlib.AbstractContextManager]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One training step on ``batch``: zero the gradients (in place), forward under ``autocast()``, backward,
    clip to ``max_grad_norm``, optimizer step. Returns (the loss, the gradient norm before clipping or None),
    as tensors on the device: reading them is the caller's choice (it waits for the GPU).

    Example:
        >>> model = nn.Linear(2, 1)
        >>> opt = torch.optim.AdamW(model.parameters(), lr=0.1)
        >>> loss, norm = eager_step(model, lambda m, b: m(b).square().mean(), torch.ones(4, 2), opt, 1.0,
        ...                         contextlib.nullcontext)
        >>> loss.shape, norm.shape
        (torch.Size([]), torch.Size([]))
    """
    optimizer.zero_grad(set_to_none=False)
    with autocast():
        loss = loss_fn(model, batch)
    if loss.ndim != 0:
        raise ValueError(f"task.loss must return a scalar, got shape {tuple(loss.shape)}")
    loss.backward()
    norm = None
    if max_grad_norm is not None:
        norm = torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], max_grad_norm)
    optimizer.step()
    return loss.detach().float(), norm


def _tensors_and_key(batch: Any) -> tuple[list[torch.Tensor], tuple]:
    """A batch's tensors in order, and what a graph of it is keyed by (their shapes and dtypes)."""
    tensors: list[torch.Tensor] = []
    map_tensors(batch, tensors.append)
    return tensors, tuple((tuple(t.shape), t.dtype) for t in tensors)


def _on_cuda(tensors: list[torch.Tensor]) -> bool:
    return bool(tensors) and all(t.is_cuda for t in tensors)


def _replay(graph: torch.cuda.CUDAGraph, static_batch: Any, tensors: list[torch.Tensor]) -> None:
    """Copy a batch's tensors into the ones its graph was captured reading, and replay it."""
    inputs: list[torch.Tensor] = []
    map_tensors(static_batch, inputs.append)
    for static, new in zip(inputs, tensors, strict=True):
        static.copy_(new)
    graph.replay()


@dataclass
class _Captured:
    batch: Any  # the graph reads its batch from these tensors
    loss: torch.Tensor
    norm: torch.Tensor | None
    graph: torch.cuda.CUDAGraph


class GraphedStep:
    """`eager_step` on each batch, replayed from a CUDA graph once a batch shape has come ``capture_after`` times.

    Which shapes are captured is `CaptureSchedule`'s rule (at most ``most``; none where
    ``SEQMAMBA_CUDA_GRAPHS=0``); their graphs share one memory pool. Other shapes, batches off CUDA, and every
    step after a capture that failed (logged once) run eagerly. The tensors a replay returns are the
    graph's own: read them before the next step.

    Example:
        >>> model = nn.Linear(2, 1)
        >>> opt = torch.optim.AdamW(model.parameters(), lr=0.1)
        >>> step = GraphedStep(model, lambda m, b: m(b).square().mean(), opt, 1.0, contextlib.nullcontext)
        >>> loss, norm = step(torch.ones(4, 2))  # on a CPU every step is eager
        >>> step.captured
        {}
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor],
                 optimizer: torch.optim.Optimizer, max_grad_norm: float | None,
                 autocast: Callable[[], contextlib.AbstractContextManager], most: int = 4,
                 capture_after: int = 2) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.max_grad_norm, self.autocast = max_grad_norm, autocast
        self.schedule = CaptureSchedule(most, capture_after)
        self.captured: dict[tuple, _Captured] = {}
        self._pool = None
        self._grads_ready = False

    def __call__(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self._grads_ready:
            self._grads_in_place()
        tensors, key = _tensors_and_key(batch)
        entry = self.captured.get(key)
        if entry is None:
            if not (_on_cuda(tensors) and self.schedule.capture_now(key, len(self.captured))):
                return self._eager(batch)
            try:
                entry = self.captured[key] = self._capture(batch)
            except Exception as err:  # what the step does that a graph cannot hold: stay eager
                self.schedule.failed(err, "the training step")
                return self._eager(batch)
        _replay(entry.graph, entry.batch, tensors)
        return entry.loss, entry.norm

    def _eager(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        # Eager or captured, the same kernels: a bidirectional scan in two launches, which a replay makes for
        # free and which compile in half the fused kernel's time (kernels.separate_directions).
        with separate_directions():
            return eager_step(self.model, self.loss_fn, batch, self.optimizer, self.max_grad_norm, self.autocast)

    def _grads_in_place(self) -> None:
        """A zero gradient for every trainable parameter that has none yet, from the first step on: a graph
        writes them at fixed addresses, and every step, eager or replayed, then updates the same parameters
        (one unused by the loss too: its zero gradient still meets AdamW's weight decay)."""
        for p in self.model.parameters():
            if p.requires_grad and p.grad is None:
                p.grad = torch.zeros_like(p)
        self._grads_ready = True

    def _capture(self, batch: Any) -> _Captured:
        static = map_tensors(batch, lambda t: t.clone())
        self._grads_in_place()
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize()
        with torch.cuda.graph(graph, pool=self._pool):  # records the step; runs nothing
            loss, norm = self._eager(static)
        return _Captured(static, loss, norm, graph)


@dataclass
class _CapturedMetrics:
    batch: Any  # the graph reads its batch from these tensors
    metrics: Mapping[str, torch.Tensor]  # and writes the batch's metrics here
    graph: torch.cuda.CUDAGraph


class GraphedEvaluation:
    """``metrics_fn(model, batch)`` without autograd (a Task's `metrics`: the Trainer's evaluation when its steps are
    graphed), replayed from a CUDA graph once a batch shape has come ``capture_after`` times, as `GraphedStep` does
    the step: the same scans (`kernels.separate_directions`), autocast without its weight-cast cache.

    A batch shape whose metrics are not all CUDA tensors stays eager: a Python number would be frozen into the
    graph. The tensors a replay returns are the graph's own: read them before the next call.

    Example:
        >>> model = nn.Linear(2, 1)
        >>> evaluate = GraphedEvaluation(model, lambda m, b: {"loss": m(b).square().mean()}, contextlib.nullcontext)
        >>> with torch.no_grad():
        ...     sorted(evaluate(torch.ones(4, 2)))  # on a CPU every call is eager
        ['loss']
    """

    def __init__(self, model: nn.Module, metrics_fn: Callable[[nn.Module, Any], Mapping[str, torch.Tensor | float]],
                 autocast: Callable[[], contextlib.AbstractContextManager], most: int = 4,
                 capture_after: int = 2) -> None:
        self.model, self.metrics_fn, self.autocast = model, metrics_fn, autocast
        self.schedule = CaptureSchedule(most, capture_after)
        self.captured: dict[tuple, _CapturedMetrics] = {}
        self._eager_only: set[tuple] = set()  # shapes whose metrics a graph cannot hold
        self._pool = None

    def __call__(self, batch: Any) -> Mapping[str, torch.Tensor | float]:
        tensors, key = _tensors_and_key(batch)
        entry = self.captured.get(key)
        if entry is None:
            if (not _on_cuda(tensors) or key in self._eager_only or torch.is_grad_enabled()
                    or not self.schedule.capture_now(key, len(self.captured))):
                return self._eager(batch, key)
            try:
                entry = self.captured[key] = self._capture(batch, key)
            except Exception as err:  # what the evaluation does that a graph cannot hold: stay eager
                self.schedule.failed(err, "the evaluation")
                return self._eager(batch, key)
        _replay(entry.graph, entry.batch, tensors)
        return entry.metrics

    def _eager(self, batch: Any, key: tuple) -> Mapping[str, torch.Tensor | float]:
        with separate_directions(), self.autocast():
            metrics = self.metrics_fn(self.model, batch)
        if not all(torch.is_tensor(v) and v.is_cuda for v in metrics.values()):
            self._eager_only.add(key)
        return metrics

    def _capture(self, batch: Any, key: tuple) -> _CapturedMetrics:
        static = map_tensors(batch, lambda t: t.clone())
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize()
        with torch.cuda.graph(graph, pool=self._pool):  # records the evaluation; runs nothing
            metrics = self._eager(static, key)
        return _CapturedMetrics(static, dict(metrics), graph)
