"""Per-record composition of a FASTA stream: length, GC, N and soft-masked fractions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .fasta_scan import RecordStart

_GC = [ord(c) for c in "GCgc"]
_ACGT = [ord(c) for c in "ACGTacgt"]
_LOWER = list(range(ord("a"), ord("z") + 1))


@dataclass
class RecordStats:
    """Byte counts of one record; fractions are computed from them.

    ``gc``: (G + C) / (A + C + G + T), so Ns do not dilute it; ``n_fraction``: bases that are not
    A, C, G or T (N and IUPAC ambiguity codes) over the length; ``soft_masked``: lower-case bases
    over the length. Fractions are NaN for a record of length 0.
    """

    name: str
    line: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(256, dtype=np.int64), repr=False)

    @property
    def length(self) -> int:
        return int(self.counts.sum())

    @property
    def gc(self) -> float:
        definite = self.counts[_ACGT].sum()
        return float(self.counts[_GC].sum() / definite) if definite else float("nan")

    @property
    def n_fraction(self) -> float:
        return float(1 - self.counts[_ACGT].sum() / self.length) if self.length else float("nan")

    @property
    def soft_masked(self) -> float:
        return float(self.counts[_LOWER].sum() / self.length) if self.length else float("nan")

    def __add__(self, other: RecordStats) -> RecordStats:
        return RecordStats("total", 0, self.counts + other.counts)


class StatsCollector:
    """Counts bases while passing a scan's events on, so one pass can also write a copy.

    Example:
        >>> collector = StatsCollector()
        >>> for _ in collector.wrap([RecordStart("r", "", 1), b"ACgN"]):
        ...     pass
        >>> s = collector.records[0]
        >>> s.length, s.gc, s.n_fraction, s.soft_masked
        (4, 0.6666666666666666, 0.25, 0.25)
    """

    def __init__(self) -> None:
        self.records: list[RecordStats] = []

    def wrap(self, events: Iterable[RecordStart | bytes]) -> Iterator[RecordStart | bytes]:
        current: RecordStats | None = None
        for event in events:
            if isinstance(event, RecordStart):
                current = RecordStats(event.name, event.line)
                self.records.append(current)
            else:
                current.counts += np.bincount(np.frombuffer(event, dtype=np.uint8), minlength=256)
            yield event

    def total(self) -> RecordStats:
        total = RecordStats("total")
        for record in self.records:
            total = total + record
        return total
