"""`Callback`: hooks into `Trainer.fit` (timing, custom metrics, stopping, tests that kill a run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from torch import nn

from .config import TrainerState


class Trainer(Protocol):
    """What a callback sees of the `seqmamba.training.Trainer` running it (so this module needs no import
    of the trainer, which imports it)."""

    state: TrainerState
    should_stop: bool
    model: nn.Module
    run_dir: Path | None


class Callback:
    """Override the hooks you need; ``trainer.state`` says where the run stands.

    Set ``trainer.should_stop = True`` to end the run cleanly (a checkpoint is written); raising ends it
    at once, and the last checkpoint written stays (``fit(resume=True)`` continues from it).

    Example:
        >>> class StopAt(Callback):
        ...     def __init__(self, step):
        ...         self.step = step
        ...     def on_step_end(self, trainer):
        ...         trainer.should_stop = trainer.state.global_step >= self.step
    """

    def on_train_start(self, trainer: Trainer) -> None:
        """After set-up (and resume), before the first step."""

    def on_step_end(self, trainer: Trainer) -> None:
        """After each optimizer step."""

    def on_evaluate(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        """After each evaluation, with the all-reduced ``val_*`` metrics."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """After each epoch, with its metrics.jsonl record."""

    def on_train_end(self, trainer: Trainer) -> None:
        """When fit returns normally."""
