"""Dry runs of a training step, an evaluation or a prediction, for compiling their GPU kernels ahead.

`kernels.compile_ahead` needs a run whose launches it can record; these helpers make one from a model and a
batch that changes nothing a real run would see: the random generators (torch, CUDA, numpy, random), the
parameters' gradients and the model's buffers are as they were, and the model is left in the mode it was in.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ..kernels import separate_directions
from ..kernels.compile_ahead import compile_ahead, start_workers, stop_workers
from .data import map_tensors

__all__ = ["compile_forward_kernels", "compile_step_kernels", "distinct_batches", "first_rows", "start_workers",
           "stop_workers", "unchanged"]


def first_rows(batch: Any, n: int) -> Any:
    """The first n rows of every tensor in a batch (inside dicts, lists and tuples): a last, partial batch.

    Example:
        >>> first_rows({"x": torch.zeros(4, 3), "y": [torch.ones(4), "label"]}, 2)["y"][0].shape
        torch.Size([2])
    """
    return map_tensors(batch, lambda t: t[:n] if t.ndim else t)


def shapes(batch: Any) -> tuple:
    """The shapes of every tensor in a batch, in order (what a launch plan can depend on)."""
    if torch.is_tensor(batch):
        return (tuple(batch.shape),)
    if isinstance(batch, Mapping):
        return tuple(s for k in sorted(batch, key=str) for s in shapes(batch[k]))
    if isinstance(batch, list | tuple):
        return tuple(s for v in batch for s in shapes(v))
    return ()


def distinct_batches(batches: Iterable[Any], limit: int = 2_000, most: int = 8) -> list[Any]:
    """The first batch of each distinct set of tensor shapes among (at most `limit` of) `batches`, at most `most`
    of them (a dry run holds them all at once): a validation set's full and last partial batches, or its first
    few lengths where they vary.

    Example:
        >>> [b.shape[0] for b in distinct_batches([torch.zeros(4, 2), torch.ones(4, 2), torch.zeros(1, 2)])]
        [4, 1]
    """
    seen: dict[tuple, Any] = {}
    for i, batch in enumerate(batches):
        if i >= limit:
            break
        seen.setdefault(shapes(batch), batch)
        if len(seen) == most:
            break
    return list(seen.values())


@contextlib.contextmanager
def unchanged(model: nn.Module) -> Iterator[None]:
    """Within: anything may run on the model; after, its gradients, its buffers (a norm's running statistics), its
    train/eval mode and every random generator are as they were before."""
    grads = [(p, p.grad) for p in model.parameters()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    for p, _ in grads:
        p.grad = None  # the dry run's backward writes into new tensors, not into these
    modes = [(m, m.training) for m in model.modules()]
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002 (seed_everything seeds it)
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        for p, g in grads:
            p.grad = g
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for m, training in modes:
            m.training = training
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002


_dry_runs_made: set[tuple] = set()  # this process's dry runs: one alike has nothing new to compile


def _first_time(model: nn.Module, what: tuple) -> bool:
    """Whether no dry run of this model's shapes and `what` (the mode, the batches' shapes) was made in this
    process yet; notes it as made."""
    key = (type(model).__qualname__, *what,
           tuple((n, tuple(p.shape), p.dtype, str(p.device), p.requires_grad) for n, p in model.named_parameters()))
    if key in _dry_runs_made:
        stop_workers()  # any started for it have nothing to do
        return False
    _dry_runs_made.add(key)
    return True


def compile_step_kernels(model: nn.Module, loss: Callable[[nn.Module, Any], torch.Tensor],
                         train_batches: Iterable[Any], eval_batches: Iterable[Any],
                         autocast: Callable[[], contextlib.AbstractContextManager], graphed: bool = False) -> int:
    """Compile ahead (in parallel, on a CUDA GPU: `kernels.compile_ahead`) the kernels of a training step on each
    of `train_batches` (forward and backward) and of a forward without gradients on each of `eval_batches`,
    under `autocast()`. ``graphed``: the steps and the evaluation are `GraphedStep`'s and `GraphedEvaluation`'s,
    whose bidirectional scans run in two launches (`kernels.separate_directions`), and so do the dry run's. The
    batches are on the model's device. Returns the kernels compiled; a dry run alike to one made before in this
    process is not made again.

    Example:
        >>> model = nn.Linear(2, 1)
        >>> compile_step_kernels(model, lambda m, b: m(b).sum(), [torch.ones(3, 2)], [], contextlib.nullcontext)
        0
    """
    train_batches, eval_batches = list(train_batches), list(eval_batches)
    context = autocast()
    what = ("step", type(context).__name__, str(getattr(context, "fast_dtype", "")), graphed,
            tuple(map(shapes, train_batches)), tuple(map(shapes, eval_batches)))
    if not _first_time(model, what):
        return 0

    def dry_run() -> None:
        with unchanged(model), separate_directions() if graphed else contextlib.nullcontext():
            model.train()
            for batch in train_batches:
                with autocast():
                    value = loss(model, batch)
                value.float().sum().backward()
            model.eval()
            with torch.no_grad():
                for batch in eval_batches:
                    with autocast():
                        loss(model, batch)

    return compile_ahead(dry_run)


def compile_forward_kernels(model: nn.Module, forward: Callable[[nn.Module, Any], object],
                            batches: Iterable[Any]) -> int:
    """Compile ahead the kernels that inference, `forward(model, batch)` on each batch, launches; see
    compile_step_kernels.

    Example:
        >>> compile_forward_kernels(nn.Linear(2, 1), lambda m, b: m(b), [torch.ones(3, 2)])
        0
    """
    batches = list(batches)
    if not _first_time(model, ("forward", tuple(map(shapes, batches)))):
        return 0

    def dry_run() -> None:
        with unchanged(model), torch.no_grad():
            for batch in batches:
                forward(model, batch)

    return compile_ahead(dry_run)
