"""Whole genomes as one uint8 token array, and random windows drawn from it (genome pretraining).

`GenomeTokens.read` streams FASTA files once through the validating scanner (`FastaFile.scan`) into a
single array of `DNATokenizer` ids (a base is a byte), with a table of records. It is filled in blocks
of 64 MiB that are copied into the final array and freed one by one, so the genome is never held twice
(the peak is the genome plus one block).

`GenomeWindows` draws windows for training and validation:

- each record keeps its last ``valid_frac`` as a held-out region, never drawn for training;
- a training window lies wholly in a record's training region; the record is drawn in proportion to
  the length of that region, the start uniformly; records whose training region is shorter than the
  window are skipped (they are listed in ``skipped``);
- windows with more than ``max_n_frac`` non-ACGT bases (N) are skipped (drawn again);
- validation windows tile the held-out regions (a region shorter than the window is one shorter
  window); a fixed number of them is chosen with a fixed seed.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "g.fa"
    >>> _ = path.write_text(">chr1\\n" + "ACGT" * 500 + "\\n>chr2\\n" + "GGCC" * 250 + "\\n")
    >>> genome = GenomeTokens.read([path])
    >>> [(r.name, r.length) for r in genome.records], genome.tokens.dtype
    ([('chr1', 2000), ('chr2', 1000)], dtype('uint8'))
    >>> windows = GenomeWindows(genome, 100, valid_frac=0.1)
    >>> w = windows.train_window(np.random.default_rng(0))
    >>> w.end - w.start, w.end <= windows.train_length(w.record)
    (100, True)
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..tokenizers.dna import COMPLEMENT, DNATokenizer, T
from .fasta import FastaFile
from .fasta_scan import RecordStart

BLOCK_BYTES = 1 << 26  # reading buffer: the peak memory above the genome itself
_COUNT_BLOCK = 1 << 24  # window starts whose N counts are computed at once (int32 sums: 64 MiB)
_COMPLEMENT = np.asarray(COMPLEMENT, dtype=np.uint8)
MIN_VALID_LENGTH = 64  # held-out regions shorter than this (and than the window) give no validation window

ProgressFor = Callable[[Path], contextlib.AbstractContextManager[Callable[[int], None]]]


@dataclass(frozen=True)
class GenomeRecord:
    """One FASTA record: its file, name, where its tokens start in `GenomeTokens.tokens`, its length."""

    path: str
    name: str
    offset: int
    length: int


@dataclass(frozen=True)
class GenomeWindow:
    """A window of a record: index into `GenomeTokens.records`, 0-based half-open forward-strand bases."""

    record: int
    start: int
    end: int


class GenomeTokens:
    """Every non-empty record of FASTA files as one uint8 token array (`DNATokenizer` ids).

    Args:
        tokens: the ids of every record, one after the other.
        records: where each record lies in ``tokens``.
    """

    def __init__(self, tokens: np.ndarray, records: Sequence[GenomeRecord]) -> None:
        self.tokens = tokens
        self.records = list(records)

    @classmethod
    def read(cls, paths: Sequence[str | os.PathLike], progress_for: ProgressFor | None = None,
             tokenizer: DNATokenizer | None = None) -> GenomeTokens:
        """Read FASTA files (plain, gzip, bgzip) once, validating them (`InputError` naming file and line).

        ``progress_for(path)`` gives a context manager yielding a callback of the bytes read from disk
        (``seqmamba.pipelines.progress.file_progress`` draws a bar with it).
        """
        if not paths:
            raise InputError("no FASTA file given")
        tokenizer = tokenizer or DNATokenizer()
        buffer = _BlockBuffer()
        records: list[GenomeRecord] = []
        for path in paths:
            progress = progress_for(Path(path)) if progress_for is not None else contextlib.nullcontext(None)
            with progress as update:
                name, start = None, 0
                for event in FastaFile(path).scan(progress=update):
                    if isinstance(event, RecordStart):
                        if name is not None and buffer.size > start:
                            records.append(GenomeRecord(os.fspath(path), name, start, buffer.size - start))
                        name, start = event.name, buffer.size
                    else:
                        buffer.append(tokenizer.encode(event, record=name, offset=buffer.size - start))
                if name is not None and buffer.size > start:
                    records.append(GenomeRecord(os.fspath(path), name, start, buffer.size - start))
        return cls(buffer.finish(), records)

    @property
    def paths(self) -> list[str]:
        """The files read, in order (those with at least one record)."""
        return list(dict.fromkeys(r.path for r in self.records))

    @property
    def n_bases(self) -> int:
        return int(self.tokens.size)

    def window(self, w: GenomeWindow) -> np.ndarray:
        """The ids of a window (a view: copy it before changing it)."""
        offset = self.records[w.record].offset
        return self.tokens[offset + w.start: offset + w.end]


class _BlockBuffer:
    """Appends ids into 64 MiB blocks; `finish` moves them into one exact-size array, freeing each block."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []
        self.size = 0
        self._room = 0

    def append(self, ids: np.ndarray) -> None:
        while ids.size:
            if not self._room:
                self.blocks.append(np.empty(BLOCK_BYTES, dtype=np.uint8))
                self._room = BLOCK_BYTES
            used = BLOCK_BYTES - self._room
            n = min(self._room, ids.size)
            self.blocks[-1][used:used + n] = ids[:n]
            ids = ids[n:]
            self._room -= n
            self.size += n

    def finish(self) -> np.ndarray:
        out = np.empty(self.size, dtype=np.uint8)  # pages become resident as blocks are copied in
        position = 0
        while self.blocks:
            block = self.blocks.pop(0)
            n = min(BLOCK_BYTES, self.size - position)
            out[position:position + n] = block[:n]
            position += n
            del block  # freed before the next block is copied
        return out


