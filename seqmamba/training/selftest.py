"""A tiny end-to-end training run on synthetic data: shows the engine works here (and under torchrun).

The model is a small causal `MambaEncoder` with a linear head; the target at position t is the running
mean of input channel 0 over 0..t, which a causal SSM can learn in a few dozen steps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ..config import MambaConfig
from ..encoder import MambaEncoder
from .callbacks import Callback
from .config import TrainerConfig, TrainerState, seed_everything
from .task import SupervisedTask
from .trainer import Trainer

D_MODEL, N_LAYERS, D_STATE, LENGTH = 8, 2, 4, 32


class SelftestModel(nn.Module):
    """(batch, L, d_model) -> (batch, L): a causal encoder and a linear head.

    Example:
        >>> SelftestModel()(torch.randn(2, 16, D_MODEL)).shape
        torch.Size([2, 16])
    """

    def __init__(self) -> None:
        super().__init__()
        self.config = MambaConfig(d_model=D_MODEL, n_layers=N_LAYERS, d_state=D_STATE)
        self.encoder = MambaEncoder(self.config)
        self.head = nn.Linear(D_MODEL, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)).squeeze(-1)  # (batch, L)


def synthetic_data(n: int, seed: int) -> TensorDataset:
    """n sequences x (n, L, d_model) and targets y (n, L), the same for every rank and world size."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, LENGTH, D_MODEL, generator=generator)  # (n, L, d_model)
    steps = torch.arange(1, LENGTH + 1, dtype=x.dtype)
    y = x[..., 0].cumsum(1) / steps  # (n, L)
    return TensorDataset(x, y)


class _Delay(Callback):
    """Sleeps after each step: lets a test kill the process mid-run."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_step_end(self, trainer: Trainer) -> None:
        time.sleep(self.seconds)


def run_selftest(
    run_dir: str | os.PathLike | None,
    *,
    device: str = "auto",
    max_steps: int = 40,
    batch_size: int = 8,
    grad_accum_steps: int = 1,
    lr: float = 3e-3,
    seed: int = 0,
    save_every: int | None = None,
    quiet: bool = False,
    resume: bool = False,
    step_delay: float = 0.0,
    callbacks: Sequence[Callback] = (),
    **config: Any,
) -> tuple[Trainer, TrainerState]:
    """Train `SelftestModel` on 64 synthetic sequences (16 for validation) through `Trainer`."""
    seed_everything(seed)
    model = SelftestModel()
    cfg = TrainerConfig(max_epochs=None, max_steps=max_steps, batch_size=batch_size,
                        grad_accum_steps=grad_accum_steps, lr=lr, warmup_steps=min(5, max_steps), seed=seed,
                        device=device, save_every=save_every, quiet=quiet, **config)
    callbacks = [*callbacks, *([_Delay(step_delay)] if step_delay > 0 else [])]
    trainer = Trainer(model, SupervisedTask(nn.functional.mse_loss), synthetic_data(64, seed=1234),
                      val_data=synthetic_data(16, seed=4321), config=cfg, run_dir=run_dir, callbacks=callbacks)
    return trainer, trainer.fit(resume=resume)
