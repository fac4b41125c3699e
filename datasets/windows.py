"""Fixed-size windows over a genome, streamed: memory holds a few windows, never a chromosome.

Coordinates are BED's: 0-based, half-open, on the forward strand whatever the window's strand.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from ..errors import InputError
from ..tokenizers.dna import TEXT_COMPLEMENT
from .bed import Region
from .fasta import FastaFile
from .fasta_scan import RecordStart

Partial = Literal["keep", "pad", "drop"]
Strand = Literal["+", "-", "both"]

# IUPAC complements, both cases (ambiguity codes complement to their own partner).
_DEFINITE = b"ACGTacgt"


@dataclass(frozen=True)
class Window:
    """One window: BED coordinates, strand, the fraction of non-ACGT bases, and its bases.

    ``pad`` is how many positions a ``partial="pad"`` window lacks to reach the window size (the
    coordinates stay inside the record: BED has no positions past a chromosome's end).

    Example:
        >>> w = Window("chr1", 0, 4, "-", 0.0, forward=b"AACG")
        >>> w.sequence, w.to_bed()
        (b'CGTT', 'chr1\\t0\\t4\\t.\\t0\\t-')
    """

    chrom: str
    start: int
    end: int
    strand: str
    n_fraction: float
    pad: int = 0
    forward: bytes = field(default=b"", repr=False)

    @property
    def sequence(self) -> bytes:
        """The bases read 5'->3' on the window's strand (reverse complement for ``-``)."""
        return self.forward.translate(TEXT_COMPLEMENT)[::-1] if self.strand == "-" else self.forward

    def to_bed(self) -> str:
        return f"{self.chrom}\t{self.start}\t{self.end}\t.\t0\t{self.strand}"


def tile(start: int, end: int, size: int, stride: int, partial: Partial) -> list[tuple[int, int]]:
    """Windows of ``size`` every ``stride`` from ``start`` inside ``[start, end)``.

    At most one partial window: the one after the last full window, if the full windows leave the
    end uncovered (later ones would lie inside it); ``partial="drop"`` leaves it out.

    Example:
        >>> tile(0, 25, 10, 10, "keep")
        [(0, 10), (10, 20), (20, 25)]
    """
    out = []
    s = start
    while s + size <= end:
        out.append((s, s + size))
        s += stride
    if partial != "drop" and s < end and (not out or out[-1][1] < end):
        out.append((s, end))
    return out


class WindowedGenome:
    """Windows over every record of a FASTA file, or over given BED regions.

    Args:
        fasta: a path or a :class:`FastaFile` (plain, gzip or bgzip; read once, as a stream).
        size: window length in bases (default 1,000,000).
        stride: distance between window starts (default ``size``: no overlap).
        partial: the window at a record's (or region's) end that is shorter than ``size``:
            ``"keep"`` it shorter, ``"pad"`` it (``Window.pad`` says by how much) or ``"drop"`` it.
        max_n_frac: drop windows whose fraction of non-ACGT bases exceeds this (1.0 keeps all).
        strand: ``"+"``, ``"-"`` (reverse complement) or ``"both"`` (each window twice, + then -).
        regions: BED regions to tile instead of whole records (each tiled from its own start;
            windows come out in file order of records, then by start).

    Iterating yields :class:`Window` objects in file order. Records of length 0 give none.

    Example:
        >>> genome = WindowedGenome("ecoli.fna.gz", size=1_000_000, stride=100_000)  # doctest: +SKIP
        >>> for w in genome:                                                 # doctest: +SKIP
        ...     print(w.to_bed(), len(w.sequence))
    """

    def __init__(
        self,
        fasta: str | os.PathLike | FastaFile,
        size: int = 1_000_000,
        stride: int | None = None,
        *,
        partial: Partial = "keep",
        max_n_frac: float = 1.0,
        strand: Strand = "+",
        regions: Iterable[Region] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        stride = size if stride is None else stride
        if stride < 1:
            raise ValueError(f"stride must be positive, got {stride}")
        if partial not in ("keep", "pad", "drop"):
            raise ValueError(f"partial must be keep, pad or drop, not {partial!r}")
        if strand not in ("+", "-", "both"):
            raise ValueError(f"strand must be +, - or both, not {strand!r}")
        if not 0.0 <= max_n_frac <= 1.0:
            raise ValueError(f"max_n_frac must be within [0, 1], got {max_n_frac}")
        self.fasta = fasta if isinstance(fasta, FastaFile) else FastaFile(fasta)
        self.size, self.stride, self.partial = size, stride, partial
        self.max_n_frac, self.strand = max_n_frac, strand
        self.regions = list(regions) if regions is not None else None

    def __iter__(self) -> Iterator[Window]:
        return self.windows()

    def windows(
        self,
        select: Callable[[int], bool] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[Window]:
        """The windows; ``select(i)`` (i counts windows before the N filter and strands) skips
        copying unselected ones (how DataLoader workers share the work)."""
        plans = self._region_plans()
        seen: set[str] = set()
        cutter: _RecordCutter | None = None
        counter = [0]
        for event in self.fasta.scan(progress):
            if isinstance(event, RecordStart):
                if cutter is not None:
                    yield from self._emit(cutter.finish(), cutter.name, select, counter)
                seen.add(event.name)
                if plans is None:
                    cutter = _RecordCutter(event.name, self.size, self.stride, self.partial)
                elif event.name in plans:
                    cutter = _RecordCutter(event.name, self.size, self.stride, self.partial,
                                           plans[event.name])
                else:
                    cutter = None
            elif cutter is not None:
                yield from self._emit(cutter.push(event), cutter.name, select, counter)
        if cutter is not None:
            yield from self._emit(cutter.finish(), cutter.name, select, counter)
        if plans is not None:
            missing = [r for name, rs in plans.items() if name not in seen for r in rs]
            if missing:
                region = missing[0].region
                raise InputError(f"{region.where}: {region.chrom!r} is not a record of {self.fasta.path}")

    def _emit(self, cuts, chrom: str, select, counter: list[int]) -> Iterator[Window]:
        for start, end, get_bases in cuts:
            index = counter[0]
            counter[0] += 1
            if select is not None and not select(index):
                continue
            bases = get_bases()
            length = end - start
            n_fraction = len(bases.translate(None, _DEFINITE)) / length
            if n_fraction > self.max_n_frac:
                continue
            pad = self.size - length if self.partial == "pad" else 0
            for strand in ("+", "-") if self.strand == "both" else (self.strand,):
                yield Window(chrom, start, end, strand, n_fraction, pad, bases)

    def _region_plans(self) -> dict[str, list[_Planned]] | None:
        if self.regions is None:
            return None
        plans: dict[str, list[_Planned]] = defaultdict(list)
        for region in self.regions:
            for start, end in tile(region.start, region.end, self.size, self.stride, self.partial):
                plans[region.chrom].append(_Planned(start, end, region))
        for planned in plans.values():
            planned.sort(key=lambda p: (p.start, p.end))
        return dict(plans)


@dataclass(frozen=True)
class _Planned:
    start: int
    end: int
    region: Region


class _RecordCutter:
    """Cuts one record's stream of chunks into windows, keeping only the bases still needed.

    Yields ``(start, end, get_bases)``; ``get_bases()`` copies the bases out, so unselected windows
    cost nothing. Without a plan it tiles the whole record (its length known only at the end).
    """

    def __init__(self, name: str, size: int, stride: int, partial: Partial,
                 plan: list[_Planned] | None = None) -> None:
        self.name, self.size, self.stride, self.partial = name, size, stride, partial
        self.plan, self.next_planned = plan, 0
        self.buffer = bytearray()
        self.buffer_start = 0  # record coordinate of buffer[0]
        self.length = 0
        self.next_start = 0
        self.last_end = 0

    def _cut(self, start: int, end: int):
        offset = start - self.buffer_start
        buffer = self.buffer
        return start, end, lambda: bytes(buffer[offset:offset + end - start])

    def push(self, chunk: bytes):
        self.buffer += chunk
        self.length += len(chunk)
        if self.plan is None:
            while self.next_start + self.size <= self.length:
                yield self._cut(self.next_start, self.next_start + self.size)
                self.last_end = self.next_start + self.size
                self.next_start += self.stride
            keep_from = min(self.next_start, self.length)
        else:
            while self.next_planned < len(self.plan) and self.plan[self.next_planned].end <= self.length:
                planned = self.plan[self.next_planned]
                yield self._cut(planned.start, planned.end)
                self.next_planned += 1
            pending = self.plan[self.next_planned:self.next_planned + 1]
            keep_from = min(pending[0].start, self.length) if pending else self.length
        self._trim(keep_from)

    def _trim(self, keep_from: int) -> None:
        drop = keep_from - self.buffer_start
        # Dropping from the front moves the rest: only when it frees at least half the buffer.
        if drop > 0 and drop * 2 >= len(self.buffer):
            del self.buffer[:drop]
            self.buffer_start += drop

    def finish(self):
        if self.plan is None:
            if (self.partial != "drop" and self.next_start < self.length
                    and (self.last_end == 0 or self.last_end < self.length)):
                yield self._cut(self.next_start, self.length)
            return
        if self.next_planned < len(self.plan):
            planned = self.plan[self.next_planned]
            region = planned.region
            raise InputError(f"{region.where}: region {region.chrom} {region.start} {region.end} "
                             f"ends past the end of {self.name!r} ({self.length} bp)")
