"""Inference helpers: the recurrent state of causal encoders, and forwards replayed from CUDA graphs.

`InferenceCache` holds one (conv, SSM) state pair per layer. The same cache serves `MambaEncoder.step` (one
token at a time, O(1) per token) and `MambaEncoder.forward_chunked` (a long input chunk by chunk), so a prompt
can be consumed by chunks and then continued token by token.

`GraphedForward` runs a model's forward on batches of repeated shapes by replaying a captured CUDA graph: one
launch from the host instead of a few hundred, which is what a batch of short windows waits on.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

logger = logging.getLogger(__name__)
GRAPHS_ENV = "SEQMAMBA_CUDA_GRAPHS"  # set to 0: no CUDA graphs, every forward and training step eager


def cuda_graphs_wanted() -> bool:
    """Whether forwards and training steps may replay CUDA graphs: unless ``SEQMAMBA_CUDA_GRAPHS=0``."""
    return os.environ.get(GRAPHS_ENV, "1") != "0"



@dataclass
class InferenceCache:
    """Per-layer states of a causal encoder after ``seqlen_offset`` tokens.

    conv_states[i]: (batch, d_inner, d_conv), the last d_conv inputs of layer i's convolution.
    ssm_states[i]: (batch, d_inner, d_state), float32 (float64 for a float64 model).

    Example:
        >>> from seqmamba import MambaConfig, MambaEncoder
        >>> enc = MambaEncoder(MambaConfig(d_model=16, n_layers=2, d_state=4))
        >>> cache = enc.allocate_inference_cache(batch_size=3)
        >>> enc.step(torch.randn(3, 16), cache).shape, cache.seqlen_offset
        (torch.Size([3, 16]), 1)
    """

    conv_states: list[torch.Tensor] = field(default_factory=list)
    ssm_states: list[torch.Tensor] = field(default_factory=list)
    seqlen_offset: int = 0

    @property
    def batch_size(self) -> int:
        return self.conv_states[0].shape[0] if self.conv_states else 0

    def layer(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.conv_states[i], self.ssm_states[i]

    def set_layer(self, i: int, state: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Store layer i's new states.

        Without autograd they are copied in place, so tensors a captured CUDA graph reads stay valid;
        with autograd they replace the old ones (an in-place write would corrupt saved tensors).
        """
        conv, ssm = state
        if torch.is_grad_enabled() and (conv.requires_grad or ssm.requires_grad):
            self.conv_states[i], self.ssm_states[i] = conv, ssm
        else:
            self.conv_states[i].copy_(conv)
            self.ssm_states[i].copy_(ssm)

    def reset(self) -> None:
        """Zero every state (a new sequence) without reallocating."""
        for t in (*self.conv_states, *self.ssm_states):
            t.zero_()
        self.seqlen_offset = 0


class CaptureSchedule:
    """Which batch shapes get a CUDA graph: a shape's first ``capture_after`` batches run eagerly (the first also
    compiles the kernels; a shape that comes once or twice is not worth a capture), the next is captured; at most
    ``most`` shapes are; none after a failed capture or where ``SEQMAMBA_CUDA_GRAPHS=0``.

    Example:
        >>> schedule = CaptureSchedule(most=8, capture_after=2)
        >>> [schedule.capture_now("a", captured=0) for _ in range(3)]
        [False, False, True]
    """

    def __init__(self, most: int, capture_after: int) -> None:
        self.most, self.capture_after = most, capture_after
        self.enabled = cuda_graphs_wanted()
        self._seen: Counter[object] = Counter()

    def capture_now(self, key: object, captured: int) -> bool:
        """Counts one more batch of shape ``key`` (not yet captured; ``captured`` shapes are); whether to
        capture it now."""
        self._seen[key] += 1
        return self.enabled and self._seen[key] > self.capture_after and captured < self.most

    def failed(self, err: Exception, what: str) -> None:
        """A capture failed: log it once, and run everything eagerly from now on."""
        logger.warning("CUDA graph capture of %s failed (%s); running eagerly", what, err)
        self.enabled = False


@dataclass
class _Captured:
    inputs: dict[str, torch.Tensor]  # the graph reads its batch from these
    output: torch.Tensor  # and writes its result here (memory of the shared pool)
    graph: torch.cuda.CUDAGraph


class GraphedForward:
    """``fn(model, batch)`` (no autograd) replayed from a CUDA graph for each batch shape that repeats.

    A batch is a dict of tensors. The first ``capture_after`` batches of a shape run eagerly (the first also
    compiles the kernels; a shape that comes only once or twice is not worth a capture, which costs about two
    forwards); the next is captured into a CUDA graph, and it and every later one copy their tensors into the
    graph's inputs and replay it: the GPU runs the same kernels on the same addresses, so the output is bit for
    bit the eager one, without the host launching each kernel.

    At most ``most`` shapes are captured (their graphs share one memory pool), and only batches of at most
    ``max_tokens`` tokens (rows x length of the largest tensor): a long input is not host-bound, and a graph
    keeps its activation memory. Other batches, tensors off CUDA, everything after a failed capture (logged
    once) and every call where the environment sets ``SEQMAMBA_CUDA_GRAPHS=0`` run eagerly.

    The tensor returned by a replay is the graph's own output buffer: use or copy it before the next call.

    Example:
        >>> run = GraphedForward(nn.Linear(2, 1), lambda model, batch: model(batch["x"]))
        >>> run({"x": torch.ones(3, 2)}).shape  # on a CPU every call is eager
        torch.Size([3, 1])
    """

    def __init__(self, model: nn.Module, fn: Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor],
                 most: int = 8, max_tokens: int = 1 << 18, capture_after: int = 2) -> None:
        self.model, self.fn, self.max_tokens = model, fn, max_tokens
        self.schedule = CaptureSchedule(most, capture_after)
        self.captured: dict[tuple, _Captured] = {}
        self._pool = None

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        tensors = list(batch.values())
        if not (tensors and all(t.is_cuda for t in tensors)) or torch.is_grad_enabled():
            return self.fn(self.model, batch)
        key = tuple((name, tuple(t.shape), t.dtype, t.device) for name, t in sorted(batch.items()))
        entry = self.captured.get(key)
        if entry is None:
            small = max(t.numel() for t in tensors) <= self.max_tokens
            if not (small and self.schedule.capture_now(key, len(self.captured))):
                return self.fn(self.model, batch)
            try:
                entry = self.captured[key] = self._capture(batch)
            except Exception as err:  # anything the forward does that a graph cannot hold: stay eager
                self.schedule.failed(err, "the forward")
                return self.fn(self.model, batch)
        for name, t in batch.items():
            entry.inputs[name].copy_(t)
        entry.graph.replay()
        return entry.output

    def _capture(self, batch: dict[str, torch.Tensor]) -> _Captured:
        device = next(iter(batch.values())).device
        inputs = {name: t.clone() for name, t in batch.items()}
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        # One eager run on a side stream first: lazy initialisation and allocations stay out of the graph.
        side, current = torch.cuda.Stream(device), torch.cuda.current_stream(device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            self.fn(self.model, inputs)
        current.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            output = self.fn(self.model, inputs)
        return _Captured(inputs, output, graph)
