"""PyTorch datasets of genome windows as token tensors, for DataLoader (workers welcome)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from ..errors import InputError
from ..tokenizers.dna import DNATokenizer
from .fasta import FastaFile
from .windows import Window, WindowedGenome


def window_item(window: Window, tokenizer: DNATokenizer, bases: bytes | None = None) -> dict[str, Any]:
    """One sample: ``input_ids`` (int64), ``attention_mask`` (0 on padding) and the coordinates."""
    seq = window.sequence if bases is None else bases
    ids = tokenizer.encode(seq, record=window.chrom, offset=window.start, dtype=np.int64)
    mask = np.ones(len(ids), dtype=np.int64)
    if window.pad:
        ids = np.concatenate([ids, np.full(window.pad, tokenizer.pad_id, dtype=np.int64)])
        mask = np.concatenate([mask, np.zeros(window.pad, dtype=np.int64)])
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
            "chrom": window.chrom, "start": window.start, "end": window.end, "strand": window.strand}


def collate_windows(items: Sequence[dict[str, Any]], pad_id: int = DNATokenizer.pad_id) -> dict[str, Any]:
    """``collate_fn`` for windows of different lengths (``partial="keep"``): right-pads the batch."""
    width = max(item["input_ids"].numel() for item in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, item in enumerate(items):
        n = item["input_ids"].numel()
        ids[row, :n] = item["input_ids"]
        mask[row, :n] = item["attention_mask"]
    out: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
    for key in ("chrom", "strand"):
        out[key] = [item[key] for item in items]
    for key in ("start", "end"):
        out[key] = torch.tensor([item[key] for item in items], dtype=torch.long)
    return out


class WindowIterableDataset(IterableDataset):
    """Streams windows of a FASTA file (any compression) as token tensors.

    Each DataLoader worker (and each distributed rank, given ``rank``/``world_size``) reads the
    file but only copies and tokenizes every n-th window, so the shards are disjoint and together
    give every window once. Memory stays a few windows per worker.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "genome.fa"
        >>> _ = path.write_text(">chr1\\n" + "ACGT" * 50 + "\\n")
        >>> data = WindowIterableDataset(path, size=64, partial="pad")   # 4 windows, the last padded
        >>> loader = torch.utils.data.DataLoader(data, batch_size=2)
        >>> next(iter(loader))["input_ids"].shape
        torch.Size([2, 64])
    """

    def __init__(self, fasta: str | os.PathLike, size: int = 1_000_000, stride: int | None = None, *,
                 tokenizer: DNATokenizer | None = None, rank: int = 0, world_size: int = 1,
                 **window_options: Any) -> None:
        super().__init__()
        self.genome = WindowedGenome(fasta, size, stride, **window_options)
        self.tokenizer = tokenizer or DNATokenizer()
        if not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        shards = self.world_size * workers
        shard = self.rank * workers + worker
        for window in self.genome.windows(select=lambda i: i % shards == shard):
            yield window_item(window, self.tokenizer)


class WindowDataset(Dataset):
    """Map-style windows (random access through pyfaidx; plain or bgzip FASTA, not plain gzip).

    The window list (with the N filter applied) is made by one streaming pass at construction;
    items are read through the ``.fai`` index, opened lazily in each worker process.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "genome.fa"
        >>> _ = path.write_text(">chr1\\n" + "ACGT" * 50 + "\\n")
        >>> data = WindowDataset(path, size=64, stride=32)
        >>> len(data), data[0]["input_ids"].shape
        (6, torch.Size([64]))
    """

    def __init__(self, fasta: str | os.PathLike, size: int = 1_000_000, stride: int | None = None, *,
                 tokenizer: DNATokenizer | None = None, index_dir: str | os.PathLike | None = None,
                 **window_options: Any) -> None:
        self.fasta = FastaFile(fasta)
        if self.fasta.compression == "gzip":
            # Fail before the long pass, with the how-to.
            self.fasta.index(index_dir)
        self.index_dir = index_dir
        self.genome = WindowedGenome(self.fasta, size, stride, **window_options)
        self.tokenizer = tokenizer or DNATokenizer()
        # Coordinates only: the strand is re-applied per item, the bases are fetched again.
        self.windows = [Window(w.chrom, w.start, w.end, w.strand, w.n_fraction, w.pad) for w in self.genome]
        self._index = None

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if self._index is None or self._index_pid != os.getpid():
            # One file handle per process: handles inherited through fork share their offset.
            self._index = self.fasta.index(self.index_dir)
            self._index_pid = os.getpid()
        window = self.windows[i]
        bases = self._index[window.chrom][window.start:window.end].encode("ascii")
        if len(bases) != window.end - window.start:
            raise InputError(f"{self.fasta.path}: index disagrees with the file at {window.chrom} "
                             f"{window.start} {window.end}; delete the stale .fai")
        oriented = Window(window.chrom, window.start, window.end, window.strand, window.n_fraction,
                          window.pad, bases).sequence
        return window_item(window, self.tokenizer, oriented)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_index"] = None  # file handles do not travel to spawned workers
        return state
