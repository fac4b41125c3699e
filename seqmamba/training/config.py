"""How to train (`TrainerConfig`), where a run stands (`TrainerState`), and seeding: the plain data of
`seqmamba.training.trainer`."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

PRECISIONS = ("auto", "bf16", "fp32")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (every device): call it before building the model."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the global RNG user code draws from
    torch.manual_seed(seed)


@dataclass
class TrainerConfig:
    """How to train. Batch sizes are per process and per micro-step.

    The global batch of one optimizer step is ``batch_size * grad_accum_steps * world_size``.

    Args:
        max_epochs, max_steps: stop after whichever comes first (at least one must be set; a step is
            one optimizer update).
        batch_size: samples per micro-batch per process (map-style datasets); eval_batch_size
            defaults to it.
        grad_accum_steps: micro-batches per optimizer step.
        lr, weight_decay, betas, adam_eps: AdamW. No decay for biases, norms, embeddings and
            parameters flagged ``_no_weight_decay`` (Mamba's A_log and D).
        warmup_steps, schedule, min_lr_ratio: linear warm-up, then "cosine" down to
            ``lr * min_lr_ratio`` at the last step, or "constant".
        max_grad_norm: clip the global gradient norm (None: no clipping).
        precision: "auto" (bf16 autocast on CUDA GPUs that support it, else float32), "bf16" or "fp32".
        device: "auto", "cpu", "cuda" or "cuda:N" (under torchrun, "auto"/"cuda" is cuda:LOCAL_RANK).
        seed: data order, dropout and every other random draw of the run.
        eval_every: evaluate every N steps; None: at the end of every epoch.
        save_every: also write the checkpoint every N steps (always at epoch ends and at the end).
        log_every: append a train record to metrics.jsonl every N steps.
        monitor, mode, patience, min_delta: early stopping and the best checkpoint: the validation
            metric to watch (``val_<name>``), "min" or "max", evaluations without improvement before
            stopping (None: never stop early), the smallest change that counts.
        restore_best: load the best weights into the model when training ends.
        eval_at_start: evaluate once before the first step of a fresh run, so the starting weights
            (e.g. a model initialised in closed form) are a candidate for the best checkpoint and
            for early stopping's comparisons.
        gradient_checkpointing: set the model's ``gradient_checkpointing`` (None: leave it).
        cuda_graphs: on a CUDA GPU, replay each repeated batch shape's whole step (forward, backward, clipping,
            AdamW) from a CUDA graph (`seqmamba.training.graphs`), and the validation set's evaluation too: for
            small models, whose steps wait on the host. Taken only by one process with one micro-batch per step
            and no gradient checkpointing; the optimizer is then a capturable AdamW (the same updates to
            rounding). The estimators turn it on unless ``SEQMAMBA_CUDA_GRAPHS=0``;
            tests/seqmamba/training/test_graphed_step.py holds it to eager training on a GPU.
        quiet: no progress bar.
        overwrite: start afresh in a run directory that already holds a checkpoint (else an error).

    Example:
        >>> cfg = TrainerConfig(max_steps=1000, batch_size=16, lr=3e-4, warmup_steps=100)
        >>> cfg.grad_accum_steps, cfg.precision
        (1, 'auto')
    """

    max_epochs: int | None = 1
    max_steps: int | None = None
    batch_size: int = 8
    eval_batch_size: int | None = None
    grad_accum_steps: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    warmup_steps: int = 0
    schedule: str = "cosine"
    min_lr_ratio: float = 0.0
    max_grad_norm: float | None = 1.0
    precision: str = "auto"
    device: str = "auto"
    seed: int = 0
    shuffle: bool = True
    drop_last: bool = True
    num_workers: int = 0
    eval_every: int | None = None
    save_every: int | None = None
    log_every: int | None = None
    monitor: str = "val_loss"
    mode: str = "min"
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = False
    eval_at_start: bool = False
    gradient_checkpointing: bool | None = None
    cuda_graphs: bool = False
    quiet: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.max_epochs is None and self.max_steps is None:
            raise ValueError("TrainerConfig: set max_epochs, max_steps or both")
        positive = ("max_epochs", "max_steps", "batch_size", "eval_batch_size", "grad_accum_steps",
                    "eval_every", "save_every", "log_every", "patience")
        for name in positive:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"TrainerConfig: {name} must be a positive integer or None, got {value!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainerConfig: precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.mode not in ("min", "max"):
            raise ValueError(f"TrainerConfig: mode must be 'min' or 'max', got {self.mode!r}")
        if self.lr <= 0:
            raise ValueError(f"TrainerConfig: lr must be > 0, got {self.lr}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"TrainerConfig: max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
        self.betas = (float(self.betas[0]), float(self.betas[1]))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TrainerState:
    """Where a run stands; saved in every checkpoint and restored by ``fit(resume=True)``."""

    global_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0  # micro-batches of this epoch already trained on (this rank)
    best_metric: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    last_eval_step: int | None = None
    stopped_early: bool = False
    # Running sums of the current epoch (this rank), so a resumed epoch reports the same train loss.
    loss_sum: float = 0.0
    loss_steps: int = 0
    samples: int = 0
    tokens: int = 0
    metrics_offset: int = 0
    last_lr: float | None = None  # the learning rate the last step used
    last_metrics: dict[str, float] = field(default_factory=dict)
