"""FASTA records for `classify` and `embed`: validated up front, then streamed in chunks of bounded size.

The first pass (the validating scanner: bytes in blocks, nothing kept but lengths) finds a bad record
before any model work and gives the totals for progress and for a ``.npy`` header. The second pass
hands the records over a chunk at a time, so memory holds one chunk, not the input: 10,000 records or
10 million take the same (a single record longer than a chunk is a chunk of its own).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..datasets.fasta import FastaFile
from ..datasets.fasta_scan import RecordStart

CHUNK_BASES = 1_000_000
CHUNK_RECORDS = 4096


@dataclass(frozen=True)
class RecordSurvey:
    """Every record's length, in input order (files in the order given)."""

    lengths: list[int]

    @property
    def n_records(self) -> int:
        return len(self.lengths)

    @property
    def n_bases(self) -> int:
        return sum(self.lengths)


def survey_records(paths: Iterable[str | os.PathLike]) -> RecordSurvey:
    """Validate every file (`InputError` naming file, line and column) and measure its records.

    A record of length 0 is an error here: every input record must get its row in the output.
    """
    lengths: list[int] = []
    for path in paths:
        for event in FastaFile(path, empty="error").scan():
            if isinstance(event, RecordStart):
                lengths.append(0)
            else:
                lengths[-1] += len(event)
    return RecordSurvey(lengths)


def record_chunks(paths: Iterable[str | os.PathLike], max_bases: int | None = None,
                  max_records: int | None = None) -> Iterator[tuple[list[str], list[str]]]:
    """``(names, sequences)`` of consecutive records, up to ``max_bases`` bases or ``max_records`` records
    (default `CHUNK_BASES`, `CHUNK_RECORDS`)."""
    max_bases = CHUNK_BASES if max_bases is None else max_bases
    max_records = CHUNK_RECORDS if max_records is None else max_records
    names: list[str] = []
    sequences: list[str] = []
    bases = 0
    for path in paths:
        for name, sequence in FastaFile(path, empty="error").records():
            names.append(name)
            sequences.append(sequence)
            bases += len(sequence)
            if bases >= max_bases or len(names) >= max_records:
                yield names, sequences
                names, sequences, bases = [], [], 0
    if names:
        yield names, sequences
