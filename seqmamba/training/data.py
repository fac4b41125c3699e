"""Batches for the trainer: resumable distributed sampling, sharded evaluation, device transfer."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset, Sampler

from .distributed import DistContext

T = TypeVar("T")

# A loader factory: (epoch, distributed context) -> batches. For iterable datasets and custom loaders;
# it must give the same batches for the same epoch (resume replays an epoch's start by skipping).
LoaderFactory = Callable[[int, DistContext], Iterable[Any]]


class ResumableSampler(Sampler[int]):
    """DistributedSampler that can start an epoch part-way, so a resumed run sees the same batches.

    Its order depends only on (seed, epoch), for one process and for many: with world size W, rank r
    gets every W-th index of the same permutation, so the global batch of W ranks of B samples holds
    the same samples as one process with batch W*B.

    Example:
        >>> sampler = ResumableSampler(range(6), DistContext(), shuffle=False, seed=0)
        >>> sampler.set_epoch(0, start=4)
        >>> list(sampler)
        [4, 5]
    """

    def __init__(self, dataset: Dataset, ctx: DistContext, shuffle: bool, seed: int) -> None:
        self.inner = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank,
                                        shuffle=shuffle, seed=seed, drop_last=False)
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.inner.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.inner), self.start, None)

    def __len__(self) -> int:
        return max(0, len(self.inner) - self.start)


class ShardSampler(Sampler[int]):
    """Indices rank, rank + W, rank + 2W, ...: evaluation shards without DistributedSampler's padding,
    so every sample counts exactly once in an all-reduced metric."""

    def __init__(self, length: int, ctx: DistContext) -> None:
        self.indices = range(ctx.rank, length, ctx.world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def check_data(data: Any, what: str) -> None:
    if isinstance(data, IterableDataset) or not (callable(data) or hasattr(data, "__getitem__")):
        raise TypeError(
            f"{what} must be a map-style Dataset (with __len__ and __getitem__) or a loader factory "
            f"(epoch, ctx) -> iterable of batches; got {type(data).__name__}. Wrap iterable datasets in a "
            f"factory that shards them by ctx.rank / ctx.world_size."
        )


def groups(batches: Iterable[T], size: int) -> Iterator[tuple[list[T], bool]]:
    """(up to ``size`` consecutive batches, whether they are the last ones); one batch of look-ahead.

    Example:
        >>> list(groups(range(5), 2))
        [([0, 1], False), ([2, 3], False), ([4], True)]
    """
    it = iter(batches)
    group = list(itertools.islice(it, size))
    while group:
        following = list(itertools.islice(it, size))
        yield group, not following
        group = following


def map_tensors(batch: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``batch`` with fn applied to every tensor inside it (dicts, namedtuples, lists and tuples kept as they are).

    Example:
        >>> map_tensors({"x": torch.ones(2), "names": ["a", torch.zeros(1)]}, lambda t: t + 1)["names"][1]
        tensor([1.])
    """
    if torch.is_tensor(batch):
        return fn(batch)
    if isinstance(batch, Mapping):
        return type(batch)({k: map_tensors(v, fn) for k, v in batch.items()})  # type: ignore[call-arg]
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(map_tensors(v, fn) for v in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(map_tensors(v, fn) for v in batch)
    return batch


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor (inside dicts, lists and tuples) moved to ``device``."""
    return map_tensors(batch, lambda t: t.to(device, non_blocking=True))


def make_loader(
    dataset: Dataset,
    sampler: Sampler[int],
    batch_size: int,
    drop_last: bool,
    num_workers: int,
    collate_fn: Callable[[list[Any]], Any] | None,
    pin_memory: bool,
    seed: int,
) -> DataLoader:
    # An own generator: worker seeds then come from (seed, epoch), and the global RNG is not drawn from
    # when an iterator starts (which would shift it differently in a resumed run).
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                      num_workers=num_workers, collate_fn=collate_fn, pin_memory=pin_memory,
                      generator=generator)
