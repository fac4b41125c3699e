"""Thin helpers over torch.distributed for runs started by torchrun (or one plain process).

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous variables; `init_distributed` reads them
and opens the default process group (NCCL on CUDA, gloo on CPU). Everything else is PyTorch's own:
DistributedDataParallel for gradients, DistributedSampler for data. Rank 0 writes files; the others
wait at a barrier.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the run.

    Example:
        >>> ctx = DistContext()
        >>> ctx.is_main, ctx.enabled
        (True, False)
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    """WORLD_SIZE as torchrun set it (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: torch.device | None = None, backend: str | None = None) -> DistContext:
    """Join the process group torchrun prepared; a no-op context for a single process.

    Reuses a group the caller already initialised. ``backend`` defaults to NCCL for CUDA devices and
    gloo otherwise.
    """
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    world_size = env_world_size()
    if world_size <= 1:
        return DistContext()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if backend is None:
        backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
    kwargs: dict[str, Any] = {"backend": backend}
    if device is not None and device.type == "cuda":
        torch.cuda.set_device(device)
        kwargs["device_id"] = device  # binds NCCL to this GPU up front (no guessing at the first collective)
    dist.init_process_group(**kwargs)
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), True)


def shutdown(ctx: DistContext) -> None:
    """Destroy the process group if `init_distributed` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def all_reduce_sums(ctx: DistContext, values: list[float], device: torch.device) -> list[float]:
    """Element-wise sums over all ranks (float64, so counts and sums stay exact)."""
    if not ctx.enabled:
        return list(values)
    # gloo reduces CPU tensors, NCCL CUDA ones.
    where = device if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.tensor(values, dtype=torch.float64, device=where)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def all_gather_objects(ctx: DistContext, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (one entry outside torchrun)."""
    if not ctx.enabled:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(ctx: DistContext, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
