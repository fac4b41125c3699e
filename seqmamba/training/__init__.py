"""The training engine every seqmamba model trains with, from Python and from ``seqmamba train``.

`Trainer` runs AdamW (weight-decay groups) with warm-up + cosine, clipping, accumulation, bf16 on CUDA,
early stopping, atomic resumable checkpoints and ``metrics.jsonl``; under ``torchrun`` the same code
trains with DistributedDataParallel. A `Task` says how a model meets a batch.
"""

from .callbacks import Callback
from .config import TrainerConfig, TrainerState, seed_everything
from .device import resolve_device
from .distributed import DistContext, init_distributed
from .metrics import MetricsWriter, read_metrics
from .optim import WarmupCosine, build_optimizer, build_scheduler, param_groups
from .task import LossTask, SupervisedTask, Task
from .trainer import Trainer

__all__ = [
    "Callback",
    "DistContext",
    "LossTask",
    "MetricsWriter",
    "SupervisedTask",
    "Task",
    "Trainer",
    "TrainerConfig",
    "TrainerState",
    "WarmupCosine",
    "build_optimizer",
    "build_scheduler",
    "init_distributed",
    "param_groups",
    "read_metrics",
    "resolve_device",
    "seed_everything",
]
