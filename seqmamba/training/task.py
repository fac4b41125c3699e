"""Tasks: how a model meets a batch. The trainer calls ``task.loss`` to train and ``task.metrics`` to evaluate.

A task can be a `Task` subclass, a `SupervisedTask` (``criterion(model(inputs), targets)``), or a bare
function ``loss_fn(model, batch) -> scalar tensor``. Batches are whatever the DataLoader yields
(tensors, tuples, dicts); the trainer moves their tensors to the device before the task sees them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn


def first_tensor(batch: Any) -> torch.Tensor | None:
    """The first tensor found in a (nested) batch, depth first."""
    if torch.is_tensor(batch):
        return batch
    values = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, list | tuple) else ()
    for value in values:
        found = first_tensor(value)
        if found is not None:
            return found
    return None


class Task:
    """Base class: subclass it and define `loss` (and `metrics` for more than the validation loss).

    ``model`` is the module being trained, wrapped in DistributedDataParallel under torchrun: call it
    (``model(x)``), so DDP sees the forward pass; do not reach for its other methods.

    Example:
        >>> class Regression(Task):
        ...     def loss(self, model, batch):
        ...         x, y = batch
        ...         return torch.nn.functional.mse_loss(model(x), y)
        ...     def metrics(self, model, batch):
        ...         x, y = batch
        ...         return {"loss": self.loss(model, batch), "mae": (model(x) - y).abs().mean()}
        >>> task = Regression()
        >>> batch = (torch.zeros(4, 3), torch.ones(4, 1))
        >>> task.loss(nn.Linear(3, 1, bias=False), batch).item(), task.batch_size(batch)
        (1.0, 4)
    """

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The scalar loss to minimise, averaged over the batch's samples."""
        raise NotImplementedError

    def metrics(self, model: nn.Module, batch: Any) -> Mapping[str, torch.Tensor | float]:
        """Per-batch means of evaluation metrics; the trainer averages them weighted by `batch_size`.

        Reported with a ``val_`` prefix (``loss`` -> ``val_loss``). Metrics that are not means over
        samples (AUROC) belong in a callback's ``on_evaluate``.
        """
        return {"loss": self.loss(model, batch)}

    def batch_size(self, batch: Any) -> int:
        """Samples in a batch: the first dimension of its first tensor."""
        tensor = first_tensor(batch)
        return 1 if tensor is None or tensor.ndim == 0 else int(tensor.shape[0])

    def num_tokens(self, batch: Any) -> int:
        """Positions in a batch (for tokens/s): batch x length of its first tensor."""
        tensor = first_tensor(batch)
        if tensor is None or tensor.ndim == 0:
            return 1
        return int(tensor.shape[0] * (tensor.shape[1] if tensor.ndim >= 2 else 1))


class LossTask(Task):
    """A task from functions: ``loss_fn(model, batch)`` and optionally ``metrics_fn(model, batch) -> dict``.

    Example:
        >>> task = LossTask(lambda model, batch: model(batch).square().mean())
        >>> task.metrics(nn.Identity(), torch.ones(2, 3))
        {'loss': tensor(1.)}
    """

    def __init__(
        self,
        loss_fn: Callable[[nn.Module, Any], torch.Tensor],
        metrics_fn: Callable[[nn.Module, Any], Mapping[str, torch.Tensor | float]] | None = None,
    ) -> None:
        self.loss_fn = loss_fn
        self.metrics_fn = metrics_fn

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        return self.loss_fn(model, batch)

    def metrics(self, model: nn.Module, batch: Any) -> Mapping[str, torch.Tensor | float]:
        if self.metrics_fn is None:
            return super().metrics(model, batch)
        return self.metrics_fn(model, batch)


class SupervisedTask(Task):
    """``criterion(model(inputs), targets)`` for batches ``(inputs, targets)`` or dicts with those keys.

    ``metric_fns`` maps names to ``fn(outputs, targets) -> per-batch mean`` (accuracy, MAE, ...).

    Example:
        >>> task = SupervisedTask(nn.functional.mse_loss, metric_fns={"mae": nn.functional.l1_loss})
        >>> batch = {"inputs": torch.zeros(4, 3), "targets": torch.ones(4, 2)}
        >>> {k: float(v.detach()) for k, v in task.metrics(nn.Linear(3, 2, bias=False), batch).items()}
        {'loss': 1.0, 'mae': 1.0}
    """

    def __init__(
        self,
        criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        metric_fns: Mapping[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor | float]] | None = None,
        inputs_key: str = "inputs",
        targets_key: str = "targets",
    ) -> None:
        self.criterion = criterion
        self.metric_fns = dict(metric_fns or {})
        self.inputs_key, self.targets_key = inputs_key, targets_key

    def split(self, batch: Any) -> tuple[Any, torch.Tensor]:
        if isinstance(batch, Mapping):
            return batch[self.inputs_key], batch[self.targets_key]
        inputs, targets = batch
        return inputs, targets

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        inputs, targets = self.split(batch)
        return self.criterion(model(inputs), targets)

    def metrics(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor | float]:
        inputs, targets = self.split(batch)
        outputs = model(inputs)
        out: dict[str, torch.Tensor | float] = {"loss": self.criterion(outputs, targets)}
        out.update({name: fn(outputs, targets) for name, fn in self.metric_fns.items()})
        return out

    def batch_size(self, batch: Any) -> int:
        return super().batch_size(self.split(batch)[0])

    def num_tokens(self, batch: Any) -> int:
        return super().num_tokens(self.split(batch)[0])


def as_task(task: Task | Callable[[nn.Module, Any], torch.Tensor]) -> Task:
    """A `Task` as is; a function ``loss_fn(model, batch)`` wrapped in a `LossTask`."""
    if isinstance(task, Task):
        return task
    if callable(task):
        return LossTask(task)
    raise TypeError(f"task must be a seqmamba.training.Task or a loss function, got {type(task).__name__}")
