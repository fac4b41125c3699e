"""`classify` and `embed` across processes under torchrun: one output, as a single process writes it.

Every process validates every input (`record_stream.survey_records`), so all of them know every record's
length. Each then takes a contiguous run of records holding about the same number of bases
(`balanced_ranges`), runs the model over it, and writes its part beside the output
(``.<output>.part<rank>-of-<world><suffix>``, atomically). The processes then agree, over a gloo group,
whether every part is complete: if so, rank 0 merges the parts in rank order into the output (atomically:
the same rows in the same order as one process would write), and every part is removed; if any process
failed, no output is written, every part is removed, and each process exits with an error (the failed
one's own, the others' saying that another failed). Repeating the command repeats the run.

The group is gloo whatever the device: the processes exchange one number each, and gloo needs no GPU.
`--device cuda` (or auto) puts each process on its own GPU, ``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..datasets.atomic import atomic_path, output_or_stdout
from ..errors import InputError
from ..training.distributed import env_world_size, init_distributed, shutdown


def balanced_ranges(lengths: Sequence[int], world: int) -> list[range]:
    """Contiguous record ranges, one per rank, with about the same number of bases each.

    A record goes to the rank whose share of the bases holds its middle, so a record is never split and
    the ranges follow the input order.

    Example:
        >>> balanced_ranges([10, 10, 10, 10], 2)
        [range(0, 2), range(2, 4)]
        >>> balanced_ranges([100, 1, 1, 1], 2)
        [range(0, 1), range(1, 4)]
    """
    sizes = np.asarray(lengths, dtype=np.float64)
    if len(sizes) == 0:
        return [range(0, 0)] * world
    middles = np.cumsum(sizes) - sizes / 2
    owner = np.minimum((middles * world / sizes.sum()).astype(np.int64), world - 1)  # non-decreasing
    bounds = np.searchsorted(owner, np.arange(world + 1), side="left")
    return [range(int(bounds[r]), int(bounds[r + 1])) for r in range(world)]


def part_path(output: str | os.PathLike, rank: int, world: int) -> Path:
    """Where rank ``rank`` writes its part of ``output``: a hidden file beside it, with its suffix."""
    out = Path(output)
    return out.with_name(f".{out.stem}.part{rank:04d}-of-{world:04d}{out.suffix}")


def under_torchrun() -> bool:
    """Whether this process is one of several that torchrun started."""
    return env_world_size() > 1


def is_first_process() -> bool:
    """Rank 0 under torchrun (the one whose progress a person sees), or a process of its own."""
    return int(os.environ.get("RANK", "0")) == 0


def check_shardable(inputs: Sequence[str], output: str | None, streams: bool) -> None:
    """Refuse what a sharded run cannot do, before any work: each process must read every input itself, and
    the parts need a file to be merged into."""
    if output is None:
        raise InputError("under torchrun, give -o FILE: the processes' parts are merged into one file")
    if streams:
        raise InputError(f"{', '.join(inputs)}: standard input or a pipe cannot be split across torchrun's "
                         "processes (each reads every input); give files")


def run_sharded(output: str, lengths: Sequence[int], work: Callable[[range, Path], None],
                merge: Callable[[list[Path], str], None]) -> bool:
    """Run ``work(records, part)`` on this process's share, then merge every part into ``output`` on rank 0.

    Returns whether this process is rank 0 (the one that reports). Raises this process's own error if its
    work failed, or an InputError if another's did; in both cases no output is written and no part is left.
    """
    ctx = init_distributed(backend="gloo")
    try:
        share = balanced_ranges(lengths, ctx.world_size)
        parts = [part_path(output, r, ctx.world_size) for r in range(ctx.world_size)]
        error: BaseException | None = None
        try:
            if len(share[ctx.rank]):
                work(share[ctx.rank], parts[ctx.rank])
        except BaseException as err:  # reported once every process knows
            error = err
        all_done = _agree(error is None)
        merge_error: BaseException | None = None
        if all_done and ctx.is_main:
            try:
                merge([p for p, s in zip(parts, share) if len(s)], output)
            except BaseException as err:  # the others must learn of it too
                merge_error = err
        merged = _agree(merge_error is None)  # also: the merge has read every part before any is removed
        with contextlib.suppress(FileNotFoundError):
            parts[ctx.rank].unlink()
        for raised in (error, merge_error):
            if raised is not None:
                raise raised
        if not all_done:
            raise InputError(f"{output}: another torchrun process failed (its error is in its log); nothing was "
                             "written")
        if not merged:
            raise InputError(f"{output}: rank 0 could not write it (its error is in its log)")
        return ctx.is_main
    finally:
        shutdown(ctx)


def _agree(ok: bool) -> bool:
    """True on every process when every process says ``ok``."""
    import torch
    import torch.distributed as dist

    flag = torch.tensor([1 if ok else 0], dtype=torch.int64)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def read_embedding_shape(path: str | os.PathLike) -> tuple[int, int]:
    """(rows, width) of an embedding file that `merge_embeddings` wrote."""
    if Path(path).suffix.lower() == ".npy":
        return tuple(np.load(path, mmap_mode="r").shape)
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path)
    return meta.metadata.num_rows, sum(name.startswith("emb_") for name in meta.schema_arrow.names)


# -- merging parts -------------------------------------------------------------------------------------


def merge_tables(parts: list[Path], output: str) -> None:
    """TSV parts, each with the header: the header once, then every part's rows in rank order."""
    with output_or_stdout(output) as out:
        for i, part in enumerate(parts):
            with open(part) as handle:
                header = handle.readline()
                if i == 0:
                    out.write(header)
                shutil.copyfileobj(handle, out)


def merge_embeddings(parts: list[Path], output: str) -> None:
    """Parquet parts (their row groups, in order) or ``.npy`` parts (their rows, in order) into one file."""
    with atomic_path(output) as tmp:
        if Path(output).suffix.lower() == ".npy":
            from .embedding_files import NpyRows

            arrays = [np.load(part, mmap_mode="r") for part in parts]
            writer = NpyRows(tmp, sum(len(a) for a in arrays))
            for array in arrays:
                for start in range(0, len(array), 65536):  # bounded memory however large the part
                    writer.append([], None, None, np.asarray(array[start:start + 65536]))
            writer.close()
            return
        import pyarrow.parquet as pq

        writer = None
        try:
            for part in parts:
                source = pq.ParquetFile(part)
                if writer is None:
                    writer = pq.ParquetWriter(str(tmp), source.schema_arrow)
                for group in range(source.num_row_groups):
                    writer.write_table(source.read_row_group(group))
        finally:
            if writer is not None:
                writer.close()