def reverse_complement_ids(ids: np.ndarray) -> np.ndarray:
    """Reverse complement of genome token ids (bases swap A<->T, C<->G; N stays), a new array.

    Example:
        >>> DNATokenizer().decode(reverse_complement_ids(DNATokenizer().encode("AACGN")))
        'NCGTT'
    """
    return _COMPLEMENT[ids[::-1]]


class GenomeWindows:
    """Training and validation windows of ``window`` bases over a `GenomeTokens` (see the module's doc).

    Args:
        genome: the tokens.
        window: bases per window.
        valid_frac: share of each record held out at its end (0 <= valid_frac < 0.5).
        max_n_frac: windows with a larger share of non-ACGT bases are skipped (0..1).

    Raises `InputError` naming the files when no record has a training region as long as the window,
    or when every such window has too many N.
    """

    def __init__(self, genome: GenomeTokens, window: int, *, valid_frac: float = 0.02,
                 max_n_frac: float = 0.1) -> None:
        if window < 1:
            raise ValueError(f"window must be positive, got {window!r}")
        if not 0 <= valid_frac < 0.5:
            raise ValueError(f"valid_frac must be in [0, 0.5), got {valid_frac!r}")
        if not 0 <= max_n_frac <= 1:
            raise ValueError(f"max_n_frac must be in [0, 1], got {max_n_frac!r}")
        self.genome, self.window = genome, window
        self.valid_frac, self.max_n_frac = valid_frac, max_n_frac
        self.max_n = math.floor(max_n_frac * window + 1e-9)  # N allowed in a training window
        lengths = np.array([r.length for r in genome.records], dtype=np.int64)
        self.held_out = np.floor(lengths * valid_frac).astype(np.int64)
        self.train_lengths = lengths - self.held_out
        where = ", ".join(genome.paths) or "the input"
        long_enough = np.flatnonzero(self.train_lengths >= window)
        self.skipped = [i for i in range(len(lengths)) if self.train_lengths[i] < window]
        if long_enough.size == 0:
            longest = int(np.argmax(self.train_lengths)) if lengths.size else None
            detail = "" if longest is None else (
                f"; the longest, {genome.records[longest].name!r} in {genome.records[longest].path}, has "
                f"{int(self.train_lengths[longest]):,} bases outside its held-out end")
            raise InputError(f"{where}: no record is long enough for one {window:,}-base window{detail}; "
                             "lower the window (--window)")
        acceptable = np.array([self._acceptable_starts(i) for i in long_enough], dtype=np.int64)
        usable = long_enough[acceptable > 0]
        if usable.size == 0:
            raise InputError(f"{where}: every {window:,}-base window of the training regions has more than "
                             f"{max_n_frac:g} of its bases N (or another non-ACGT code); raise --max-n-frac "
                             "or lower --window")
        self._records = usable
        self._cumulative = np.cumsum(self.train_lengths[usable]).astype(np.float64)
        starts = self.train_lengths[long_enough] - window + 1
        share = self.train_lengths[long_enough] / self.train_lengths[long_enough].sum()
        #: share of drawn windows that pass the N filter (expected); draws are repeated until one passes
        self.acceptance = float((share * acceptable / starts).sum())
        self._max_tries = int(100 / self.acceptance) + 1000

    # -- training -------------------------------------------------------------------------------

    def train_length(self, record: int) -> int:
        """Bases of ``record`` that training windows may cover (its start up to the held-out end)."""
        return int(self.train_lengths[record])

    def record_weights(self) -> dict[int, float]:
        """Probability that a draw (before the N filter) picks each record: proportional to its length."""
        total = self._cumulative[-1]
        return {int(r): float(self.train_lengths[r] / total) for r in self._records}

    def train_window(self, rng: np.random.Generator) -> GenomeWindow:
        """One training window: a record in proportion to its length, a uniform start, drawn again
        while the window has too many N."""
        window, tokens = self.window, self.genome.tokens
        for _ in range(self._max_tries):
            pick = int(np.searchsorted(self._cumulative, rng.random() * self._cumulative[-1], side="right"))
            record = int(self._records[min(pick, len(self._records) - 1)])
            start = int(rng.integers(0, self.train_lengths[record] - window + 1))
            offset = self.genome.records[record].offset + start
            if self.max_n >= window or np.count_nonzero(tokens[offset:offset + window] > T) <= self.max_n:
                return GenomeWindow(record, start, start + window)
        raise RuntimeError(f"no window passed the N filter in {self._max_tries} draws "
                           f"(expected share {self.acceptance:.3g})")

    def _acceptable_starts(self, record: int) -> int:
        """How many training windows of ``record`` pass the N filter (running sums, block by block)."""
        window, allowed = self.window, self.max_n
        rec = self.genome.records[record]
        region = self.genome.tokens[rec.offset: rec.offset + int(self.train_lengths[record])]
        n_starts = region.size - window + 1
        if n_starts <= 0:
            return 0
        if allowed >= window or np.count_nonzero(region > T) <= allowed:
            return n_starts
        count = 0
        for first in range(0, n_starts, _COUNT_BLOCK):
            n = min(_COUNT_BLOCK, n_starts - first)
            sums = np.zeros(n + window, dtype=np.int32)
            np.cumsum(region[first:first + n + window - 1] > T, dtype=np.int32, out=sums[1:])
            count += int(np.count_nonzero(sums[window:window + n] - sums[:n] <= allowed))
        return count

    # -- validation -----------------------------------------------------------------------------

    def validation_tiles(self) -> list[GenomeWindow]:
        """Every candidate validation window: the held-out regions cut into windows (the last, or a
        short region, shorter), those with too many N dropped."""
        tiles = []
        floor = min(self.window, MIN_VALID_LENGTH)
        for i, rec in enumerate(self.genome.records):
            begin, end = int(self.train_lengths[i]), rec.length
            for start in range(begin, end, self.window):
                stop = min(start + self.window, end)
                if stop - start < floor:
                    continue
                ids = self.genome.tokens[rec.offset + start: rec.offset + stop]
                if np.count_nonzero(ids > T) <= self.max_n_frac * (stop - start) + 1e-9:
                    tiles.append(GenomeWindow(i, start, stop))
        return tiles

    def validation_windows(self, n: int, seed: int = 0) -> list[GenomeWindow]:
        """Up to ``n`` validation windows chosen among `validation_tiles` with ``seed`` (the same set
        whatever the run's own seed), in genome order."""
        tiles = self.validation_tiles()
        if len(tiles) <= n:
            return tiles
        chosen = np.sort(np.random.default_rng(seed).choice(len(tiles), size=n, replace=False))
        return [tiles[i] for i in chosen]

    def describe(self) -> Iterator[str]:
        """Lines for people: what is used and what is skipped."""
        g = self.genome
        used = len(g.records) - len(self.skipped)
        yield (f"{len(g.paths)} file(s), {len(g.records)} record(s), {g.n_bases:,} bases; {used} record(s) "
               f"long enough for {self.window:,}-base windows")
        if self.skipped:
            names = ", ".join(g.records[i].name for i in self.skipped[:5])
            more = f" and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
            bases = sum(g.records[i].length for i in self.skipped)
            yield f"skipped (shorter than a window outside the held-out end): {names}{more} ({bases:,} bases)"
